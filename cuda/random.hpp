// CUDA random draws and dropout: the CPU kernels' contract (kernels/random.hpp), the same bits on device pointers, asynchronous on the current device's
// stream, checked like the CPU entries. Plain C++: callers need no nvcc. Without CUDA in
// the build they throw tg::Error.
#pragma once

#include <cstdint>

#include "tilegrad/kernels/random.hpp"

namespace tg::cuda {

void random(Random kind, index_t n, float* y, double a, double b, std::uint64_t seed, std::uint64_t offset);
void dropout(index_t n, const float* x, float* y, double p, std::uint64_t seed, std::uint64_t offset);

}  // namespace tg::cuda
