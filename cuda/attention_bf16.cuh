// The kernels of fused attention on 16-bit tensor cores, bf16 or (kF16) f16 (FlashAttention-2
// with mma.sync m16n8k16): the forward, then the backward further
// down. Written without a GPU (cuda/notes/attention.md, "BF16 attention", step 2). The forward:
//   - a block of 8 warps owns 128 query rows of one (batch, head), 16 per warp (every
//     K/V tile brought in serves 128 rows: half the L2 traffic of 64-row blocks); its Q
//     tile comes in once and stays in registers as mma A fragments (ldmatrix);
//   - K and V tiles of 64 keys stream through two shared-memory buffers by cp.async: the
//     next tile's copies are in flight while this one is multiplied. Both are stored as
//     they are in memory (row = key, rows padded by 8 values: the eight 16-byte rows an
//     ldmatrix phase reads sit on distinct banks); K's B fragments come by ldmatrix, V's
//     by ldmatrix.trans (a B fragment of P V is two consecutive keys of one head dim).
//     Causal tiles past the diagonal are never loaded;
//   - S = Q K^T in FP32 accumulators, scaled into log2 units (exp2 on the SFU, the scale
//     and log2 e folded into one multiply), the additive mask, the bottom-right causal
//     mask and key bounds, the online softmax on the accumulators (row max and sum across
//     the 4 lanes of a quad), P rounded to the 16-bit type and reused in registers as the A fragments
//     of O += P V (the S accumulator layout of two adjacent n8 tiles is the A layout of
//     one k16 step);
//   - O = acc / l written as bf16, lse = (m + log2 l) ln 2 as FP32.
// The contract of kernels/attention.hpp (GQA, bottom-right causal, an additive mask with
// any non-negative strides (bf16, broadcast by stride 0), fully masked rows give O = 0
// and lse = -inf) with these limits: head dims 8 to 128 in steps of 8 (compiled for 64
// and 128, smaller ones zero-padded on the way in), unit stride along the head dimension,
// 16-byte aligned rows.
//
// The kernels live here, apart from their launches (cuda/attention_bf16.cu), so that the
// host SIMT emulator (tests/simt) can run the same source on the CPU: everything below
// is device code written against cuda/mma.cuh and CUDA's built-ins only.
#pragma once

#include <cstdint>
#include <limits>

#include "tilegrad/cuda/mma.cuh"
#include "tilegrad/kernels/attention.hpp"
#include "tilegrad/kernels/half.hpp"

