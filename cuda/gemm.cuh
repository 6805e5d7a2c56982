// SGEMM from scratch, step 1 (cuda/notes/gemm.md): 128 x 128 block tiles, 8-deep k steps,
// 256 threads each holding an 8 x 8 accumulator tile in registers (2-D register
// blocking), the A tile stored k-major in shared memory (transposed on the way in) so
// that a thread's 8 rows are two 128-bit shared loads, 128-bit global loads when the
// operand's rows are 16-byte aligned, and the next k step's tiles fetched into registers
// while the current one is multiplied (register double buffering, two shared buffers,
// one barrier per step). All four transposes are handled by the tile loaders; the
// epilogue applies alpha, beta, the bias and the activation before the store. When the
// tiles of C are too few to fill the GPU and K is long, K is split over blocks and a
// second pass adds the slices.
//
// Thread (ty, tx) of the 16 x 16 grid owns rows {4 ty + i, 64 + 4 ty + i} and columns
// {4 tx + j, 64 + 4 tx + j} of the block tile: the B fragment reads of a warp's
// threads are consecutive 16-byte words (no bank conflicts), the A fragment reads are
// broadcasts.
//
// The kernels live here, apart from their launches (cuda/gemm.cu), so that the host SIMT
// emulator (tests/simt) can run the same source on the CPU: device code written against
// cuda/mma.cuh and CUDA's built-ins only.
#pragma once

#include <cstdint>

#include "tilegrad/cuda/activation_math.cuh"
#include "tilegrad/cuda/mma.cuh"
#include "tilegrad/kernels/activation.hpp"

