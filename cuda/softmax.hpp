// CUDA softmax and log_softmax: the CPU kernels' contract (kernels/softmax.hpp) on
// device pointers, asynchronous on the current device's default stream, checked like the
// CPU entries. Plain C++: callers need no nvcc. Without CUDA in the build they throw
// tg::Error.
#pragma once

#include "tilegrad/kernels/types.hpp"

namespace tg::cuda {

// softmax (log = false) or log_softmax over each row, and their backward from y.
void softmax_forward(bool log, index_t rows, index_t cols, const float* x, index_t ldx, float* y, index_t ldy);
void softmax_backward(bool log, index_t rows, index_t cols, const float* y, index_t ldy, const float* dy,
                      index_t lddy, float* dx, index_t lddx);

}  // namespace tg::cuda
