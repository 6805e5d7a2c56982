// Fused attention on BF16 tensor cores (FlashAttention-2 with mma.sync m16n8k16; the CUDA
// path II issue): the forward, then the backward further down. Step 1, written without a
// GPU (cuda/NOTES.md). The forward:
//   - a block of 4 warps owns 64 query rows of one (batch, head), 16 per warp; its Q tile
//     goes to shared memory once and into registers as mma A fragments;
//   - K and V tiles of 64 keys: K row-major in shared memory (a B fragment is two
//     consecutive head dims of one key: one 32-bit read), V stored transposed (head dim
//     major, so a B fragment of P V is two consecutive keys of one head dim); rows padded
//     by 8 values against bank conflicts; causal tiles past the diagonal are skipped;
//   - S = Q K^T in FP32 accumulators, scale, bottom-right causal mask and key bounds, the
//     online softmax on the accumulators (row max and sum across the 4 lanes of a quad),
//     P rounded to bf16 and reused in registers as the A fragments of O += P V (the S
//     accumulator layout of two adjacent n8 tiles is the A layout of one k16 step);
//   - O = acc / l written as bf16, lse = m + log l as FP32.
// The contract of kernels/attention.hpp (GQA, bottom-right causal, fully masked rows give
// O = 0 and lse = -inf) with these limits: no additive mask, head dims 64 and 128, unit
// stride along the head dimension, 16-byte aligned rows.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "cuda/check.cuh"
#include "cuda/launch.cuh"
#include "cuda/ops.hpp"
#include "kernels/attention.hpp"
#include "kernels/buffer.hpp"
#include "kernels/error.hpp"
#include "kernels/half.hpp"

namespace tg::cuda {

namespace {

using i64 = std::int64_t;
constexpr int kRows = 64, kKeys = 64, kThreads = 128;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The views as 16-bit words (the head dimension's stride is 1: checked on the host).
using In = View4<const std::uint16_t>;
using Out = View4<std::uint16_t>;

// Row 0 of (batch b, head h) of a view.
template <class T>
__device__ __forceinline__ T* head(const View4<T>& x, int b, int h) {
  return x.data + i64(b) * x.sb + i64(h) * x.sh;
}

struct FwdBf16 {
  int B, H, Hkv, Sq, Sk;
  float scale;
  bool causal;
  In q, k, v;
  Out o;
  float* lse;
};

template <int kD>
constexpr int smem_bytes() {
  return 2 * (2 * kRows * (kD + 8) + kD * (kKeys + 8));  // Q, K tiles; V transposed
}

__device__ __forceinline__ void mma_bf16_16816(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
  const __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);  // .x (low half) = lo
  return *reinterpret_cast<const unsigned*>(&p);
}

__device__ __forceinline__ unsigned u32_at(const std::uint16_t* p) { return *reinterpret_cast<const unsigned*>(p); }

// Rows r0.. (kR of them, `rows` in the matrix) of a (seq, kD) bf16 matrix with row stride
// ld into shared memory [kR][kD + 8], 16 bytes per thread per step, zeros past the matrix.
template <int kD, int kR = 64>
__device__ __forceinline__ void load_rows(std::uint16_t* dst, const std::uint16_t* src, i64 ld, int r0, int rows) {
  constexpr int kChunks = kD / 8;  // 16-byte pieces per row
  for (int c = int(threadIdx.x); c < kR * kChunks; c += kThreads) {
    const int r = c / kChunks, d = (c % kChunks) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r0 + r < rows) v = *reinterpret_cast<const uint4*>(src + i64(r0 + r) * ld + d);
    *reinterpret_cast<uint4*>(dst + r * (kD + 8) + d) = v;
  }
}

// The same rows stored transposed: dst[d][row], row stride kR + 8.
template <int kD, int kR = 64>
__device__ __forceinline__ void load_rows_transposed(std::uint16_t* dst, const std::uint16_t* src, i64 ld, int r0,
                                                     int rows) {
  constexpr int kChunks = kD / 8;
  for (int c = int(threadIdx.x); c < kR * kChunks; c += kThreads) {
    const int r = c / kChunks, d = (c % kChunks) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r0 + r < rows) v = *reinterpret_cast<const uint4*>(src + i64(r0 + r) * ld + d);
    const std::uint16_t* e = reinterpret_cast<const std::uint16_t*>(&v);
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[(d + i) * (kR + 8) + r] = e[i];
  }
}