namespace tg::cuda::attn16 {

using i64 = std::int64_t;
using u16 = std::uint16_t;
constexpr int kRows = 64, kKeys = 64, kThreads = 128;  // the backward's blocks
constexpr int kFwdRows = 128, kFwdThreads = 256;          // the forward's: 8 warps of 16 rows
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;

// The views as 16-bit words (the head dimension's stride is 1: checked on the host).
using In = View4<const u16>;
using Out = View4<u16>;

// Row 0 of (batch b, head h) of a view.
template <class T>
__device__ __forceinline__ T* head(const View4<T>& x, int b, int h) {
  return x.data + i64(b) * x.sb + i64(h) * x.sh;
}

// The 16-bit format: bf16, or f16 when kF16 (the same fragments; mma's type differs).
template <bool kF16>
__device__ __forceinline__ float decode16(u16 h) {
  if constexpr (kF16) return float_from_f16_bits(h);
  else return float_from_bf16_bits(h);
}
template <bool kF16>
__device__ __forceinline__ unsigned pack16(float lo, float hi) {
  if constexpr (kF16) return pack_f16(lo, hi);
  else return pack_bf16(lo, hi);
}

// The additive mask at (query i, key j) of a head's mask rows, in log2 units.
template <bool kF16>
__device__ __forceinline__ float mask_log2(const In& m, const u16* rows, int i, int j) {
  return decode16<kF16>(rows[i64(i) * m.ss + i64(j) * m.sd]) * kLog2e;
}

// Rows r0.. (kR of them; `rows` in the matrix) of a (seq, D) bf16 matrix with row stride
// ld into shared memory [kR][kD + 8] by cp.async, 16 bytes (8 head dims) a copy; zeros
// past the matrix's rows and past D (D % 8 == 0, so a copy is all in or all out). A
// thread (of kNT) copies one column of 8 every kStep rows: one pointer, stepped.
template <int kD, int kR, int kNT = kThreads>
__device__ __forceinline__ void load_async(u16* dst, const u16* src, i64 ld, int r0, int rows, int D) {
  constexpr int kChunks = kD / 8, kStep = kNT / kChunks;
  static_assert(kR % kStep == 0, "a tile is a whole number of passes");
  const int r = int(threadIdx.x) / kChunks, d = int(threadIdx.x) % kChunks * 8;
  const u16* from = src + i64(r0 + r) * ld + d;
  u16* to = dst + r * (kD + 8) + d;
#pragma unroll
  for (int i = 0; i < kR / kStep; ++i) {
    const bool in = d < D && r0 + r + i * kStep < rows;
    cp_async16(to + i * kStep * (kD + 8), in ? from : src, in ? 16 : 0);
    from += kStep * ld;
  }
}

// Where lane `lane` points ldmatrix (row, column offsets in a tile):
//   A of a 16 x 16 step at (row0, col0): matrices (rows 0-7 | 8-15) x (columns 0-7 | 8-15)
//     in the order a0..a3;
//   B of two k16 steps of one n8 tile from an n-major tile (row n, column k): matrices
//     (n 0-7) x (k 0-7, 8-15, 16-23, 24-31): b0, b1 of step 0, then of step 1;
//   B of one k16 step of two n8 tiles from a k-major tile (row k, column n), by .trans:
//     matrices (k 0-7 | 8-15) x (n 0-7 | 8-15): b0, b1 of tile 0, then of tile 1;
//   A of a 16 x 16 step from a k-major tile (row k, column m), by .trans (ta_row is k,
//     ta_col m): matrices (k 0-7) x (m 0-7 | 8-15), then (k 8-15) x (the same): a0..a3.
struct Lanes {
  int a_row, a_col, b_row, b_col, ta_row, ta_col;
  __device__ explicit Lanes(int lane)
      : a_row(lane % 8 + 8 * ((lane / 8) % 2)), a_col(8 * (lane / 16)), b_row(lane % 8), b_col(8 * (lane / 8)),
        ta_row(lane % 8 + 8 * (lane / 16)), ta_col(8 * ((lane / 8) % 2)) {}
};

// c[n] = A B^T over kD for n8 tiles n = 0..kN/8: A's 16 rows at row0 of a row-major
// tile, B^T's rows (the n index) from an n-major tile; both with row stride kD + 8.
template <int kD, int kN, bool kF16>
__device__ __forceinline__ void product_nt(float (&c)[kN / 8][4], const u16* a, int row0, const u16* b,
                                           const Lanes& at) {
  constexpr int ld = kD + 8;
#pragma unroll
  for (int n = 0; n < kN / 8; ++n) c[n][0] = c[n][1] = c[n][2] = c[n][3] = 0.0f;
#pragma unroll(kD > 64 ? 1 : 2)  // at 128, unrolled k steps hoist fragments into spills
  for (int k2 = 0; k2 < kD / 32; ++k2) {
    unsigned x[2][4];
    ldmatrix_x4(x[0], a + (row0 + at.a_row) * ld + 32 * k2 + at.a_col);
    ldmatrix_x4(x[1], a + (row0 + at.a_row) * ld + 32 * k2 + 16 + at.a_col);
#pragma unroll
    for (int n = 0; n < kN / 8; ++n) {
      unsigned r[4];
      ldmatrix_x4(r, b + (8 * n + at.b_row) * ld + 32 * k2 + at.b_col);
      mma16<kF16>(c[n], x[0], r[0], r[1]);
      mma16<kF16>(c[n], x[1], r[2], r[3]);
    }
  }
}

// acc[n] += A B for the kD / 8 n8 tiles of the head dim, A one k16 step (16 rows of the
// k-major tile b from krow0), B by ldmatrix.trans.
template <int kD, bool kF16>
__device__ __forceinline__ void product_kn(float (&acc)[kD / 8][4], const unsigned (&a)[4], const u16* b, int krow0,
                                           const Lanes& at) {
  constexpr int ld = kD + 8;
#pragma unroll
  for (int n2 = 0; n2 < kD / 16; ++n2) {
    unsigned r[4];
    ldmatrix_x4_trans(r, b + (krow0 + at.a_row) * ld + 16 * n2 + at.a_col);
    mma16<kF16>(acc[2 * n2], a, r[0], r[1]);
    mma16<kF16>(acc[2 * n2 + 1], a, r[2], r[3]);
  }
}

// The A fragment of k16 step kk from FP32 accumulators c[n][0..3] of n8 tiles 2 kk and
// 2 kk + 1 (rows g, g + 8): the accumulator layout of two tiles is the A layout of one step.
template <bool kF16, int kN>
__device__ __forceinline__ void acc_to_a(unsigned (&a)[4], const float (&c)[kN][4], int kk) {
  a[0] = pack16<kF16>(c[2 * kk][0], c[2 * kk][1]);
  a[1] = pack16<kF16>(c[2 * kk][2], c[2 * kk][3]);
  a[2] = pack16<kF16>(c[2 * kk + 1][0], c[2 * kk + 1][1]);
  a[3] = pack16<kF16>(c[2 * kk + 1][2], c[2 * kk + 1][3]);
}

// Writes a warp's 16 rows x D FP32 accumulators (times `mul`) as bf16 rows r0 + g, + 8.
template <int kD, bool kF16>
__device__ __forceinline__ void store_rows(u16* base, i64 ld, int r0, int rows, int D, const float (&c)[kD / 8][4],
                                           float mul, int g, int t) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = r0 + g + 8 * r;
    if (row >= rows) continue;
    u16* out = base + i64(row) * ld + 2 * t;
#pragma unroll
    for (int n = 0; n < kD / 8; ++n)
      if (8 * n < D) *reinterpret_cast<unsigned*>(out + 8 * n) = pack16<kF16>(c[n][2 * r] * mul, c[n][2 * r + 1] * mul);
  }
}