namespace tg::cuda::gemmk {

constexpr int kBM = 128, kBN = 128, kBK = 8, kThreads = 256;
constexpr int kBS = 64, kThreadsSmall = 128;  // tile64's tile and threads

__device__ __forceinline__ float activate(Act kind, float slope, float x) { return act_forward1(kind, slope, x); }

// One GEMM call as its kernels see it; E is the element type of A and B (float, or the
// bits of bf16).
template <class E>
struct ArgsOf {
  int M, N, K;
  float alpha, beta;
  const E* A;
  int lda;
  const E* B;
  int ldb;
  float* C;
  int ldc;
  const float* bias;
  Act act;
  float slope;
  int kslice;  // split-K: slice z covers k in [z kslice, (z + 1) kslice) and writes
               // alpha op(A) op(B) of its slice to C + z M ldc (beta, bias, act later)
};
using Args = ArgsOf<float>;

// This thread's share of the A and B tiles (k0..k0+7): four floats each. Both tiles are
// stored k-major in shared memory (as[k][m], bs[k][n]). An operand whose rows run along
// m (A transposed) or n (B not transposed) is "natural": its 16-byte pieces land in
// shared memory as they are, so it can go by cp.async; the others (A stored M x K, B
// stored N x K) are transposed through registers on the way.
// With tiles of kTM x kTN (128 x 128: 256 threads; 64 x 64: 128 threads, 2 kTM of them):
//   A N: kTM rows x 8 k, thread t takes row t / 2, k (t % 2) * 4 .. +3 (along k);
//   A T: stored K x M, thread t takes k t / (kTM / 4), rows (t % (kTM / 4)) * 4 .. +3 (along m).
//   B N: stored K x N, thread t takes k t / (kTN / 4), cols (t % (kTN / 4)) * 4 .. +3;
//   B T: stored N x K, thread t takes col t / 2, k (t % 2) * 4 .. +3.
// whole: the tile is inside the matrix and its rows aligned: 128-bit loads.
template <bool kTA, bool kTB, int kLdA = kBM, int kLdB = kBN, int kTM = kBM, int kTN = kBN>
struct Loader {
  static_assert(kTM == kTN, "one thread count loads both tiles: 2 kTM threads");
  static constexpr int kQA = kTM / 4, kQB = kTN / 4;  // 16-byte pieces in a k row of a tile
  // Four consecutive floats at p (elements first.. of a row): one 128-bit load for a
  // whole tile, else guarded loads (zeros where the row is outside the matrix or an
  // element at or past `end`).
  __device__ __forceinline__ static void load4(const float* p, bool whole, bool row_in, int first, int end,
                                               float (&r)[4]) {
    if (whole) {
      const float4 v = *reinterpret_cast<const float4*>(p);
      r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w;
    } else {
#pragma unroll
      for (int i = 0; i < 4; ++i) r[i] = row_in && first + i < end ? p[i] : 0.0f;
    }
  }
  __device__ static void load_a(const Args& a, int m0, int k0, bool whole, float (&ra)[4]) {
    const int t = threadIdx.x;
    if constexpr (!kTA) {
      const int r = m0 + t / 2, k = k0 + (t % 2) * 4;
      load4(a.A + std::int64_t(r) * a.lda + k, whole, r < a.M, k, a.K, ra);
    } else {
      const int k = k0 + t / kQA, r = m0 + (t % kQA) * 4;
      load4(a.A + std::int64_t(k) * a.lda + r, whole, k < a.K, r, a.M, ra);
    }
  }
  __device__ static void load_b(const Args& a, int n0, int k0, bool whole, float (&rb)[4]) {
    const int t = threadIdx.x;
    if constexpr (!kTB) {
      const int k = k0 + t / kQB, c = n0 + (t % kQB) * 4;
      load4(a.B + std::int64_t(k) * a.ldb + c, whole, k < a.K, c, a.N, rb);
    } else {
      const int c = n0 + t / 2, k = k0 + (t % 2) * 4;
      load4(a.B + std::int64_t(c) * a.ldb + k, whole, c < a.N, k, a.K, rb);
    }
  }
  __device__ static void store_a(const float (&ra)[4], float (*as)[kLdA]) {
    const int t = threadIdx.x;
    if constexpr (!kTA) {
      for (int i = 0; i < 4; ++i) as[(t % 2) * 4 + i][t / 2] = ra[i];
    } else {
      *reinterpret_cast<float4*>(&as[t / kQA][(t % kQA) * 4]) = make_float4(ra[0], ra[1], ra[2], ra[3]);
    }
  }
  __device__ static void store_b(const float (&rb)[4], float (*bs)[kLdB]) {
    const int t = threadIdx.x;
    if constexpr (!kTB) {
      *reinterpret_cast<float4*>(&bs[t / kQB][(t % kQB) * 4]) = make_float4(rb[0], rb[1], rb[2], rb[3]);
    } else {
      for (int i = 0; i < 4; ++i) bs[(t % 2) * 4 + i][t / 2] = rb[i];
    }
  }
  // The natural operands by cp.async (the caller checked 16-byte alignment): a row of
  // the tile past the matrix, or past K, copies 0 bytes (zeros) from a valid address.
  __device__ static void async_a(const Args& a, int m0, int k0, float (*as)[kLdA]) {
    const int t = threadIdx.x, k = k0 + t / kQA, r = m0 + (t % kQA) * 4;
    const int bytes = k < a.K ? max(0, min(16, (a.M - r) * 4)) : 0;
    cp_async16(&as[t / kQA][(t % kQA) * 4], bytes ? a.A + std::int64_t(k) * a.lda + r : a.A, bytes);
  }
  __device__ static void async_b(const Args& a, int n0, int k0, float (*bs)[kLdB]) {
    const int t = threadIdx.x, k = k0 + t / kQB, c = n0 + (t % kQB) * 4;
    const int bytes = k < a.K ? max(0, min(16, (a.N - c) * 4)) : 0;
    cp_async16(&bs[t / kQB][(t % kQB) * 4], bytes ? a.B + std::int64_t(k) * a.ldb + c : a.B, bytes);
  }
};

// Which outputs thread t computes: kTile / 16 rows (8 or 4) and 8 columns of the tile, as
// groups of 4 (rows r0 + i, and r1 + i for the second four; columns c0 + j, c1 + j).
//   128 x 128, kWarp false (step 1): a 16 x 16 grid of threads, rows {4 ty + i, 64 + 4 ty
//     + i}, columns {4 tx + j, 64 + 4 tx + j}; a warp covers 16 rows x 128 columns.
//   128 x 128, kWarp true (warp tiling): 2 x 4 warps of 64 x 32 outputs; in a warp, lanes
//     8 x 4 with rows {32 h + 4 lm + i} and columns {16 h + 4 ln + j} of the warp's tile:
//     per k step a warp reads 2 x 8 distinct 16-byte A words and 2 x 4 B words (a warp of
//     step 1 reads 2 x 2 and 2 x 16): 4 shared-memory wavefronts instead of ~10 for the
//     same 512 FMAs per lane.
//   64 x 64 (tile64): a 16 x 8 grid of threads, rows 4 ty + i, columns {4 tx + j, 32 + 4 tx
//     + j}: a warp's B reads are 8 consecutive 16-byte words (one wavefront), its A reads
//     4 words (broadcasts).
template <bool kWarp, int kTile = kBM>
struct Map {
  int r0, r1, c0, c1;  // the first row of each row group, the first column of each column group
  __device__ Map() {
    const int t = threadIdx.x;
    if constexpr (kTile == kBS) {
      r0 = r1 = 4 * (t / 8), c0 = 4 * (t % 8), c1 = 32 + c0;
    } else if constexpr (!kWarp) {
      const int tx = t % 16, ty = t / 16;
      r0 = 4 * ty, r1 = 64 + 4 * ty, c0 = 4 * tx, c1 = 64 + 4 * tx;
    } else {
      const int w = t / 32, lane = t % 32, wm = w / 4, wn = w % 4, lm = lane / 4, ln = lane % 4;
      r0 = 64 * wm + 4 * lm, r1 = r0 + 32, c0 = 32 * wn + 4 * ln, c1 = c0 + 16;
    }
  }
};

// The FP32 SGEMM in its configurations (cuda/gemm.hpp): kTile 128 (step 1, warp tiling,
// cp.async; 256 threads, two blocks per SM) or 64 (tile64: 128 threads of 4 x 8 outputs,
// step 1's scheme otherwise; four blocks per SM). A problem whose 128 x 128 grid leaves
// SMs idle gets four times the blocks from tile64 (an MLP layer at batch 1024: 16 tiles of
// 128 for 132 SMs, 64 of 64); per k step its threads do 32 FMAs for 3 shared 128-bit
// loads (step 1: 64 for 4). One body for both: kRows, the second A read and the second
// row group fold away at 64 (the 128 instantiations' PTX is step 1's, byte for byte).
template <int kTile, bool kTA, bool kTB, bool kWarp, bool kAsync>
__global__ void __launch_bounds__(2 * kTile, kTile == kBM ? 2 : 4) sgemm_tiled(Args a, bool vec) {
  static_assert(kTile == kBM || (kTile == kBS && !kWarp && !kAsync), "tile64 is step 1's scheme only");
  constexpr int kRows = kTile / 16;  // a thread's rows: 8 or 4
  if (a.kslice > 0) {  // this block's slice of K as a GEMM of its own
    const int kb = blockIdx.z * a.kslice;
    a.A += kTA ? std::int64_t(kb) * a.lda : kb;
    a.B += kTB ? kb : std::int64_t(kb) * a.ldb;
    a.K = min(a.kslice, a.K - kb);
    a.C += std::int64_t(blockIdx.z) * a.M * a.ldc;
  }
  __shared__ __align__(16) float as[2][kBK][kTile];
  __shared__ __align__(16) float bs[2][kBK][kTile];
  const int m0 = blockIdx.y * kTile, n0 = blockIdx.x * kTile;
  const Map<kWarp, kTile> map;
  using L = Loader<kTA, kTB, kTile, kTile, kTile, kTile>;
  // By cp.async: the natural operands, when the caller found every row 16-byte aligned.
  constexpr bool kAsyncA = kAsync && kTA, kAsyncB = kAsync && !kTB;
  // Whole tiles take the vector path: in bounds in m, n and k, and aligned rows.
  const bool mn_whole = vec && m0 + kTile <= a.M && n0 + kTile <= a.N;
  float acc[kRows][8] = {};
  float ra[4], rb[4];
  if constexpr (kAsyncA) L::async_a(a, m0, 0, as[0]);
  if constexpr (kAsyncB) L::async_b(a, n0, 0, bs[0]);
  if constexpr (!kAsyncA) L::load_a(a, m0, 0, mn_whole && kBK <= a.K, ra), L::store_a(ra, as[0]);
  if constexpr (!kAsyncB) L::load_b(a, n0, 0, mn_whole && kBK <= a.K, rb), L::store_b(rb, bs[0]);
  if constexpr (kAsync) cp_async_commit(), cp_async_wait_all();
  __syncthreads();
  int buf = 0;
  for (int k0 = 0; k0 < a.K; k0 += kBK) {
    const bool more = k0 + kBK < a.K;
    if (more) {  // the next k step: cp.async straight to the other buffer, or registers
      const bool whole = mn_whole && k0 + 2 * kBK <= a.K;
      if constexpr (kAsyncA) L::async_a(a, m0, k0 + kBK, as[buf ^ 1]);
      if constexpr (kAsyncB) L::async_b(a, n0, k0 + kBK, bs[buf ^ 1]);
      if constexpr (kAsync) cp_async_commit();
      if constexpr (!kAsyncA) L::load_a(a, m0, k0 + kBK, whole, ra);
      if constexpr (!kAsyncB) L::load_b(a, n0, k0 + kBK, whole, rb);
    }
#pragma unroll
    for (int k = 0; k < kBK; ++k) {
      const float4 a0 = *reinterpret_cast<const float4*>(&as[buf][k][map.r0]);
      const float4 a1 = kRows == 8 ? *reinterpret_cast<const float4*>(&as[buf][k][map.r1]) : a0;
      const float4 b0 = *reinterpret_cast<const float4*>(&bs[buf][k][map.c0]);
      const float4 b1 = *reinterpret_cast<const float4*>(&bs[buf][k][map.c1]);
      const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < kRows; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    if (more) {
      if constexpr (!kAsyncA) L::store_a(ra, as[buf ^ 1]);
      if constexpr (!kAsyncB) L::store_b(rb, bs[buf ^ 1]);
      if constexpr (kAsync) cp_async_wait_all();
      __syncthreads();
      buf ^= 1;
    }
  }
  // Epilogue: C = act(alpha acc + beta C + bias), row by row, 4 columns at a time.
#pragma unroll
  for (int i = 0; i < kRows; ++i) {
    const int r = m0 + (i < 4 ? map.r0 + i : map.r1 + i - 4);
    if (r >= a.M) continue;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int c = n0 + (h == 0 ? map.c0 : map.c1);
      float* out = a.C + std::int64_t(r) * a.ldc + c;
      float v[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) v[j] = a.alpha * acc[i][h * 4 + j];
      if (vec && c + 4 <= a.N) {
        if (a.beta != 0.0f) {
          const float4 old = *reinterpret_cast<const float4*>(out);
          v[0] += a.beta * old.x, v[1] += a.beta * old.y, v[2] += a.beta * old.z, v[3] += a.beta * old.w;
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) v[j] = activate(a.act, a.slope, v[j] + (a.bias ? a.bias[c + j] : 0.0f));
        *reinterpret_cast<float4*>(out) = make_float4(v[0], v[1], v[2], v[3]);
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (c + j < a.N) {
            float x = v[j] + (a.beta != 0.0f ? a.beta * out[j] : 0.0f) + (a.bias ? a.bias[c + j] : 0.0f);
            out[j] = activate(a.act, a.slope, x);
          }
      }
    }
  }
}

// ---- TF32 tensor cores (opt-in: gemm_tf32) ----
// mma.sync.m16n8k8 with TF32 inputs (10-bit mantissa, rounded to nearest by cvt.rna)
// and FP32 accumulation, sm_80+. The same 128 x 128 block tiles, k steps of 8, loader
// and register double buffering as the FP32 kernels; 8 warps as 2 x 4 of 64 x 32
// outputs, each warp 4 x 4 mma tiles of 16 x 8. Shared rows padded to 136 floats so that
// the fragment reads (lanes: k = lane % 4 across rows, m or n = lane / 4 along them) hit
// 32 distinct banks. Fragment layouts: PTX ISA, "Matrix Fragments for mma.m16n8k8"
// (tf32): a0 (g, t) a1 (g + 8, t) a2 (g, t + 4) a3 (g + 8, t + 4); b0 (k t, n g),
// b1 (k t + 4, n g); c0/c1 (g, 2t / 2t + 1), c2/c3 (g + 8, 2t / 2t + 1), with g = lane / 4,
// t = lane % 4.
constexpr int kLdTc = 136;

// A warp's 64 x 32 tile of mma accumulators (4 x 4 tiles of 16 x 8, element e of a tile
// at row g + 8 (e / 2), column 2 t + e % 2) through the epilogue into C:
// C = act(alpha acc + beta C + bias), element by element.
template <class E>
__device__ __forceinline__ void store_warp_tile(const ArgsOf<E>& a, int row0, int col0, int g, int t,
                                                const float (&acc)[4][4][4]) {
#pragma unroll
  for (int mi = 0; mi < 4; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = row0 + 16 * mi + g + (e >= 2 ? 8 : 0), c = col0 + 8 * ni + 2 * t + (e & 1);
        if (r >= a.M || c >= a.N) continue;
        float* out = a.C + std::int64_t(r) * a.ldc + c;
        const float x = a.alpha * acc[mi][ni][e] + (a.beta != 0.0f ? a.beta * *out : 0.0f) + (a.bias ? a.bias[c] : 0.0f);
        *out = activate(a.act, a.slope, x);
      }
}

template <bool kTA, bool kTB>
__global__ void __launch_bounds__(kThreads, 2) sgemm_tf32_128x128(Args a, bool vec) {
  __shared__ __align__(16) float as[2][kBK][kLdTc];
  __shared__ __align__(16) float bs[2][kBK][kLdTc];
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  const int lane = threadIdx.x % 32, w = threadIdx.x / 32, g = lane / 4, t = lane % 4;
  const int wm = 64 * (w / 4), wn = 32 * (w % 4);
  using L = Loader<kTA, kTB, kLdTc, kLdTc>;
  const bool mn_whole = vec && m0 + kBM <= a.M && n0 + kBN <= a.N;
  float acc[4][4][4] = {};  // [m tile][n tile][c0..c3]
  float ra[4], rb[4];
  auto round_regs = [&] {
#pragma unroll
    for (int i = 0; i < 4; ++i) ra[i] = to_tf32(ra[i]), rb[i] = to_tf32(rb[i]);
  };
  L::load_a(a, m0, 0, mn_whole && kBK <= a.K, ra);
  L::load_b(a, n0, 0, mn_whole && kBK <= a.K, rb);
  round_regs();
  L::store_a(ra, as[0]);
  L::store_b(rb, bs[0]);
  __syncthreads();
  int buf = 0;
  for (int k0 = 0; k0 < a.K; k0 += kBK) {
    const bool more = k0 + kBK < a.K;
    if (more) {
      const bool whole = mn_whole && k0 + 2 * kBK <= a.K;
      L::load_a(a, m0, k0 + kBK, whole, ra);
      L::load_b(a, n0, k0 + kBK, whole, rb);
    }
    unsigned af[4][4], bf[4][2];
#pragma unroll
    for (int mi = 0; mi < 4; ++mi) {
      const int r = wm + 16 * mi + g;
      af[mi][0] = __float_as_uint(as[buf][t][r]);
      af[mi][1] = __float_as_uint(as[buf][t][r + 8]);
      af[mi][2] = __float_as_uint(as[buf][t + 4][r]);
      af[mi][3] = __float_as_uint(as[buf][t + 4][r + 8]);
    }
#pragma unroll
    for (int ni = 0; ni < 4; ++ni) {
      const int c = wn + 8 * ni + g;
      bf[ni][0] = __float_as_uint(bs[buf][t][c]);
      bf[ni][1] = __float_as_uint(bs[buf][t + 4][c]);
    }
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) mma_tf32(acc[mi][ni], af[mi], bf[ni]);
    if (more) {
      round_regs();
      L::store_a(ra, as[buf ^ 1]);
      L::store_b(rb, bs[buf ^ 1]);
      __syncthreads();
      buf ^= 1;
    }
  }
  store_warp_tile(a, m0 + wm, n0 + wn, g, t, acc);
}