// mma fragments from a row-major shared tile with row stride ld (lane: g = lane / 4,
// t = lane % 4). A (16 x 16 at row0, col0): rows g, g + 8 and columns 2t.., 2t + 8..; B
// from an n-major tile (row n, column k: B[k][n]) at n0, k0: row n0 + g, columns 2t..
// and 2t + 8...
__device__ __forceinline__ void frag_a(unsigned (&a)[4], const std::uint16_t* tile, int ld, int row0, int col0, int g,
                                       int t) {
  const std::uint16_t* p = tile + (row0 + g) * ld + col0 + 2 * t;
  a[0] = u32_at(p), a[1] = u32_at(p + 8 * ld), a[2] = u32_at(p + 8), a[3] = u32_at(p + 8 * ld + 8);
}
__device__ __forceinline__ void mma_b(float (&c)[4], const unsigned (&a)[4], const std::uint16_t* tile, int ld, int n0,
                                      int k0, int g, int t) {
  const std::uint16_t* p = tile + (n0 + g) * ld + k0 + 2 * t;
  mma_bf16_16816(c, a, u32_at(p), u32_at(p + 8));
}
// The A fragment of k16 step kk from FP32 accumulators c[n][0..3] of n8 tiles 2 kk and
// 2 kk + 1 (rows g, g + 8): the accumulator layout of two tiles is the A layout of one step.
template <int kN>
__device__ __forceinline__ void acc_to_a(unsigned (&a)[4], const float (&c)[kN][4], int kk) {
  a[0] = pack_bf16(c[2 * kk][0], c[2 * kk][1]);
  a[1] = pack_bf16(c[2 * kk][2], c[2 * kk][3]);
  a[2] = pack_bf16(c[2 * kk + 1][0], c[2 * kk + 1][1]);
  a[3] = pack_bf16(c[2 * kk + 1][2], c[2 * kk + 1][3]);
}