// The last key a causal block of query rows [i0, i0 + n) can see, plus one.
__device__ __forceinline__ int causal_end(int i0, int n, int Sq, int Sk) {
  return max(0, min(Sk, min(i0 + n, Sq) + (Sk - Sq)));
}

// ---- forward ----

struct Fwd16 {
  int B, H, Hkv, Sq, Sk, D;
  float scale;
  bool causal;
  In q, k, v, mask;  // mask.data null: none
  Out o;
  float* lse;
};

template <int kD>
constexpr int smem_fwd() {
  return 2 * (kFwdRows + 4 * kKeys) * (kD + 8);  // Q; K and V, two buffers each
}

// One key tile's step of the online softmax on a warp's score accumulators in the mma
// layout: at(n, e) is row g (e < 2) or g + 8 (rows `row`), key j0 + 8 n + 2 t + (e & 1),
// for kN8 groups of 8 keys. The scores become log2 units (times sl) with the additive mask,
// -inf where hidden (past Sk, bottom-right causal); the rows' running maxima m move
// (across the quad that shares a row) and their sums l are rescaled. Returns the maximum
// P = 2^(s - use) subtracts per row and, in keep, the rescale of the old terms, which the
// caller applies to its O accumulators. Both 16-bit forwards (this file's and
// cuda/attention_wgmma.cuh's) take their softmax from here.
// A finished row, from its running maximum m and sum l (base 2, l summed over the quad):
// the output's scale 1/l and lse. Both 16-bit forwards end their rows with it. A fully
// masked row (l = 0) is `masked`: written as 0 (its accumulator holds 0 * v, NaN where v
// is infinite), lse -inf; a row with a NaN score (l NaN) is NaN, scale and lse alike.
struct RowEnd {
  float inv, lse;
  bool masked;
};
__device__ __forceinline__ RowEnd row_end(float m, float l) {
  return {l > 0 ? 1.0f / l : l, l > 0 ? (m + __log2f(l)) * kLn2 : l == 0 ? kNegInf : l, l == 0};
}

struct SoftmaxStep {
  float use[2], keep[2];
};
template <bool kF16, int kN8, class At>
__device__ __forceinline__ SoftmaxStep softmax_step(At&& at, const Fwd16& f, const u16* mask, int j0,
                                                    const int (&row)[2], int t, float sl, float (&m)[2], float (&l)[2]) {
  float mx[2] = {kNegInf, kNegInf};
#pragma unroll
  for (int n = 0; n < kN8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int r = e / 2, j = j0 + 8 * n + 2 * t + (e & 1);
      const bool hidden = j >= f.Sk || (f.causal && j > row[r] + (f.Sk - f.Sq));
      float x = at(n, e) * sl;
      if (mask && !hidden && row[r] < f.Sq) x += mask_log2<kF16>(f.mask, mask, row[r], j);
      at(n, e) = hidden ? kNegInf : x;
      mx[r] = fmaxf(mx[r], at(n, e));
    }
  SoftmaxStep st;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    const float m_new = fmaxf(m[r], mx[r]);
    st.use[r] = m_new == kNegInf ? 0.0f : m_new;  // nothing seen yet: 2^(-inf - 0) = 0, never NaN
    st.keep[r] = ex2_approx(m[r] - st.use[r]);    // the old terms' rescale (0 when m was -inf)
    m[r] = m_new;
    l[r] *= st.keep[r];
  }
  return st;
}

