// CUDA activations: the CPU kernels' contract (kernels/activation.hpp) on device
// pointers, asynchronous on the current device's default stream, checked like the CPU
// entries. Plain C++: callers need no nvcc. Without CUDA in the build they throw
// tg::Error.
#pragma once

#include "tilegrad/kernels/activation.hpp"

namespace tg::cuda {

// y = act(x + bias) over a strided (rows, cols) view; dx = dy act'(x + bias).
void act_forward(Activation act, index_t rows, index_t cols, const float* x, index_t ldx, const float* bias, float* y,
                 index_t ldy);
void act_backward(Activation act, index_t rows, index_t cols, const float* x, index_t ldx, const float* bias,
                  const float* dy, index_t lddy, float* dx, index_t lddx);

}  // namespace tg::cuda