// ---- BF16 tensor cores (gemm_bf16): C = act(alpha A B^T + beta C + bias) ----
// A (M x K) and B (N x K) row-major bf16, FP32 accumulation and output: the layout of a
// Linear layer's forward, where both operands run along k, as mma.sync m16n8k16 wants
// them (a register holds two consecutive k of one row). 128 x 128 block tiles, k steps
// of 32 (two mma k steps), two shared stages filled by cp.async (16 bytes = 8 bf16; a
// chunk past K or the matrix is zero-filled) when rows are 16-byte aligned, else by
// 2-byte loads; 8 warps as 2 x 4 of 64 x 32, each 4 x 4 mma tiles of 16 x 8. Shared rows
// are 40 bf16 (80 bytes): the fragment reads of a warp (rows g, words t) hit 32 distinct
// banks. Fragments (PTX ISA, "Matrix Fragments for mma.m16n8k16", .bf16): register 0 of
// A = (g, 2t..2t+1), 1 = (g + 8, 2t..), 2 = (g, 2t + 8..), 3 = (g + 8, 2t + 8..); B:
// 0 = (k 2t..2t+1, n g), 1 = (k 2t + 8.., n g); C as for m16n8k8.
constexpr int kBkBf = 32, kLdBf = kBkBf + 8;

