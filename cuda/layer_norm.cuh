// CUDA layer norm kernels, forward and backward: a warp per row with the row in
// registers up to 1024 columns (mean, then the variance around it, then the write: the
// row is read once), a block per row with the row in registers up to 8192, a block per
// row reading it three times beyond; dgamma / dbeta through the column reduction of
// cuda/reduce.cuh.
//
// The kernels live here, apart from their launches (cuda/layer_norm.cu), with the host-side
// plans the launches and the SIMT emulator's tests (tests/test_simt_*.cpp) both follow,
// so that the emulator runs the same source on the CPU.
#pragma once

#ifndef TG_SIMT_HOST  // the host SIMT emulator (tests/simt) stands in for CUDA
#include <cuda_runtime.h>
#endif

#include <cmath>
#include <cstdint>

#include "tilegrad/cuda/warp.cuh"

namespace tg::cuda::layer_norm_kernels {

using i64 = std::int64_t;

// The values layer norm's dgamma sums over the rows (the column reduction of
// cuda/reduce.cuh): dy[r, i] * xhat[r, i], xhat recomputed from the saved statistics.
struct DGammaLoader {
  const float *x, *dy, *mean, *rstd;
  i64 ldx, lddy;
  __device__ double operator()(i64 /*o*/, i64 r, i64 i) const {
    return double(dy[r * lddy + i]) * ((double(x[r * ldx + i]) - double(mean[r])) * double(rstd[r]));
  }
};

// A row's statistics again in double, where the float ones are not finite: a row of finite
// values past ~1e19, whose (x - mean)^2 overflows float, would otherwise get an infinite
// variance, rstd 0 and outputs 0 (the CPU kernel does the same; a row with an infinity or
// a NaN keeps its inf or NaN statistics either way). `each(f)` calls f on the thread's
// values; `sum` is the group's sum, which every thread of the group reaches together
// (the condition is the group's: its sums are shared).
template <class Each, class Sum>
__device__ __forceinline__ void ln_stats_in_double(int cols, float eps, Each each, Sum sum, float& mu, float& rs) {
  double s = 0;
  each([&](float v) { s += double(v); });
  const double m = sum(s) / double(cols);
  double q = 0;
  each([&](float v) { q += (double(v) - m) * (double(v) - m); });
  mu = float(m);
  rs = float(1.0 / sqrt(sum(q) / double(cols) + double(eps)));
}

// A group of kGroup threads per row (a warp, 8 rows per 256-thread block; or the block),
// the row in registers, kPer values per thread (column t * kGroup + lane in register t):
// x is read once.
template <int kGroup, int kPer>
__global__ void ln_fwd_regs(int rows, int cols, const float* x, i64 ldx, const float* gamma, const float* beta,
                            float eps, float* y, i64 ldy, float* mean, float* rstd) {
  const int r = int(blockIdx.x * (256 / kGroup) + threadIdx.x / kGroup), lane = int(threadIdx.x % kGroup);
  if (r >= rows) return;  // whole groups
  const float* xr = x + i64(r) * ldx;
  float v[kPer];
  float s = 0.0f;
#pragma unroll
  for (int t = 0; t < kPer; ++t) {
    const int c = t * kGroup + lane;
    v[t] = c < cols ? xr[c] : 0.0f;
    s += v[t];
  }
  float mu = group_sum<kGroup>(s) / float(cols);
  float q = 0.0f;
#pragma unroll
  for (int t = 0; t < kPer; ++t) {
    const float d = t * kGroup + lane < cols ? v[t] - mu : 0.0f;
    q += d * d;
  }
  q = group_sum<kGroup>(q);
  float rs = 1.0f / sqrtf(q / float(cols) + eps);
  if (!isfinite(q) || !isfinite(mu)) {
    const auto each = [&](auto f) {
#pragma unroll
      for (int t = 0; t < kPer; ++t)
        if (t * kGroup + lane < cols) f(v[t]);
    };
    ln_stats_in_double(
        cols, eps, each, [](double d) { return group_sum<kGroup>(d); }, mu, rs);
  }
  float* yr = y + i64(r) * ldy;
#pragma unroll
  for (int t = 0; t < kPer; ++t) {
    const int c = t * kGroup + lane;
    if (c < cols) yr[c] = (v[t] - mu) * rs * (gamma ? gamma[c] : 1.0f) + (beta ? beta[c] : 0.0f);
  }
  if (lane == 0) {
    if (mean) mean[r] = mu;
    if (rstd) rstd[r] = rs;
  }
}

// Rows over 8192 columns: a 256-thread block per row, three passes (the second and third
// mostly from L1/L2).
__global__ void ln_fwd_block(int cols, const float* x, i64 ldx, const float* gamma, const float* beta, float eps,
                             float* y, i64 ldy, float* mean, float* rstd) {
  const float* xr = x + i64(blockIdx.x) * ldx;
  float s = 0.0f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) s += xr[c];
  float mu = block_sum(s) / float(cols);
  float q = 0.0f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float d = xr[c] - mu;
    q += d * d;
  }
  q = block_sum(q);
  float rs = 1.0f / sqrtf(q / float(cols) + eps);
  if (!isfinite(q) || !isfinite(mu)) {
    const auto each = [&](auto f) {
      for (int c = threadIdx.x; c < cols; c += blockDim.x) f(xr[c]);
    };
    ln_stats_in_double(
        cols, eps, each, [](double d) { return block_sum(d); }, mu, rs);
  }
  float* yr = y + i64(blockIdx.x) * ldy;
  for (int c = threadIdx.x; c < cols; c += blockDim.x)
    yr[c] = (xr[c] - mu) * rs * (gamma ? gamma[c] : 1.0f) + (beta ? beta[c] : 0.0f);
  if (threadIdx.x == 0) {
    if (mean) mean[blockIdx.x] = mu;
    if (rstd) rstd[blockIdx.x] = rs;
  }
}

// dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma; groups as ln_fwd_regs.
template <int kGroup, int kPer>
__global__ void ln_bwd_regs(int rows, int cols, const float* x, i64 ldx, const float* dy, i64 lddy, const float* gamma,
                            const float* mean, const float* rstd, float* dx, i64 lddx) {
  const int r = int(blockIdx.x * (256 / kGroup) + threadIdx.x / kGroup), lane = int(threadIdx.x % kGroup);
  if (r >= rows) return;
  const float mu = mean[r], rs = rstd[r];
  const float *xr = x + i64(r) * ldx, *gr = dy + i64(r) * lddy;
  float xh[kPer], g[kPer];
  float s1 = 0.0f, s2 = 0.0f;
#pragma unroll
  for (int t = 0; t < kPer; ++t) {
    const int c = t * kGroup + lane;
    const bool in = c < cols;
    xh[t] = in ? (xr[c] - mu) * rs : 0.0f;
    g[t] = in ? gr[c] * (gamma ? gamma[c] : 1.0f) : 0.0f;
    s1 += g[t];
    s2 += g[t] * xh[t];
  }
  const float m1 = group_sum<kGroup>(s1) / float(cols), m2 = group_sum<kGroup>(s2) / float(cols);
  float* dr = dx + i64(r) * lddx;
#pragma unroll
  for (int t = 0; t < kPer; ++t) {
    const int c = t * kGroup + lane;
    if (c < cols) dr[c] = rs * (g[t] - m1 - xh[t] * m2);
  }
}

__global__ void ln_bwd_block(int cols, const float* x, i64 ldx, const float* dy, i64 lddy, const float* gamma,
                             const float* mean, const float* rstd, float* dx, i64 lddx) {
  const i64 r = blockIdx.x;
  const float mu = mean[r], rs = rstd[r];
  const float *xr = x + r * ldx, *gr = dy + r * lddy;
  float s1 = 0.0f, s2 = 0.0f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float g = gr[c] * (gamma ? gamma[c] : 1.0f);
    s1 += g;
    s2 += g * ((xr[c] - mu) * rs);
  }
  const float m1 = block_sum(s1) / float(cols), m2 = block_sum(s2) / float(cols);
  float* dr = dx + r * lddx;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float g = gr[c] * (gamma ? gamma[c] : 1.0f);
    dr[c] = rs * (g - m1 - (xr[c] - mu) * rs * m2);
  }
}

// The values per lane of the warp-per-row layer norm kernels for rows of `cols` <= 1024.
inline int row_regs(int cols) {
  return cols <= 32 ? 1 : cols <= 64 ? 2 : cols <= 128 ? 4 : cols <= 256 ? 8 : cols <= 512 ? 16 : 32;
}

// The layer norm kernel for rows of `cols`: ln_*_regs with a warp per row (group 32,
// row_regs(cols) values per lane) up to 1024 columns, with a block per row (group 256, 8,
// 16 or 32 values per thread) up to 8192, the three-pass block kernels beyond (per 0).
struct LnPlan {
  int group, per;
};
inline LnPlan ln_plan(int cols) {
  if (cols <= 1024) return {32, row_regs(cols)};
  if (cols <= 8192) return {256, cols <= 2048 ? 8 : cols <= 4096 ? 16 : 32};
  return {256, 0};
}

// The register kernels' grid for `rows`: 256-thread blocks of 8 rows (a warp each) or of
// one row.
inline unsigned ln_blocks(int group, i64 rows) { return unsigned(group == 32 ? (rows + 7) / 8 : rows); }

// Calls run.template operator()<group, per>() with ln_plan(cols)'s register kernel
// parameters; false (no call) for the three-pass kernels. The launches (cuda/layer_norm.cu)
// and the emulator's test dispatch through it.
template <class Run>
bool with_ln_regs(int cols, Run&& run) {
  const LnPlan p = ln_plan(cols);
  if (p.group == 32) {
    switch (p.per) {
      case 1: run.template operator()<32, 1>(); break;
      case 2: run.template operator()<32, 2>(); break;
      case 4: run.template operator()<32, 4>(); break;
      case 8: run.template operator()<32, 8>(); break;
      case 16: run.template operator()<32, 16>(); break;
      default: run.template operator()<32, 32>(); break;
    }
    return true;
  }
  switch (p.per) {
    case 8: run.template operator()<256, 8>(); return true;
    case 16: run.template operator()<256, 16>(); return true;
    case 32: run.template operator()<256, 32>(); return true;
    default: return false;
  }
}

}  // namespace tg::cuda::layer_norm_kernels