template <int kD>
__global__ void __launch_bounds__(kThreads) attention_fwd_bf16(FwdBf16 f) {
  extern __shared__ __align__(16) std::uint16_t smem[];
  std::uint16_t* qs = smem;                      // [64][kD + 8]
  std::uint16_t* ks = qs + kRows * (kD + 8);     // [64][kD + 8]
  std::uint16_t* vt = ks + kKeys * (kD + 8);     // [kD][64 + 8]
  const int bh = int(blockIdx.y), b = bh / f.H, h = bh % f.H, hk = h / (f.H / f.Hkv);
  const int i0 = int(blockIdx.x) * kRows;
  const int w = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  const std::uint16_t *q = head(f.q, b, h), *k = head(f.k, b, hk), *v = head(f.v, b, hk);

  load_rows<kD>(qs, q, f.q.ss, i0, f.Sq);
  __syncthreads();
  unsigned qa[kD / 16][4];  // this warp's 16 rows as A fragments, one per k16 step
#pragma unroll
  for (int kk = 0; kk < kD / 16; ++kk) {
    const std::uint16_t* r0 = qs + (16 * w + g) * (kD + 8) + 16 * kk + 2 * t;
    qa[kk][0] = u32_at(r0);
    qa[kk][1] = u32_at(r0 + 8 * (kD + 8));
    qa[kk][2] = u32_at(r0 + 8);
    qa[kk][3] = u32_at(r0 + 8 * (kD + 8) + 8);
  }

  // Rows g and g + 8 of this warp: their running max and (per-thread partial) sum.
  const int row[2] = {i0 + 16 * w + g, i0 + 16 * w + g + 8};
  float m[2] = {kNegInf, kNegInf}, l[2] = {0.0f, 0.0f};
  float acc[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;

  // Keys this block can see: causal hides j > i + (Sk - Sq) for its last row.
  int kv_end = f.Sk;
  if (f.causal) kv_end = max(0, min(f.Sk, min(i0 + kRows, f.Sq) + (f.Sk - f.Sq)));
  for (int j0 = 0; j0 < kv_end; j0 += kKeys) {
    __syncthreads();  // the previous tile is no longer read
    load_rows<kD>(ks, k, f.k.ss, j0, f.Sk);
    load_rows_transposed<kD>(vt, v, f.v.ss, j0, f.Sk);
    __syncthreads();
    float s[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
      const std::uint16_t* kr = ks + (8 * n + g) * (kD + 8) + 2 * t;
#pragma unroll
      for (int kk = 0; kk < kD / 16; ++kk) mma_bf16_16816(s[n], qa[kk], u32_at(kr + 16 * kk), u32_at(kr + 16 * kk + 8));
    }
    // Scale and mask; the rows' new maxima (across the quad that shares a row).
    float mx[2] = {kNegInf, kNegInf};
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e / 2, j = j0 + 8 * n + 2 * t + (e & 1);
        const bool hidden = j >= f.Sk || (f.causal && j > row[r] + (f.Sk - f.Sq));
        s[n][e] = hidden ? kNegInf : s[n][e] * f.scale;
        mx[r] = fmaxf(mx[r], s[n][e]);
      }
    float use[2], keep[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float m_new = fmaxf(m[r], mx[r]);
      use[r] = m_new == kNegInf ? 0.0f : m_new;  // nothing seen yet: exp(-inf - 0) = 0, never NaN
      keep[r] = __expf(m[r] - use[r]);           // the old terms' rescale (0 when m was -inf)
      m[r] = m_new;
      l[r] *= keep[r];
    }
#pragma unroll
    for (int n = 0; n < kD / 8; ++n) acc[n][0] *= keep[0], acc[n][1] *= keep[0], acc[n][2] *= keep[1], acc[n][3] *= keep[1];
    // P = exp(s - m), summed per row (thread-partial), rounded to bf16 as A fragments.
    unsigned pa[kKeys / 16][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) {
      float p[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        p[e] = __expf(s[n][e] - use[e / 2]);
        l[e / 2] += p[e];
      }
      // n = 2 kk: columns 16 kk + 2t.. (registers 0, 1 of the A fragment); n = 2 kk + 1:
      // columns 16 kk + 8 + 2t.. (registers 2, 3); rows g (p0, p1) and g + 8 (p2, p3).
      pa[n / 2][(n % 2) * 2 + 0] = pack_bf16(p[0], p[1]);
      pa[n / 2][(n % 2) * 2 + 1] = pack_bf16(p[2], p[3]);
    }
    // O += P V: B[k = key][n = head dim] from V^T, two consecutive keys per register.
#pragma unroll
    for (int n = 0; n < kD / 8; ++n) {
      const std::uint16_t* vr = vt + (8 * n + g) * (kKeys + 8) + 2 * t;
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) mma_bf16_16816(acc[n], pa[kk], u32_at(vr + 16 * kk), u32_at(vr + 16 * kk + 8));
    }
  }
  // The rows' sums across their quad; O = acc / l (0 for a fully masked row), lse.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
  const float inv[2] = {l[0] > 0 ? 1.0f / l[0] : 0.0f, l[1] > 0 ? 1.0f / l[1] : 0.0f};
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (row[r] >= f.Sq) continue;
    std::uint16_t* out = head(f.o, b, h) + i64(row[r]) * f.o.ss + 2 * t;
#pragma unroll
    for (int n = 0; n < kD / 8; ++n)
      *reinterpret_cast<unsigned*>(out + 8 * n) = pack_bf16(acc[n][2 * r] * inv[r], acc[n][2 * r + 1] * inv[r]);
    if (f.lse && t == 0) f.lse[(i64(b) * f.H + h) * f.Sq + row[r]] = l[r] > 0 ? m[r] + logf(l[r]) : kNegInf;
  }
}

template <int kD>
void launch(const FwdBf16& f) {
  constexpr int bytes = smem_bytes<kD>();
  detail::allow_shared(reinterpret_cast<const void*>(&attention_fwd_bf16<kD>), bytes);
  const dim3 grid(unsigned((f.Sq + kRows - 1) / kRows), unsigned(f.B * f.H));
  attention_fwd_bf16<kD><<<grid, kThreads, bytes, detail::stream()>>>(f);
  TG_CUDA_LAUNCHED();
}

// ---- backward (FlashAttention-2's Algorithm 2 on bf16 tensor cores) ----
// D_i = dO_i . O_i first; then a block per (batch, kv head, 64 keys) accumulates dK and
// dV over the query heads of its group and the query tiles (32 rows at a time), and a
// block per (batch, head, 64 queries) accumulates dQ over the key tiles: P and dS are
// recomputed in each, no atomics, the same bits every run. Products in FP32 accumulators;
// P and dS rounded to bf16 as the A fragments of the next product (as the forward's P).

