// Warp- and block-wide reductions the row kernels share (softmax, layer norm, cross
// entropy, reductions): shuffles within a warp, shared memory across a block's warps.
#pragma once

#ifndef TG_SIMT_HOST  // the host SIMT emulator (tests/simt) stands in for CUDA
#include <cuda_runtime.h>
#endif

namespace tg::cuda {

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// A value merged over the whole block (every thread gets it): warp shuffles, then the
// warps' results through shared memory. `warp` merges within a warp, `none` is the
// identity for the lanes past the block's warps.
template <class T, class WarpOp>
__device__ __forceinline__ T block_all(T v, T none, WarpOp warp) {
  __shared__ T part[32];
  __shared__ T total;
  v = warp(v);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    T t = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : none;
    t = warp(t);
    if (threadIdx.x == 0) total = t;
  }
  __syncthreads();
  return total;
}
__device__ __forceinline__ float block_sum(float v) { return block_all(v, 0.0f, warp_sum<float>); }
__device__ __forceinline__ double block_sum(double v) { return block_all(v, 0.0, warp_sum<double>); }

// A sum over a group of kGroup threads: a warp (32) or the 256-thread block.
template <int kGroup, class T>
__device__ __forceinline__ T group_sum(T v) {
  if constexpr (kGroup == 32) return warp_sum(v);
  else return block_sum(v);
}

}  // namespace tg::cuda