using ArgsBf16 = ArgsOf<std::uint16_t>;

// The 2-byte fallbacks of the tile loaders below (rows not 16-byte aligned), out of line:
// rare, and inlined they would hold registers the cp.async path needs.
__device__ TG_NOINLINE void load_tile_bf16_scalar(std::uint16_t (*tile)[kLdBf], const std::uint16_t* m, int ld, int r0,
                                                   int rows, int k0, int K) {
  for (int e = threadIdx.x; e < kBM * kBkBf; e += kThreads) {
    const int r = e / kBkBf, k = e % kBkBf;
    tile[r][k] = (r0 + r < rows && k0 + k < K) ? m[std::int64_t(r0 + r) * ld + k0 + k] : std::uint16_t(0);
  }
}

// Rows r0.. (128 of them, `rows` in the matrix) and k0.. (32) of a row-major bf16 matrix
// into a shared tile [128][kLdBf]: two 16-byte cp.async per thread, or 2-byte loads.
__device__ __forceinline__ void load_tile_bf16(std::uint16_t (*tile)[kLdBf], const std::uint16_t* m, int ld, int r0,
                                               int rows, int k0, int K, bool vec) {
  if (!vec) return load_tile_bf16_scalar(tile, m, ld, r0, rows, k0, K);
#pragma unroll
  for (int part = 0; part < 2; ++part) {
    const int chunk = threadIdx.x + part * kThreads, r = chunk / 4, k = (chunk % 4) * 8;
    const int bytes = r0 + r < rows ? max(0, min(16, (K - (k0 + k)) * 2)) : 0;
    cp_async16(&tile[r][k], bytes ? m + std::int64_t(r0 + r) * ld + k0 + k : m, bytes);
  }
}

