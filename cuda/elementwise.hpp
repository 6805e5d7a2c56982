// CUDA unary, binary and where: the CPU kernels' contract (kernels/elementwise.hpp) on device pointers, asynchronous on the current device's
// stream, checked like the CPU entries. Plain C++: callers need no nvcc. Without CUDA in
// the build they throw tg::Error.
#pragma once

#include "tilegrad/kernels/elementwise.hpp"
#include "tilegrad/kernels/shape.hpp"

namespace tg::cuda {

void unary(Unary op, double p0, double p1, const Shape& xs, const float* x, const Shape& ys, float* y);
void binary(Binary op, const Shape& as, const float* a, const Shape& bs, const float* b, const Shape& ys, float* y);
void where(const Shape& cs, const float* c, const Shape& as, const float* a, const Shape& bs, const float* b,
           const Shape& ys, float* y);

}  // namespace tg::cuda
