// The kernels of cuda/ops.cu (what they do: the comment there), apart from their launches,
// with the host-side plans both the launches and the SIMT emulator's test
// (tests/test_simt_ops.cpp) follow: how N-D views collapse, how a reduction is cut into
// chunks, which register width a row kernel takes, how parameters pack into launches.
#pragma once

#ifndef TG_SIMT_HOST  // the host SIMT emulator (tests/simt) stands in for CUDA
#include <cuda_runtime.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <span>

#include "tilegrad/cuda/warp.cuh"
#include "tilegrad/kernels/elementwise.hpp"
#include "tilegrad/kernels/optimizer.hpp"
#include "tilegrad/kernels/random.hpp"
#include "tilegrad/kernels/shape.hpp"

namespace tg::cuda::opk {
using i64 = std::int64_t;
constexpr int kRank = Shape::kMaxRank;
constexpr double kInfD = std::numeric_limits<double>::infinity();

// ---- elementwise ----

struct Dims {
  int rank = 0;
  i64 size[kRank] = {};
};
struct Strides {
  i64 s[kRank] = {};
};

// The operands' views with size-1 dimensions dropped and dimensions merged where every
// operand is contiguous across them: (4, 5):(5, 1) and (4, 5):(0, 0) stay one dimension
// of 20 elements each.
template <int N>
struct Collapsed {
  Dims dims;
  Strides st[N];
  bool flat() const {  // one dimension of unit stride in every operand (or a scalar)
    if (dims.rank == 0) return true;
    if (dims.rank != 1) return false;
    for (int k = 0; k < N; ++k)
      if (st[k].s[0] != 1) return false;
    return true;
  }
};

template <int N>
Collapsed<N> collapse(const Shape& ys, const Shape* const (&shapes)[N]) {
  Collapsed<N> c;
  int r = 0;
  for (int d = 0; d < ys.rank(); ++d) {
    const i64 n = ys.sizes()[std::size_t(d)];
    if (n == 1) continue;
    bool merge = r > 0;
    for (int k = 0; merge && k < N; ++k)
      merge = c.st[k].s[r - 1] == shapes[k]->strides()[std::size_t(d)] * n;
    if (merge) {
      c.dims.size[r - 1] *= n;
      for (int k = 0; k < N; ++k) c.st[k].s[r - 1] = shapes[k]->strides()[std::size_t(d)];
    } else {
      c.dims.size[r] = n;
      for (int k = 0; k < N; ++k) c.st[k].s[r] = shapes[k]->strides()[std::size_t(d)];
      ++r;
    }
  }
  c.dims.rank = r;
  return c;
}

// The operands' offsets of element i (row-major over d). Unrolled over every possible
// dimension so that all indices are constants: the strides stay in registers and
// parameter space, never in local memory.
template <int N>
__device__ __forceinline__ void offsets_of(const Dims& d, const Strides* const (&st)[N], i64 i, i64 (&off)[N]) {
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] = 0;
#pragma unroll
  for (int j = kRank - 1; j >= 0; --j) {
    if (j >= d.rank) continue;
    const i64 q = i / d.size[j], c = i - q * d.size[j];
    i = q;
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] += c * st[k]->s[j];
  }
}

__device__ __forceinline__ float unary_value(Unary op, float x, float p0, float p1) {
  switch (op) {
    case Unary::copy: return x;
    case Unary::fill: return p0;
    case Unary::neg: return -x;
    case Unary::exp: return expf(x);
    case Unary::log: return logf(x);
    case Unary::sqrt: return sqrtf(x);
    case Unary::rsqrt: return 1.0f / sqrtf(x);
    case Unary::abs: return fabsf(x);
    case Unary::sign: return x != x ? x : float((x > 0.0f) - (x < 0.0f));
    case Unary::square: return x * x;
    case Unary::reciprocal: return 1.0f / x;
    case Unary::add_scalar: return x + p0;
    case Unary::mul_scalar: return x * p0;
    case Unary::pow_scalar: return powf(x, p0);
    case Unary::clamp: return x != x ? x : fminf(fmaxf(x, p0), p1);
    case Unary::in_range: return p0 <= x && x <= p1 ? 1.0f : 0.0f;
    case Unary::gt_scalar: return x > p0 ? 1.0f : 0.0f;
  }
  return __int_as_float(0x7fc00000);
}

__device__ __forceinline__ float binary_value(Binary op, float a, float b) {
  switch (op) {
    case Binary::add: return a + b;
    case Binary::sub: return a - b;
    case Binary::mul: return a * b;
    case Binary::div: return a / b;
    case Binary::eq: return a == b ? 1.0f : 0.0f;
    case Binary::gt: return a > b ? 1.0f : 0.0f;
    case Binary::max: return a != a || b != b ? a + b : fmaxf(a, b);
    case Binary::min: return a != a || b != b ? a + b : fminf(a, b);
  }
  return __int_as_float(0x7fc00000);
}