template <int kD, bool kF16>
__global__ void __launch_bounds__(kFwdThreads) attention_fwd_16(Fwd16 f) {
  constexpr int ld = kD + 8, kTile = kKeys * ld;
  TG_DYNAMIC_SHARED(u16, smem);
  u16* qs = smem;                // [128][ld]
  u16* ks = qs + kFwdRows * ld;  // [2][64][ld]
  u16* vs = ks + 2 * kTile;     // [2][64][ld]
  const int bh = int(blockIdx.y), b = bh / f.H, h = bh % f.H, hk = h / (f.H / f.Hkv);
  const int i0 = int(blockIdx.x) * kFwdRows;
  const int w = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  const Lanes at(lane);
  const u16 *q = head(f.q, b, h), *k = head(f.k, b, hk), *v = head(f.v, b, hk);
  const u16* mask = f.mask.data ? head(f.mask, b, h) : nullptr;
  const int kv_end = f.causal ? causal_end(i0, kFwdRows, f.Sq, f.Sk) : f.Sk;
  const int tiles = (kv_end + kKeys - 1) / kKeys;

  // Two commit groups: Q, then key tile 0; the loop adds one per tile (empty at the end),
  // so "all but the newest group landed" is always "this tile is in".
  load_async<kD, kFwdRows, kFwdThreads>(qs, q, f.q.ss, i0, f.Sq, f.D);
  cp_async_commit();
  if (tiles > 0) {
    load_async<kD, kKeys, kFwdThreads>(ks, k, f.k.ss, 0, f.Sk, f.D);
    load_async<kD, kKeys, kFwdThreads>(vs, v, f.v.ss, 0, f.Sk, f.D);
  }
  cp_async_commit();
  cp_async_wait<1>();
  __syncthreads();
  unsigned qa[kD / 16][4];  // this warp's 16 rows as A fragments, one per k16 step
#pragma unroll
  for (int kk = 0; kk < kD / 16; ++kk) ldmatrix_x4(qa[kk], qs + (16 * w + at.a_row) * ld + 16 * kk + at.a_col);

  // Rows g and g + 8 of this warp: their running max (log2 units) and per-thread sum.
  const int row[2] = {i0 + 16 * w + g, i0 + 16 * w + g + 8};
  const float sl = f.scale * kLog2e;
  float m[2] = {kNegInf, kNegInf}, l[2] = {0.0f, 0.0f};
  float acc[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;

  for (int it = 0; it < tiles; ++it) {
    const int j0 = it * kKeys;
    if (it + 1 < tiles) {  // the next tile streams into the other buffer
      load_async<kD, kKeys, kFwdThreads>(ks + ((it + 1) & 1) * kTile, k, f.k.ss, j0 + kKeys, f.Sk, f.D);
      load_async<kD, kKeys, kFwdThreads>(vs + ((it + 1) & 1) * kTile, v, f.v.ss, j0 + kKeys, f.Sk, f.D);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();  // tile `it` is in for every thread
    const u16 *kb = ks + (it & 1) * kTile, *vb = vs + (it & 1) * kTile;
    // S = Q K^T: per n8 tile of keys, two k16 steps per ldmatrix.
    float s[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
      for (int k2 = 0; k2 < kD / 32; ++k2) {
        unsigned r[4];
        ldmatrix_x4(r, kb + (8 * n + at.b_row) * ld + 32 * k2 + at.b_col);
        mma16<kF16>(s[n], qa[2 * k2], r[0], r[1]);
        mma16<kF16>(s[n], qa[2 * k2 + 1], r[2], r[3]);
      }
    }
    // The softmax step; the old terms of O rescaled.
    const SoftmaxStep st =
        softmax_step<kF16, kKeys / 8>([&](int n, int e) -> float& { return s[n][e]; }, f, mask, j0, row, t, sl, m, l);
#pragma unroll
    for (int n = 0; n < kD / 8; ++n)
      acc[n][0] *= st.keep[0], acc[n][1] *= st.keep[0], acc[n][2] *= st.keep[1], acc[n][3] *= st.keep[1];
    // P = 2^(s - m), summed per row (thread-partial), rounded to bf16 as A fragments.
    float p[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        p[n][e] = ex2_approx(s[n][e] - st.use[e / 2]);
        l[e / 2] += p[n][e];
      }
    // O += P V: k runs over the tile's keys, 16 a step; V's B fragments by ldmatrix.trans.
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      unsigned pa[4];
      acc_to_a<kF16>(pa, p, kk);
      product_kn<kD, kF16>(acc, pa, vb, 16 * kk, at);
    }
    __syncthreads();  // every warp is done with this tile's buffers before tile it + 2 lands there
  }
  // The rows' sums across their quad; O = acc / l, lse (row_end).
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (row[r] >= f.Sq) continue;
    const RowEnd end = row_end(m[r], l[r]);
    u16* out = head(f.o, b, h) + i64(row[r]) * f.o.ss + 2 * t;
#pragma unroll
    for (int n = 0; n < kD / 8; ++n)
      if (8 * n < f.D)
        *reinterpret_cast<unsigned*>(out + 8 * n) =
            end.masked ? 0u : pack16<kF16>(acc[n][2 * r] * end.inv, acc[n][2 * r + 1] * end.inv);
    if (f.lse && t == 0) f.lse[(i64(b) * f.H + h) * f.Sq + row[r]] = end.lse;
  }
}


