// matmul and linear on the GEMM kernel. A 2-D operand whose rows or whose columns are
// contiguous goes to the GEMM as is (a transposed view becomes Trans::T), so the
// backward's a^T and b^T cost no copy; other layouts are copied once.
#include "tilegrad/autograd/detail.hpp"
#include "tilegrad/autograd/node.hpp"
#include "tilegrad/autograd/ops.hpp"
#include "tilegrad/cuda/gemm.hpp"

namespace tg {

namespace {

// A (rows x cols) matrix view as the GEMM sees it: op(A) = A with lda, or A^T with lda.
struct GemmOperand {
  Trans trans = Trans::N;
  index_t ld = 0;
  bool ok = false;
};
GemmOperand as_gemm(index_t rows, index_t cols, index_t s0, index_t s1) {
  if (s1 == 1 && (rows <= 1 || s0 >= cols)) return {Trans::N, std::max<index_t>(rows <= 1 ? cols : s0, 1), true};
  if (s0 == 1 && (cols <= 1 || s1 >= rows)) return {Trans::T, std::max<index_t>(cols <= 1 ? rows : s1, 1), true};
  return {};
}

// y (M x N, f32) = a (M x K) @ b (K x N) for 2-D 16-bit operands on a GPU, on its tensor
// cores: the op table's gemm_bf16 / gemm_f16 take each operand with contiguous rows or contiguous
// columns, as it lies (a Linear layer's forward x W^T, and its backward's g W and g^T x,
// need no copy); other strides are copied first. Undefined for other ranks.
Tensor tensor_core_matmul(const Tensor& a, const Tensor& b) {
  if (a.dim() != 2 || b.dim() != 2 || b.size(0) != a.size(1)) return {};
  const index_t M = a.size(0), K = a.size(1), N = b.size(1);
  // A rows x cols operand as the GEMM reads it: rows contiguous (N, ld = row stride) or
  // columns contiguous (T, ld = column stride).
  auto layout = [](const Tensor& t, Trans& trans, index_t& ld) {
    const index_t rows = t.size(0), cols = t.size(1), s0 = t.strides()[0], s1 = t.strides()[1];
    if ((s1 == 1 || cols <= 1) && (rows <= 1 || s0 >= cols)) {
      trans = Trans::N, ld = rows <= 1 ? std::max<index_t>(cols, 1) : s0;
      return true;
    }
    if ((s0 == 1 || rows <= 1) && (cols <= 1 || s1 >= rows)) {
      trans = Trans::T, ld = cols <= 1 ? std::max<index_t>(rows, 1) : s1;
      return true;
    }
    return false;
  };
  Trans ta = Trans::N, tb = Trans::N;
  index_t lda = 1, ldb = 1;
  if (!layout(a, ta, lda)) return tensor_core_matmul(a.detach().contiguous(), b);
  if (!layout(b, tb, ldb)) return tensor_core_matmul(a, b.detach().contiguous());
  Tensor y = make_tensor(std::vector<index_t>{M, N}, DType::f32, a.device());
  const auto* pa = static_cast<const std::uint16_t*>(a.raw_data());
  const auto* pb = static_cast<const std::uint16_t*>(b.raw_data());
  const index_t ldc = std::max<index_t>(N, 1);
  const HalfOps& half = detail::table_for("matmul", a.device()).half;
  const HalfSignatures::gemm_bf16 gemm = a.dtype() == DType::bf16 ? half.gemm_bf16 : half.gemm_f16;
  if (!gemm) return {};  // no tensor cores in this table: the caller widens to f32
  gemm(ta, tb, M, N, K, 1.0f, pa, lda, pb, ldb, 0.0f, y.data<float>(), ldc, {});
  return y;
}

// y (batch..., M, N) = a (batch..., M, K) @ b (batch..., K, N), every operand expanded
// to the same batch sizes; no autograd. 16-bit operands give an f32 y: their products
// are exact in f32 and summed in f32, on the tensor cores where the layout allows, else
// by the f32 GEMM on the widened values (the same function on every device).
Tensor matmul_kernel(const Tensor& a_in, const Tensor& b_in) {
  detail::check_same("matmul", {&a_in, &b_in});
  if (detail::is_half(a_in.dtype())) {
    if (a_in.device().is_cuda())
      if (Tensor y = tensor_core_matmul(a_in, b_in); y.defined()) return y;
    // Widened in the order the values lie: a transposed operand (a Linear layer's W^T,
    // the backward's g^T) converts as the dense array it is and stays a view.
    auto widen = [](const Tensor& t) {
      const Tensor d = t.detach();
      if (d.dim() >= 2 && !d.is_contiguous() && d.transpose(-1, -2).is_contiguous())
        return d.transpose(-1, -2).to(DType::f32).transpose(-1, -2);
      return d.to(DType::f32);
    };
    return matmul_kernel(widen(a_in), widen(b_in));
  }
  const int ra = a_in.dim(), rb = b_in.dim();
  const index_t M = a_in.size(-2), K = a_in.size(-1), N = b_in.size(-1);
  TG_CHECK(b_in.size(-2) == K, "matmul", "b", "expected ", K, " rows in b to match a ", a_in.shape().str(), ", got ",
           b_in.shape().str());
  std::vector<index_t> batch = detail::broadcast_sizes("matmul", a_in.sizes().first(std::size_t(ra - 2)),
                                                       b_in.sizes().first(std::size_t(rb - 2)));
  std::vector<index_t> as = batch, bs = batch, ys = batch;
  as.insert(as.end(), {M, K});
  bs.insert(bs.end(), {K, N});
  ys.insert(ys.end(), {M, N});
  Tensor a = a_in.detach().expand(as), b = b_in.detach().expand(bs);
  const int r = int(ys.size());
  GemmOperand ga = as_gemm(M, K, a.strides()[std::size_t(r - 2)], a.strides()[std::size_t(r - 1)]);
  GemmOperand gb = as_gemm(K, N, b.strides()[std::size_t(r - 2)], b.strides()[std::size_t(r - 1)]);
  if (!ga.ok) a = a.contiguous(), ga = as_gemm(M, K, K, 1);
  if (!gb.ok) b = b.contiguous(), gb = as_gemm(K, N, N, 1);
  Tensor y = make_tensor(ys, a.dtype(), a.device());
  if (y.numel() == 0) return y;
  // K = 0 (a and b empty, y not): a sum of nothing. The loop below would offset their
  // null data pointers by the batch strides.
  if (K == 0) return Tensor::zeros(ys, TensorOptions().with_dtype(a.dtype()).with_device(a.device()));
  index_t count = 1;
  for (index_t s : batch) count *= s;
  detail::with_float_type("matmul", a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const auto& gemm = detail::table_for("matmul", a.device()).get<T>().gemm;
    for (index_t i = 0; i < count; ++i) {
      index_t oa = 0, ob = 0, rest = i;  // batch index -> element offsets
      for (int d = r - 3; d >= 0; --d) {
        const index_t n = ys[std::size_t(d)], k = rest % n;
        rest /= n;
        oa += k * a.strides()[std::size_t(d)];
        ob += k * b.strides()[std::size_t(d)];
      }
      gemm(ga.trans, gb.trans, M, N, K, T(1), a.data<T>() + oa, ga.ld, b.data<T>() + ob, gb.ld, T(0),
           y.data<T>() + i * M * N, std::max<index_t>(N, 1), GemmEpilogue<T>{});
    }
  });
  return y;
}

// da = g b^T, db = a^T g (summed over broadcast batch dims): each needs only the other
// operand, which is all that is saved. With 16-bit operands g (f32) is rounded to their
// dtype first, as a 16-bit output's gradient would be (PyTorch's autocast), so that the
// backward products are 16-bit matmuls too (tensor cores on a GPU), and the gradients
// are rounded to the operands' dtype.
struct MatmulBackward final : Node {
  SavedTensor a, b;
  std::vector<index_t> a_sizes, b_sizes;
  DType dtype = DType::f32;
  const char* name() const override { return "MatmulBackward"; }
  void release_saved() override { a.reset(), b.reset(); }
  index_t saved_bytes() const override { return a.bytes() + b.bytes(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    const AutocastGuard off(DType::f32);  // a backward computes as its forward did, autocast or not
    const bool half = detail::is_half(dtype);
    const Tensor gh = half ? g.to(dtype) : g;
    auto narrow = [&](const Tensor& t) { return half ? t.to(dtype) : t; };
    Tensor ga, gb;
    if (next[0].node) ga = narrow(sum_to(matmul(gh, b.unpack(*this).transpose(-1, -2)), a_sizes));
    if (next[1].node) gb = narrow(sum_to(matmul(a.unpack(*this).transpose(-1, -2), gh), b_sizes));
    return {ga, gb};
  }
};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, Loc where) {
  detail::check_same("matmul", {&a, &b});
  TG_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul", a.dim() < 1 ? "a" : "b", "expected at least 1 dim, got a scalar");
  if (const DType ac = autocast_dtype(); ac != DType::f32 && a.dtype() == DType::f32)
    return matmul(a.to(ac), b.to(ac), where);
  // Vectors as in NumPy: (K) @ (.., K, N) is a row, (.., M, K) @ (K) a column, removed after.
  if (a.dim() == 1 || b.dim() == 1) {
    Tensor y = matmul(a.dim() == 1 ? a.unsqueeze(0) : a, b.dim() == 1 ? b.unsqueeze(-1) : b, where);
    if (b.dim() == 1) y = y.squeeze(-1);
    if (a.dim() == 1) y = y.squeeze(b.dim() == 1 ? -1 : -2);
    return y;
  }
  Tensor y = matmul_kernel(a, b);
  if (needs_graph({&a, &b})) {
    auto n = std::make_shared<MatmulBackward>();
    if (b.requires_grad()) n->a = SavedTensor(a);
    if (a.requires_grad()) n->b = SavedTensor(b);
    n->a_sizes = detail::to_vector(a.sizes());
    n->b_sizes = detail::to_vector(b.sizes());
    n->dtype = a.dtype();
    attach(n, {&a, &b}, y, where);
  }
  if (anomaly_enabled()) check_finite(y, "forward", y.grad_fn().get(), "matmul", where);
  return y;
}

// ---------------------------------------------------------------------------------
// linear: act(x W^T + bias) with the bias (and, when nothing needs the pre-activation,
// the activation) in the GEMM's epilogue.
// ---------------------------------------------------------------------------------
namespace {

// The data of t as a contiguous tensor, without a graph: t itself when it already is
// (no view made: small models pay per tensor object), else a copy.
Tensor plain(const Tensor& t) { return t.is_contiguous() ? t : t.detach().contiguous(); }

// Rows of x seen as (rows, in): the product of every size but the last.
index_t leading_rows(const Tensor& x) {
  index_t rows = 1;
  for (int d = 0; d + 1 < x.dim(); ++d) rows *= x.sizes()[std::size_t(d)];
  return rows;
}

struct LinearBackward final : Node {
  SavedTensor x, w, z;  // z: the pre-activation, kept when act is not none
  Activation act{};
  bool has_bias = false;
  const char* name() const override { return "LinearBackward"; }
  void release_saved() override { x.reset(), w.reset(), z.reset(); }
  index_t saved_bytes() const override { return x.bytes() + w.bytes() + z.bytes(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor xv = x.unpack(*this), wv = w.unpack(*this);
    const index_t out = wv.size(0), in = wv.size(1), rows = leading_rows(xv);
    Tensor dz = g;
    if (act.kind != Act::none) {
      TG_CHECK(!grad_enabled(), "linear", "create_graph",
               "linear with a fused activation has no double backward; use linear without activation followed by "
               "the activation op");
      const Tensor zv = z.unpack(*this);
      Tensor d = make_tensor(g.sizes(), g.dtype(), g.device());
      const Tensor gc = plain(g);
      detail::with_float_type("linear", g.dtype(), [&](auto zero) {
        using T = decltype(zero);
        detail::table_for("linear", g.device())
            .get<T>()
            .act_backward(act, rows, out, zv.data<T>(), out, nullptr, gc.data<T>(), out, d.data<T>(), out);
      });
      dz = d;
    }
    Tensor gx, gw, gb;
    if (grad_enabled()) {  // create_graph: differentiable ops, so that the gradients have a graph
      const Tensor dz2 = dz.reshape({-1, out});
      if (next[0].node) gx = matmul(dz2, wv).reshape(xv.sizes());
      if (next[1].node) gw = matmul(dz2.t(), xv.reshape({-1, in}));
      if (has_bias && next[2].node) gb = sum(dz2, {0});
      return {gx, gw, gb};
    }
    // Otherwise straight to the kernels: two GEMMs with transpose flags and a column sum.
    const Tensor dzc = plain(dz), xc = plain(xv), wc = plain(wv);
    detail::with_float_type("linear", dz.dtype(), [&](auto zero) {
      using T = decltype(zero);
      const auto& ops = detail::table_for("linear", dz.device()).get<T>();
      const index_t ld_out = std::max<index_t>(out, 1), ld_in = std::max<index_t>(in, 1);
      if (next[0].node) {
        gx = make_tensor(xv.sizes(), dz.dtype(), dz.device());
        ops.gemm(Trans::N, Trans::N, rows, in, out, T(1), dzc.data<T>(), ld_out, wc.data<T>(), ld_in, T(0),
                 gx.data<T>(), ld_in, GemmEpilogue<T>{});
      }
      if (next[1].node) {
        gw = make_tensor(wv.sizes(), dz.dtype(), dz.device());
        ops.gemm(Trans::T, Trans::N, out, in, rows, T(1), dzc.data<T>(), ld_out, xc.data<T>(), ld_in, T(0),
                 gw.data<T>(), ld_in, GemmEpilogue<T>{});
      }
      if (has_bias && next[2].node) {
        gb = make_tensor(std::vector<index_t>{out}, dz.dtype(), dz.device());
        ops.reduce(Reduce::sum, 1, rows, out, dzc.data<T>(), 0, out, 1, gb.data<T>(), 0, 1);
      }
    });
    return {gx, gw, gb};
  }
};

}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias, Activation act, Loc where) {
  detail::check_same("linear", {&x, &w});
  TG_CHECK(w.dim() == 2, "linear", "weight", "expected a 2-D weight (out, in), got ", w.shape().str());
  const index_t out = w.size(0), in = w.size(1);
  TG_CHECK(x.dim() >= 1 && x.size(-1) == in, "linear", "x", "expected last dim ", in, " (weight ", w.shape().str(),
           "), got ", x.shape().str());
  if (bias.defined()) {
    detail::check_same("linear", {&x, &bias});
    TG_CHECK(bias.dim() == 1 && bias.size(0) == out, "linear", "bias", "expected shape (", out, "), got ",
             bias.shape().str());
  }
  // Autocast, or 16-bit x and W: a 16-bit matmul (f32 out), then the bias and the
  // activation in f32, as differentiable ops.
  if (const DType ac = autocast_dtype(); (ac != DType::f32 && x.dtype() == DType::f32) || detail::is_half(x.dtype())) {
    const DType h = detail::is_half(x.dtype()) ? x.dtype() : ac;
    std::vector<index_t> out_sizes = detail::to_vector(x.sizes());
    out_sizes.back() = out;
    Tensor z = matmul(x.reshape({-1, in}).to(h), w.to(h).t(), where);
    if (bias.defined()) z = z + bias.to(DType::f32);
    if (act.kind != Act::none) z = activation(z, act, where);
    return z.reshape(out_sizes);
  }
  const bool graph = needs_graph({&x, &w, &bias});
  const Tensor xc = plain(x), wc = plain(w), bc = bias.defined() ? plain(bias) : Tensor();
  const index_t rows = leading_rows(x);
  std::vector<index_t> out_sizes = detail::to_vector(x.sizes());
  out_sizes.back() = out;
  // With a graph and an activation, z = x W^T + b is kept for the backward; y = act(z).
  const bool keep_z = graph && act.kind != Act::none;
  Tensor z = make_tensor(out_sizes, x.dtype(), x.device());
  Tensor y = keep_z ? make_tensor(out_sizes, x.dtype(), x.device()) : z;
  detail::with_float_type("linear", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const auto& ops = detail::table_for("linear", x.device()).get<T>();
    GemmEpilogue<T> epi{bc.defined() ? bc.template data<T>() : nullptr, keep_z ? Activation{} : act};
    ops.gemm(Trans::N, Trans::T, rows, out, in, T(1), xc.data<T>(), std::max<index_t>(in, 1), wc.data<T>(),
             std::max<index_t>(in, 1), T(0), z.data<T>(), std::max<index_t>(out, 1), epi);
    if (keep_z) ops.act_forward(act, rows, out, z.data<T>(), out, nullptr, y.data<T>(), out);
  });
  if (graph) {
    auto n = std::make_shared<LinearBackward>();
    n->x = SavedTensor(x);
    n->w = SavedTensor(w);
    if (keep_z) n->z = SavedTensor(z);
    n->act = act;
    n->has_bias = bias.defined();
    attach(n, {&x, &w, &bias}, y, where);
  }
  if (anomaly_enabled()) check_finite(y, "forward", y.grad_fn().get(), "linear", where);
  return y;
}

}  // namespace tg
