// Losses (cross_entropy on its fused kernel, mse_loss as one node) and joining
// (cat, stack).
#include "tilegrad/autograd/detail.hpp"
#include "tilegrad/autograd/node.hpp"
#include "tilegrad/autograd/ops.hpp"
#include "tilegrad/cuda/cross_entropy.hpp"
#include "tilegrad/cuda/ops.hpp"

namespace tg {

namespace {

struct CrossEntropyBackward final : Node {
  SavedTensor logits, target, lse;
  Reduction reduction = Reduction::mean;
  index_t ignore_index = -100;
  double smoothing = 0;
  Tensor count;  // 0-d: the targets not ignored (the mean's divisor), where the logits live
  const char* name() const override { return "CrossEntropyBackward"; }
  void release_saved() override { logits.reset(), target.reset(), lse.reset(); }
  index_t saved_bytes() const override { return logits.bytes() + target.bytes() + lse.bytes(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    TG_CHECK(!grad_enabled(), "cross_entropy", "create_graph",
             "the fused cross_entropy has no double backward; compose log_softmax and a gather for that");
    const Tensor z = logits.unpack(*this), t = target.unpack(*this), l = lse.unpack(*this);
    const index_t rows = z.size(0), classes = z.size(1);
    // Each row's upstream gradient: g itself (none), or g spread (sum) and divided (mean),
    // as tensor ops on g's device (reading g on the host would wait for a GPU).
    const Tensor per_row = reduction == Reduction::mean ? g.detach() / count : g.detach();
    const Tensor dloss = reduction == Reduction::none ? per_row.contiguous() : per_row.expand({rows}).contiguous();
    Tensor dz = make_tensor(z.sizes(), z.dtype(), z.device());
    detail::with_float_type("cross_entropy", z.dtype(), [&](auto zero) {
      using T = decltype(zero);
      detail::table_for("cross_entropy", z.device())
          .get<T>()
          .cross_entropy_backward(rows, classes, z.data<T>(), classes, t.data<std::int64_t>(), ignore_index, smoothing,
                                  l.data<T>(), dloss.data<T>(), dz.data<T>(), classes);
    });
    return {dz, Tensor()};
  }
};

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction, index_t ignore_index,
                     double label_smoothing, Loc where) {
  const char* op = "cross_entropy";
  TG_CHECK(logits.defined() && logits.dim() == 2, op, "logits", "expected (N, C) logits, got ",
           logits.defined() ? logits.shape().str() : std::string("undefined"));
  TG_CHECK(target.defined() && target.dtype() == DType::i64 && target.dim() == 1 && target.size(0) == logits.size(0),
           op, "target", "expected (", logits.size(0), ") class indices of dtype i64, got ",
           target.defined() ? target.shape().str() + " " + dtype_name(target.dtype()) : std::string("undefined"));
  TG_CHECK(logits.device() == target.device(), op, "device", "expected logits and target on one device, got ",
           logits.device().str(), " and ", target.device().str());
  const bool host = logits.device().is_cpu();
  const Tensor z = logits.detach().contiguous(), t = target.contiguous();
  const index_t rows = z.size(0), classes = z.size(1);
  const TensorOptions o = TensorOptions().with_dtype(z.dtype()).with_device(z.device());
  Tensor loss = Tensor::empty({rows}, o), lse = Tensor::empty({rows, 2}, o);  // (max, log sum): kernels/cross_entropy.hpp
  detail::with_float_type(op, z.dtype(), [&](auto zero) {
    using T = decltype(zero);
    check_cross_entropy(op, rows, classes, z.data<T>(), classes, t.data<std::int64_t>(), ignore_index, label_smoothing,
                        loss.data<T>(), lse.data<T>(), sizeof(T), /*targets_on_host=*/host);
    detail::table_for(op, z.device())
        .get<T>()
        .cross_entropy_forward(rows, classes, z.data<T>(), classes, t.data<std::int64_t>(), ignore_index,
                               label_smoothing, loss.data<T>(), lse.data<T>());
  });
  // The mean's divisor as a 0-d tensor beside the logits: counted by the host on the CPU,
  // by a kernel on a device (the targets are not read by the host there).
  Tensor count;
  if (reduction == Reduction::mean) {
    if (host) {
      const std::int64_t* tp = t.data<std::int64_t>();
      index_t n = 0;
      for (index_t i = 0; i < rows; ++i) n += tp[i] != ignore_index;
      count = Tensor::full({}, double(n), o);
    } else {
      TG_CHECK(z.dtype() == DType::f32, op, "dtype", "expected f32 logits on ", z.device().str());
      count = Tensor::empty({}, o);
      cuda::count_targets(rows, t.data<std::int64_t>(), ignore_index, count.data<float>());
    }
  }
  Tensor y;
  {
    NoGradGuard no_grad;
    y = reduction == Reduction::none ? loss
        : reduction == Reduction::sum ? sum(loss)
                                      : sum(loss) / count;  // 0 / 0 = NaN when all are ignored
  }
  if (needs_graph({&logits})) {
    auto n = std::make_shared<CrossEntropyBackward>();
    n->logits = SavedTensor(z), n->target = SavedTensor(t), n->lse = SavedTensor(lse);
    n->reduction = reduction, n->ignore_index = ignore_index, n->smoothing = label_smoothing;
    n->count = count;
    attach(n, {&logits, &target}, y, where);
  }
  if (anomaly_enabled()) check_finite(y, "forward", y.grad_fn().get(), op, where);
  return y;
}

// mse_loss: one node instead of the three of sub, mul and mean (small regressions are
// bound by per-op overhead). d = input - target is saved; the backward is
// g 2 d / n (n = 1 without the mean), summed back over broadcast axes, negated for the
// target. Under create_graph d is recomputed with a graph so that second derivatives
// flow through it.
namespace {
struct MseLossBackward final : Node {
  SavedTensor input, target, diff;
  Reduction reduction = Reduction::mean;
  double count = 1;
  const char* name() const override { return "MseLossBackward"; }
  void release_saved() override { input.reset(), target.reset(), diff.reset(); }
  index_t saved_bytes() const override { return input.bytes() + target.bytes() + diff.bytes(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor a = input.unpack(*this), b = target.unpack(*this);
    const Tensor d = grad_enabled() ? sub(a, b) : diff.unpack(*this);
    const double k = reduction == Reduction::mean ? 2.0 / count : 2.0;
    const Tensor gd = mul(d, g * k);
    std::vector<Tensor> out(2);
    if (next[0].node) out[0] = sum_to(gd, a.sizes());
    if (next[1].node) out[1] = sum_to(neg(gd), b.sizes());
    return out;
  }
};
}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction, Loc where) {
  detail::check_same("mse_loss", {&input, &target});
  Tensor d, y;
  {
    NoGradGuard no_grad;
    d = sub(input, target, where);
    const Tensor sq = mul(d, d, where);
    y = reduction == Reduction::none ? sq : reduction == Reduction::sum ? sum(sq, {}, false, where)
                                                                        : mean(sq, {}, false, where);
  }
  if (needs_graph({&input, &target})) {
    auto n = std::make_shared<MseLossBackward>();
    n->input = SavedTensor(input), n->target = SavedTensor(target), n->diff = SavedTensor(d);
    n->reduction = reduction;
    n->count = double(d.numel());
    attach(n, {&input, &target}, y, where);
  }
  if (anomaly_enabled()) check_finite(y, "forward", y.grad_fn().get(), "mse_loss", where);
  return y;
}

// ---- cat / stack ----
namespace {
struct CatBackward final : Node {
  int dim = 0;
  std::vector<index_t> lengths;
  const char* name() const override { return "CatBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    std::vector<Tensor> out;
    index_t start = 0;
    for (std::size_t i = 0; i < lengths.size(); ++i) {
      out.push_back(next[i].node ? g.slice(dim, start, start + lengths[i]) : Tensor());
      start += lengths[i];
    }
    return out;
  }
};
}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int dim, Loc where) {
  TG_CHECK(!tensors.empty(), "cat", "tensors", "expected at least one tensor");
  const Tensor& first = tensors[0];
  TG_CHECK(first.defined() && first.dim() >= 1, "cat", "tensors", "expected tensors of at least 1 dim");
  dim = detail::wrap_dim("cat", dim, first.dim());
  std::vector<index_t> sizes = detail::to_vector(first.sizes());
  sizes[std::size_t(dim)] = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    detail::check_same("cat", {&first, &t});
    bool ok = t.dim() == first.dim();
    for (int d = 0; ok && d < t.dim(); ++d) ok = d == dim || t.sizes()[std::size_t(d)] == first.sizes()[std::size_t(d)];
    TG_CHECK(ok, "cat", "tensors", "expected every tensor of shape ", first.shape().str(), " except along dim ", dim,
             ", got ", t.shape().str(), " at position ", i);
    sizes[std::size_t(dim)] += t.sizes()[std::size_t(dim)];
  }
  Tensor y = make_tensor(sizes, first.dtype(), first.device());
  index_t start = 0;
  std::vector<index_t> lengths;
  {
    NoGradGuard no_grad;
    for (const Tensor& t : tensors) {
      const index_t len = t.sizes()[std::size_t(dim)];
      detail::copy_into("cat", y.slice(dim, start, start + len), t);
      lengths.push_back(len);
      start += len;
    }
  }
  bool graph = false;
  for (const Tensor& t : tensors) graph = graph || needs_graph({&t});
  if (graph) {
    auto n = std::make_shared<CatBackward>();
    n->dim = dim;
    n->lengths = lengths;
    for (const Tensor& t : tensors) n->next.push_back(edge_of(t));
    attach(n, {}, y, where);
  }
  return y;
}

Tensor stack(const std::vector<Tensor>& tensors, int dim, Loc where) {
  TG_CHECK(!tensors.empty(), "stack", "tensors", "expected at least one tensor");
  std::vector<Tensor> parts;
  for (const Tensor& t : tensors) parts.push_back(t.unsqueeze(detail::wrap_dim("stack", dim, t.dim() + 1)));
  return cat(parts, dim, where);
}

}  // namespace tg