// ---- backward (FlashAttention-2's Algorithm 2 on bf16 tensor cores) ----
// D_i = dO_i . O_i first; then a block per (batch, kv head, 64 keys) accumulates dK and
// dV over the query heads of its group and the query tiles (32 rows at a time), and a
// block per (batch, head, 64 queries) accumulates dQ over the key tiles: P and dS are
// recomputed in each, no atomics, the same bits every run: 7 products of N^2 d where the
// math needs 5. The atomic path (kAtomicDq, AttentionBackwardPath::atomic_dq) does the 5:
// the dK / dV kernel also forms dQ's share of its 64 keys, dS K, and adds it into an FP32
// buffer with atomics (dS^T goes through shared memory to be read as dS by ldmatrix
// .trans), and a last kernel writes dQ = scale x buffer in the 16-bit type; the order of
// the atomic sums, hence dQ's last bits, varies from run to run. Products in FP32 accumulators;
// P and dS rounded to bf16 as the A fragments of the next product (as the forward's P).
// Every operand stays in shared memory as it is in global memory: where a product needs
// it the other way round (Q and dO for dK and dV, K for dQ), ldmatrix.trans turns it.
// The streamed tiles (query tiles with their lse and D_i, or key tiles) are double
// buffered by cp.async like the forward's.

struct Bwd16 {
  int B, H, Hkv, Sq, Sk, D;
  float scale;
  bool causal;
  In q, k, v, o, d_o, mask;
  Out dq, dk, dv;
  const float* lse;  // (B, H, Sq), the forward's
  const float* dd;   // (B, H, Sq): D_i
  float* dq_acc = nullptr;  // the atomic path's (B, H, Sq, D) FP32 sums of dS K, zeroed before
};

constexpr int kQ = 32;         // query rows per step of the dK / dV kernel
constexpr int kDsLd = kQ + 8;  // the atomic path's dS^T tile [64 keys][kDsLd] (80-byte rows)

template <int kD, bool kAtomicDq = false>
constexpr int smem_bwd_kv() {
  // K, V; Q, dO x 2; lse, D x 2; the atomic path's dS^T
  return 2 * (2 * kKeys + 4 * kQ) * (kD + 8) + 4 * 4 * kQ + (kAtomicDq ? 2 * kKeys * kDsLd : 0);
}
template <int kD>
constexpr int smem_bwd_q() {
  return 2 * (2 * kRows + 4 * kKeys) * (kD + 8);  // Q, dO; K, V x 2
}

// D_i = sum_d dO_i,d O_i,d: a warp per row (bf16 in, FP32 out).
template <bool kF16>
__global__ void attention_bwd_dot_16(Bwd16 f, float* dd) {
  const i64 row = i64(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= i64(f.B) * f.H * f.Sq) return;
  const int i = int(row % f.Sq), h = int(row / f.Sq % f.H), b = int(row / f.Sq / f.H);
  const u16* o = head(f.o, b, h) + i64(i) * f.o.ss;
  const u16* g = head(f.d_o, b, h) + i64(i) * f.d_o.ss;
  float acc = 0;
  for (int d = int(threadIdx.x % 32); d < f.D; d += 32) acc += decode16<kF16>(o[d]) * decode16<kF16>(g[d]);
  for (int m = 16; m > 0; m /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, m);
  if (threadIdx.x % 32 == 0) dd[row] = acc;
}

// Step `step` of the dK / dV kernel's loop over (query head h0 + step / per_head, query
// tile first_q + step % per_head): its Q and dO tiles, lse and D_i into buffer step % 2.
// Rows past Sq read nothing (zeros; the kernel hides them).
template <int kD>
__device__ __forceinline__ void issue_queries(const Bwd16& f, u16* qs, u16* gs, float* lse_s, float* dd_s, int b,
                                              int h0, int first_q, int per_head, int step) {
  constexpr int kTile = kQ * (kD + 8);
  const int h = h0 + step / per_head, i0 = first_q + step % per_head * kQ, buf = step & 1;
  load_async<kD, kQ>(qs + buf * kTile, head(f.q, b, h), f.q.ss, i0, f.Sq, f.D);
  load_async<kD, kQ>(gs + buf * kTile, head(f.d_o, b, h), f.d_o.ss, i0, f.Sq, f.D);
  if (threadIdx.x < kQ) {
    const int i = i0 + int(threadIdx.x);
    const i64 row = (i64(b) * f.H + h) * f.Sq + min(i, f.Sq - 1);
    cp_async4(lse_s + buf * kQ + threadIdx.x, f.lse + row, i < f.Sq ? 4 : 0);
    cp_async4(dd_s + buf * kQ + threadIdx.x, f.dd + row, i < f.Sq ? 4 : 0);
  }
}

