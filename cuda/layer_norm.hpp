// CUDA layer norm: the CPU kernels' contract (kernels/layer_norm.hpp) on device pointers, asynchronous on the current device's
// stream, checked like the CPU entries. Plain C++: callers need no nvcc. Without CUDA in
// the build they throw tg::Error.
#pragma once

#include "tilegrad/kernels/types.hpp"

namespace tg::cuda {

void layer_norm_forward(index_t rows, index_t cols, const float* x, index_t ldx, const float* gamma, const float* beta,
                        double eps, float* y, index_t ldy, float* mean, float* rstd);
void layer_norm_backward(index_t rows, index_t cols, const float* x, index_t ldx, const float* dy, index_t lddy,
                         const float* gamma, const float* mean, const float* rstd, double eps, float* dx, index_t lddx,
                         float* dgamma, float* dbeta);

}  // namespace tg::cuda
