#include "tilegrad/nn/metrics.hpp"

#include <algorithm>
#include <cstdio>

#include "tilegrad/kernels/error.hpp"

namespace tg::nn {

namespace {
std::pair<std::vector<double>, std::vector<double>> pair_of(const char* op, const Tensor& p, const Tensor& t) {
  TG_CHECK(p.defined() && t.defined() && p.numel() == t.numel() && p.numel() > 0, op, "target",
           "expected predictions and targets with the same, nonzero number of elements");
  return {p.to_vector<double>(), t.to_vector<double>()};
}
}  // namespace

double mse(const Tensor& pred, const Tensor& target) {
  const auto [p, t] = pair_of("mse", pred, target);
  double s = 0;
  for (std::size_t i = 0; i < p.size(); ++i) s += (p[i] - t[i]) * (p[i] - t[i]);
  return s / double(p.size());
}

double mae(const Tensor& pred, const Tensor& target) {
  const auto [p, t] = pair_of("mae", pred, target);
  double s = 0;
  for (std::size_t i = 0; i < p.size(); ++i) s += std::abs(p[i] - t[i]);
  return s / double(p.size());
}

double r2_score(const Tensor& pred, const Tensor& target) {
  const auto [p, t] = pair_of("r2_score", pred, target);
  double mean = 0;
  for (double v : t) mean += v;
  mean /= double(t.size());
  double res = 0, tot = 0;
  for (std::size_t i = 0; i < p.size(); ++i) res += (t[i] - p[i]) * (t[i] - p[i]), tot += (t[i] - mean) * (t[i] - mean);
  return tot > 0 ? 1 - res / tot : (res == 0 ? 1.0 : 0.0);
}

ConfusionMatrix confusion_matrix(const std::vector<index_t>& truth, const std::vector<index_t>& predicted,
                                 index_t classes) {
  TG_CHECK(truth.size() == predicted.size(), "confusion_matrix", "predicted", "expected ", truth.size(),
           " predictions, got ", predicted.size());
  TG_CHECK(classes >= 1, "confusion_matrix", "classes", "expected >= 1, got ", classes);
  ConfusionMatrix m{classes, std::vector<index_t>(std::size_t(classes * classes), 0)};
  for (std::size_t i = 0; i < truth.size(); ++i) {
    TG_CHECK(truth[i] >= 0 && truth[i] < classes && predicted[i] >= 0 && predicted[i] < classes, "confusion_matrix",
             "labels", "expected classes in [0, ", classes, "), got truth ", truth[i], " predicted ", predicted[i],
             " at ", i);
    ++m.counts[std::size_t(truth[i] * classes + predicted[i])];
  }
  return m;
}

std::string ConfusionMatrix::str(const std::vector<std::string>& names) const {
  auto name = [&](index_t c) { return c < index_t(names.size()) ? names[std::size_t(c)] : std::to_string(c); };
  std::size_t w = 6, nw = 4;
  for (index_t v : counts) w = std::max(w, std::to_string(v).size() + 1);
  for (index_t c = 0; c < classes; ++c) nw = std::max(nw, name(c).size());
  std::string out = std::string(nw, ' ') + "  predicted\n" + std::string(nw, ' ');
  char buf[64];
  for (index_t c = 0; c < classes; ++c) {
    std::snprintf(buf, sizeof buf, "%*s", int(w), name(c).substr(0, w - 1).c_str());
    out += buf;
  }
  out += "\n";
  for (index_t r = 0; r < classes; ++r) {
    std::snprintf(buf, sizeof buf, "%-*s", int(nw), name(r).c_str());
    out += buf;
    for (index_t c = 0; c < classes; ++c) {
      std::snprintf(buf, sizeof buf, "%*lld", int(w), static_cast<long long>(at(r, c)));
      out += buf;
    }
    out += "\n";
  }
  return out;
}

ClassReport classification_report(const std::vector<index_t>& truth, const std::vector<index_t>& predicted,
                                  index_t classes) {
  ClassReport r;
  r.confusion = confusion_matrix(truth, predicted, classes);
  const std::size_t C = std::size_t(classes);
  r.precision.assign(C, 0), r.recall.assign(C, 0), r.f1.assign(C, 0), r.support.assign(C, 0);
  index_t correct = 0, total = 0;
  for (index_t c = 0; c < classes; ++c) {
    index_t tp = r.confusion.at(c, c), pred = 0, real = 0;
    for (index_t k = 0; k < classes; ++k) pred += r.confusion.at(k, c), real += r.confusion.at(c, k);
    const std::size_t i = std::size_t(c);
    r.precision[i] = pred ? double(tp) / double(pred) : 0;
    r.recall[i] = real ? double(tp) / double(real) : 0;
    const double s = r.precision[i] + r.recall[i];
    r.f1[i] = s > 0 ? 2 * r.precision[i] * r.recall[i] / s : 0;
    r.support[i] = real;
    correct += tp;
    total += real;
  }
  r.accuracy = total ? double(correct) / double(total) : 0;
  for (std::size_t i = 0; i < C; ++i) {
    r.macro_precision += r.precision[i] / double(C);
    r.macro_recall += r.recall[i] / double(C);
    r.macro_f1 += r.f1[i] / double(C);
    const double w = total ? double(r.support[i]) / double(total) : 0;
    r.weighted_precision += w * r.precision[i];
    r.weighted_recall += w * r.recall[i];
    r.weighted_f1 += w * r.f1[i];
  }
  return r;
}

std::vector<index_t> argmax_rows(const Tensor& scores) {
  TG_CHECK(scores.defined() && scores.dim() == 2, "argmax_rows", "scores", "expected (N, C) scores");
  const std::vector<double> v = scores.to_vector<double>();
  const index_t N = scores.size(0), C = scores.size(1);
  std::vector<index_t> out(static_cast<std::size_t>(N));
  for (index_t i = 0; i < N; ++i) {
    const auto row = v.begin() + i * C;
    out[std::size_t(i)] = index_t(std::max_element(row, row + C) - row);
  }
  return out;
}

}  // namespace tg::nn
