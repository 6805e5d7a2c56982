// CUDA activation kernels: a grid-stride loop over the elements, 128-bit loads and
// stores when every row is 16-byte aligned and cols % 4 == 0, scalar otherwise; the
// functions themselves are activation_math.cuh's (shared with the GEMM epilogues).
// Their launches and checked entries are in cuda/activation.cu.
//
// The kernels live here, apart from their launches, so that the host SIMT emulator
// (tests/simt) can run the same source on the CPU.
#pragma once

#ifndef TG_SIMT_HOST
#include <cuda_runtime.h>
#endif

#include <cstdint>

#include "tilegrad/cuda/activation_math.cuh"
#include "tilegrad/kernels/activation.hpp"

namespace tg::cuda::activation_kernels {

// Rows over blockIdx.y (grid-stride), columns over blockIdx.x and the threads: no
// division per element (a 64-bit div/mod per float4 cost the forward ~15% of the copy's
// speed). Contiguous calls without a bias come as one long row (act_launch collapses
// them), so the columns are 64-bit.
template <bool kBackward>
__global__ void act_scalar(Act kind, float slope, int rows, std::int64_t cols, const float* x, std::int64_t ldx,
                           const float* bias, const float* dy, std::int64_t lddy, float* y, std::int64_t ldy) {
  for (std::int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (std::int64_t c = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; c < cols;
         c += std::int64_t(gridDim.x) * blockDim.x) {
      const float z = x[r * ldx + c] + (bias ? bias[c] : 0.0f);
      y[r * ldy + c] = kBackward ? dy[r * lddy + c] * act_derivative1(kind, slope, z) : act_forward1(kind, slope, z);
    }
}

template <bool kBackward>
__global__ void act_vec4(Act kind, float slope, int rows, std::int64_t cols, const float* x, std::int64_t ldx,
                         const float* bias, const float* dy, std::int64_t lddy, float* y, std::int64_t ldy) {
  const std::int64_t c4 = cols / 4;
  for (std::int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < c4;
         i += std::int64_t(gridDim.x) * blockDim.x) {
      const std::int64_t c = 4 * i;
      float4 v = *reinterpret_cast<const float4*>(x + r * ldx + c);
      if (bias) {
        const float4 b = *reinterpret_cast<const float4*>(bias + c);
        v.x += b.x, v.y += b.y, v.z += b.z, v.w += b.w;
      }
      float4 o;
      if constexpr (kBackward) {
        const float4 g = *reinterpret_cast<const float4*>(dy + r * lddy + c);
        o = make_float4(g.x * act_derivative1(kind, slope, v.x), g.y * act_derivative1(kind, slope, v.y),
                        g.z * act_derivative1(kind, slope, v.z), g.w * act_derivative1(kind, slope, v.w));
      } else {
        o = make_float4(act_forward1(kind, slope, v.x), act_forward1(kind, slope, v.y), act_forward1(kind, slope, v.z),
                        act_forward1(kind, slope, v.w));
      }
      *reinterpret_cast<float4*>(y + r * ldy + c) = o;
    }
}

}  // namespace tg::cuda::activation_kernels
