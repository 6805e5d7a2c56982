// CUDA activations and softmax, step 1 (cuda/NOTES.md).
//   activations: a grid-stride loop over the elements, 128-bit loads and stores when
//                every row is 16-byte aligned and cols % 4 == 0, scalar otherwise;
//   softmax:     a warp per row up to 1024 columns (8 rows per block, the row in
//                registers), a 512-thread block per row with the row in shared memory up
//                to 48K columns (forward), a 256-thread block per row beyond; one pass for the row's statistics (online max and sum,
//                with the +inf count and a NaN flag for the special rows of
//                kernels/softmax.hpp), merged by shuffles (and shared memory across the
//                warps of a block), then one pass that writes.
#include <cuda_runtime.h>

#include <cstdint>
#include <limits>

#include "cuda/act.cuh"
#include "cuda/check.cuh"
#include "cuda/launch.cuh"
#include "cuda/warp.cuh"
#include "cuda/kernels.hpp"
#include "kernels/error.hpp"
#include "kernels/softmax.hpp"

namespace tg::cuda {

namespace {



template <bool kBackward>
__global__ void act_scalar(Act kind, float slope, int rows, int cols, const float* x, std::int64_t ldx,
                           const float* bias, const float* dy, std::int64_t lddy, float* y, std::int64_t ldy) {
  const std::int64_t n = std::int64_t(rows) * cols;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / cols, c = i % cols;
    const float z = x[r * ldx + c] + (bias ? bias[c] : 0.0f);
    y[r * ldy + c] = kBackward ? dy[r * lddy + c] * act_derivative1(kind, slope, z) : act_forward1(kind, slope, z);
  }
}

template <bool kBackward>
__global__ void act_vec4(Act kind, float slope, int rows, int cols, const float* x, std::int64_t ldx,
                         const float* bias, const float* dy, std::int64_t lddy, float* y, std::int64_t ldy) {
  const int c4 = cols / 4;
  const std::int64_t n = std::int64_t(rows) * c4;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / c4, c = (i % c4) * 4;
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

template <bool kBackward>
void act_launch(Activation act, index_t rows, index_t cols, const float* x, index_t ldx, const float* bias,
                const float* dy, index_t lddy, float* y, index_t ldy) {
  if (rows == 0 || cols == 0) return;
  const bool vec = cols % 4 == 0 && (rows == 1 || (ldx % 4 == 0 && ldy % 4 == 0 && (!kBackward || lddy % 4 == 0))) &&
                   detail::aligned16(x) && detail::aligned16(y) && (!bias || detail::aligned16(bias)) && (!kBackward || detail::aligned16(dy));
  const int threads = 256;
  if (vec)
    act_vec4<kBackward><<<detail::grid_for(rows * (cols / 4), threads), threads, 0, detail::stream()>>>(act.kind, act.slope, int(rows), int(cols),
                                                                           x, ldx, bias, dy, lddy, y, ldy);
  else
    act_scalar<kBackward><<<detail::grid_for(rows * cols, threads), threads, 0, detail::stream()>>>(act.kind, act.slope, int(rows), int(cols), x,
                                                                       ldx, bias, dy, lddy, y, ldy);
  TG_CUDA_LAUNCHED();
}

// ---- softmax ----

constexpr float kInf = std::numeric_limits<float>::infinity();

struct Stats {
  float m, s;  // running max of the finite entries and sum of exp(x - m)
  int pinf;    // entries equal to +inf
  int nan;     // any NaN
};

__device__ __forceinline__ void add(Stats& st, float v) {
  if (v != v) st.nan = 1;
  else if (v == kInf) ++st.pinf;
  else if (v > -kInf) {
    if (v > st.m) {
      st.s = st.s * __expf(st.m - v) + 1.0f;  // exp(-inf) = 0 when st.m is still -inf
      st.m = v;
    } else {
      st.s += __expf(v - st.m);
    }
  }
}

__device__ __forceinline__ Stats merge(Stats a, Stats b) {
  Stats r;
  r.m = fmaxf(a.m, b.m);
  r.s = (a.m > -kInf ? a.s * __expf(a.m - r.m) : 0.0f) + (b.m > -kInf ? b.s * __expf(b.m - r.m) : 0.0f);
  r.pinf = a.pinf + b.pinf;
  r.nan = a.nan | b.nan;
  return r;
}

__device__ __forceinline__ Stats warp_merge(Stats st) {
  for (int o = 16; o > 0; o /= 2) {
    Stats other{__shfl_xor_sync(0xffffffffu, st.m, o), __shfl_xor_sync(0xffffffffu, st.s, o),
                __shfl_xor_sync(0xffffffffu, st.pinf, o), __shfl_xor_sync(0xffffffffu, st.nan, o)};
    st = merge(st, other);
  }
  return st;
}

__device__ __forceinline__ Stats block_stats(Stats st) { return block_all(st, Stats{-kInf, 0.0f, 0, 0}, warp_merge); }

// A row's output from its statistics, with the special rows of kernels/softmax.hpp.
struct RowOutput {
  bool log, nan, any_pinf, masked;
  float pinf_out, m, log_s, inv_s;
  __device__ RowOutput(const Stats& st, bool lg)
      : log(lg), nan(st.nan != 0), any_pinf(st.pinf > 0), masked(st.m == -kInf),
        pinf_out(lg ? -logf(float(st.pinf)) : 1.0f / float(st.pinf)), m(st.m), log_s(logf(st.s)), inv_s(1.0f / st.s) {}
  __device__ float operator()(float v) const {
    if (nan) return __int_as_float(0x7fc00000);
    if (any_pinf) return v == kInf ? pinf_out : (log ? -kInf : 0.0f);
    if (masked) return log ? -kInf : 0.0f;
    return log ? v - m - log_s : __expf(v - m) * inv_s;
  }
};

// Rows past the shared-memory limit: a block per row, one pass for the statistics and
// one that reads the row again to write.
__global__ void softmax_fwd_block(bool log, int cols, const float* x, std::int64_t ldx, float* y, std::int64_t ldy) {
  const float* xr = x + std::int64_t(blockIdx.x) * ldx;
  float* yr = y + std::int64_t(blockIdx.x) * ldy;
  Stats st{-kInf, 0.0f, 0, 0};
  for (int j = threadIdx.x; j < cols; j += blockDim.x) add(st, xr[j]);
  const RowOutput out(block_stats(st), log);
  for (int j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = out(xr[j]);
}

// Rows too long for registers but short enough for shared memory (kSmemCols): a block
// per row copies the row into shared memory (128-bit loads when aligned), takes the
// statistics from there and writes from there: the row is read from DRAM once.
constexpr int kSmemCols = 48 * 1024;  // 192 KiB of the H100/H200's 227 KiB per block

template <bool kVec>
__global__ void softmax_fwd_smem(bool log, int cols, const float* x, std::int64_t ldx, float* y, std::int64_t ldy) {
  extern __shared__ __align__(16) float row[];
  const float* xr = x + std::int64_t(blockIdx.x) * ldx;
  float* yr = y + std::int64_t(blockIdx.x) * ldy;
  Stats st{-kInf, 0.0f, 0, 0};
  if constexpr (kVec) {
    for (int j = threadIdx.x * 4; j < cols; j += blockDim.x * 4) {
      const float4 q = *reinterpret_cast<const float4*>(xr + j);
      *reinterpret_cast<float4*>(row + j) = q;
      add(st, q.x), add(st, q.y), add(st, q.z), add(st, q.w);
    }
  } else {
    for (int j = threadIdx.x; j < cols; j += blockDim.x) add(st, row[j] = xr[j]);
  }
  const RowOutput out(block_stats(st), log);  // its barriers order the row's writes before the reads
  if constexpr (kVec) {
    for (int j = threadIdx.x * 4; j < cols; j += blockDim.x * 4) {
      const float4 q = *reinterpret_cast<const float4*>(row + j);
      *reinterpret_cast<float4*>(yr + j) = make_float4(out(q.x), out(q.y), out(q.z), out(q.w));
    }
  } else {
    for (int j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = out(row[j]);
  }
}

__global__ void softmax_bwd_block(bool log, int cols, const float* y, std::int64_t ldy, const float* dy,
                                  std::int64_t lddy, float* dx, std::int64_t lddx) {
  const float* yr = y + std::int64_t(blockIdx.x) * ldy;
  const float* gr = dy + std::int64_t(blockIdx.x) * lddy;
  float* out = dx + std::int64_t(blockIdx.x) * lddx;
  float acc = 0, finite = 0;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) {
    acc += log ? gr[j] : gr[j] * yr[j];
    finite += (log && yr[j] != -kInf) ? 1.0f : 0.0f;
  }
  acc = block_sum(acc);
  const bool masked = log && block_sum(finite) == 0.0f;
  for (int j = threadIdx.x; j < cols; j += blockDim.x)
    out[j] = log ? (masked ? 0.0f : gr[j] - __expf(yr[j]) * acc) : yr[j] * (gr[j] - acc);
}

// Rows of up to 1024 columns, a warp per row, the row held in registers (32 values per
// lane) so that it is read once: kVec = 4 reads and writes 16 bytes per lane and step
// (cols % 4 == 0 and aligned rows), 1 reads 4.
constexpr int kRowMax = 1024, kPerLane = kRowMax / 32;

template <int kVec>
__device__ __forceinline__ void load_row(const float* r, int cols, int lane, float (&v)[kPerLane]) {
#pragma unroll
  for (int t = 0; t < kPerLane / kVec; ++t) {
    const int c = (t * 32 + lane) * kVec;
    if constexpr (kVec == 4) {
      if (c < cols) {
        const float4 q = *reinterpret_cast<const float4*>(r + c);
        v[4 * t] = q.x, v[4 * t + 1] = q.y, v[4 * t + 2] = q.z, v[4 * t + 3] = q.w;
      } else {
        v[4 * t] = v[4 * t + 1] = v[4 * t + 2] = v[4 * t + 3] = -kInf;
      }
    } else {
      v[t] = c < cols ? r[c] : -kInf;
    }
  }
}

template <int kVec>
__device__ __forceinline__ void store_row(float* r, int cols, int lane, const float (&v)[kPerLane]) {
#pragma unroll
  for (int t = 0; t < kPerLane / kVec; ++t) {
    const int c = (t * 32 + lane) * kVec;
    if (c >= cols) continue;
    if constexpr (kVec == 4) {
      *reinterpret_cast<float4*>(r + c) = make_float4(v[4 * t], v[4 * t + 1], v[4 * t + 2], v[4 * t + 3]);
    } else {
      r[c] = v[t];
    }
  }
}

template <int kVec>
__global__ void softmax_fwd_regs(bool log, int rows, int cols, const float* x, std::int64_t ldx, float* y,
                                 std::int64_t ldy) {
  const int r = int(blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32), lane = int(threadIdx.x % 32);
  if (r >= rows) return;
  float v[kPerLane];
  load_row<kVec>(x + std::int64_t(r) * ldx, cols, lane, v);
  Stats st{-kInf, 0.0f, 0, 0};
#pragma unroll
  for (int t = 0; t < kPerLane; ++t) add(st, v[t]);  // padding is -inf: it adds nothing
  const RowOutput out(warp_merge(st), log);
#pragma unroll
  for (int t = 0; t < kPerLane; ++t) v[t] = out(v[t]);
  store_row<kVec>(y + std::int64_t(r) * ldy, cols, lane, v);
}

template <int kVec>
__global__ void softmax_bwd_regs(bool log, int rows, int cols, const float* y, std::int64_t ldy, const float* dy,
                                 std::int64_t lddy, float* dx, std::int64_t lddx) {
  const int r = int(blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32), lane = int(threadIdx.x % 32);
  if (r >= rows) return;
  float yv[kPerLane], gv[kPerLane];
  load_row<kVec>(y + std::int64_t(r) * ldy, cols, lane, yv);
  load_row<kVec>(dy + std::int64_t(r) * lddy, cols, lane, gv);
  float acc = 0, finite = 0;
#pragma unroll
  for (int t = 0; t < kPerLane; ++t) {
    // Which column register t holds (load_row's layout); past cols it is padding.
    const bool real = ((t / kVec) * 32 + lane) * kVec + t % kVec < cols;
    const float g = real ? gv[t] : 0.0f;
    acc += log ? g : (real ? g * yv[t] : 0.0f);
    finite += (log && real && yv[t] != -kInf) ? 1.0f : 0.0f;
  }
  acc = warp_sum(acc);
  const bool masked = log && warp_sum(finite) == 0.0f;
#pragma unroll
  for (int t = 0; t < kPerLane; ++t)
    gv[t] = log ? (masked ? 0.0f : gv[t] - __expf(yv[t]) * acc) : yv[t] * (gv[t] - acc);
  store_row<kVec>(dx + std::int64_t(r) * lddx, cols, lane, gv);
}

}  // namespace

void act_forward(Activation act, index_t rows, index_t cols, const float* x, index_t ldx, const float* bias, float* y,
                 index_t ldy) {
  check_act_forward("cuda::act_forward", rows, cols, x, ldx, bias, y, ldy, sizeof(float));
  act_launch<false>(act, rows, cols, x, ldx, bias, nullptr, 0, y, ldy);
}

void act_backward(Activation act, index_t rows, index_t cols, const float* x, index_t ldx, const float* bias,
                  const float* dy, index_t lddy, float* dx, index_t lddx) {
  check_act_backward("cuda::act_backward", rows, cols, x, ldx, bias, dy, lddy, dx, lddx, sizeof(float));
  act_launch<true>(act, rows, cols, x, ldx, bias, dy, lddy, dx, lddx);
}

void softmax_forward(bool log, index_t rows, index_t cols, const float* x, index_t ldx, float* y, index_t ldy) {
  check_softmax_forward(log ? "cuda::log_softmax_forward" : "cuda::softmax_forward", rows, cols, x, ldx, y, ldy,
                        sizeof(float));
  if (rows == 0 || cols == 0) return;
  const bool vec = cols % 4 == 0 && (rows == 1 || (ldx % 4 == 0 && ldy % 4 == 0)) && detail::aligned16(x) && detail::aligned16(y);
  if (cols <= kRowMax) {
    if (vec) softmax_fwd_regs<4><<<unsigned((rows + 7) / 8), 256, 0, detail::stream()>>>(log, int(rows), int(cols), x, ldx, y, ldy);
    else softmax_fwd_regs<1><<<unsigned((rows + 7) / 8), 256, 0, detail::stream()>>>(log, int(rows), int(cols), x, ldx, y, ldy);
  } else if (cols <= kSmemCols) {
    const std::size_t bytes = std::size_t(cols) * sizeof(float);
    // The opt-in above 48 KiB (once per kernel and device), then a block per row.
    void (*kernel)(bool, int, const float*, std::int64_t, float*, std::int64_t) =
        vec ? &softmax_fwd_smem<true> : &softmax_fwd_smem<false>;
    detail::allow_shared(reinterpret_cast<const void*>(kernel), bytes);
    kernel<<<unsigned(rows), 512, bytes, detail::stream()>>>(log, int(cols), x, ldx, y, ldy);
  } else {
    softmax_fwd_block<<<unsigned(rows), 256, 0, detail::stream()>>>(log, int(cols), x, ldx, y, ldy);
  }
  TG_CUDA_LAUNCHED();
}

void softmax_backward(bool log, index_t rows, index_t cols, const float* y, index_t ldy, const float* dy,
                      index_t lddy, float* dx, index_t lddx) {
  check_softmax_backward(log ? "cuda::log_softmax_backward" : "cuda::softmax_backward", rows, cols, y, ldy, dy, lddy,
                         dx, lddx, sizeof(float));
  if (rows == 0 || cols == 0) return;
  const bool vec = cols % 4 == 0 && (rows == 1 || (ldy % 4 == 0 && lddy % 4 == 0 && lddx % 4 == 0)) && detail::aligned16(y) &&
                   detail::aligned16(dy) && detail::aligned16(dx);
  if (cols <= kRowMax) {
    if (vec) softmax_bwd_regs<4><<<unsigned((rows + 7) / 8), 256, 0, detail::stream()>>>(log, int(rows), int(cols), y, ldy, dy, lddy, dx, lddx);
    else softmax_bwd_regs<1><<<unsigned((rows + 7) / 8), 256, 0, detail::stream()>>>(log, int(rows), int(cols), y, ldy, dy, lddy, dx, lddx);
  } else {
    softmax_bwd_block<<<unsigned(rows), 256, 0, detail::stream()>>>(log, int(cols), y, ldy, dy, lddy, dx, lddx);
  }
  TG_CUDA_LAUNCHED();
}

}  // namespace tg::cuda
