// Reference activations: the math of kernels/activation.hpp in double, limits at +-inf
// taken explicitly, then rounded once to T. Forms chosen to stay accurate in the tails:
// gelu_erf uses erfc (no 1 + erf cancellation for x << 0) and gelu_tanh uses
// x/2 (1 + tanh u) = x * sigmoid(2u).
#include <cmath>
#include <limits>
#include <numbers>

#include "tilegrad/kernels/activation.hpp"

namespace tg {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kGeluTanhK = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kGeluTanhC = 0.044715;

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double phi_cdf(double x) { return 0.5 * std::erfc(-x * std::numbers::sqrt2 / 2); }
double phi_pdf(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * std::numbers::pi); }
double gelu_tanh_u(double x) { return kGeluTanhK * (x + kGeluTanhC * x * x * x); }

}  // namespace

const char* act_name(Act act) {
  switch (act) {
    case Act::none: return "none";
    case Act::relu: return "relu";
    case Act::leaky_relu: return "leaky_relu";
    case Act::gelu_erf: return "gelu_erf";
    case Act::gelu_tanh: return "gelu_tanh";
    case Act::silu: return "silu";
    case Act::sigmoid: return "sigmoid";
    case Act::tanh: return "tanh";
  }
  return "?";
}

double act_value(Activation act, double x) {
  const bool neg_inf = std::isinf(x) && x < 0;
  switch (act.kind) {
    case Act::none: return x;
    case Act::relu: return x < 0 ? 0.0 : x;
    case Act::leaky_relu:
      if (x >= 0 || x != x) return x;
      return neg_inf && act.slope == 0 ? 0.0 : double(act.slope) * x;
    case Act::gelu_erf: return neg_inf ? -0.0 : x * phi_cdf(x);
    case Act::gelu_tanh: return neg_inf ? -0.0 : x * sigmoid(2 * gelu_tanh_u(x));
    case Act::silu: return neg_inf ? -0.0 : x * sigmoid(x);
    case Act::sigmoid: return sigmoid(x);
    case Act::tanh: return std::tanh(x);
  }
  return kNaN;
}

double act_derivative(Activation act, double x) {
  if (x != x) return kNaN;
  if (std::isinf(x)) {  // the limits; every function here is linear or flat out there
    const bool pos = x > 0;
    switch (act.kind) {
      case Act::none: return 1;
      case Act::relu: return pos ? 1 : 0;
      case Act::leaky_relu: return pos ? 1 : act.slope;
      case Act::gelu_erf:
      case Act::gelu_tanh:
      case Act::silu: return pos ? 1 : 0;
      case Act::sigmoid:
      case Act::tanh: return 0;
    }
  }
  switch (act.kind) {
    case Act::none: return 1;
    case Act::relu: return x > 0 ? 1 : 0;
    case Act::leaky_relu: return x > 0 ? 1 : act.slope;
    case Act::gelu_erf: return phi_cdf(x) + x * phi_pdf(x);
    case Act::gelu_tanh: {
      const double s = sigmoid(2 * gelu_tanh_u(x));
      const double du = kGeluTanhK * (1 + 3 * kGeluTanhC * x * x);
      return s + x * s * (1 - s) * 2 * du;
    }
    case Act::silu: {
      const double s = sigmoid(x);
      return s * (1 + x * (1 - s));
    }
    case Act::sigmoid: {
      const double s = sigmoid(x);
      return s * (1 - s);
    }
    case Act::tanh: {
      const double t = std::tanh(x);
      return 1 - t * t;
    }
  }
  return kNaN;
}

template <class T>
void act_forward_ref(Activation act, index_t rows, index_t cols, const T* x, index_t ldx,
                     const T* bias, T* y, index_t ldy) {
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) {
      const double z = double(x[i * ldx + j]) + (bias ? double(bias[j]) : 0.0);
      y[i * ldy + j] = T(act_value(act, z));
    }
}

template <class T>
void act_backward_ref(Activation act, index_t rows, index_t cols, const T* x, index_t ldx,
                      const T* bias, const T* dy, index_t lddy, T* dx, index_t lddx) {
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) {
      const double z = double(x[i * ldx + j]) + (bias ? double(bias[j]) : 0.0);
      dx[i * lddx + j] = T(double(dy[i * lddy + j]) * act_derivative(act, z));
    }
}

template void act_forward_ref(Activation, index_t, index_t, const float*, index_t, const float*,
                              float*, index_t);
template void act_forward_ref(Activation, index_t, index_t, const double*, index_t,
                              const double*, double*, index_t);
template void act_backward_ref(Activation, index_t, index_t, const float*, index_t, const float*,
                               const float*, index_t, float*, index_t);
template void act_backward_ref(Activation, index_t, index_t, const double*, index_t,
                               const double*, const double*, index_t, double*, index_t);

}  // namespace tg