// kF16: f16 inputs (gemm_f16), else bf16.
template <bool kF16>
__global__ void __launch_bounds__(kThreads, 2) gemm_half_128x128(ArgsBf16 a, bool vec) {
  __shared__ __align__(16) std::uint16_t as[2][kBM][kLdBf];
  __shared__ __align__(16) std::uint16_t bs[2][kBN][kLdBf];
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  const int lane = threadIdx.x % 32, w = threadIdx.x / 32, g = lane / 4, t = lane % 4;
  const int wm = 64 * (w / 4), wn = 32 * (w % 4);
  float acc[4][4][4] = {};
  load_tile_bf16(as[0], a.A, a.lda, m0, a.M, 0, a.K, vec);
  load_tile_bf16(bs[0], a.B, a.ldb, n0, a.N, 0, a.K, vec);
  cp_async_commit();
  int buf = 0;
  for (int k0 = 0; k0 < a.K; k0 += kBkBf) {
    if (k0 + kBkBf < a.K) {  // the next stage streams in while this one is multiplied
      load_tile_bf16(as[buf ^ 1], a.A, a.lda, m0, a.M, k0 + kBkBf, a.K, vec);
      load_tile_bf16(bs[buf ^ 1], a.B, a.ldb, n0, a.N, k0 + kBkBf, a.K, vec);
    }
    cp_async_commit();
    cp_async_wait<1>();  // this stage has landed
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBkBf; kk += 16) {
      unsigned af[4][4], bf[4][2];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) {
        const int r = wm + 16 * mi + g;
        af[mi][0] = *reinterpret_cast<const unsigned*>(&as[buf][r][kk + 2 * t]);
        af[mi][1] = *reinterpret_cast<const unsigned*>(&as[buf][r + 8][kk + 2 * t]);
        af[mi][2] = *reinterpret_cast<const unsigned*>(&as[buf][r][kk + 2 * t + 8]);
        af[mi][3] = *reinterpret_cast<const unsigned*>(&as[buf][r + 8][kk + 2 * t + 8]);
      }
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) {
        const int c = wn + 8 * ni + g;
        bf[ni][0] = *reinterpret_cast<const unsigned*>(&bs[buf][c][kk + 2 * t]);
        bf[ni][1] = *reinterpret_cast<const unsigned*>(&bs[buf][c][kk + 2 * t + 8]);
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) mma16<kF16>(acc[mi][ni], af[mi], bf[ni]);
    }
    __syncthreads();  // every warp is done with this stage before it is refilled
    buf ^= 1;
  }
  store_warp_tile(a, m0 + wm, n0 + wn, g, t, acc);
}