// Flat operands (or the single element of a scalar view): 16 bytes per access when every
// pointer is 16-byte aligned (kVec), then the n % 4 tail one float at a time.
template <bool kVec>
__global__ void unary_flat(Unary op, float p0, float p1, i64 n, const float* x, float* y) {
  const i64 start = blockIdx.x * i64(blockDim.x) + threadIdx.x, stride = i64(gridDim.x) * blockDim.x;
  const bool fill = op == Unary::fill;
  i64 done = 0;
  if constexpr (kVec) {
    const i64 n4 = n / 4;
    for (i64 i = start; i < n4; i += stride) {
      const float4 v = fill ? make_float4(0, 0, 0, 0) : reinterpret_cast<const float4*>(x)[i];
      reinterpret_cast<float4*>(y)[i] = make_float4(unary_value(op, v.x, p0, p1), unary_value(op, v.y, p0, p1),
                                                    unary_value(op, v.z, p0, p1), unary_value(op, v.w, p0, p1));
    }
    done = 4 * n4;
  }
  for (i64 i = done + start; i < n; i += stride) y[i] = unary_value(op, fill ? 0.0f : x[i], p0, p1);
}

__global__ void unary_nd(Unary op, float p0, float p1, i64 n, Dims d, Strides sx, Strides sy, const float* x, float* y) {
  const Strides* const st[2] = {&sx, &sy};
  for (i64 i = blockIdx.x * i64(blockDim.x) + threadIdx.x; i < n; i += i64(gridDim.x) * blockDim.x) {
    i64 off[2];
    offsets_of<2>(d, st, i, off);
    y[off[1]] = unary_value(op, op == Unary::fill ? 0.0f : x[off[0]], p0, p1);
  }
}

template <bool kVec>
__global__ void binary_flat(Binary op, i64 n, const float* a, const float* b, float* y) {
  const i64 start = blockIdx.x * i64(blockDim.x) + threadIdx.x, stride = i64(gridDim.x) * blockDim.x;
  i64 done = 0;
  if constexpr (kVec) {
    const i64 n4 = n / 4;
    for (i64 i = start; i < n4; i += stride) {
      const float4 u = reinterpret_cast<const float4*>(a)[i], v = reinterpret_cast<const float4*>(b)[i];
      reinterpret_cast<float4*>(y)[i] = make_float4(binary_value(op, u.x, v.x), binary_value(op, u.y, v.y),
                                                    binary_value(op, u.z, v.z), binary_value(op, u.w, v.w));
    }
    done = 4 * n4;
  }
  for (i64 i = done + start; i < n; i += stride) y[i] = binary_value(op, a[i], b[i]);
}


__global__ void binary_nd(Binary op, i64 n, Dims d, Strides sa, Strides sb, Strides sy, const float* a, const float* b,
                          float* y) {
  const Strides* const st[3] = {&sa, &sb, &sy};
  for (i64 i = blockIdx.x * i64(blockDim.x) + threadIdx.x; i < n; i += i64(gridDim.x) * blockDim.x) {
    i64 off[3];
    offsets_of<3>(d, st, i, off);
    y[off[2]] = binary_value(op, a[off[0]], b[off[1]]);
  }
}

__global__ void where_nd(i64 n, Dims d, Strides sc, Strides sa, Strides sb, Strides sy, const float* c, const float* a,
                         const float* b, float* y) {
  const Strides* const st[4] = {&sc, &sa, &sb, &sy};
  for (i64 i = blockIdx.x * i64(blockDim.x) + threadIdx.x; i < n; i += i64(gridDim.x) * blockDim.x) {
    i64 off[4];
    offsets_of<4>(d, st, i, off);
    y[off[3]] = c[off[0]] != 0.0f ? a[off[1]] : b[off[2]];
  }
}

// ---- reductions ----

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

// The values a reduction reads: x[o, r, i] of a strided view, or (layer norm's dgamma)
// dy[r, i] * xhat[r, i] recomputed from the saved statistics.
struct ViewLoader {
  const float* x;
  i64 so, sn, si;
  __device__ double operator()(i64 o, i64 r, i64 i) const { return double(x[o * so + r * sn + i * si]); }
};
struct DGammaLoader {
  const float *x, *dy, *mean, *rstd;
  i64 ldx, lddy;
  __device__ double operator()(i64 /*o*/, i64 r, i64 i) const {
    return double(dy[r * lddy + i]) * ((double(x[r * ldx + i]) - double(mean[r])) * double(rstd[r]));
  }
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

// ---- layer norm ----

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
  const float mu = group_sum<kGroup>(s) / float(cols);
  float q = 0.0f;
#pragma unroll
  for (int t = 0; t < kPer; ++t) {
    const float d = t * kGroup + lane < cols ? v[t] - mu : 0.0f;
    q += d * d;
  }
  const float rs = 1.0f / sqrtf(group_sum<kGroup>(q) / float(cols) + eps);
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
  const float mu = block_sum(s) / float(cols);
  float q = 0.0f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float d = xr[c] - mu;
    q += d * d;
  }
  const float rs = 1.0f / sqrtf(block_sum(q) / float(cols) + eps);
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
// parameters; false (no call) for the three-pass kernels. The launches (cuda/ops.cu) and
// the emulator's test dispatch through it.
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

