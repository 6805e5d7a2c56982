// CUDA dtype conversions: f32, bf16 and f16 on device pointers, asynchronous on the current device's
// stream, checked like the CPU entries. Plain C++: callers need no nvcc. Without CUDA in
// the build they throw tg::Error.
#pragma once

#include "tilegrad/kernels/shape.hpp"
#include "tilegrad/kernels/types.hpp"

namespace tg::cuda {

// y (contiguous, src.numel() elements of `to`) = the elements of x (`from`, laid out as
// src) converted: f32, bf16, f16 in any direction (the same dtype copies), rounded to
// nearest even (kernels/half.hpp).
void convert(DType from, DType to, const Shape& src, const void* x, void* y);

}  // namespace tg::cuda