// The ring configuration of the 16-bit kernel (HalfGemmPath::mma_sync_ring): the same
// tiles, warps and epilogue, with kRing shared stages filled by cp.async (a 3-deep ring:
// two k steps in flight while one is multiplied; 60 KiB of dynamic shared memory, two
// blocks per SM) and the fragments read by ldmatrix (four 8 x 8 matrices per instruction
// instead of one 32-bit read per register). The padded 80-byte rows that keep the 32-bit
// reads conflict-free keep ldmatrix's eight 16-byte row reads on distinct banks too
// (offsets 80 r mod 128 cover all 32 banks for r = 0..7): no swizzle needed.
//
// It also takes the operands the other way round (kAK: A stored K x M, i.e. op(A) = A^T;
// kBK: B stored K x N), which autocast's backward products need: such a tile is stored
// as it lies, 32 k rows of 128 values padded to 136 (272-byte rows: ldmatrix's eight
// rows again on distinct banks), and its fragments come by ldmatrix.trans, which hands
// each lane two consecutive k of one row or column, as mma wants them.
constexpr int kRing = 3;
constexpr int kLdK = kBM + 8;        // a k-major tile's row: 128 values and 8 of padding
constexpr int kStage = kBM * kLdBf;  // one operand's stage, in 16-bit values (either layout)
static_assert(kBkBf * kLdK <= kStage, "a k-major tile fits the stage of an m-major one");
constexpr std::size_t kRingBytes = std::size_t(kRing) * 2 * kStage * sizeof(std::uint16_t);

