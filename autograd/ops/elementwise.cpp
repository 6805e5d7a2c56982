// Elementwise ops with broadcasting, and their derivatives written with the same ops
// (so that a backward run with create_graph records a graph of its own).
#include <cmath>

#include "tilegrad/autograd/detail.hpp"
#include "tilegrad/autograd/node.hpp"
#include "tilegrad/autograd/ops.hpp"

namespace tg {

namespace {

using detail::binary_kernel;
using detail::to_vector;
using detail::unary_kernel;

// A node of a binary op: both inputs' sizes (for sum_to) and, when the formula needs
// them, the inputs themselves.
struct BinaryNode : Node {
  Shape a_shape, b_shape;  // for sum_to (a Shape: no heap, unlike a vector)
  SavedTensor a, b;
  void release_saved() override { a.reset(), b.reset(); }
  index_t saved_bytes() const override { return a.bytes() + b.bytes(); }
  bool wants(int i) const { return bool(next[std::size_t(i)].node); }
};

struct AddBackward final : BinaryNode {
  const char* name() const override { return "AddBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {wants(0) ? sum_to(g, a_shape.sizes()) : Tensor(), wants(1) ? sum_to(g, b_shape.sizes()) : Tensor()};
  }
};
struct SubBackward final : BinaryNode {
  const char* name() const override { return "SubBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {wants(0) ? sum_to(g, a_shape.sizes()) : Tensor(), wants(1) ? sum_to(-g, b_shape.sizes()) : Tensor()};
  }
};
struct MulBackward final : BinaryNode {
  const char* name() const override { return "MulBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {wants(0) ? sum_to(g * b.unpack(*this), a_shape.sizes()) : Tensor(),
            wants(1) ? sum_to(g * a.unpack(*this), b_shape.sizes()) : Tensor()};
  }
};
struct DivBackward final : BinaryNode {
  const char* name() const override { return "DivBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor bv = b.unpack(*this);
    Tensor ga, gb;
    if (wants(0)) ga = sum_to(g / bv, a_shape.sizes());
    if (wants(1)) gb = sum_to(-(g * a.unpack(*this)) / (bv * bv), b_shape.sizes());  // -g a / b^2
    return {ga, gb};
  }
};
// max(a, b): the gradient goes to the larger; ties split it evenly.
struct MaximumBackward final : BinaryNode {
  const char* name() const override { return "MaximumBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor av = a.unpack(*this), bv = b.unpack(*this);
    const Tensor to_a = gt(av, bv) + eq(av, bv) * 0.5;
    return {wants(0) ? sum_to(g * to_a, a_shape.sizes()) : Tensor(), wants(1) ? sum_to(g * (1.0 - to_a), b_shape.sizes()) : Tensor()};
  }
};

template <class N>
Tensor binary(const char* name, Binary op, const Tensor& a, const Tensor& b, bool save_a, bool save_b, Loc where) {
  Tensor y = binary_kernel(name, op, a, b);
  if (needs_graph({&a, &b})) {
    auto n = std::make_shared<N>();
    n->a_shape = a.shape();
    n->b_shape = b.shape();
    if (save_a) n->a = SavedTensor(a);
    if (save_b) n->b = SavedTensor(b);
    attach(n, {&a, &b}, y, where);
  }
  if (anomaly_enabled()) check_finite(y, "forward", y.grad_fn().get(), name, where);
  return y;
}

// One input, its derivative from the saved input x (and output y where cheaper).
struct UnaryNode : Node {
  SavedTensor x, y;
  double p0 = 0, p1 = 0;
  void release_saved() override { x.reset(), y.reset(); }
  index_t saved_bytes() const override { return x.bytes() + y.bytes(); }
};

struct NegBackward final : UnaryNode {
  const char* name() const override { return "NegBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {-g}; }
};
struct AddScalarBackward final : UnaryNode {
  const char* name() const override { return "AddScalarBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g}; }
};
struct MulScalarBackward final : UnaryNode {
  const char* name() const override { return "MulScalarBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g * p0}; }
};
// exp' = exp: the saved output without create_graph; recomputed from x with it, so
// that the second derivative sees exp(x) as a function of x.
struct ExpBackward final : UnaryNode {
  const char* name() const override { return "ExpBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {g * (grad_enabled() ? exp(x.unpack(*this)) : y.unpack(*this))};
  }
};
struct LogBackward final : UnaryNode {
  const char* name() const override { return "LogBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g / x.unpack(*this)}; }
};
struct SqrtBackward final : UnaryNode {
  const char* name() const override { return "SqrtBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {g * 0.5 / (grad_enabled() ? sqrt(x.unpack(*this)) : y.unpack(*this))};
  }
};
struct AbsBackward final : UnaryNode {
  const char* name() const override { return "AbsBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g * sign(x.unpack(*this))}; }
};
struct PowBackward final : UnaryNode {
  const char* name() const override { return "PowBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    if (p0 == 0) return {g * 0.0};
    return {g * (pow(x.unpack(*this), p0 - 1) * p0)};
  }
};
struct ClampBackward final : UnaryNode {
  const char* name() const override { return "ClampBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {g * unary_kernel("clamp_backward", Unary::in_range, x.unpack(*this), p0, p1)};
  }
};

template <class N>
Tensor unary(const char* name, Unary op, const Tensor& x, double p0, double p1, bool save_x, bool save_y, Loc where) {
  Tensor y = unary_kernel(name, op, x, p0, p1);
  if (needs_graph({&x})) {
    auto n = std::make_shared<N>();
    n->p0 = p0, n->p1 = p1;
    if (save_x) n->x = SavedTensor(x);
    if (save_y) n->y = SavedTensor(y.detach());  // detached: no cycle through its own node
    attach(n, {&x}, y, where);
  }
  if (anomaly_enabled()) check_finite(y, "forward", y.grad_fn().get(), name, where);
  return y;
}

struct WhereBackward final : Node {
  SavedTensor cond;
  Shape a_shape, b_shape;
  const char* name() const override { return "WhereBackward"; }
  void release_saved() override { cond.reset(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor c = cond.unpack(*this);
    const Tensor zero = Tensor::zeros({}, TensorOptions().with_dtype(g.dtype()).with_device(g.device()));
    Tensor ga, gb;
    if (next[1].node) ga = sum_to(tg::where(c, g, zero), a_shape.sizes());
    if (next[2].node) gb = sum_to(tg::where(c, zero, g), b_shape.sizes());
    return {Tensor(), ga, gb};
  }
};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b, Loc w) { return binary<AddBackward>("add", Binary::add, a, b, false, false, w); }
Tensor sub(const Tensor& a, const Tensor& b, Loc w) { return binary<SubBackward>("sub", Binary::sub, a, b, false, false, w); }
Tensor mul(const Tensor& a, const Tensor& b, Loc w) {
  return binary<MulBackward>("mul", Binary::mul, a, b, b.requires_grad(), a.requires_grad(), w);
}
Tensor div(const Tensor& a, const Tensor& b, Loc w) {
  return binary<DivBackward>("div", Binary::div, a, b, b.requires_grad(), true, w);
}
Tensor maximum(const Tensor& a, const Tensor& b, Loc w) {
  return binary<MaximumBackward>("maximum", Binary::max, a, b, true, true, w);
}

Tensor neg(const Tensor& a, Loc w) { return unary<NegBackward>("neg", Unary::neg, a, 0, 0, false, false, w); }
Tensor add_scalar(const Tensor& a, double s, Loc w) {
  return unary<AddScalarBackward>("add_scalar", Unary::add_scalar, a, s, 0, false, false, w);
}
Tensor mul_scalar(const Tensor& a, double s, Loc w) {
  return unary<MulScalarBackward>("mul_scalar", Unary::mul_scalar, a, s, 0, false, false, w);
}
Tensor exp(const Tensor& a, Loc w) { return unary<ExpBackward>("exp", Unary::exp, a, 0, 0, true, true, w); }
Tensor log(const Tensor& a, Loc w) { return unary<LogBackward>("log", Unary::log, a, 0, 0, true, false, w); }
Tensor sqrt(const Tensor& a, Loc w) { return unary<SqrtBackward>("sqrt", Unary::sqrt, a, 0, 0, true, true, w); }
Tensor abs(const Tensor& a, Loc w) { return unary<AbsBackward>("abs", Unary::abs, a, 0, 0, true, false, w); }
Tensor pow(const Tensor& a, double p, Loc w) { return unary<PowBackward>("pow", Unary::pow_scalar, a, p, 0, true, false, w); }
Tensor clamp(const Tensor& a, double lo, double hi, Loc w) {
  TG_CHECK(lo <= hi, "clamp", "hi", "expected lo <= hi, got ", lo, " > ", hi);
  return unary<ClampBackward>("clamp", Unary::clamp, a, lo, hi, true, false, w);
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b, Loc w) {
  detail::check_same("where", {&cond, &a, &b});
  const std::vector<index_t> sizes =
      detail::broadcast_sizes("where", detail::broadcast_sizes("where", cond.sizes(), a.sizes()), b.sizes());
  Tensor y = make_tensor(sizes, a.dtype(), a.device());
  detail::with_float_type("where", a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    detail::table_for("where", a.device())
        .get<T>()
        .where(detail::broadcast_view(cond, sizes), cond.data<T>(), detail::broadcast_view(a, sizes), a.data<T>(),
               detail::broadcast_view(b, sizes), b.data<T>(), y.shape(), y.data<T>());
  });
  if (needs_graph({&a, &b})) {
    auto n = std::make_shared<WhereBackward>();
    n->cond = SavedTensor(cond.detach());
    n->a_shape = a.shape();
    n->b_shape = b.shape();
    attach(n, {&cond, &a, &b}, y, w);
  }
  return y;
}

Tensor gt(const Tensor& a, const Tensor& b) { return binary_kernel("gt", Binary::gt, a, b); }
Tensor eq(const Tensor& a, const Tensor& b) { return binary_kernel("eq", Binary::eq, a, b); }
Tensor sign(const Tensor& a) { return unary_kernel("sign", Unary::sign, a); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double s) { return add_scalar(a, s); }
Tensor operator-(const Tensor& a, double s) { return add_scalar(a, -s); }
Tensor operator*(const Tensor& a, double s) { return mul_scalar(a, s); }
Tensor operator/(const Tensor& a, double s) { return mul_scalar(a, 1.0 / s); }
Tensor operator+(double s, const Tensor& a) { return add_scalar(a, s); }
Tensor operator-(double s, const Tensor& a) { return add_scalar(neg(a), s); }
Tensor operator*(double s, const Tensor& a) { return mul_scalar(a, s); }

}  // namespace tg