// The atomic path's dQ share of one step: dQ[i0.., :] += dS K over the block's 64 keys,
// added into f.dq_acc (unscaled). dS^T is in shared memory (row = key, column = query);
// warp w owns query rows 16 (w % 2).. and half the head dims, (w / 2) kD / 2..: its A
// fragments by ldmatrix .trans of dS^T, its B fragments by ldmatrix .trans of K. The
// dims go 32 at a time (16 accumulators; at head dim 128 all 64 at once spill next to
// dK's and dV's 128), each chunk's sums added as soon as they are done.
template <int kD, bool kF16>
__device__ __forceinline__ void add_dq_share(const Bwd16& f, const u16* dss, const u16* ks, int b, int h, int i0,
                                             int w, const Lanes& at, int g, int t) {
  constexpr int ld = kD + 8, kN = 4;  // n8 tiles per chunk
  const int m0 = 16 * (w % 2);
#pragma unroll 1
  for (int d0 = (w / 2) * (kD / 2); d0 < (w / 2 + 1) * (kD / 2); d0 += 8 * kN) {
    float c[kN][4];
#pragma unroll
    for (int n = 0; n < kN; ++n) c[n][0] = c[n][1] = c[n][2] = c[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      unsigned a[4];
      ldmatrix_x4_trans(a, dss + (16 * kk + at.ta_row) * kDsLd + m0 + at.ta_col);
#pragma unroll
      for (int n2 = 0; n2 < kN / 2; ++n2) {
        unsigned r[4];
        ldmatrix_x4_trans(r, ks + (16 * kk + at.a_row) * ld + d0 + 16 * n2 + at.a_col);
        mma16<kF16>(c[2 * n2], a, r[0], r[1]);
        mma16<kF16>(c[2 * n2 + 1], a, r[2], r[3]);
      }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int i = i0 + m0 + g + 8 * r;
      if (i >= f.Sq) continue;
      float* row = f.dq_acc + ((i64(b) * f.H + h) * f.Sq + i) * f.D;
#pragma unroll
      for (int n = 0; n < kN; ++n) {
        const int d = d0 + 8 * n + 2 * t;
        if (d >= f.D) continue;  // D % 8 == 0: d + 1 < D too
#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900) || defined(TG_SIMT_HOST)
        // One 8-byte add for the pair (sm_90: half the atomic operations; d is even and
        // rows are D x 4 bytes, D % 8 == 0, so the address is 8-byte aligned).
        atomicAdd(reinterpret_cast<float2*>(row + d), make_float2(c[n][2 * r], c[n][2 * r + 1]));
#else
        atomicAdd(row + d, c[n][2 * r]);
        atomicAdd(row + d + 1, c[n][2 * r + 1]);
#endif
      }
    }
  }
}

