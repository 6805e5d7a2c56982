// Activations, softmax, log_softmax, layer_norm, attention and dropout on their fused
// kernels. Their backward passes use the fused backward kernels; under create_graph
// softmax, log_softmax, layer_norm and the activations whose derivative is a short
// formula (relu, leaky_relu, sigmoid, tanh, silu) switch to that formula written with
// differentiable ops, and the rest (gelu, attention, dropout) say they have no double
// backward.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "tilegrad/autograd/detail.hpp"
#include "tilegrad/autograd/node.hpp"
#include "tilegrad/autograd/ops.hpp"
#include "tilegrad/cuda/ops.hpp"
#include "tilegrad/cuda/runtime.hpp"

namespace tg {

namespace {

// A tensor as (rows, cols) over its last dimension, contiguous.
struct Rows {
  Tensor t;
  index_t rows = 1, cols = 1;
};
Rows as_rows(const Tensor& x) {
  Rows r{x.detach().contiguous()};
  r.cols = x.dim() == 0 ? 1 : x.size(-1);
  r.rows = r.cols == 0 ? 0 : x.numel() / r.cols;
  return r;
}

// A 16-bit entry of the op table (kernels/ops.hpp's HalfOps), or a tg::Error where the
// table serves none (only the CUDA table serves them, and only CUDA tensors come here).
template <class F>
F half_entry(F f, const char* op) {
  if (!f) detail::throw_error(op, "device", "no 16-bit kernels for this device");
  return f;
}

void no_double_backward(const char* op) {
  TG_CHECK(!grad_enabled(), op, "create_graph",
           "this fused op has no double backward (its backward is a fused kernel, not differentiable ops)");
}

// ---- activations ----
struct ActivationBackward final : Node {
  SavedTensor x;
  Activation act{};
  const char* name() const override { return "ActivationBackward"; }
  void release_saved() override { x.reset(); }
  index_t saved_bytes() const override { return x.bytes(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor xv = x.unpack(*this);
    if (grad_enabled()) {  // create_graph: the derivative as differentiable ops
      switch (act.kind) {
        case Act::none: return {g};
        case Act::relu: return {g * detail::unary_kernel("relu_backward", Unary::gt_scalar, xv, 0)};
        case Act::leaky_relu: {
          const Tensor m = detail::unary_kernel("leaky_relu_backward", Unary::gt_scalar, xv, 0);
          return {g * (m * (1.0 - act.slope) + act.slope)};
        }
        case Act::sigmoid: {
          const Tensor s = sigmoid(xv);
          return {g * (s * (1.0 - s))};
        }
        case Act::tanh: {
          const Tensor t = tanh(xv);
          return {g * (1.0 - t * t)};
        }
        case Act::silu: {
          const Tensor s = sigmoid(xv);
          return {g * (s * (1.0 + xv * (1.0 - s)))};
        }
        default: no_double_backward(act.kind == Act::gelu_tanh ? "gelu (tanh)" : "gelu");
      }
    }
    const Rows xr = as_rows(xv), gr = as_rows(g);
    Tensor dx = make_tensor(xv.sizes(), xv.dtype(), xv.device());
    detail::with_float_type("activation", xv.dtype(), [&](auto zero) {
      using T = decltype(zero);
      detail::table_for("activation", xv.device())
          .get<T>()
          .act_backward(act, xr.rows, xr.cols, xr.t.data<T>(), xr.cols, nullptr, gr.t.data<T>(), xr.cols,
                        dx.data<T>(), xr.cols);
    });
    return {dx};
  }
};

// ---- softmax / log_softmax ----
// The fused backward kernel reads the saved output y. Under create_graph the gradient is
// written with differentiable ops instead, y recomputed from the saved input x (a saved
// output carries no graph back to x: keeping y's own node would be a cycle):
//   softmax:     dx = y (g - sum(g y))
//   log_softmax: dx = g - e^y sum(g)
// sums over the last dim.
struct SoftmaxBackward final : Node {
  SavedTensor x, y;
  bool log = false;
  const char* name() const override { return log ? "LogSoftmaxBackward" : "SoftmaxBackward"; }
  void release_saved() override { x.reset(), y.reset(); }
  index_t saved_bytes() const override { return x.bytes() + y.bytes(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    if (grad_enabled()) {
      const Tensor xv = x.unpack(*this);
      if (xv.dim() == 0) return {g * 0.0};  // one entry: the output is constant (1 or 0)
      if (log) return {g - exp(log_softmax(xv)) * sum(g, {-1}, true)};
      const Tensor s = softmax(xv);
      return {s * (g - sum(g * s, {-1}, true))};
    }
    const Tensor yv = y.unpack(*this);
    const Rows gr = as_rows(g);
    const index_t cols = gr.cols;
    Tensor dx = make_tensor(yv.sizes(), yv.dtype(), yv.device());
    detail::with_float_type(name(), yv.dtype(), [&](auto zero) {
      using T = decltype(zero);
      const auto& ops = detail::table_for(name(), yv.device()).get<T>();
      (log ? ops.log_softmax_backward : ops.softmax_backward)(gr.rows, cols, yv.data<T>(), cols, gr.t.data<T>(), cols,
                                                             dx.data<T>(), cols);
    });
    return {dx};
  }
};

Tensor softmax_impl(const Tensor& x, bool log, Loc where) {
  const Rows xr = as_rows(x);
  Tensor y = make_tensor(x.sizes(), x.dtype(), x.device());
  const char* op = log ? "log_softmax" : "softmax";
  detail::with_float_type(op, x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const auto& ops = detail::table_for(op, x.device()).get<T>();
    (log ? ops.log_softmax_forward : ops.softmax_forward)(xr.rows, xr.cols, xr.t.data<T>(), xr.cols, y.data<T>(),
                                                          xr.cols);
  });
  if (needs_graph({&x})) {
    auto n = std::make_shared<SoftmaxBackward>();
    n->x = SavedTensor(x);
    n->y = SavedTensor(y.detach());
    n->log = log;
    attach(n, {&x}, y, where);
  }
  if (anomaly_enabled()) check_finite(y, "forward", y.grad_fn().get(), op, where);
  return y;
}

// ---- layer_norm ----
// The fused backward kernel uses the saved mean and rstd. Under create_graph the
// gradients are written with differentiable ops, the statistics recomputed from x:
//   xhat = (x - mean) rstd, gw = g weight,
//   dx = rstd (gw - mean(gw) - xhat mean(gw xhat)), dweight = sum(g xhat), dbias = sum(g)
// (means over the last dim, sums over the others).
struct LayerNormBackward final : Node {
  SavedTensor x, weight, mean, rstd;
  double eps = 0;
  const char* name() const override { return "LayerNormBackward"; }
  void release_saved() override { x.reset(), weight.reset(), mean.reset(), rstd.reset(); }
  index_t saved_bytes() const override { return x.bytes() + weight.bytes() + mean.bytes() + rstd.bytes(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor xv = x.unpack(*this), wv = weight.unpack(*this);
    const index_t cols = xv.dim() == 0 ? 1 : xv.size(-1);
    if (grad_enabled()) {
      TG_CHECK(xv.dim() >= 1, name(), "x", "expected at least 1 dim");
      const Tensor xc = xv - tg::mean(xv, {-1}, true);
      const Tensor rs = pow(tg::mean(xc * xc, {-1}, true) + eps, -0.5);
      const Tensor xhat = xc * rs;
      const Tensor gw = wv.defined() ? g * wv : g;
      const Tensor dx = rs * (gw - tg::mean(gw, {-1}, true) - xhat * tg::mean(gw * xhat, {-1}, true));
      const index_t sizes[] = {cols};
      return {next[0].node ? dx : Tensor(), next[1].node ? sum_to(g * xhat, sizes) : Tensor(),
              next[2].node ? sum_to(g, sizes) : Tensor()};
    }
    const Tensor mv = mean.unpack(*this), rv = rstd.unpack(*this);
    const Rows xr = as_rows(xv), gr = as_rows(g);
    const Tensor wc = wv.defined() ? wv.detach().contiguous() : Tensor();
    Tensor dx = make_tensor(xv.sizes(), xv.dtype(), xv.device());
    const TensorOptions o = TensorOptions().with_dtype(xv.dtype()).with_device(xv.device());
    Tensor dw = next[1].node ? Tensor::empty({cols}, o) : Tensor();
    Tensor db = next[2].node ? Tensor::empty({cols}, o) : Tensor();
    detail::with_float_type("layer_norm", xv.dtype(), [&](auto zero) {
      using T = decltype(zero);
      detail::table_for("layer_norm", xv.device())
          .get<T>()
          .layer_norm_backward(xr.rows, cols, xr.t.data<T>(), cols, gr.t.data<T>(), cols,
                               wc.defined() ? wc.data<T>() : nullptr, mv.data<T>(), rv.data<T>(), eps, dx.data<T>(),
                               cols, dw.defined() ? dw.data<T>() : nullptr, db.defined() ? db.data<T>() : nullptr);
    });
    return {next[0].node ? dx : Tensor(), dw, db};
  }
};

// ---- attention ----
template <class T, class P>
View4<P> view4(const Tensor& t) {
  return {const_cast<P*>(t.data<T>()), t.strides()[0], t.strides()[1], t.strides()[2], t.strides()[3]};
}

// The 16-bit attention kernels' element type for dtype h (bf16 or f16): fn(H{}).
template <class F>
decltype(auto) with_half_type(DType h, F&& fn) {
  if (h == DType::f16) return fn(float16{});
  return fn(bfloat16{});
}

// The backward of both attention paths: the op table's kernel in the tensors' own dtype,
// or (tensor_cores) the GPU's 16-bit kernels, which take bf16/f16 q, k, v, o and mask, an
// FP32 lse, and dO rounded to the 16-bit type as a 16-bit output's gradient is.
struct AttentionBackward final : Node {
  SavedTensor q, k, v, mask, o, lse;
  bool causal = false, tensor_cores = false;
  double scale = 0;  // as given: f64 uses it whole, the f32 and 16-bit kernels round it
  const char* name() const override { return tensor_cores ? "Attention16Backward" : "AttentionBackward"; }
  void release_saved() override { q.reset(), k.reset(), v.reset(), mask.reset(), o.reset(), lse.reset(); }
  index_t saved_bytes() const override {
    return q.bytes() + k.bytes() + v.bytes() + mask.bytes() + o.bytes() + lse.bytes();
  }
  std::vector<Tensor> backward(const Tensor& g) override {
    const char* op = "scaled_dot_product_attention";
    no_double_backward(op);
    const Tensor qv = q.unpack(*this), kv = k.unpack(*this), vv = v.unpack(*this), mv = mask.unpack(*this),
                 ov = o.unpack(*this), lv = lse.unpack(*this);
    const DType t = qv.dtype();
    const Tensor gd = tensor_cores ? g.detach().to(t).contiguous() : g.detach();
    Tensor dq = make_tensor(qv.sizes(), t, qv.device());
    Tensor dk = make_tensor(kv.sizes(), t, kv.device());
    Tensor dv = make_tensor(vv.sizes(), t, vv.device());
    auto run = [&](auto zero) {
      using T = decltype(zero);
      AttentionBackwardArgs<T> a;
      a.dims = {qv.size(0), qv.size(1), kv.size(1), qv.size(2), kv.size(2), qv.size(3)};
      a.scale = scale, a.causal = causal;
      a.q = view4<T, const T>(qv), a.k = view4<T, const T>(kv), a.v = view4<T, const T>(vv);
      a.o = view4<T, const T>(ov), a.d_o = view4<T, const T>(gd);
      if (mv.defined()) a.mask = view4<T, const T>(mv);
      a.dq = view4<T, T>(dq), a.dk = view4<T, T>(dk), a.dv = view4<T, T>(dv);
      if constexpr (std::is_same_v<T, bfloat16>) {
        half_entry(detail::table_for(op, qv.device()).half.attention_backward_bf16, op)(a, lv.data<float>());
      } else if constexpr (std::is_same_v<T, float16>) {
        half_entry(detail::table_for(op, qv.device()).half.attention_backward_f16, op)(a, lv.data<float>());
      } else {
        a.lse = lv.data<T>();
        detail::table_for(op, qv.device()).get<T>().attention_backward(a);
      }
    };
    if (tensor_cores) with_half_type(t, run);
    else detail::with_float_type(op, t, run);
    return {dq, dk, dv, Tensor()};
  }
};

// A 16-bit (B, H, S, D) tensor as the tensor-core kernels read it: unit stride along D,
// other strides multiples of 8 elements, 16-byte aligned data; else a contiguous copy
// (differentiable either way).
Tensor kernel_ready16(const Tensor& t) {
  const Tensor c = t.contiguous();
  const auto& st = c.strides();
  const bool ready = st[3] == 1 && st[0] % 8 == 0 && st[1] % 8 == 0 && st[2] % 8 == 0 &&
                     reinterpret_cast<std::uintptr_t>(c.raw_data()) % 16 == 0;
  return ready ? c : c.clone();
}

// ---- dropout ----
struct DropoutBackward final : Node {
  double p = 0;
  std::uint64_t seed = 0, offset = 0;
  const char* name() const override { return "DropoutBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    no_double_backward("dropout");
    const Tensor gc = g.detach().contiguous();
    Tensor dx = make_tensor(g.sizes(), g.dtype(), g.device());
    detail::with_float_type("dropout", g.dtype(), [&](auto zero) {
      using T = decltype(zero);
      detail::table_for("dropout", g.device()).get<T>().dropout(g.numel(), gc.data<T>(), dx.data<T>(), p, seed, offset);
    });
    return {dx};
  }
};

}  // namespace

Tensor activation(const Tensor& x, Activation act, Loc where) {
  const Rows xr = as_rows(x);
  Tensor y = make_tensor(x.sizes(), x.dtype(), x.device());
  detail::with_float_type(act_name(act.kind), x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    detail::table_for(act_name(act.kind), x.device())
        .get<T>()
        .act_forward(act, xr.rows, xr.cols, xr.t.data<T>(), xr.cols, nullptr, y.data<T>(), xr.cols);
  });
  if (needs_graph({&x})) {
    auto n = std::make_shared<ActivationBackward>();
    n->x = SavedTensor(x);
    n->act = act;
    attach(n, {&x}, y, where);
  }
  if (anomaly_enabled()) check_finite(y, "forward", y.grad_fn().get(), act_name(act.kind), where);
  return y;
}

Tensor relu(const Tensor& a, Loc w) { return activation(a, {Act::relu}, w); }
Tensor leaky_relu(const Tensor& a, double slope, Loc w) { return activation(a, {Act::leaky_relu, slope}, w); }
Tensor gelu(const Tensor& a, bool tanh_approximation, Loc w) {
  return activation(a, {tanh_approximation ? Act::gelu_tanh : Act::gelu_erf}, w);
}
Tensor silu(const Tensor& a, Loc w) { return activation(a, {Act::silu}, w); }
Tensor sigmoid(const Tensor& a, Loc w) { return activation(a, {Act::sigmoid}, w); }
Tensor tanh(const Tensor& a, Loc w) { return activation(a, {Act::tanh}, w); }

Tensor softmax(const Tensor& a, Loc w) { return softmax_impl(a, false, w); }
Tensor log_softmax(const Tensor& a, Loc w) { return softmax_impl(a, true, w); }

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, Loc where) {
  TG_CHECK(x.dim() >= 1, "layer_norm", "x", "expected at least 1 dim, got a scalar");
  const index_t cols = x.size(-1);
  for (const Tensor* p : {&weight, &bias})
    if (p->defined()) {
      detail::check_same("layer_norm", {&x, p});
      TG_CHECK(p->dim() == 1 && p->size(0) == cols, "layer_norm", p == &weight ? "weight" : "bias",
               "expected shape (", cols, "), got ", p->shape().str());
    }
  TG_CHECK(eps >= 0 && std::isfinite(eps), "layer_norm", "eps", "expected a finite eps >= 0, got ", eps);
  const Rows xr = as_rows(x);
  const Tensor wc = weight.defined() ? weight.detach().contiguous() : Tensor();
  const Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = make_tensor(x.sizes(), x.dtype(), x.device());
  const TensorOptions o = TensorOptions().with_dtype(x.dtype()).with_device(x.device());
  Tensor mean_t = Tensor::empty({xr.rows}, o), rstd_t = Tensor::empty({xr.rows}, o);
  detail::with_float_type("layer_norm", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    detail::table_for("layer_norm", x.device())
        .get<T>()
        .layer_norm_forward(xr.rows, cols, xr.t.data<T>(), cols, wc.defined() ? wc.data<T>() : nullptr,
                            bc.defined() ? bc.data<T>() : nullptr, eps, y.data<T>(), cols, mean_t.data<T>(),
                            rstd_t.data<T>());
  });
  if (needs_graph({&x, &weight, &bias})) {
    auto n = std::make_shared<LayerNormBackward>();
    n->x = SavedTensor(x);
    n->weight = SavedTensor(weight);
    n->mean = SavedTensor(mean_t);
    n->rstd = SavedTensor(rstd_t);
    n->eps = eps;
    attach(n, {&x, &weight, &bias}, y, where);
  }
  if (anomaly_enabled()) check_finite(y, "forward", y.grad_fn().get(), "layer_norm", where);
  return y;
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, bool causal,
                                    std::optional<double> scale, Loc where) {
  const char* op = "scaled_dot_product_attention";
  detail::check_same(op, {&q, &k, &v});
  TG_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, op, q.dim() != 4 ? "q" : k.dim() != 4 ? "k" : "v",
           "expected 4-D (batch, heads, seq, head_dim) tensors, got q ", q.shape().str(), ", k ", k.shape().str(),
           ", v ", v.shape().str());
  TG_CHECK(k.sizes().size() == v.sizes().size() && k.size(0) == q.size(0) && v.size(0) == q.size(0) &&
               k.size(3) == q.size(3) && v.size(3) == q.size(3) && v.size(1) == k.size(1) && v.size(2) == k.size(2),
           op, "k", "expected k and v of shape (", q.size(0), ", Hkv, Sk, ", q.size(3), "), got k ", k.shape().str(),
           ", v ", v.shape().str());
  const index_t B = q.size(0), H = q.size(1), Sq = q.size(2), D = q.size(3), Sk = k.size(2);
  const index_t full[] = {B, H, Sq, Sk};
  // The mask's view broadcast to (B, H, Sq, Sk), in whatever dtype it is given.
  auto broadcast_mask = [&](const Tensor& t) { return make_view(t, detail::broadcast_view(t, full), t.offset()); };
  if (mask.defined()) {
    detail::check_same(op, {&q, &mask});
    (void)detail::broadcast_sizes(op, mask.sizes(), full);
  }
  const double sc = scale.value_or(1.0 / std::sqrt(double(D)));
  // On a GPU's 16-bit tensor cores: bf16 or f16 tensors, or f32 ones under a 16-bit
  // autocast (behind differentiable casts, the result cast back), wherever the kernels
  // apply (head dims 8 to 128 in steps of 8; an f32 mask is rounded as the inputs are).
  const DType h = detail::is_half(q.dtype())                                           ? q.dtype()
                  : q.dtype() == DType::f32 && detail::is_half(autocast_dtype()) ? autocast_dtype()
                                                                                 : DType::f32;
  if (q.device().is_cuda() && h != DType::f32 && D >= 8 && D <= 128 && D % 8 == 0) {
    const Tensor qh = kernel_ready16(q.to(h)), kh = kernel_ready16(k.to(h)), vh = kernel_ready16(v.to(h));
    const Tensor mh = mask.defined() ? broadcast_mask(mask.detach().to(h)) : Tensor();
    Tensor o16 = make_tensor(q.sizes(), h, q.device());
    Tensor lse = make_tensor(std::vector<index_t>{B, H, Sq}, DType::f32, q.device());
    with_half_type(h, [&](auto zero) {
      using T16 = decltype(zero);
      AttentionForwardArgs<T16> a;
      a.dims = {B, H, k.size(1), Sq, Sk, D};
      a.scale = sc, a.causal = causal;
      a.q = view4<T16, const T16>(qh), a.k = view4<T16, const T16>(kh), a.v = view4<T16, const T16>(vh);
      a.o = view4<T16, T16>(o16);
      if (mh.defined()) a.mask = view4<T16, const T16>(mh);
      const HalfOps& half = detail::table_for(op, q.device()).half;
      if constexpr (std::is_same_v<T16, float16>)
        half_entry(half.attention_forward_f16, op)(a, lse.data<float>());
      else
        half_entry(half.attention_forward_bf16, op)(a, lse.data<float>());
    });
    if (needs_graph({&qh, &kh, &vh})) {
      auto n = std::make_shared<AttentionBackward>();
      n->q = SavedTensor(qh), n->k = SavedTensor(kh), n->v = SavedTensor(vh);
      if (mh.defined()) n->mask = SavedTensor(mh);
      n->o = SavedTensor(o16.detach()), n->lse = SavedTensor(lse);
      n->causal = causal, n->scale = sc, n->tensor_cores = true;
      attach(n, {&qh, &kh, &vh, &mask}, o16, where);
    }
    Tensor o = q.dtype() == DType::f32 ? o16.to(DType::f32) : o16;
    if (anomaly_enabled()) check_finite(o, "forward", o.grad_fn().get(), op, where);
    return o;
  }
  // Other 16-bit tensors (the CPU, head dims the kernels lack): computed in f32 and
  // rounded once, through differentiable casts.
  if (detail::is_half(q.dtype()))
    return scaled_dot_product_attention(q.to(DType::f32), k.to(DType::f32), v.to(DType::f32),
                                        mask.defined() ? mask.to(DType::f32) : Tensor(), causal, scale, where)
        .to(q.dtype());
  const Tensor m = mask.defined() ? broadcast_mask(mask.detach()) : Tensor();
  Tensor o = make_tensor(q.sizes(), q.dtype(), q.device());
  Tensor lse = make_tensor(std::vector<index_t>{B, H, Sq}, q.dtype(), q.device());
  detail::with_float_type(op, q.dtype(), [&](auto zero) {
    using T = decltype(zero);
    AttentionForwardArgs<T> a;
    a.dims = {B, H, k.size(1), Sq, Sk, D};
    a.scale = sc, a.causal = causal;
    a.q = view4<T, const T>(q), a.k = view4<T, const T>(k), a.v = view4<T, const T>(v);
    if (m.defined()) a.mask = view4<T, const T>(m);
    a.o = view4<T, T>(o);
    a.lse = lse.data<T>();
    check_attention_forward(op, a);
    detail::table_for(op, q.device()).get<T>().attention_forward(a);
  });
  if (needs_graph({&q, &k, &v})) {
    auto n = std::make_shared<AttentionBackward>();
    n->q = SavedTensor(q), n->k = SavedTensor(k), n->v = SavedTensor(v);
    if (m.defined()) n->mask = SavedTensor(m);
    n->o = SavedTensor(o.detach()), n->lse = SavedTensor(lse);
    n->causal = causal, n->scale = sc;
    attach(n, {&q, &k, &v, &mask}, o, where);
  }
  if (anomaly_enabled()) check_finite(o, "forward", o.grad_fn().get(), op, where);
  return o;
}

Tensor dropout(const Tensor& a, double p, bool training, Generator* gen, Loc where) {
  TG_CHECK(p >= 0 && p < 1, "dropout", "p", "expected a probability in [0, 1), got ", p);
  if (!training || p == 0) return a;
  TG_CHECK(a.device().is_cpu() || !cuda::capturing(), "dropout", "capture",
           "cannot be captured in a CUDA graph: its mask comes from the generator's counter on the host, so every "
           "replay would drop the same elements (keep dropout out of the graph, or capture in eval mode)");
  Generator& g = gen ? *gen : default_generator();
  const std::uint64_t offset = g.take();
  const Tensor ac = a.detach().contiguous();
  Tensor y = make_tensor(a.sizes(), a.dtype(), a.device());
  detail::with_float_type("dropout", a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    detail::table_for("dropout", a.device()).get<T>().dropout(a.numel(), ac.data<T>(), y.data<T>(), p, g.seed(), offset);
  });
  if (needs_graph({&a})) {
    auto n = std::make_shared<DropoutBackward>();
    n->p = p, n->seed = g.seed(), n->offset = offset;
    attach(n, {&a}, y, where);
  }
  return y;
}

}  // namespace tg
