// The CPU activation kernels' public entries: the contract of kernels/activation.hpp
// (y = f(x + bias) over a strided 2-D view, and dx = dy f'(x + bias)), float and double.
//
// The checked entries validate with check_act_forward / check_act_backward and throw
// tg::Error, then run the path cpu::selected_isa() chose. float runs the vector math of
// cpu/vmath (AVX2 or its portable twin): relu and leaky_relu exact, the others within
// the ulp bounds of cpu/vmath/NOTES.md. double runs the reference (gradcheck's dtype).
// Threads: OpenMP over the flattened index space, only above 32K elements; outputs over
// 8 MiB are written with non-temporal stores.
#pragma once

#include "tilegrad/kernels/activation.hpp"

namespace tg::cpu {

void act_forward(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                 const float* bias, float* y, index_t ldy);
void act_forward(Activation act, index_t rows, index_t cols, const double* x, index_t ldx,
                 const double* bias, double* y, index_t ldy);
void act_backward(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                  const float* bias, const float* dy, index_t lddy, float* dx, index_t lddx);
void act_backward(Activation act, index_t rows, index_t cols, const double* x, index_t ldx,
                  const double* bias, const double* dy, index_t lddy, double* dx, index_t lddx);

// Unchecked entries of the op tables, per path.
void act_forward_avx2(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                      const float* bias, float* y, index_t ldy);
void act_backward_avx2(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                       const float* bias, const float* dy, index_t lddy, float* dx, index_t lddx);
void act_forward_avx512(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                        const float* bias, float* y, index_t ldy);
void act_backward_avx512(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                         const float* bias, const float* dy, index_t lddy, float* dx, index_t lddx);
void act_forward_neon(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                      const float* bias, float* y, index_t ldy);
void act_backward_neon(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                       const float* bias, const float* dy, index_t lddy, float* dx, index_t lddx);
void act_forward_portable(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                          const float* bias, float* y, index_t ldy);
void act_backward_portable(Activation act, index_t rows, index_t cols, const float* x,
                           index_t ldx, const float* bias, const float* dy, index_t lddy,
                           float* dx, index_t lddx);

// Elementwise math over contiguous arrays, per path, for tests and benchmarks of the
// functions themselves (exp, log, tanh, sigmoid, erf, and the attention's 2^x, which is
// defined for x <= 0 and applied to -|x|): y[i] = f(x[i]).
enum class MathFn : int { exp, log, tanh, sigmoid, erf, exp2_nonpositive };
using MathArrayFn = void (*)(MathFn fn, index_t n, const float* x, float* y);
void math_array_avx2(MathFn fn, index_t n, const float* x, float* y);
void math_array_avx512(MathFn fn, index_t n, const float* x, float* y);
void math_array_neon(MathFn fn, index_t n, const float* x, float* y);
void math_array_portable(MathFn fn, index_t n, const float* x, float* y);

}  // namespace tg::cpu