// k0.. (32 rows) and columns c0.. (128, `cols` in the matrix) of a K x cols row-major
// 16-bit matrix into a k-major shared tile [32][kLdK]: two 16-byte cp.async per thread,
// zero-filled past K and cols, or 2-byte loads.
__device__ TG_NOINLINE void load_tile_kmajor_scalar(std::uint16_t (*tile)[kLdK], const std::uint16_t* m, int ld,
                                                     int c0, int cols, int k0, int K) {
  for (int e = threadIdx.x; e < kBkBf * kBM; e += kThreads) {
    const int k = e / kBM, c = e % kBM;
    tile[k][c] = (k0 + k < K && c0 + c < cols) ? m[std::int64_t(k0 + k) * ld + c0 + c] : std::uint16_t(0);
  }
}
__device__ __forceinline__ void load_tile_kmajor(std::uint16_t (*tile)[kLdK], const std::uint16_t* m, int ld, int c0,
                                                 int cols, int k0, int K, bool vec) {
  if (!vec) return load_tile_kmajor_scalar(tile, m, ld, c0, cols, k0, K);
#pragma unroll
  for (int part = 0; part < 2; ++part) {
    const int chunk = threadIdx.x + part * kThreads, k = chunk / 16, c = (chunk % 16) * 8;
    const int bytes = k0 + k < K ? max(0, min(16, (cols - (c0 + c)) * 2)) : 0;
    cp_async16(&tile[k][c], bytes ? m + std::int64_t(k0 + k) * ld + c0 + c : m, bytes);
  }
}

// One operand's k step (32 deep) into its stage, in the layout kKMajor says.
template <bool kKMajor>
__device__ __forceinline__ void load_stage(std::uint16_t* stage, const std::uint16_t* m, int ld, int r0, int rows,
                                           int k0, int K, bool vec) {
  if constexpr (kKMajor) load_tile_kmajor(reinterpret_cast<std::uint16_t(*)[kLdK]>(stage), m, ld, r0, rows, k0, K, vec);
  else load_tile_bf16(reinterpret_cast<std::uint16_t(*)[kLdBf]>(stage), m, ld, r0, rows, k0, K, vec);
}

