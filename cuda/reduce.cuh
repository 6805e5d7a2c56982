// CUDA reductions: sum / mean / max over the middle axis of (outer, n, inner): a group
// of threads per output when inner == 1 (a warp for short rows, a 256-thread block for
// long ones), a 32-column x 8-row block per 32 outputs when inner > 1 (coalesced along
// inner); when those blocks cannot fill the GPU, n is cut into chunks whose partial
// results (double) go to a workspace from the caching allocator and a second kernel adds
// them in a fixed order. Accumulation in double: the same answer for any chunking, to a
// float rounding of the exact sum for the sizes of a training step.
//
// The kernels live here, apart from their launches (cuda/reduce.cu), with the host-side
// plans the launches and the SIMT emulator's tests (tests/test_simt_*.cpp) both follow,
// so that the emulator runs the same source on the CPU.
#pragma once

#ifndef TG_SIMT_HOST  // the host SIMT emulator (tests/simt) stands in for CUDA
#include <cuda_runtime.h>

#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/kernels/buffer.hpp"
#include "tilegrad/kernels/error.hpp"
#endif

#include <algorithm>
#include <cstdint>
#include <limits>

#include "tilegrad/cuda/warp.cuh"

namespace tg::cuda::reduce_kernels {

using i64 = std::int64_t;
constexpr double kInfD = std::numeric_limits<double>::infinity();

// Combines in double; max keeps a NaN once seen (v > NaN and NaN > v are both false).
struct SumOp {
  static constexpr double init() { return 0.0; }
  __device__ static double step(double acc, double v) { return acc + v; }
  __device__ static double warp(double v) { return warp_sum(v); }
};
struct MaxOp {
  static constexpr double init() { return -kInfD; }
  __device__ static double step(double acc, double v) { return (v != v || v > acc) && acc == acc ? v : acc; }
  __device__ static double warp(double v) {
    for (int o = 16; o > 0; o /= 2) v = step(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
  }
};

// The values a reduction reads: x[o, r, i] of a strided view (layer norm's dgamma brings
// its own loader, cuda/layer_norm.cuh).
struct ViewLoader {
  const float* x;
  i64 so, sn, si;
  __device__ double operator()(i64 o, i64 r, i64 i) const { return double(x[o * so + r * sn + i * si]); }
};

// Where the results go: straight to y (with the mean's division), or a chunk's partials.
struct Out {
  float* y;       // final outputs (ys_o, ys_i), or null when writing partials
  i64 yo, yi;
  double* part;   // partials [chunk][o][i] when y is null
  bool mean;
  i64 n;          // the full reduced length (for the mean)
  i64 outer, inner;
  __device__ void put(i64 chunk, i64 o, i64 i, double v) const {
    if (y) y[o * yo + i * yi] = float(mean ? v / double(n) : v);
    else part[(chunk * outer + o) * inner + i] = v;
  }
};

// inner == 1: kGroup threads per output (32: a warp, 8 outputs per 256-thread block;
// 256: the block); blockIdx.y is the chunk of n.
template <int kGroup, class Op, class Loader>
__global__ void reduce_rows(i64 outer, i64 n, i64 chunk_len, Loader load, Out out) {
  constexpr int kPerBlock = 256 / kGroup;
  const int lane = int(threadIdx.x % kGroup);
  const i64 o = i64(blockIdx.x) * kPerBlock + threadIdx.x / kGroup;
  const i64 r0 = i64(blockIdx.y) * chunk_len, r1 = min(n, r0 + chunk_len);
  double acc = Op::init();
  if (o < outer)
    for (i64 r = r0 + lane; r < r1; r += kGroup) acc = Op::step(acc, load(o, r, 0));
  if constexpr (kGroup == 32) {
    acc = Op::warp(acc);
  } else {
    acc = block_all(acc, Op::init(), [](double v) { return Op::warp(v); });
  }
  if (lane == 0 && o < outer) out.put(blockIdx.y, o, 0, acc);
}

// inner > 1: a (32, 8) block per 32 consecutive outputs of one o; its 8 rows of threads
// stride over the chunk of n, then add their results in a fixed order.
template <class Op, class Loader>
__global__ void reduce_cols(i64 outer, i64 n, i64 inner, i64 chunk_len, Loader load, Out out) {
  __shared__ double part[8][33];
  const i64 i = i64(blockIdx.x) * 32 + threadIdx.x;
  const i64 r0 = i64(blockIdx.z) * chunk_len, r1 = min(n, r0 + chunk_len);
  for (i64 o = blockIdx.y; o < outer; o += gridDim.y) {
    double acc = Op::init();
    if (i < inner)
      for (i64 r = r0 + threadIdx.y; r < r1; r += 8) acc = Op::step(acc, load(o, r, i));
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && i < inner) {
      double v = part[0][threadIdx.x];
      for (int k = 1; k < 8; ++k) v = Op::step(v, part[k][threadIdx.x]);
      out.put(blockIdx.z, o, i, v);
    }
    __syncthreads();
  }
}

template <class Op>
__global__ void reduce_chunks(i64 outer, i64 inner, int chunks, const double* part, Out out) {
  const i64 total = outer * inner;
  for (i64 k = blockIdx.x * i64(blockDim.x) + threadIdx.x; k < total; k += i64(gridDim.x) * blockDim.x) {
    double v = Op::init();
    for (int c = 0; c < chunks; ++c) v = Op::step(v, part[c * total + k]);
    out.put(0, k / inner, k % inner, v);
  }
}

// How a reduction of (outer, n, inner) runs: reduce_rows when inner == 1 (a warp per
// output up to n = 4096, a block beyond), reduce_cols otherwise; n cut into `chunks`
// slices of chunk_len (partials, then reduce_chunks) when the outputs alone cannot give
// each of `sms` SMs two blocks.
struct ReducePlan {
  bool rows = false, warp_rows = false;
  i64 chunks = 1, chunk_len = 1;
};
inline ReducePlan plan_reduce(i64 outer, i64 n, i64 inner, int sms) {
  ReducePlan p;
  const i64 want = 2 * i64(sms);
  p.rows = inner == 1;
  p.warp_rows = p.rows && n <= 4096;
  i64 base = 0, min_chunk = 0;
  if (p.rows) {
    base = p.warp_rows ? (outer + 7) / 8 : outer;
    min_chunk = p.warp_rows ? 1024 : 8192;
  } else {
    base = ((inner + 31) / 32) * std::min<i64>(outer, 65535);
    min_chunk = 256;
  }
  if (base < want && n > min_chunk)
    p.chunks = std::min<i64>({(want + base - 1) / base, (n + min_chunk - 1) / min_chunk, 1024});
  p.chunk_len = std::max<i64>((n + p.chunks - 1) / p.chunks, 1);
  return p;
}

#ifndef TG_SIMT_HOST
// Reduces (outer, n, inner) through `load` into y (strides yo, yi) by plan_reduce's
// plan: the launch that cuda/reduce.cu's entry and layer norm's dgamma and dbeta share.
template <class Op, class Loader>
void launch_reduce(bool mean, i64 outer, i64 n, i64 inner, Loader load, float* y, i64 yo, i64 yi) {
  if (outer == 0 || inner == 0) return;
  const ReducePlan plan = plan_reduce(outer, n, inner, detail::sm_count());
  const i64 chunks = plan.chunks, chunk_len = plan.chunk_len;
  Out out{y, yo, yi, nullptr, mean, n, outer, inner};
  const cudaStream_t stream = detail::stream();
  Buffer ws;
  if (chunks > 1) {
    ws = Buffer(std::size_t(chunks * outer * inner) * sizeof(double), Device::cuda(detail::current_device()));
    out.y = nullptr;
    out.part = ws.as<double>();
  }
  const unsigned gz = unsigned(chunks);
  if (plan.rows) {
    TG_CHECK(outer <= i64(INT32_MAX) * 8, "cuda::reduce", "outer", "expected fewer than 2^34 outputs, got ", outer);
    if (plan.warp_rows) reduce_rows<32, Op><<<dim3(unsigned((outer + 7) / 8), gz), 256, 0, stream>>>(outer, n, chunk_len, load, out);
    else reduce_rows<256, Op><<<dim3(unsigned(outer), gz), 256, 0, stream>>>(outer, n, chunk_len, load, out);
  } else {
    TG_CHECK((inner + 31) / 32 <= i64(INT32_MAX), "cuda::reduce", "inner", "expected fewer than 2^36 inner elements");
    reduce_cols<Op><<<dim3(unsigned((inner + 31) / 32), unsigned(std::min<i64>(outer, 65535)), gz), dim3(32, 8), 0,
                      stream>>>(outer, n, inner, chunk_len, load, out);
  }
  TG_CUDA_LAUNCHED();
  if (chunks > 1) {
    Out final_out{y, yo, yi, nullptr, mean, n, outer, inner};
    reduce_chunks<Op><<<detail::grid_for(outer * inner, 256), 256, 0, stream>>>(outer, inner, int(chunks), ws.as<double>(), final_out);
    TG_CUDA_LAUNCHED();
  }
}
#endif  // TG_SIMT_HOST

}  // namespace tg::cuda::reduce_kernels
