// CUDA random draws and dropout: the launches and the checked entries; the kernels, and how they work,
// are in cuda/random.cuh.
#include <cuda_runtime.h>

#include <cstdint>

#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/cuda/random.cuh"
#include "tilegrad/cuda/random.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/random.hpp"

namespace tg::cuda {

using namespace random_kernels;

void random(Random kind, index_t n, float* y, double a, double b, std::uint64_t seed, std::uint64_t offset) {
  check_random("cuda::random", n, y);
  if (n == 0) return;
  random_kernel<<<detail::grid_for(n, 256), 256, 0, detail::stream()>>>(kind, n, y, a, b, seed, offset);
  TG_CUDA_LAUNCHED();
}

void dropout(index_t n, const float* x, float* y, double p, std::uint64_t seed, std::uint64_t offset) {
  check_dropout("cuda::dropout", n, x, y, p, sizeof(float));
  if (n == 0) return;
  dropout_kernel<<<detail::grid_for(n, 256), 256, 0, detail::stream()>>>(n, x, y, p, 1.0 / (1.0 - p), seed, offset);
  TG_CUDA_LAUNCHED();
}

}  // namespace tg::cuda
