// CUDA optimizer steps: the launches and the checked entries; the kernels, and how they work,
// are in cuda/optimizer.cuh.
#include <cuda_runtime.h>

#include <cstdint>
#include <span>

#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/cuda/optimizer.cuh"
#include "tilegrad/cuda/optimizer.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/optimizer.hpp"

namespace tg::cuda {

using namespace optimizer_kernels;

void sgd_step(const SgdConfig& c, std::span<const ParamSlot<float>> slots) {
  check_param_slots("cuda::sgd_step", slots, c.momentum != 0, false);
  const SgdParams p = sgd_params(c);
  const cudaStream_t s = detail::stream();
  multi_tensor(slots, [&](const Pack& pk, int blocks) {
    sgd_kernel<<<unsigned(blocks), 256, 0, s>>>(pk, p, c.live);
    TG_CUDA_LAUNCHED();
  });
}

void adam_step(const AdamConfig& c, std::span<const ParamSlot<float>> slots) {
  check_param_slots("cuda::adam_step", slots, true, true);
  TG_CHECK(c.live != nullptr || c.step >= 1, "cuda::adam_step", "step", "expected step >= 1, got ", c.step);
  const AdamParams p = adam_params(c);
  const cudaStream_t s = detail::stream();
  multi_tensor(slots, [&](const Pack& pk, int blocks) {
    adam_kernel<<<unsigned(blocks), 256, 0, s>>>(pk, p, c.live);
    TG_CUDA_LAUNCHED();
  });
}

}  // namespace tg::cuda