struct BwdBf16 {
  int B, H, Hkv, Sq, Sk;
  float scale;
  bool causal;
  In q, k, v, o, d_o;
  Out dq, dk, dv;
  const float* lse;  // (B, H, Sq), the forward's
  const float* dd;   // (B, H, Sq): D_i
};

constexpr int kQ = 32;  // query rows per step of the dK / dV kernel

template <int kD>
constexpr int smem_bwd_kv() {
  return 2 * (2 * kKeys * (kD + 8) + 2 * kQ * (kD + 8) + 2 * kD * (kQ + 8)) + 2 * kQ * 4;
}
template <int kD>
constexpr int smem_bwd_q() {
  return 2 * (4 * kRows * (kD + 8) + kD * (kKeys + 8));
}

// D_i = sum_d dO_i,d O_i,d: a warp per row (bf16 in, FP32 out).
__global__ void attention_bwd_dot_bf16(BwdBf16 f, int D, float* dd) {
  const i64 row = i64(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= i64(f.B) * f.H * f.Sq) return;
  const int i = int(row % f.Sq), h = int(row / f.Sq % f.H), b = int(row / f.Sq / f.H);
  const std::uint16_t* o = head(f.o, b, h) + i64(i) * f.o.ss;
  const std::uint16_t* g = head(f.d_o, b, h) + i64(i) * f.d_o.ss;
  float acc = 0;
  for (int d = int(threadIdx.x % 32); d < D; d += 32) acc += float_from_bf16_bits(o[d]) * float_from_bf16_bits(g[d]);
  for (int m = 16; m > 0; m /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, m);
  if (threadIdx.x % 32 == 0) dd[row] = acc;
}

// Writes a warp's 16 rows x kD FP32 accumulators (times `mul`) as bf16 rows r0 + g, + 8.
template <int kD>
__device__ __forceinline__ void store_rows(std::uint16_t* base, i64 ld, int r0, int rows, const float (&c)[kD / 8][4],
                                           float mul, int g, int t) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = r0 + g + 8 * r;
    if (row >= rows) continue;
    std::uint16_t* out = base + i64(row) * ld + 2 * t;
#pragma unroll
    for (int n = 0; n < kD / 8; ++n)
      *reinterpret_cast<unsigned*>(out + 8 * n) = pack_bf16(c[n][2 * r] * mul, c[n][2 * r + 1] * mul);
  }
}

// The two products both backward kernels start a tile with: c1 = A1 B1^T and c2 = A2 B2^T
// over kD, for this warp's 16 rows of the row-major tiles a1, a2 (row 16 w..) and kN
// columns from the n-major tiles b1, b2; all four with row stride ld.
template <int kD, int kN>
__device__ __forceinline__ void two_products(float (&c1)[kN / 8][4], float (&c2)[kN / 8][4], const std::uint16_t* a1,
                                             const std::uint16_t* b1, const std::uint16_t* a2, const std::uint16_t* b2,
                                             int ld, int w, int g, int t) {
#pragma unroll
  for (int n = 0; n < kN / 8; ++n) {
    c1[n][0] = c1[n][1] = c1[n][2] = c1[n][3] = 0.0f;
    c2[n][0] = c2[n][1] = c2[n][2] = c2[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      unsigned a[4];
      frag_a(a, a1, ld, 16 * w, 16 * kk, g, t);
      mma_b(c1[n], a, b1, ld, 8 * n, 16 * kk, g, t);
      frag_a(a, a2, ld, 16 * w, 16 * kk, g, t);
      mma_b(c2[n], a, b2, ld, 8 * n, 16 * kk, g, t);
    }
  }
}

