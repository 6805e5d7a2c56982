// CUDA random draws and dropout: Philox (kernels/random.hpp), element i from (seed,
// offset, i): the same bits as the CPU.
//
// The kernels live here, apart from their launches (cuda/random.cu), with the host-side
// plans the launches and the SIMT emulator's tests (tests/test_simt_*.cpp) both follow,
// so that the emulator runs the same source on the CPU.
#pragma once

#ifndef TG_SIMT_HOST  // the host SIMT emulator (tests/simt) stands in for CUDA
#include <cuda_runtime.h>
#endif

#include <cmath>
#include <cstdint>
#include <numbers>

#include "tilegrad/kernels/random.hpp"

namespace tg::cuda::random_kernels {

using i64 = std::int64_t;

__global__ void random_kernel(Random kind, i64 n, float* y, double a, double b, std::uint64_t seed, std::uint64_t offset) {
  for (i64 i = blockIdx.x * i64(blockDim.x) + threadIdx.x; i < n; i += i64(gridDim.x) * blockDim.x) {
    const auto w = Philox::block(seed, std::uint64_t(i), offset);
    if (kind == Random::uniform) {
      y[i] = float(a + (b - a) * Philox::unit(w[0]));
    } else {
      const double u1 = 1.0 - Philox::unit(w[0]), u2 = Philox::unit(w[1]);
      y[i] = float(a + b * sqrt(-2.0 * log(u1)) * cos(2.0 * std::numbers::pi * u2));
    }
  }
}

__global__ void dropout_kernel(i64 n, const float* x, float* y, double p, double scale, std::uint64_t seed,
                               std::uint64_t offset) {
  for (i64 i = blockIdx.x * i64(blockDim.x) + threadIdx.x; i < n; i += i64(gridDim.x) * blockDim.x) {
    const bool keep = Philox::unit(Philox::block(seed, std::uint64_t(i), offset)[0]) >= p;
    y[i] = keep ? float(double(x[i]) * scale) : 0.0f;
  }
}

}  // namespace tg::cuda::random_kernels