template <bool kF16, bool kAK = false, bool kBK = false>
__global__ void __launch_bounds__(kThreads, 2) gemm_half_ring_128x128(ArgsBf16 a, bool vec) {
  TG_DYNAMIC_SHARED(std::uint16_t, ring);  // [kRing][A, B][kStage]
  auto stage = [&](int s, int which) { return ring + (2 * s + which) * kStage; };
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  const int lane = threadIdx.x % 32, w = threadIdx.x / 32, g = lane / 4, t = lane % 4;
  const int wm = 64 * (w / 4), wn = 32 * (w % 4);
  const int ktiles = (a.K + kBkBf - 1) / kBkBf;
  float acc[4][4][4] = {};
  // Stages 0 .. kRing - 2 first; one commit group per k step, empty ones included, so
  // that "wait until kRing - 2 groups are pending" always means "this step has landed".
  for (int s = 0; s < kRing - 1; ++s) {
    if (s < ktiles) {
      load_stage<kAK>(stage(s, 0), a.A, a.lda, m0, a.M, s * kBkBf, a.K, vec);
      load_stage<kBK>(stage(s, 1), a.B, a.ldb, n0, a.N, s * kBkBf, a.K, vec);
    }
    cp_async_commit();
  }
  // ldmatrix rows. m-major A: matrices (rows 0-7 | 8-15) x (k 0-7 | 8-15) give a0..a3;
  // n-major B: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) give two
  // n tiles' b0, b1. k-major (by .trans): A's matrices (k 0-7 | 8-15) x (m 0-7 | 8-15) in
  // the order (k 0, m 0), (k 0, m 8), (k 8, m 0), (k 8, m 8) give a0..a3; B's (k 0-7 |
  // 8-15) x (n 0-7 | 8-15) in the order (k 0, n 0), (k 8, n 0), (k 0, n 8), (k 8, n 8)
  // give two n tiles' b0, b1.
  // This lane's ldmatrix row within a stage, for k step 0 and the warp's first tile.
  const int r8 = lane % 8, hi8 = 8 * ((lane / 8) % 2), q8 = 8 * (lane / 16);
  const int a_off = kAK ? (q8 + r8) * kLdK + hi8 : (r8 + hi8) * kLdBf + q8;
  const int b_off = kBK ? (r8 + hi8) * kLdK + q8 : (r8 + q8) * kLdBf + hi8;
  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<kRing - 2>();
    __syncthreads();  // step kt is in for every thread, and step kt - 1's stage is free
    if (const int next = kt + kRing - 1; next < ktiles) {
      load_stage<kAK>(stage(next % kRing, 0), a.A, a.lda, m0, a.M, next * kBkBf, a.K, vec);
      load_stage<kBK>(stage(next % kRing, 1), a.B, a.ldb, n0, a.N, next * kBkBf, a.K, vec);
    }
    cp_async_commit();
    const std::uint16_t* as = stage(kt % kRing, 0);
    const std::uint16_t* bs = stage(kt % kRing, 1);
#pragma unroll
    for (int kk = 0; kk < kBkBf; kk += 16) {
      unsigned af[4][4], bf[4][2];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) {
        if constexpr (kAK) ldmatrix_x4_trans(af[mi], as + a_off + kk * kLdK + wm + 16 * mi);
        else ldmatrix_x4(af[mi], as + a_off + (wm + 16 * mi) * kLdBf + kk);
      }
#pragma unroll
      for (int p = 0; p < 2; ++p) {
        unsigned r[4];
        if constexpr (kBK) ldmatrix_x4_trans(r, bs + b_off + kk * kLdK + wn + 16 * p);
        else ldmatrix_x4(r, bs + b_off + (wn + 16 * p) * kLdBf + kk);
        bf[2 * p][0] = r[0], bf[2 * p][1] = r[1], bf[2 * p + 1][0] = r[2], bf[2 * p + 1][1] = r[3];
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) mma16<kF16>(acc[mi][ni], af[mi], bf[ni]);
    }
  }
  store_warp_tile(a, m0 + wm, n0 + wn, g, t, acc);
}

// Split-K's second pass: C = act(sum of the slices + beta C + bias), the slices added in
// order (the same bits every run).
__global__ void reduce_slices(Args a, const float* ws, int slices) {
  const std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
  if (i >= std::int64_t(a.M) * a.N) return;
  const int r = int(i / a.N), c = int(i % a.N);
  float x = 0;
  for (int z = 0; z < slices; ++z) x += ws[std::int64_t(z) * a.M * a.N + i];
  float* out = a.C + std::int64_t(r) * a.ldc + c;
  x += (a.beta != 0.0f ? a.beta * *out : 0.0f) + (a.bias ? a.bias[c] : 0.0f);
  *out = activate(a.act, a.slope, x);
}

// K == 0 or alpha == 0: C = act(beta C + bias), no product.
__global__ void scale_c(Args a) {
  const std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
  if (i >= std::int64_t(a.M) * a.N) return;
  const int r = int(i / a.N), c = int(i % a.N);
  float* out = a.C + std::int64_t(r) * a.ldc + c;
  const float x = (a.beta != 0.0f ? a.beta * *out : 0.0f) + (a.bias ? a.bias[c] : 0.0f);
  *out = activate(a.act, a.slope, x);
}

}  // namespace tg::cuda::gemmk
