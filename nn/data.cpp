#include "tilegrad/nn/data.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>

#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/random.hpp"

namespace tg::nn {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Copies rows[i] of t (N, ...) into row i of a new contiguous (rows.size(), ...) tensor.
Tensor gather_rows(const Tensor& t, const index_t* rows, index_t count) {
  std::vector<index_t> sizes(t.sizes().begin(), t.sizes().end());
  sizes[0] = count;
  Tensor out = make_tensor(sizes, t.dtype(), Device::cpu());
  const std::size_t row_bytes = std::size_t(t.numel() / std::max<index_t>(t.size(0), 1)) * dtype_size(t.dtype());
  const char* src = static_cast<const char*>(t.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (index_t i = 0; i < count; ++i) std::memcpy(dst + std::size_t(i) * row_bytes, src + std::size_t(rows[i]) * row_bytes, row_bytes);
  return out;
}

}  // namespace

TensorDataset::TensorDataset(Tensor x, Tensor y) {
  TG_CHECK(x.defined() && y.defined() && x.dim() >= 1 && y.dim() >= 1 && x.size(0) == y.size(0), "TensorDataset",
           "y", "expected x and y with the same number of rows, got ", x.defined() ? x.shape().str() : "undefined",
           " and ", y.defined() ? y.shape().str() : "undefined");
  TG_CHECK(x.device().is_cpu() && y.device().is_cpu(), "TensorDataset", "device", "datasets live on the CPU");
  x_ = x.detach().contiguous();
  y_ = y.detach().contiguous();
}

TensorDataset TensorDataset::subset(const std::vector<index_t>& rows) const {
  for (index_t r : rows)
    TG_CHECK(r >= 0 && r < size(), "TensorDataset::subset", "rows", "expected rows in [0, ", size(), "), got ", r);
  return TensorDataset(gather_rows(x_, rows.data(), index_t(rows.size())), gather_rows(y_, rows.data(), index_t(rows.size())));
}

std::vector<index_t> permutation(index_t n, std::uint64_t seed, std::uint64_t stream) {
  std::vector<index_t> p(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) p[std::size_t(i)] = i;
  for (index_t i = n - 1; i > 0; --i) {
    const auto w = Philox::block(seed, std::uint64_t(i), stream);
    const std::uint64_t r = (std::uint64_t(w[0]) << 32) | w[1];
    std::swap(p[std::size_t(i)], p[std::size_t(r % std::uint64_t(i + 1))]);
  }
  return p;
}

DataLoader::DataLoader(const TensorDataset& data, index_t batch_size, bool shuffle, std::uint64_t seed,
                       bool drop_last)
    : data_(data), batch_size_(batch_size), shuffle_(shuffle), drop_last_(drop_last), seed_(seed) {
  TG_CHECK(batch_size >= 1, "DataLoader", "batch_size", "expected >= 1, got ", batch_size);
  set_epoch(0);
  epoch_ = -1;  // begin() starts epoch 0
}

index_t DataLoader::batches() const {
  const index_t n = index_t(order_.size());
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

void DataLoader::set_epoch(index_t epoch) {
  epoch_ = epoch;
  const index_t n = data_.size();
  if (shuffle_) {
    order_ = permutation(n, seed_, std::uint64_t(epoch));
  } else {
    order_.resize(std::size_t(n));
    std::iota(order_.begin(), order_.end(), index_t(0));
  }
  if (sample_ranks_ > 1) {
    const index_t N = sample_ranks_;
    const index_t per = remainder_ == Remainder::drop ? n / N : (n + N - 1) / N;
    std::vector<index_t> mine(static_cast<std::size_t>(per));
    // Element rank + k N of the permutation, padded cyclically past its end.
    for (index_t k = 0; k < per; ++k) mine[std::size_t(k)] = order_[std::size_t((sample_rank_ + k * N) % n)];
    order_ = std::move(mine);
  }
}

void DataLoader::set_sampler(int rank, int ranks, Remainder remainder) {
  TG_CHECK(ranks >= 1, "DataLoader::set_sampler", "ranks", "expected >= 1, got ", ranks);
  TG_CHECK(rank >= 0 && rank < ranks, "DataLoader::set_sampler", "rank", "expected a rank in [0, ", ranks, "), got ",
           rank);
  TG_CHECK(ranks_ == 1, "DataLoader::set_sampler", "ranks", "this loader already splits each batch (set_shard)");
  sample_rank_ = rank, sample_ranks_ = ranks, remainder_ = remainder;
  const index_t e = epoch_;
  set_epoch(std::max<index_t>(e, 0));
  epoch_ = e;
}

void DataLoader::set_shard(int rank, int ranks) {
  TG_CHECK(ranks >= 1, "DataLoader::set_shard", "ranks", "expected >= 1, got ", ranks);
  TG_CHECK(rank >= 0 && rank < ranks, "DataLoader::set_shard", "rank", "expected a rank in [0, ", ranks, "), got ", rank);
  TG_CHECK(batch_size_ >= ranks, "DataLoader::set_shard", "ranks", "expected at most batch_size = ", batch_size_,
           " ranks (each needs a row of every batch), got ", ranks);
  TG_CHECK(sample_ranks_ == 1, "DataLoader::set_shard", "ranks", "this loader already samples a part (set_sampler)");
  rank_ = rank, ranks_ = ranks;
}

DataLoader::Iterator DataLoader::begin() {
  set_epoch(epoch_ + 1);
  return {this, 0};
}

Batch DataLoader::batch(index_t b) const {
  TG_CHECK(b >= 0 && b < batches(), "DataLoader::batch", "b", "expected a batch in [0, ", batches(), "), got ", b);
  const ProfileScope scope(ProfileEvent::Kind::data, "DataLoader.batch");
  const index_t start = b * batch_size_, global = std::min(batch_size_, index_t(order_.size()) - start);
  const index_t first = global * rank_ / ranks_, count = global * (rank_ + 1) / ranks_ - first;
  const index_t* rows = order_.data() + start + first;
  return {gather_rows(data_.x(), rows, count), gather_rows(data_.y(), rows, count), count};
}

Regression make_regression(index_t n, index_t d, double noise, std::uint64_t seed, index_t informative, double bias,
                           DType dtype) {
  TG_CHECK(n >= 1 && d >= 1, "make_regression", n < 1 ? "n" : "d", "expected n, d >= 1, got ", n, ", ", d);
  if (informative < 0 || informative > d) informative = d;
  Generator g(seed);
  const TensorOptions o = TensorOptions().with_dtype(DType::f64);
  const Tensor x = Tensor::randn({n, d}, o, &g);
  std::vector<double> coef = Tensor::rand({d}, o, &g).to_vector<double>();
  for (index_t j = 0; j < d; ++j) coef[std::size_t(j)] = j < informative ? 100 * coef[std::size_t(j)] : 0.0;
  const Tensor c = Tensor::from_vector(coef, {d, 1});
  const Tensor y = matmul(x, c) + bias + Tensor::randn({n, 1}, o, &g) * noise;
  return {TensorDataset(x.to(dtype), y.to(dtype)), c.view({d}).to(dtype), bias};
}

std::vector<TensorDataset> split(const TensorDataset& data, const std::vector<double>& fractions, std::uint64_t seed) {
  TG_CHECK(!fractions.empty(), "split", "fractions", "expected at least one fraction");
  double total = 0;
  for (double f : fractions) {
    TG_CHECK(f >= 0, "split", "fractions", "expected fractions >= 0, got ", f);
    total += f;
  }
  TG_CHECK(total <= 1 + 1e-9, "split", "fractions", "expected fractions summing to at most 1, got ", total);
  const std::vector<index_t> order = permutation(data.size(), seed, 0xda7a);
  std::vector<TensorDataset> parts;
  index_t start = 0;
  for (std::size_t k = 0; k < fractions.size(); ++k) {
    const index_t count = k + 1 == fractions.size() ? data.size() - start
                                                    : index_t(std::llround(fractions[k] * double(data.size())));
    parts.push_back(data.subset({order.begin() + start, order.begin() + start + count}));
    start += count;
  }
  return parts;
}

namespace {
void check_2d(const char* op, const Tensor& x, const Tensor& fitted) {
  TG_CHECK(x.defined() && x.dim() == 2, op, "x", "expected an (N, F) tensor, got ",
           x.defined() ? x.shape().str() : "undefined");
  if (fitted.defined())
    TG_CHECK(x.size(1) == fitted.size(1), op, "x", "expected ", fitted.size(1), " columns as fitted, got ", x.size(1));
  else
    TG_CHECK(false, op, "scaler", "transform before fit");
}
}  // namespace

StandardScaler& StandardScaler::fit(const Tensor& x) {
  TG_CHECK(x.defined() && x.dim() == 2 && x.size(0) >= 1, "StandardScaler::fit", "x",
           "expected an (N, F) tensor with N >= 1");
  NoGradGuard no_grad;
  mean = tg::mean(x, {0}, true);
  const Tensor var = tg::mean((x - mean) * (x - mean), {0}, true);
  std::vector<double> s = sqrt(var).to_vector<double>();
  for (double& v : s) v = v > 0 ? v : 1.0;
  scale = Tensor::from_vector(s, {1, index_t(s.size())}).to(x.dtype());
  return *this;
}
Tensor StandardScaler::transform(const Tensor& x) const {
  check_2d("StandardScaler::transform", x, mean);
  NoGradGuard no_grad;
  return (x - mean) / scale;
}
Tensor StandardScaler::inverse_transform(const Tensor& x) const {
  check_2d("StandardScaler::inverse_transform", x, mean);
  NoGradGuard no_grad;
  return x * scale + mean;
}

MinMaxScaler& MinMaxScaler::fit(const Tensor& x) {
  TG_CHECK(x.defined() && x.dim() == 2 && x.size(0) >= 1, "MinMaxScaler::fit", "x",
           "expected an (N, F) tensor with N >= 1");
  NoGradGuard no_grad;
  min = -tg::max(-x, {0}, true);
  std::vector<double> r = (tg::max(x, {0}, true) - min).to_vector<double>();
  for (double& v : r) v = v > 0 ? v : 1.0;
  range = Tensor::from_vector(r, {1, index_t(r.size())}).to(x.dtype());
  return *this;
}
Tensor MinMaxScaler::transform(const Tensor& x) const {
  check_2d("MinMaxScaler::transform", x, min);
  NoGradGuard no_grad;
  return (x - min) / range;
}
Tensor MinMaxScaler::inverse_transform(const Tensor& x) const {
  check_2d("MinMaxScaler::inverse_transform", x, min);
  NoGradGuard no_grad;
  return x * range + min;
}

ProgressBar::ProgressBar(std::string label, index_t total, std::FILE* out)
    : label_(std::move(label)), total_(total), out_(out), tty_(out && isatty(fileno(out))), start_(now_seconds()) {}

void ProgressBar::draw(index_t done, const std::string& message, bool final_line) {
  if (!tty_) return;
  constexpr int kWidth = 24;
  const double frac = total_ > 0 ? double(done) / double(total_) : 1.0;
  const int filled = int(frac * kWidth);
  const double elapsed = now_seconds() - start_, rate = elapsed > 0 ? double(done) / elapsed : 0;
  const double eta = rate > 0 ? double(total_ - done) / rate : 0;
  std::string bar(std::size_t(filled), '#');
  bar += std::string(std::size_t(kWidth - filled), '.');
  std::fprintf(out_, "\r%s [%s] %lld/%lld %.1f/s %s %02d:%02d %s\033[K", label_.c_str(), bar.c_str(),
               static_cast<long long>(done), static_cast<long long>(total_), rate, final_line ? "in" : "ETA",
               int(final_line ? elapsed : eta) / 60, int(final_line ? elapsed : eta) % 60, message.c_str());
  if (final_line) std::fprintf(out_, "\n");
  std::fflush(out_);
}

void ProgressBar::update(index_t done, const std::string& message) { draw(done, message, false); }
void ProgressBar::finish(const std::string& message) { draw(total_, message, true); }

}  // namespace tg::nn