template <int kD>
__global__ void __launch_bounds__(kThreads) attention_bwd_kv_bf16(BwdBf16 f) {
  extern __shared__ __align__(16) std::uint16_t smem[];
  constexpr int ld = kD + 8, ldt = kQ + 8;
  std::uint16_t* ks = smem;                 // [64][ld]  keys (A of S^T = K Q^T)
  std::uint16_t* vs = ks + kKeys * ld;      // [64][ld]  values (A of dP^T = V dO^T)
  std::uint16_t* qs = vs + kKeys * ld;      // [32][ld]  queries (B of S^T)
  std::uint16_t* gs = qs + kQ * ld;         // [32][ld]  dO (B of dP^T)
  std::uint16_t* qt = gs + kQ * ld;         // [kD][ldt] queries transposed (B of dK = dS^T Q)
  std::uint16_t* gt = qt + kD * ldt;        // [kD][ldt] dO transposed (B of dV = P^T dO)
  float* lse_s = reinterpret_cast<float*>(gt + kD * ldt);  // [32]
  float* dd_s = lse_s + kQ;                                // [32]
  const int b = int(blockIdx.y) / f.Hkv, hk = int(blockIdx.y) % f.Hkv, j0 = int(blockIdx.x) * kKeys;
  const int w = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  load_rows<kD>(ks, head(f.k, b, hk), f.k.ss, j0, f.Sk);
  load_rows<kD>(vs, head(f.v, b, hk), f.v.ss, j0, f.Sk);
  float dk[kD / 8][4], dv[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[n][e] = dv[n][e] = 0.0f;
  const int group = f.H / f.Hkv;
  // Causal: query i sees key j iff j <= i + (Sk - Sq); the block's first key is j0.
  const int first_q = f.causal ? max(0, j0 - (f.Sk - f.Sq)) / kQ * kQ : 0;
  for (int h = hk * group; h < (hk + 1) * group; ++h) {
    const std::uint16_t *q = head(f.q, b, h), *go = head(f.d_o, b, h);
    const i64 row0 = (i64(b) * f.H + h) * f.Sq;
    for (int i0 = first_q; i0 < f.Sq; i0 += kQ) {
      __syncthreads();  // the previous query tile is no longer read
      load_rows<kD, kQ>(qs, q, f.q.ss, i0, f.Sq);
      load_rows<kD, kQ>(gs, go, f.d_o.ss, i0, f.Sq);
      load_rows_transposed<kD, kQ>(qt, q, f.q.ss, i0, f.Sq);
      load_rows_transposed<kD, kQ>(gt, go, f.d_o.ss, i0, f.Sq);
      if (threadIdx.x < kQ) {
        const int i = i0 + int(threadIdx.x);
        lse_s[threadIdx.x] = i < f.Sq ? f.lse[row0 + i] : kNegInf;
        dd_s[threadIdx.x] = i < f.Sq ? f.dd[row0 + i] : 0.0f;
      }
      __syncthreads();
      // S^T = K Q^T and dP^T = V dO^T (this warp's 16 keys x 32 queries).
      float p[kQ / 8][4], dp[kQ / 8][4];
      two_products<kD, kQ>(p, dp, ks, qs, vs, gs, ld, w, g, t);
      // P^T = exp(scale S^T - lse), zero where hidden, past the matrix or for a fully
      // masked row (lse = -inf); dS^T = P^T (dP^T - D).
#pragma unroll
      for (int n = 0; n < kQ / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int j = j0 + 16 * w + g + (e >= 2 ? 8 : 0), qi = 8 * n + 2 * t + (e & 1), i = i0 + qi;
          const float l = lse_s[qi];
          const bool hidden = j >= f.Sk || i >= f.Sq || l == kNegInf || (f.causal && j > i + (f.Sk - f.Sq));
          p[n][e] = hidden ? 0.0f : __expf(p[n][e] * f.scale - l);
          dp[n][e] = p[n][e] * (dp[n][e] - dd_s[qi]);
        }
      // dV += P^T dO and dK += dS^T Q (scaled at the end): k runs over the 32 queries.
#pragma unroll
      for (int kk = 0; kk < kQ / 16; ++kk) {
        unsigned pa[4], da[4];
        acc_to_a(pa, p, kk);
        acc_to_a(da, dp, kk);
#pragma unroll
        for (int n = 0; n < kD / 8; ++n) {
          mma_b(dv[n], pa, gt, ldt, 8 * n, 16 * kk, g, t);
          mma_b(dk[n], da, qt, ldt, 8 * n, 16 * kk, g, t);
        }
      }
    }
  }
  store_rows<kD>(head(f.dk, b, hk), f.dk.ss, j0 + 16 * w, f.Sk, dk, f.scale, g, t);
  store_rows<kD>(head(f.dv, b, hk), f.dv.ss, j0 + 16 * w, f.Sk, dv, 1.0f, g, t);
}

template <int kD>
__global__ void __launch_bounds__(kThreads) attention_bwd_q_bf16(BwdBf16 f) {
  extern __shared__ __align__(16) std::uint16_t smem[];
  constexpr int ld = kD + 8, ldt = kKeys + 8;
  std::uint16_t* qs = smem;              // [64][ld] queries (A of S = Q K^T)
  std::uint16_t* gs = qs + kRows * ld;   // [64][ld] dO (A of dP = dO V^T)
  std::uint16_t* ks = gs + kRows * ld;   // [64][ld] keys (B of S)
  std::uint16_t* vs = ks + kKeys * ld;   // [64][ld] values (B of dP)
  std::uint16_t* kt = vs + kKeys * ld;   // [kD][ldt] keys transposed (B of dQ = dS K)
  const int bh = int(blockIdx.y), b = bh / f.H, h = bh % f.H, hk = h / (f.H / f.Hkv), i0 = int(blockIdx.x) * kRows;
  const int w = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  load_rows<kD>(qs, head(f.q, b, h), f.q.ss, i0, f.Sq);
  load_rows<kD>(gs, head(f.d_o, b, h), f.d_o.ss, i0, f.Sq);
  const int row[2] = {i0 + 16 * w + g, i0 + 16 * w + g + 8};
  float lse[2], dd[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const i64 at = i64(bh) * f.Sq + row[r];
    lse[r] = row[r] < f.Sq ? f.lse[at] : kNegInf;
    dd[r] = row[r] < f.Sq ? f.dd[at] : 0.0f;
  }
  float dq[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.0f;
  int kv_end = f.Sk;
  if (f.causal) kv_end = max(0, min(f.Sk, min(i0 + kRows, f.Sq) + (f.Sk - f.Sq)));
  const std::uint16_t *k = head(f.k, b, hk), *v = head(f.v, b, hk);
  for (int j0 = 0; j0 < kv_end; j0 += kKeys) {
    __syncthreads();
    load_rows<kD>(ks, k, f.k.ss, j0, f.Sk);
    load_rows<kD>(vs, v, f.v.ss, j0, f.Sk);
    load_rows_transposed<kD>(kt, k, f.k.ss, j0, f.Sk);
    __syncthreads();
    // S = Q K^T and dP = dO V^T (this warp's 16 queries x 64 keys).
    float p[kKeys / 8][4], dp[kKeys / 8][4];
    two_products<kD, kKeys>(p, dp, qs, ks, gs, vs, ld, w, g, t);
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e / 2, j = j0 + 8 * n + 2 * t + (e & 1);
        const bool hidden = j >= f.Sk || lse[r] == kNegInf || (f.causal && j > row[r] + (f.Sk - f.Sq));
        p[n][e] = hidden ? 0.0f : __expf(p[n][e] * f.scale - lse[r]);
        dp[n][e] = p[n][e] * (dp[n][e] - dd[r]);  // dS
      }
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      unsigned da[4];
      acc_to_a(da, dp, kk);
#pragma unroll
      for (int n = 0; n < kD / 8; ++n) mma_b(dq[n], da, kt, ldt, 8 * n, 16 * kk, g, t);
    }
  }
  store_rows<kD>(head(f.dq, b, h), f.dq.ss, i0 + 16 * w, f.Sq, dq, f.scale, g, t);
}

