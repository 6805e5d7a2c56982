// CUDA cross-entropy kernels (kernels/cross_entropy.hpp's contract): the forward a group
// of threads per row (a warp per row up to 1024 classes, 8 rows per block; a 256-thread
// block per row beyond), its loss and (max, log sum) pair for the backward; the backward
// a grid-stride loop over the logits; the count of kept targets (the mean's divisor). Their
// launches and checked entries are in cuda/cross_entropy.cu.
//
// The kernels live here, apart from their launches, so that the host SIMT emulator
// (tests/simt) can run the same source on the CPU.
#pragma once

#ifndef TG_SIMT_HOST  // the host SIMT emulator (tests/simt) stands in for CUDA
#include <cuda_runtime.h>
#endif

#include <cmath>
#include <cstdint>
#include <limits>

#include "tilegrad/cuda/warp.cuh"

namespace tg::cuda::cross_entropy_kernels {

using i64 = std::int64_t;

template <int kGroup>
__device__ __forceinline__ float group_max(float v) {
  auto warp_max = [](float a) {
    for (int o = 16; o > 0; o /= 2) a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, o));
    return a;
  };
  if constexpr (kGroup == 32) return warp_max(v);
  else return block_all(v, -std::numeric_limits<float>::infinity(), warp_max);
}

// A NaN anywhere in the row makes max NaN-free (fmaxf), but exp(NaN - m) makes the sum
// and the loss NaN, as the contract says; +-inf logits give inf - inf = NaN likewise.
template <int kGroup>
__global__ void ce_fwd(int rows, int classes, const float* z, i64 ld, const i64* target, i64 ignore, float smoothing,
                       float* loss, float* lse) {
  constexpr int kPerBlock = 256 / kGroup;
  const int lane = int(threadIdx.x % kGroup);
  const int r = int(blockIdx.x) * kPerBlock + int(threadIdx.x / kGroup);
  const bool live = r < rows;
  if (kGroup == 32 && !live) return;  // whole warps only; the block version has one row
  const float* zr = z + i64(r) * ld;
  float m = -std::numeric_limits<float>::infinity();
  for (int c = lane; c < classes; c += kGroup) m = fmaxf(m, zr[c]);
  m = group_max<kGroup>(m);
  double s = 0.0, zs = 0.0;  // zs: sum of m - z_j (the smoothing term, relative to m)
  for (int c = lane; c < classes; c += kGroup) {
    const float v = zr[c];
    s += double(__expf(v - m));
    zs += double(m) - double(v);
  }
  s = group_sum<kGroup>(s);
  zs = group_sum<kGroup>(zs);
  if (lane != 0) return;
  const double log_s = log(s);
  lse[2 * i64(r)] = m, lse[2 * i64(r) + 1] = float(log_s);  // the pair: kernels/cross_entropy.hpp
  const i64 t = target[r];
  if (t == ignore) loss[r] = 0.0f;
  else if (t < 0 || t >= classes) loss[r] = __int_as_float(0x7fc00000);
  else  // relative to m, as the reference; no smoothing: no deviation term (0 * inf for a -inf logit)
    loss[r] = float(log_s + (1.0 - double(smoothing)) * (double(m) - double(zr[t])) +
                    (smoothing != 0.0f ? double(smoothing) / classes * zs : 0.0));
}

__global__ void ce_bwd(int rows, int classes, const float* z, i64 ld, const i64* target, i64 ignore, float smoothing,
                       const float* lse, const float* dloss, float* dz, i64 ldd) {
  const i64 n = i64(rows) * classes;
  const float off = smoothing / float(classes);
  for (i64 k = blockIdx.x * i64(blockDim.x) + threadIdx.x; k < n; k += i64(gridDim.x) * blockDim.x) {
    const i64 r = k / classes, c = k - r * classes;
    const i64 t = target[r];
    float d = 0.0f;
    if (t != ignore)
      d = dloss[r] * (expf((z[r * ld + c] - lse[2 * r]) - lse[2 * r + 1]) - (c == t ? 1.0f - smoothing : 0.0f) - off);
    dz[r * ldd + c] = d;
  }
}

__global__ void count_kernel(i64 n, const i64* target, i64 ignore, float* out) {
  double c = 0;
  for (i64 i = threadIdx.x; i < n; i += blockDim.x) c += target[i] != ignore ? 1.0 : 0.0;
  c = block_sum(c);
  if (threadIdx.x == 0) out[0] = float(c);
}

}  // namespace tg::cuda::cross_entropy_kernels