// ---- random, dropout ----

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

// ---- optimizers ----

constexpr int kSlots = 24;
constexpr i64 kChunk = 4096;  // elements per block

struct Pack {
  float* p[kSlots];
  const float* g[kSlots];
  float* m[kSlots];
  float* v[kSlots];
  i64 n[kSlots];
  int first_block[kSlots + 1];
  int count;
};

struct AdamParams {
  float lr, beta1, beta2, eps, wd, inv_bc1, inv_bc2;
  double beta1_d, beta2_d;  // the bias corrections from a live step count, in double
  bool decoupled;
};
struct SgdParams {
  float lr, momentum, dampening, wd;
  bool nesterov, first_step, has_m;
};

// The kernels' constants from a step's configuration (Adam's bias corrections in double).
inline AdamParams adam_params(const AdamConfig& c) {
  const double bc1 = 1 - std::pow(c.beta1, double(c.step)), bc2 = 1 - std::pow(c.beta2, double(c.step));
  return {float(c.lr), float(c.beta1), float(c.beta2), float(c.eps), float(c.weight_decay), float(1 / bc1),
          float(1 / bc2), c.beta1, c.beta2, c.decoupled};
}
inline SgdParams sgd_params(const SgdConfig& c) {
  return {float(c.lr), float(c.momentum), float(c.dampening), float(c.weight_decay), c.nesterov, c.first_step,
          c.momentum != 0};
}

// This block's slot and element range.
__device__ __forceinline__ bool my_chunk(const Pack& pk, int& slot, i64& lo, i64& hi) {
  const int b = int(blockIdx.x);
  slot = 0;
  while (slot + 1 < pk.count && pk.first_block[slot + 1] <= b) ++slot;
  lo = i64(b - pk.first_block[slot]) * kChunk;
  hi = min(pk.n[slot], lo + kChunk);
  return lo < hi;
}

// `live`: null, or [lr, t] on the device (kernels/optimizer.hpp), read in place of the
// host's values (a replayed graph's rate and step count); the corrections as the host's.
__global__ void adam_kernel(Pack pk, AdamParams c, const float* live) {
  int k;
  i64 lo, hi;
  if (!my_chunk(pk, k, lo, hi)) return;
  if (live) {
    const double t = double(live[1]);
    c.lr = live[0];
    c.inv_bc1 = float(1 / (1 - pow(c.beta1_d, t)));
    c.inv_bc2 = float(1 / (1 - pow(c.beta2_d, t)));
  }
  float *p = pk.p[k], *m = pk.m[k], *v = pk.v[k];
  const float* g = pk.g[k];
  for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    float pi = p[i], gi = g[i];
    if (c.decoupled) pi *= 1.0f - c.lr * c.wd;
    else gi += c.wd * pi;
    const float mi = c.beta1 * m[i] + (1.0f - c.beta1) * gi;
    const float vi = c.beta2 * v[i] + (1.0f - c.beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - c.lr * (mi * c.inv_bc1) / (sqrtf(vi * c.inv_bc2) + c.eps);
  }
}

__global__ void sgd_kernel(Pack pk, SgdParams c, const float* live) {  // live: null or [lr]
  int k;
  i64 lo, hi;
  if (!my_chunk(pk, k, lo, hi)) return;
  if (live) c.lr = live[0];
  float *p = pk.p[k], *m = pk.m[k];
  const float* g = pk.g[k];
  for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    float gi = g[i] + c.wd * p[i];
    if (c.has_m) {
      const float b = c.first_step ? gi : c.momentum * m[i] + (1.0f - c.dampening) * gi;
      m[i] = b;
      gi = c.nesterov ? gi + c.momentum * b : b;
    }
    p[i] -= c.lr * gi;
  }
}

// Packs the non-empty slots into launches of up to kSlots parameters (and 2^31 - 1
// blocks): launch(pack, blocks) once per pack.
template <class Launch>
void multi_tensor(std::span<const ParamSlot<float>> slots, Launch launch) {
  Pack pk{};
  int blocks = 0;
  auto flush = [&] {
    if (pk.count == 0) return;
    pk.first_block[pk.count] = blocks;
    if (blocks > 0) launch(pk, blocks);
    pk = Pack{};
    blocks = 0;
  };
  for (const ParamSlot<float>& s : slots) {
    if (s.n == 0) continue;
    const i64 chunks = (s.n + kChunk - 1) / kChunk;
    if (pk.count == kSlots || blocks + chunks > i64(INT32_MAX)) flush();
    pk.p[pk.count] = s.param, pk.g[pk.count] = s.grad, pk.m[pk.count] = s.m, pk.v[pk.count] = s.v;
    pk.n[pk.count] = s.n;
    pk.first_block[pk.count] = blocks;
    blocks += int(chunks);
    ++pk.count;
  }
  flush();
}

}  // namespace tg::cuda::opk