template <int kD>
void launch_bwd(const BwdBf16& f) {
  constexpr int kv_bytes = smem_bwd_kv<kD>(), q_bytes = smem_bwd_q<kD>();
  detail::allow_shared(reinterpret_cast<const void*>(&attention_bwd_kv_bf16<kD>), kv_bytes);
  detail::allow_shared(reinterpret_cast<const void*>(&attention_bwd_q_bf16<kD>), q_bytes);
  if (f.Sk > 0) {
    attention_bwd_kv_bf16<kD><<<dim3(unsigned((f.Sk + kKeys - 1) / kKeys), unsigned(f.B * f.Hkv)), kThreads, kv_bytes,
                                detail::stream()>>>(f);
    TG_CUDA_LAUNCHED();
  }
  if (f.Sq > 0) {
    attention_bwd_q_bf16<kD><<<dim3(unsigned((f.Sq + kRows - 1) / kRows), unsigned(f.B * f.H)), kThreads, q_bytes,
                               detail::stream()>>>(f);
    TG_CUDA_LAUNCHED();
  }
}

}  // namespace

namespace {

// The checks both entries share: dims the kernels take, no mask, FP32 lse apart.
template <class Args>
void check_dims(const char* op, const Args& a) {
  const AttentionDims& d = a.dims;
  TG_CHECK(d.batch >= 0 && d.heads >= 1 && d.kv_heads >= 1 && d.heads % d.kv_heads == 0, op, "dims",
           "expected batch >= 0 and heads a multiple of kv_heads >= 1, got ", d.batch, ", ", d.heads, ", ", d.kv_heads);
  TG_CHECK(d.head_dim == 64 || d.head_dim == 128, op, "head_dim", "expected 64 or 128 on this path, got ", d.head_dim);
  TG_CHECK(d.seq_q >= 0 && d.seq_k >= 0 && d.batch * d.heads * (d.seq_q + 1) < (index_t(1) << 31) &&
               d.seq_k < (index_t(1) << 31) && d.batch * d.heads < 65536,
           op, "dims", "expected B H Sq and Sk below 2^31 and batch x heads below 65536");
  TG_CHECK(a.mask.data == nullptr, op, "mask", "no additive mask on the bf16 path (causal is supported)");
  TG_CHECK(a.lse == nullptr, op, "lse", "the bf16 path takes the FP32 lse through its own argument");
}

// A view the kernels can read in 16-byte pieces, as 16-bit words.
template <class T>
View4<std::conditional_t<std::is_const_v<T>, const std::uint16_t, std::uint16_t>> checked_view(const char* op,
                                                                                              const char* name,
                                                                                              const View4<T>& x,
                                                                                              index_t head_dim) {
  TG_CHECK(x.data != nullptr, op, name, "expected a device pointer");
  TG_CHECK(x.sd == 1 && x.sb % 8 == 0 && x.sh % 8 == 0 && x.ss % 8 == 0 && x.sb >= 0 && x.sh >= 0 &&
               x.ss >= head_dim && detail::aligned16(x.data),
           op, name, "expected unit stride along the head dim, other strides multiples of 8 (rows >= head_dim) and "
           "16-byte alignment, got strides (", x.sb, ", ", x.sh, ", ", x.ss, ", ", x.sd, ")");
  using W = std::conditional_t<std::is_const_v<T>, const std::uint16_t, std::uint16_t>;
  return {reinterpret_cast<W*>(x.data), x.sb, x.sh, x.ss, x.sd};
}

}  // namespace

