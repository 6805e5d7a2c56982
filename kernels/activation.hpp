// Activations: the contract of the elementwise kernels, the GEMM epilogue and the
// scalar math (in double) that every implementation approximates.
//
// Forward over a strided 2-D view (rows, cols), unit stride inside a row:
//   y[i, j] = f(x[i, j] + bias[j])          bias: cols elements, or nullptr for none
// Backward, from the forward's input (and bias), not its output:
//   dx[i, j] = dy[i, j] * f'(x[i, j] + bias[j])
// Row strides ld >= cols (any value when rows <= 1). In place is allowed when the output
// and an input are the same view (y == x and ldy == ldx; dx == dy and lddx == lddy);
// any other overlap is an error at the API boundary.
//
// The functions (Act::none is the identity; slope is leaky_relu's negative slope):
//   relu(x)       = x < 0 ? 0 : x                  relu'(x)  = x > 0
//   leaky_relu(x) = x >= 0 ? x : slope * x         leaky'(x) = x > 0 ? 1 : slope
//   gelu_erf(x)   = x * Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2
//                                                  gelu'(x)  = Phi(x) + x * phi(x)
//   gelu_tanh(x)  = x/2 * (1 + tanh(u)),  u = sqrt(2/pi) * (x + 0.044715 x^3)
//                   (Hendrycks & Gimpel 2016, the approximation of GPT-2 and BERT)
//   silu(x)       = x * sigmoid(x)                 silu'(x)  = s * (1 + x (1 - s))
//   sigmoid(x)    = 1 / (1 + exp(-x))              sigmoid'  = s (1 - s)
//   tanh(x)                                        tanh'     = 1 - tanh^2
// At +-inf every function and derivative takes its limit (gelu(-inf) = 0, silu'(+inf)
// = 1, ...), never inf * 0 = NaN. NaN in gives NaN out, relu included. At the kink
// x = 0 the derivative is 0 for relu and slope for leaky_relu, as in PyTorch.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tilegrad/kernels/types.hpp"

namespace tg {

enum class Act : std::uint8_t { none, relu, leaky_relu, gelu_erf, gelu_tanh, silu, sigmoid, tanh };
inline constexpr int kActCount = 8;

// An activation with its parameter, as passed to kernels and epilogues.
struct Activation {
  Act kind = Act::none;
  double slope = 0.01;  // leaky_relu's negative slope (float paths round it); ignored by the others
};

const char* act_name(Act act);  // "none", "relu", "leaky_relu", "gelu_erf", ...

// The scalar math in double, limits at +-inf included: the oracle's definition.
double act_value(Activation act, double x);
double act_derivative(Activation act, double x);

// Argument checks shared by every backend's public entry (throw tg::Error).
void check_act_forward(const char* op, index_t rows, index_t cols, const void* x, index_t ldx,
                       const void* bias, const void* y, index_t ldy, std::size_t elem);
void check_act_backward(const char* op, index_t rows, index_t cols, const void* x, index_t ldx,
                        const void* bias, const void* dy, index_t lddy, const void* dx,
                        index_t lddx, std::size_t elem);

// Reference implementations: the math above evaluated in double, rounded once.
template <class T>
void act_forward_ref(Activation act, index_t rows, index_t cols, const T* x, index_t ldx,
                     const T* bias, T* y, index_t ldy);
template <class T>
void act_backward_ref(Activation act, index_t rows, index_t cols, const T* x, index_t ldx,
                      const T* bias, const T* dy, index_t lddy, T* dx, index_t lddx);

}  // namespace tg
