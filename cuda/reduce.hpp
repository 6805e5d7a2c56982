// CUDA reductions: the CPU kernels' contract (kernels/reduce.hpp) on device pointers, asynchronous on the current device's
// stream, checked like the CPU entries. Plain C++: callers need no nvcc. Without CUDA in
// the build they throw tg::Error.
#pragma once

#include "tilegrad/kernels/reduce.hpp"

namespace tg::cuda {

void reduce(Reduce kind, index_t outer, index_t n, index_t inner, const float* x, index_t xs_outer, index_t xs_n,
            index_t xs_inner, float* y, index_t ys_outer, index_t ys_inner);

}  // namespace tg::cuda