void attention_forward_bf16(const AttentionForwardArgs<bfloat16>& a, float* lse) {
  const char* op = "cuda::attention_forward_bf16";
  check_dims(op, a);
  const AttentionDims& d = a.dims;
  if (d.batch == 0 || d.seq_q == 0) return;
  const index_t D = d.head_dim;
  const FwdBf16 f{int(d.batch), int(d.heads), int(d.kv_heads), int(d.seq_q), int(d.seq_k), a.scale, a.causal,
                  checked_view(op, "q", a.q, D), checked_view(op, "k", a.k, D), checked_view(op, "v", a.v, D),
                  checked_view(op, "o", a.o, D), lse};
  if (D == 64) launch<64>(f);
  else launch<128>(f);
}

void attention_backward_bf16(const AttentionBackwardArgs<bfloat16>& a, const float* lse) {
  const char* op = "cuda::attention_backward_bf16";
  check_dims(op, a);
  const AttentionDims& d = a.dims;
  if (d.batch == 0 || (d.seq_q == 0 && d.seq_k == 0)) return;
  TG_CHECK(lse != nullptr || d.seq_q == 0, op, "lse", "expected the forward's lse (B, H, Sq) on the device");
  const index_t D = d.head_dim, rows = d.batch * d.heads * d.seq_q;
  Buffer dd(std::size_t(std::max<index_t>(rows, 1)) * sizeof(float), Device::cuda(detail::current_device()));
  const BwdBf16 f{int(d.batch), int(d.heads), int(d.kv_heads), int(d.seq_q), int(d.seq_k), a.scale, a.causal,
                  checked_view(op, "q", a.q, D), checked_view(op, "k", a.k, D), checked_view(op, "v", a.v, D),
                  checked_view(op, "o", a.o, D), checked_view(op, "d_o", a.d_o, D), checked_view(op, "dq", a.dq, D),
                  checked_view(op, "dk", a.dk, D), checked_view(op, "dv", a.dv, D), lse, dd.as<float>()};
  if (rows > 0) {
    attention_bwd_dot_bf16<<<unsigned((rows + 7) / 8), 256, 0, detail::stream()>>>(f, int(D), dd.as<float>());
    TG_CUDA_LAUNCHED();
  }
  if (D == 64) launch_bwd<64>(f);
  else launch_bwd<128>(f);
}

}  // namespace tg::cuda
