// Reference elementwise kernels: each element computed in double by unary_value /
// binary_value, over the N-D index space in row-major order.
#include <cmath>
#include <limits>

#include "tilegrad/kernels/elementwise.hpp"
#include "tilegrad/kernels/reference/nd.hpp"

namespace tg {

const char* unary_name(Unary op) {
  static constexpr const char* kNames[kUnaryCount] = {
      "copy", "fill", "neg", "exp", "log", "sqrt", "rsqrt", "abs", "sign", "square",
      "reciprocal", "add_scalar", "mul_scalar", "pow_scalar", "clamp", "in_range", "gt_scalar"};
  return int(op) < kUnaryCount ? kNames[int(op)] : "?";
}

const char* binary_name(Binary op) {
  static constexpr const char* kNames[kBinaryCount] = {"add", "sub", "mul", "div", "eq", "gt", "max", "min"};
  return int(op) < kBinaryCount ? kNames[int(op)] : "?";
}

double unary_value(Unary op, double x, double p0, double p1) {
  switch (op) {
    case Unary::copy: return x;
    case Unary::fill: return p0;
    case Unary::neg: return -x;
    case Unary::exp: return std::exp(x);
    case Unary::log: return std::log(x);
    case Unary::sqrt: return std::sqrt(x);
    case Unary::rsqrt: return 1.0 / std::sqrt(x);
    case Unary::abs: return std::fabs(x);
    case Unary::sign: return std::isnan(x) ? x : double((x > 0) - (x < 0));
    case Unary::square: return x * x;
    case Unary::reciprocal: return 1.0 / x;
    case Unary::add_scalar: return x + p0;
    case Unary::mul_scalar: return x * p0;
    case Unary::pow_scalar: return std::pow(x, p0);
    case Unary::clamp: return std::isnan(x) ? x : std::min(std::max(x, p0), p1);
    case Unary::in_range: return p0 <= x && x <= p1 ? 1.0 : 0.0;
    case Unary::gt_scalar: return x > p0 ? 1.0 : 0.0;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

double binary_value(Binary op, double a, double b) {
  switch (op) {
    case Binary::add: return a + b;
    case Binary::sub: return a - b;
    case Binary::mul: return a * b;
    case Binary::div: return a / b;
    case Binary::eq: return a == b ? 1.0 : 0.0;
    case Binary::gt: return a > b ? 1.0 : 0.0;
    case Binary::max: return std::isnan(a) || std::isnan(b) ? a + b : std::max(a, b);
    case Binary::min: return std::isnan(a) || std::isnan(b) ? a + b : std::min(a, b);
  }
  return std::numeric_limits<double>::quiet_NaN();
}

template <class T>
void unary_ref(Unary op, double p0, double p1, const Shape& xs, const T* x, const Shape& ys, T* y) {
  if (op == Unary::fill) {
    ref::nd_for_each<1>(ys.sizes(), {&ys}, [&](index_t oy) { y[oy] = T(p0); });
    return;
  }
  ref::nd_for_each<2>(ys.sizes(), {&xs, &ys}, [&](index_t ox, index_t oy) {
    y[oy] = T(unary_value(op, double(x[ox]), p0, p1));
  });
}

template <class T>
void binary_ref(Binary op, const Shape& as, const T* a, const Shape& bs, const T* b, const Shape& ys,
                T* y) {
  ref::nd_for_each<3>(ys.sizes(), {&as, &bs, &ys}, [&](index_t oa, index_t ob, index_t oy) {
    y[oy] = T(binary_value(op, double(a[oa]), double(b[ob])));
  });
}

template <class T>
void where_ref(const Shape& cs, const T* c, const Shape& as, const T* a, const Shape& bs, const T* b,
               const Shape& ys, T* y) {
  ref::nd_for_each<4>(ys.sizes(), {&cs, &as, &bs, &ys}, [&](index_t oc, index_t oa, index_t ob, index_t oy) {
    y[oy] = c[oc] != T(0) ? a[oa] : b[ob];
  });
}

#define TG_INSTANTIATE(T)                                                                            \
  template void unary_ref<T>(Unary, double, double, const Shape&, const T*, const Shape&, T*);        \
  template void binary_ref<T>(Binary, const Shape&, const T*, const Shape&, const T*, const Shape&, T*); \
  template void where_ref<T>(const Shape&, const T*, const Shape&, const T*, const Shape&, const T*,   \
                             const Shape&, T*);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE

}  // namespace tg
