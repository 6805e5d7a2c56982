// CUDA softmax and log_softmax kernels, forward and backward: a warp per row up to 1024
// columns (8 rows per block, the row in registers), a thread-block cluster per row
// beyond (the row in the cluster's shared memory), a 256-thread block per row where
// neither fits; one pass for the row's statistics (online max and sum, with the +inf
// count and a NaN flag for the special rows of kernels/softmax.hpp), merged by shuffles
// (and shared memory across the warps of a block), then one pass that writes. Their
// launches and checked entries are in cuda/softmax.cu.
//
// The kernels live here, apart from their launches, so that the host SIMT emulator
// (tests/simt) can run the same source on the CPU (where a cluster is one block:
// ClusterPlace's cluster calls exist on sm_90 only).
#pragma once

#ifndef TG_SIMT_HOST
#include <cooperative_groups.h>
#include <cuda_runtime.h>
#endif

#include <cstddef>
#include <cstdint>
#include <limits>

#include "tilegrad/cuda/mma.cuh"
#include "tilegrad/cuda/warp.cuh"

namespace tg::cuda::softmax_kernels {

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

// Rows past 1024 columns: a thread-block cluster per row (Hopper's distributed shared
// memory). Each of the cluster's blocks copies its piece of the row into its shared
// memory, kUnroll 16-byte loads in flight per thread, takes the piece's statistics,
// publishes them in shared memory, and after a cluster barrier merges every block's
// statistics in rank order (so all blocks agree, bit for bit), then writes its piece
// from shared memory: the row is read from DRAM once, and the pieces are small enough
// for several blocks per SM to overlap their read and write phases (one 512-thread
// block per 32768-column row, the previous design, kept too few loads in flight: 45% of
// the copy). Without clusters (before sm_90, or a build for an older architecture) the
// cluster is one block and the row must fit in its shared memory.
constexpr int kUnroll = 8;

// Copies src[0, len) to dst (16-byte pieces when kVec; len % 4 == 0 then) and adds
// every value to st. Each thread touches only its own elements: the same mapping as
// for_own below, so no barrier is needed between the copy and the later reads.
template <bool kVec, class F>
__device__ __forceinline__ void copy_in(const float* src, int len, float* dst, F&& f) {
  constexpr int w = kVec ? 4 : 1;
  const int step = int(blockDim.x) * w;
  for (int base = int(threadIdx.x) * w; base < len; base += step * kUnroll) {
    float4 q[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int j = base + u * step;
      if (j < len) {
        if constexpr (kVec) q[u] = *reinterpret_cast<const float4*>(src + j);
        else q[u].x = src[j];
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int j = base + u * step;
      if (j < len) {
        if constexpr (kVec) {
          *reinterpret_cast<float4*>(dst + j) = q[u];
          f(q[u].x), f(q[u].y), f(q[u].z), f(q[u].w);
        } else {
          dst[j] = q[u].x;
          f(q[u].x);
        }
      }
    }
  }
}

// Calls g(j) for the elements copy_in gave this thread (j in whole 4-groups when kVec).
template <bool kVec, class G>
__device__ __forceinline__ void for_own(int len, G&& g) {
  constexpr int w = kVec ? 4 : 1;
  for (int j = int(threadIdx.x) * w; j < len; j += int(blockDim.x) * w) g(j);
}

// Where the cluster kernels' dynamic shared memory starts: this block's row statistics
// (16 bytes), which the other blocks read, then the pieces of the row.
constexpr int kRowHeader = 16;

// How a row of `cols` columns is cut over a cluster of blocks: `arrays` pieces of `chunk`
// floats in each block's shared memory (after the kRowHeader bytes). The smallest cluster
// (1, 2, 4 ... max_cluster blocks) whose pieces take at most 32 KiB (several blocks per
// SM), else max_cluster blocks with larger pieces, else none (`size` 0: the row does not
// fit in `optin` bytes, a block's opt-in limit, less 1 KiB for the static shared memory).
struct RowPlan {
  int size = 0, chunk = 0, threads = 256;
  std::size_t bytes = 0;
};
inline RowPlan plan_row(std::int64_t cols, int arrays, int max_cluster, std::size_t optin) {
  const std::size_t limit = optin - 1024;
  RowPlan p;
  for (int size = 1; size <= max_cluster; size *= 2) {
    const std::int64_t chunk = ((cols + size - 1) / size + 3) / 4 * 4;
    const std::size_t bytes = std::size_t(chunk) * sizeof(float) * std::size_t(arrays) + kRowHeader;
    if (bytes > limit) continue;
    p = {size, int(chunk), chunk > 8192 ? 512 : 256, bytes};
    if (bytes <= 32 * 1024 + kRowHeader) break;
  }
  return p;
}

// This block's rank in its cluster and the cluster's size (1 and 1 without clusters).
struct ClusterPlace {
  unsigned rank = 0, size = 1;
  __device__ ClusterPlace() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    const cooperative_groups::cluster_group c = cooperative_groups::this_cluster();
    rank = c.block_rank();
    size = c.num_blocks();
#elif defined(TG_SIMT_HOST)
    rank = simt::cluster_rank();
    size = simt::cluster_size();
#endif
  }
  // A barrier over the cluster's threads; for a cluster of one block, over the block's
  // (the statistics still pass through `mine` in shared memory: without it, warps read
  // `mine` before thread 0 has written it, or after the next row has overwritten it; the
  // SIMT emulator found that race).
  __device__ void sync() const {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (size > 1) {
      cooperative_groups::this_cluster().sync();
      return;
    }
#elif defined(TG_SIMT_HOST)
    if (size > 1) {
      simt::cluster_sync();
      return;
    }
#endif
    __syncthreads();
  }
  // `value` (in this block's shared memory) as block `q` of the cluster holds it.
  template <class T>
  __device__ T read(T* value, unsigned q) const {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (size > 1) return *cooperative_groups::this_cluster().map_shared_rank(value, q);
#elif defined(TG_SIMT_HOST)
    if (size > 1) return *static_cast<T*>(simt::map_shared_rank(value, q));
#endif
    (void)q;
    return *value;
  }
};

template <bool kVec>
__global__ void softmax_fwd_cluster(bool log, int rows, int cols, int chunk, const float* x, std::int64_t ldx,
                                    float* y, std::int64_t ldy) {
  TG_DYNAMIC_SHARED(float, smem);
  Stats& mine = *reinterpret_cast<Stats*>(smem);  // read by the cluster's other blocks
  float* const piece = smem + kRowHeader / 4;
  const ClusterPlace cl;
  const int begin = int(cl.rank) * chunk, len = max(0, min(cols - begin, chunk));
  for (int r = int(blockIdx.x / cl.size); r < rows; r += int(gridDim.x / cl.size)) {
    const float* xr = x + std::int64_t(r) * ldx + begin;
    float* yr = y + std::int64_t(r) * ldy + begin;
    Stats st{-kInf, 0.0f, 0, 0};
    copy_in<kVec>(xr, len, piece, [&](float v) { add(st, v); });
    st = block_stats(st);
    if (threadIdx.x == 0) mine = st;
    cl.sync();  // every block's statistics are published
    Stats all{-kInf, 0.0f, 0, 0};
    for (unsigned q = 0; q < cl.size; ++q) all = merge(all, cl.read(&mine, q));
    cl.sync();  // every block has read them: `mine` may change (next row) or go (exit)
    const RowOutput out(all, log);
    for_own<kVec>(len, [&](int j) {
      if constexpr (kVec) {
        const float4 q = *reinterpret_cast<const float4*>(piece + j);
        *reinterpret_cast<float4*>(yr + j) = make_float4(out(q.x), out(q.y), out(q.z), out(q.w));
      } else {
        yr[j] = out(piece[j]);
      }
    });
  }
}

// The backward's pieces: y and dy both in shared memory, the row sums merged as above.
template <bool kVec>
__global__ void softmax_bwd_cluster(bool log, int rows, int cols, int chunk, const float* y, std::int64_t ldy,
                                    const float* dy, std::int64_t lddy, float* dx, std::int64_t lddx) {
  TG_DYNAMIC_SHARED(float, smem);
  float2& mine = *reinterpret_cast<float2*>(smem);  // (sum, finite entries), read by the cluster
  const ClusterPlace cl;
  const int begin = int(cl.rank) * chunk, len = max(0, min(cols - begin, chunk));
  float* yp = smem + kRowHeader / 4;  // y's piece, then dy's
  float* gp = yp + chunk;
  for (int r = int(blockIdx.x / cl.size); r < rows; r += int(gridDim.x / cl.size)) {
    const float* yr = y + std::int64_t(r) * ldy + begin;
    const float* gr = dy + std::int64_t(r) * lddy + begin;
    float* out = dx + std::int64_t(r) * lddx + begin;
    float finite = 0;
    copy_in<kVec>(yr, len, yp, [&](float v) { finite += (log && v != -kInf) ? 1.0f : 0.0f; });
    float acc = 0;
    if (log) {
      copy_in<kVec>(gr, len, gp, [&](float g) { acc += g; });
    } else {
      // dot(dy, y): the thread's own y values sit in yp at the same offsets.
      copy_in<kVec>(gr, len, gp, [](float) {});
      for_own<kVec>(len, [&](int j) {
        for (int e = 0; e < (kVec ? 4 : 1); ++e) acc += gp[j + e] * yp[j + e];
      });
    }
    acc = block_sum(acc);
    finite = block_sum(finite);
    if (threadIdx.x == 0) mine = make_float2(acc, finite);
    cl.sync();
    float2 all = make_float2(0.0f, 0.0f);
    for (unsigned q = 0; q < cl.size; ++q) {
      const float2 p = cl.read(&mine, q);
      all.x += p.x, all.y += p.y;
    }
    cl.sync();
    const bool masked = log && all.y == 0.0f;
    for_own<kVec>(len, [&](int j) {
      for (int e = 0; e < (kVec ? 4 : 1); ++e) {
        const float yv = yp[j + e], g = gp[j + e];
        out[j + e] = log ? (masked ? 0.0f : g - __expf(yv) * all.x) : yv * (g - all.x);
      }
    });
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

}  // namespace tg::cuda::softmax_kernels