template <int kD, bool kF16, bool kAtomicDq = false>
__global__ void __launch_bounds__(kThreads) attention_bwd_kv_16(Bwd16 f) {
  constexpr int ld = kD + 8, kTile = kQ * ld;
  TG_DYNAMIC_SHARED(u16, smem);
  u16* ks = smem;                // [64][ld]  keys (A of S^T = K Q^T)
  u16* vs = ks + kKeys * ld;     // [64][ld]  values (A of dP^T = V dO^T)
  u16* qs = vs + kKeys * ld;     // [2][32][ld]  queries (B of S^T; .trans: B of dK = dS^T Q)
  u16* gs = qs + 2 * kTile;      // [2][32][ld]  dO (B of dP^T; .trans: B of dV = P^T dO)
  float* lse_s = reinterpret_cast<float*>(gs + 2 * kTile);  // [2][32]
  float* dd_s = lse_s + 2 * kQ;                             // [2][32]
  u16* dss = reinterpret_cast<u16*>(dd_s + 2 * kQ);         // [64][kDsLd]  dS^T (the atomic path)
  const int b = int(blockIdx.y) / f.Hkv, hk = int(blockIdx.y) % f.Hkv, j0 = int(blockIdx.x) * kKeys;
  const int w = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  const Lanes at(lane);
  const int group = f.H / f.Hkv;
  // Causal: query i sees key j iff j <= i + (Sk - Sq); the block's first key is j0. The
  // steps run over (query head of the group, query tile).
  const int first_q = f.causal ? max(0, j0 - (f.Sk - f.Sq)) / kQ * kQ : 0;
  const int per_head = first_q < f.Sq ? (f.Sq - first_q + kQ - 1) / kQ : 0, steps = group * per_head;
  load_async<kD, kKeys>(ks, head(f.k, b, hk), f.k.ss, j0, f.Sk, f.D);
  load_async<kD, kKeys>(vs, head(f.v, b, hk), f.v.ss, j0, f.Sk, f.D);
  if (steps > 0) issue_queries<kD>(f, qs, gs, lse_s, dd_s, b, hk * group, first_q, per_head, 0);
  cp_async_commit();
  float dk[kD / 8][4], dv[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[n][e] = dv[n][e] = 0.0f;
  const float sl = f.scale * kLog2e;
  for (int step = 0; step < steps; ++step) {
    if (step + 1 < steps) issue_queries<kD>(f, qs, gs, lse_s, dd_s, b, hk * group, first_q, per_head, step + 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();  // this step's tiles (and K, V) are in for every thread
    const int h = hk * group + step / per_head, i0 = first_q + step % per_head * kQ, buf = step & 1;
    const u16 *qb = qs + buf * kTile, *gb = gs + buf * kTile;
    const float *ls = lse_s + buf * kQ, *ds = dd_s + buf * kQ;
    const u16* mask = f.mask.data ? head(f.mask, b, h) : nullptr;
    // S^T = K Q^T and dP^T = V dO^T (this warp's 16 keys x 32 queries).
    float p[kQ / 8][4], dp[kQ / 8][4];
    product_nt<kD, kQ, kF16>(p, ks, 16 * w, qb, at);
    product_nt<kD, kQ, kF16>(dp, vs, 16 * w, gb, at);
    // P^T = 2^(S^T scale log2 e + mask log2 e - lse log2 e), zero where hidden, past the
    // matrix or for a fully masked row (lse = -inf); dS^T = P^T (dP^T - D).
#pragma unroll
    for (int n = 0; n < kQ / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int j = j0 + 16 * w + g + (e >= 2 ? 8 : 0), qi = 8 * n + 2 * t + (e & 1), i = i0 + qi;
        const float l = ls[qi];
        const bool hidden = j >= f.Sk || i >= f.Sq || l == kNegInf || (f.causal && j > i + (f.Sk - f.Sq));
        float x = p[n][e] * sl - l * kLog2e;
        if (mask && !hidden) x += mask_log2<kF16>(f.mask, mask, i, j);
        p[n][e] = hidden ? 0.0f : ex2_approx(x);
        dp[n][e] = hidden ? 0.0f : p[n][e] * (dp[n][e] - ds[qi]);  // no 0 * inf where dO.v is infinite
      }
    if constexpr (kAtomicDq) {  // this warp's 16 rows of dS^T, rounded as dK's product takes them
#pragma unroll
      for (int n = 0; n < kQ / 8; ++n)
#pragma unroll
        for (int r = 0; r < 2; ++r)
          *reinterpret_cast<unsigned*>(dss + (16 * w + g + 8 * r) * kDsLd + 8 * n + 2 * t) =
              pack16<kF16>(dp[n][2 * r], dp[n][2 * r + 1]);
    }
    // dV += P^T dO and dK += dS^T Q (scaled at the end): k runs over the 32 queries.
#pragma unroll
    for (int kk = 0; kk < kQ / 16; ++kk) {
      unsigned pa[4], da[4];
      acc_to_a<kF16>(pa, p, kk);
      acc_to_a<kF16>(da, dp, kk);
      product_kn<kD, kF16>(dv, pa, gb, 16 * kk, at);
      product_kn<kD, kF16>(dk, da, qb, 16 * kk, at);
    }
    if constexpr (kAtomicDq) {
      __syncthreads();  // every warp's rows of dS^T are in
      add_dq_share<kD, kF16>(f, dss, ks, b, h, i0, w, at, g, t);
    }
    __syncthreads();  // every warp is done with this step's buffers (and dS^T) before step + 2 lands there
  }
  store_rows<kD, kF16>(head(f.dk, b, hk), f.dk.ss, j0 + 16 * w, f.Sk, f.D, dk, f.scale, g, t);
  store_rows<kD, kF16>(head(f.dv, b, hk), f.dv.ss, j0 + 16 * w, f.Sk, f.D, dv, 1.0f, g, t);
}

template <int kD, bool kF16>
__global__ void __launch_bounds__(kThreads) attention_bwd_q_16(Bwd16 f) {
  constexpr int ld = kD + 8, kTile = kKeys * ld;
  TG_DYNAMIC_SHARED(u16, smem);
  u16* qs = smem;               // [64][ld] queries (A of S = Q K^T)
  u16* gs = qs + kRows * ld;    // [64][ld] dO (A of dP = dO V^T)
  u16* ks = gs + kRows * ld;    // [2][64][ld] keys (B of S; .trans: B of dQ = dS K)
  u16* vs = ks + 2 * kTile;     // [2][64][ld] values (B of dP)
  const int bh = int(blockIdx.y), b = bh / f.H, h = bh % f.H, hk = h / (f.H / f.Hkv), i0 = int(blockIdx.x) * kRows;
  const int w = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  const Lanes at(lane);
  const u16 *k = head(f.k, b, hk), *v = head(f.v, b, hk);
  const u16* mask = f.mask.data ? head(f.mask, b, h) : nullptr;
  const int kv_end = f.causal ? causal_end(i0, kRows, f.Sq, f.Sk) : f.Sk;
  const int tiles = (kv_end + kKeys - 1) / kKeys;
  load_async<kD, kRows>(qs, head(f.q, b, h), f.q.ss, i0, f.Sq, f.D);
  load_async<kD, kRows>(gs, head(f.d_o, b, h), f.d_o.ss, i0, f.Sq, f.D);
  if (tiles > 0) {
    load_async<kD, kKeys>(ks, k, f.k.ss, 0, f.Sk, f.D);
    load_async<kD, kKeys>(vs, v, f.v.ss, 0, f.Sk, f.D);
  }
  cp_async_commit();
  const int row[2] = {i0 + 16 * w + g, i0 + 16 * w + g + 8};
  float lse2[2], dd[2];  // lse in log2 units (-inf past Sq: hidden)
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const i64 at_row = i64(bh) * f.Sq + row[r];
    lse2[r] = row[r] < f.Sq ? f.lse[at_row] * kLog2e : kNegInf;
    dd[r] = row[r] < f.Sq ? f.dd[at_row] : 0.0f;
  }
  float dq[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.0f;
  const float sl = f.scale * kLog2e;
  for (int it = 0; it < tiles; ++it) {
    const int j0 = it * kKeys;
    if (it + 1 < tiles) {
      load_async<kD, kKeys>(ks + ((it + 1) & 1) * kTile, k, f.k.ss, j0 + kKeys, f.Sk, f.D);
      load_async<kD, kKeys>(vs + ((it + 1) & 1) * kTile, v, f.v.ss, j0 + kKeys, f.Sk, f.D);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const u16 *kb = ks + (it & 1) * kTile, *vb = vs + (it & 1) * kTile;
    // S = Q K^T and dP = dO V^T (this warp's 16 queries x 64 keys).
    float p[kKeys / 8][4], dp[kKeys / 8][4];
    product_nt<kD, kKeys, kF16>(p, qs, 16 * w, kb, at);
    product_nt<kD, kKeys, kF16>(dp, gs, 16 * w, vb, at);
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e / 2, j = j0 + 8 * n + 2 * t + (e & 1);
        const bool hidden = j >= f.Sk || lse2[r] == kNegInf || (f.causal && j > row[r] + (f.Sk - f.Sq));
        float x = p[n][e] * sl - lse2[r];
        if (mask && !hidden) x += mask_log2<kF16>(f.mask, mask, row[r], j);
        p[n][e] = hidden ? 0.0f : ex2_approx(x);
        dp[n][e] = hidden ? 0.0f : p[n][e] * (dp[n][e] - dd[r]);  // dS; no 0 * inf where dO.v is infinite
      }
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      unsigned da[4];
      acc_to_a<kF16>(da, dp, kk);
      product_kn<kD, kF16>(dq, da, kb, 16 * kk, at);
    }
    __syncthreads();
  }
  store_rows<kD, kF16>(head(f.dq, b, h), f.dq.ss, i0 + 16 * w, f.Sq, f.D, dq, f.scale, g, t);
}

// The atomic path's last step: dQ = scale x f.dq_acc in the 16-bit type, a warp per row
// (attention_bwd_dot_16's geometry: a row's indices worked out once, not per element), a
// pair of head dims per lane and step.
template <bool kF16>
__global__ void attention_bwd_dq_16(Bwd16 f) {
  const i64 row = i64(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= i64(f.B) * f.H * f.Sq) return;
  const int i = int(row % f.Sq), h = int(row / f.Sq % f.H), b = int(row / f.Sq / f.H);
  const float* acc = f.dq_acc + row * f.D;
  u16* out = head(f.dq, b, h) + i64(i) * f.dq.ss;
  for (int d = 2 * int(threadIdx.x % 32); d < f.D; d += 64)
    *reinterpret_cast<unsigned*>(out + d) = pack16<kF16>(acc[d] * f.scale, acc[d + 1] * f.scale);
}

// The launch geometry, shared by the launches (attention_bf16.cu) and the emulated ones
// (tests/test_simt_attention.cpp).
struct Grid {
  unsigned x, y;
};
inline Grid fwd_grid(const Fwd16& f) { return {unsigned((f.Sq + kFwdRows - 1) / kFwdRows), unsigned(f.B * f.H)}; }
inline Grid bwd_kv_grid(const Bwd16& f) { return {unsigned((f.Sk + kKeys - 1) / kKeys), unsigned(f.B * f.Hkv)}; }
inline Grid bwd_q_grid(const Bwd16& f) { return {unsigned((f.Sq + kRows - 1) / kRows), unsigned(f.B * f.H)}; }
constexpr int kDotThreads = 256;  // attention_bwd_dot_16 and attention_bwd_dq_16: a warp per row
inline unsigned bwd_dot_blocks(i64 rows) { return unsigned((rows + kDotThreads / 32 - 1) / (kDotThreads / 32)); }

}  // namespace tg::cuda::attn16
