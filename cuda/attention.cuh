// Fused attention on CUDA, FP32 (FlashAttention-2, Dao 2023, on CUDA cores), forward and
// backward: the contract of kernels/attention.hpp (strided Q, K, V, O in any layout, GQA,
// bottom-right causal masking, an additive broadcast mask, fully masked rows -> O = 0 and
// lse = -inf) with no score matrix in memory.
//
// A block of 256 threads owns 64 query rows of one (batch, head): Q tile in shared
// memory, then K and V tiles of 64 keys streamed through shared memory; per tile the
// 64 x 64 scores (thread (ty, tx) of the 16 x 16 grid holds rows 4 ty + i and keys
// 16 jj + tx: 128-bit reads along d, conflict-free with rows padded by 4 floats), the
// online softmax (row max and sum by shuffles across the 16 lanes of a row group), the
// probabilities through shared memory into O += P V (dims tx + 16 c of the thread's
// rows in registers). Causal tiles above the diagonal are never loaded. Head dims up
// to 256, in four compiled widths (32, 64, 128, 256; the rest zero-padded).
//
// The kernels live here, apart from their launches (cuda/attention.cu), so that the host
// SIMT emulator (tests/simt) can run the same source on the CPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "tilegrad/cuda/mma.cuh"
#include "tilegrad/kernels/attention.hpp"

namespace tg::cuda::attn32 {

using i64 = std::int64_t;
constexpr int kTile = 64, kThreads = 256;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Fwd {
  int B, H, Hkv, Sq, Sk, D;
  float scale;
  bool causal;
  View4<const float> q, k, v, mask;
  View4<float> o;
  float* lse;
  bool async_kv;  // K and V rows are 16-byte aligned with unit stride along d: cp.async
};

// K and V tiles double-buffered where two fit the shared memory (head dims to 128).
template <int kD>
constexpr int kv_buffers() {
  return kD <= 128 ? 2 : 1;
}
template <int kD>
constexpr std::size_t smem_bytes() {
  return sizeof(float) * (kTile * (kD + 4) + kv_buffers<kD>() * kTile * (2 * kD + 4) + kTile * kTile);
}

__device__ __forceinline__ float row_max16(float v) {
  for (int o = 8; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float row_sum16(float v) {
  for (int o = 8; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Loads a 64-row tile (rows r0.., head-dim columns) of a strided (s, d) matrix into
// shared memory with row stride ld, zeros past the matrix.
template <int kD>
__device__ __forceinline__ void load_tile(float* dst, int ld, const float* src, i64 ss, i64 sd, int r0, int rows, int D) {
  for (int idx = threadIdx.x; idx < kTile * kD; idx += kThreads) {
    const int r = idx / kD, d = idx % kD;
    dst[r * ld + d] = (r0 + r < rows && d < D) ? src[i64(r0 + r) * ss + i64(d) * sd] : 0.0f;
  }
}

// The same tile by cp.async (K, V with unit stride along d and 16-byte aligned rows):
// 16-byte copies, a partial one at D's end and zeros past it or past the matrix. The
// copies land at the caller's cp.async wait.
template <int kD>
__device__ __forceinline__ void load_tile_async(float* dst, int ld, const float* src, i64 ss, int r0, int rows, int D) {
  constexpr int kChunks = kD / 4;
  for (int idx = threadIdx.x; idx < kTile * kChunks; idx += kThreads) {
    const int r = idx / kChunks, d = (idx % kChunks) * 4;
    const int bytes = r0 + r < rows ? 4 * max(0, min(4, D - d)) : 0;
    cp_async16(dst + r * ld + d, bytes ? src + i64(r0 + r) * ss + d : src, bytes);
  }
}

// Dot products of 4 rows of `a` (rows 4 ty + i) with 4 rows of `b` (rows 16 jj + tx),
// both tiles with row stride kLd: 128-bit reads along d.
template <int kD>
__device__ __forceinline__ void dots(const float* a, const float* b, int ty, int tx, float (&out)[4][4]) {
  constexpr int kLd = kD + 4;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) out[i][j] = 0.0f;
#pragma unroll 4
  for (int d = 0; d < kD; d += 4) {
    float4 av[4], bv[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) av[i] = *reinterpret_cast<const float4*>(&a[(4 * ty + i) * kLd + d]);
#pragma unroll
    for (int j = 0; j < 4; ++j) bv[j] = *reinterpret_cast<const float4*>(&b[(16 * j + tx) * kLd + d]);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
        out[i][j] += av[i].x * bv[j].x + av[i].y * bv[j].y + av[i].z * bv[j].z + av[i].w * bv[j].w;
  }
}

// acc[i][c] += sum_j w[4 ty + i][j] m[j][tx + 16 c] over the 64 j of a tile: w a 64 x 64
// tile (row stride 64, read 128 bits at a time), m a 64-row tile with row stride ld.
template <int kD>
__device__ __forceinline__ void accumulate(const float* w, const float* m, int ld, int ty, int tx,
                                           float (&acc)[4][kD / 16]) {
#pragma unroll 2
  for (int j = 0; j < kTile; j += 4) {
    float4 w4[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) w4[i] = *reinterpret_cast<const float4*>(&w[(4 * ty + i) * kTile + j]);
#pragma unroll
    for (int c = 0; c < kD / 16; ++c) {
      const int d = tx + 16 * c;
      const float m0 = m[j * ld + d], m1 = m[(j + 1) * ld + d], m2 = m[(j + 2) * ld + d], m3 = m[(j + 3) * ld + d];
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[i][c] += w4[i].x * m0 + w4[i].y * m1 + w4[i].z * m2 + w4[i].w * m3;
    }
  }
}

// This query tile's lse and D_i in shared memory (-inf and 0 past the sequence).
__device__ __forceinline__ void load_row_stats(const float* lse, const float* dvec, i64 first_row, int q0, int Sq,
                                               float* lse_s, float* dvec_s) {
  const int t = threadIdx.x;
  if (t < kTile) {
    lse_s[t] = q0 + t < Sq ? lse[first_row + q0 + t] : kNegInf;
    dvec_s[t] = q0 + t < Sq ? dvec[first_row + q0 + t] : 0.0f;
  }
}

template <int kD>
__global__ void __launch_bounds__(kThreads, 1) attention_fwd(Fwd a) {
  constexpr int kLd = kD + 4, kC = kD / 16, kBufs = kv_buffers<kD>();
  TG_DYNAMIC_SHARED(float, smem);
  float* qs = smem;                      // [64][kLd]
  float* ks = qs + kTile * kLd;          // [kBufs][64][kLd]
  float* vs = ks + kBufs * kTile * kLd;  // [kBufs][64][kD]
  float* ps = vs + kBufs * kTile * kD;   // [64][64]
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * kTile;
  const int hk = h / (a.H / a.Hkv);
  const float* qg = a.q.data + i64(b) * a.q.sb + i64(h) * a.q.sh;
  const float* kg = a.k.data + i64(b) * a.k.sb + i64(hk) * a.k.sh;
  const float* vg = a.v.data + i64(b) * a.v.sb + i64(hk) * a.v.sh;

  load_tile<kD>(qs, kLd, qg, a.q.ss, a.q.sd, q0, a.Sq, a.D);

  float o[4][kC];
  float m[4], l[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    m[i] = kNegInf, l[i] = 0.0f;
#pragma unroll
    for (int c = 0; c < kC; ++c) o[i][c] = 0.0f;
  }
  // Keys a row of this tile can see: all, or (causal) up to q0 + 63 + Sk - Sq.
  const int shift = a.Sk - a.Sq;
  const int k_end = a.causal ? min(a.Sk, max(0, q0 + kTile + shift)) : a.Sk;
  // Key tile `it` into buffer it % kBufs: by cp.async where the layout allows (in flight
  // while the tile before is multiplied, when there are two buffers), else by loads.
  auto load_kv = [&](int it) {
    float* kb = ks + (it % kBufs) * kTile * kLd;
    float* vb = vs + (it % kBufs) * kTile * kD;
    if (a.async_kv) {
      load_tile_async<kD>(kb, kLd, kg, a.k.ss, it * kTile, a.Sk, a.D);
      load_tile_async<kD>(vb, kD, vg, a.v.ss, it * kTile, a.Sk, a.D);
    } else {
      load_tile<kD>(kb, kLd, kg, a.k.ss, a.k.sd, it * kTile, a.Sk, a.D);
      load_tile<kD>(vb, kD, vg, a.v.ss, a.v.sd, it * kTile, a.Sk, a.D);
    }
    cp_async_commit();  // one group per tile, empty on the load path
  };
  const int tiles = (k_end + kTile - 1) / kTile;
  if (kBufs == 2 && tiles > 0) load_kv(0);
  for (int it = 0; it < tiles; ++it) {
    const int k0 = it * kTile;
    __syncthreads();  // every thread is done with tile it - 1 (its buffers and ps; Q is stored)
    if (kBufs == 1) {
      load_kv(it);
      cp_async_wait<0>();
    } else {
      if (it + 1 < tiles) load_kv(it + 1);
      else cp_async_commit();  // keep one group per step: wait<1> below means "tile it is in"
      cp_async_wait<1>();
    }
    __syncthreads();  // tile it is in for every thread
    const float* ks_it = ks + (it % kBufs) * kTile * kLd;
    const float* vs_it = vs + (it % kBufs) * kTile * kD;
    float s[4][4];
    dots<kD>(qs, ks_it, ty, tx, s);  // scores of rows 4 ty + i, keys 16 jj + tx
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int qi = q0 + 4 * ty + i;
      float row_max = kNegInf;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int kj = k0 + 16 * j + tx;
        const bool seen = kj < a.Sk && qi < a.Sq && (!a.causal || kj <= qi + shift);
        float x = kNegInf;
        if (seen) {
          x = a.scale * s[i][j];
          if (a.mask.data) x += a.mask.data[i64(b) * a.mask.sb + i64(h) * a.mask.sh + i64(qi) * a.mask.ss + i64(kj) * a.mask.sd];
        }
        s[i][j] = x;
        row_max = fmaxf(row_max, x);
      }
      row_max = row_max16(row_max);
      const float m_new = fmaxf(m[i], row_max);
      // exp(-inf - -inf) would be NaN: a row that has seen nothing keeps m = -inf, p = 0,
      // except for a NaN score, which fmaxf passed over: its p stays NaN, and so do l and
      // the row (a NaN row, not a masked row of zeros).
      const float alpha = m_new == kNegInf ? 1.0f : __expf(m[i] - m_new);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float p = m_new != kNegInf ? __expf(s[i][j] - m_new) : s[i][j] != s[i][j] ? s[i][j] : 0.0f;
        ps[(4 * ty + i) * kTile + 16 * j + tx] = p;
        sum += p;
      }
      l[i] = l[i] * alpha + row_sum16(sum);
      m[i] = m_new;
#pragma unroll
      for (int c = 0; c < kC; ++c) o[i][c] *= alpha;
    }
    __syncthreads();
    accumulate<kD>(ps, vs_it, kD, ty, tx, o);  // O += P V over this tile's keys
  }
  // O = o / l, lse = m + log l; a row that saw no key: O = 0 (written as such: its
  // accumulator holds 0 * v, NaN where v is infinite), lse = -inf; a NaN row (l NaN): NaN.
  float* og = a.o.data + i64(b) * a.o.sb + i64(h) * a.o.sh;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int qi = q0 + 4 * ty + i;
    if (qi >= a.Sq) continue;
    const bool masked = l[i] == 0.0f;
    const float inv = l[i] > 0.0f ? 1.0f / l[i] : l[i];  // NaN stays NaN
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      const int d = tx + 16 * c;
      if (d < a.D) og[i64(qi) * a.o.ss + i64(d) * a.o.sd] = masked ? 0.0f : o[i][c] * inv;
    }
    if (a.lse && tx == 0)
      a.lse[(i64(b) * a.H + h) * a.Sq + qi] = l[i] > 0.0f ? m[i] + logf(l[i]) : masked ? kNegInf : l[i];
  }
}


// ---- backward (FlashAttention-2's Algorithm 2 split in two passes, no atomics) ----
//   dot:  D_i = dO_i . O_i, one warp per row, into a workspace
//   kv:   a block per (batch, kv head, 64 keys) walks the query tiles of every query
//         head of its group: P and dS recomputed from lse, dV += P^T dO, dK += dS^T Q
//   q:    a block per (batch, head, 64 queries) walks the key tiles: dQ += dS K
// Each output is owned by one block and summed in a fixed order: the same bits each run.
// Head dims up to 128 (three widths).

struct Bwd {
  int B, H, Hkv, Sq, Sk, D;
  float scale;
  bool causal;
  View4<const float> q, k, v, o, d_o, mask;
  const float* lse;
  const float* dvec;  // D_i, (B, H, Sq)
  View4<float> dq, dk, dv;
};

__global__ void attention_bwd_dot(int rows, int H, int Sq, int D, View4<const float> o, View4<const float> d_o,
                                  float* out) {
  const int r = int(blockIdx.x * 8 + threadIdx.x / 32), lane = int(threadIdx.x % 32);
  if (r >= rows) return;
  const int b = r / (H * Sq), h = (r / Sq) % H, i = r % Sq;
  const float* orow = o.data + i64(b) * o.sb + i64(h) * o.sh + i64(i) * o.ss;
  const float* grow = d_o.data + i64(b) * d_o.sb + i64(h) * d_o.sh + i64(i) * d_o.ss;
  float acc = 0.0f;
  for (int d = lane; d < D; d += 32) acc += orow[i64(d) * o.sd] * grow[i64(d) * d_o.sd];
  for (int off = 16; off > 0; off /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (lane == 0) out[r] = acc;
}

template <int kD>
constexpr std::size_t bwd_smem_bytes() {
  return sizeof(float) * (4 * kTile * (kD + 4) + 2 * kTile * kTile + 2 * kTile);
}

// p and ds of score (query qi, key kj) from the dot products q.k and dO.v.
__device__ __forceinline__ void prob(const Bwd& a, int b, int h, int qi, int kj, float qk, float dov, float lse,
                                     float dvec, float& p, float& ds) {
  const bool seen = qi < a.Sq && kj < a.Sk && (!a.causal || kj <= qi + (a.Sk - a.Sq)) && lse != kNegInf;
  p = 0.0f;
  if (seen) {
    float x = a.scale * qk;
    if (a.mask.data) x += a.mask.data[i64(b) * a.mask.sb + i64(h) * a.mask.sh + i64(qi) * a.mask.ss + i64(kj) * a.mask.sd];
    p = __expf(x - lse);
  }
  // A key the row does not see (and every key of a fully masked row) gets no gradient,
  // even where dO.v is infinite (0 * inf would be NaN).
  ds = seen ? p * (dov - dvec) : 0.0f;
}

template <int kD>
__global__ void __launch_bounds__(kThreads, 1) attention_bwd_kv(Bwd a) {
  constexpr int kLd = kD + 4, kC = kD / 16;
  TG_DYNAMIC_SHARED(float, smem);
  float* ks = smem;
  float* vs = ks + kTile * kLd;
  float* qs = vs + kTile * kLd;
  float* gs = qs + kTile * kLd;      // dO
  float* ps = gs + kTile * kLd;      // [key][query]
  float* dss = ps + kTile * kTile;   // [key][query]
  float* lse_s = dss + kTile * kTile;
  float* dvec_s = lse_s + kTile;
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int b = blockIdx.z, hk = blockIdx.y, k0 = blockIdx.x * kTile, group = a.H / a.Hkv;
  load_tile<kD>(ks, kLd, a.k.data + i64(b) * a.k.sb + i64(hk) * a.k.sh, a.k.ss, a.k.sd, k0, a.Sk, a.D);
  load_tile<kD>(vs, kLd, a.v.data + i64(b) * a.v.sb + i64(hk) * a.v.sh, a.v.ss, a.v.sd, k0, a.Sk, a.D);
  float dk[4][kC] = {}, dv[4][kC] = {};
  const int shift = a.Sk - a.Sq;
  // Causal: the first query that sees key k0 is k0 - shift.
  const int q_begin = a.causal ? max(0, (k0 - shift) / kTile * kTile) : 0;
  for (int h = hk * group; h < (hk + 1) * group; ++h)
    for (int q0 = q_begin; q0 < a.Sq; q0 += kTile) {
      __syncthreads();
      load_tile<kD>(qs, kLd, a.q.data + i64(b) * a.q.sb + i64(h) * a.q.sh, a.q.ss, a.q.sd, q0, a.Sq, a.D);
      load_tile<kD>(gs, kLd, a.d_o.data + i64(b) * a.d_o.sb + i64(h) * a.d_o.sh, a.d_o.ss, a.d_o.sd, q0, a.Sq, a.D);
      load_row_stats(a.lse, a.dvec, (i64(b) * a.H + h) * a.Sq, q0, a.Sq, lse_s, dvec_s);
      __syncthreads();
      float qk[4][4], dov[4][4];
      dots<kD>(ks, qs, ty, tx, qk);   // keys 4 ty + i, queries 16 jj + tx
      dots<kD>(vs, gs, ty, tx, dov);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int key = 4 * ty + i, qr = 16 * j + tx;
          float p, ds;
          prob(a, b, h, q0 + qr, k0 + key, qk[i][j], dov[i][j], lse_s[qr], dvec_s[qr], p, ds);
          ps[key * kTile + qr] = p;
          dss[key * kTile + qr] = ds;
        }
      __syncthreads();
      accumulate<kD>(ps, gs, kLd, ty, tx, dv);   // dV += P^T dO
      accumulate<kD>(dss, qs, kLd, ty, tx, dk);  // dK += dS^T Q (scaled at the end)
    }
  float* dkg = a.dk.data + i64(b) * a.dk.sb + i64(hk) * a.dk.sh;
  float* dvg = a.dv.data + i64(b) * a.dv.sb + i64(hk) * a.dv.sh;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int key = k0 + 4 * ty + i;
    if (key >= a.Sk) continue;
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      const int d = tx + 16 * c;
      if (d >= a.D) continue;
      dkg[i64(key) * a.dk.ss + i64(d) * a.dk.sd] = a.scale * dk[i][c];
      dvg[i64(key) * a.dv.ss + i64(d) * a.dv.sd] = dv[i][c];
    }
  }
}

template <int kD>
__global__ void __launch_bounds__(kThreads, 1) attention_bwd_q(Bwd a) {
  constexpr int kLd = kD + 4, kC = kD / 16;
  TG_DYNAMIC_SHARED(float, smem);
  float* qs = smem;
  float* gs = qs + kTile * kLd;  // dO
  float* ks = gs + kTile * kLd;
  float* vs = ks + kTile * kLd;
  float* dss = vs + kTile * kLd;  // [query][key]
  float* lse_s = dss + 2 * kTile * kTile;
  float* dvec_s = lse_s + kTile;
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * kTile, hk = h / (a.H / a.Hkv);
  load_tile<kD>(qs, kLd, a.q.data + i64(b) * a.q.sb + i64(h) * a.q.sh, a.q.ss, a.q.sd, q0, a.Sq, a.D);
  load_tile<kD>(gs, kLd, a.d_o.data + i64(b) * a.d_o.sb + i64(h) * a.d_o.sh, a.d_o.ss, a.d_o.sd, q0, a.Sq, a.D);
  load_row_stats(a.lse, a.dvec, (i64(b) * a.H + h) * a.Sq, q0, a.Sq, lse_s, dvec_s);
  float dq[4][kC] = {};
  const int shift = a.Sk - a.Sq;
  const int k_end = a.causal ? min(a.Sk, max(0, q0 + kTile + shift)) : a.Sk;
  for (int k0 = 0; k0 < k_end; k0 += kTile) {
    __syncthreads();
    load_tile<kD>(ks, kLd, a.k.data + i64(b) * a.k.sb + i64(hk) * a.k.sh, a.k.ss, a.k.sd, k0, a.Sk, a.D);
    load_tile<kD>(vs, kLd, a.v.data + i64(b) * a.v.sb + i64(hk) * a.v.sh, a.v.ss, a.v.sd, k0, a.Sk, a.D);
    __syncthreads();
    float qk[4][4], dov[4][4];
    dots<kD>(qs, ks, ty, tx, qk);  // queries 4 ty + i, keys 16 jj + tx
    dots<kD>(gs, vs, ty, tx, dov);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int qr = 4 * ty + i, key = 16 * j + tx;
        float p, ds;
        prob(a, b, h, q0 + qr, k0 + key, qk[i][j], dov[i][j], lse_s[qr], dvec_s[qr], p, ds);
        dss[qr * kTile + key] = ds;
      }
    __syncthreads();
    accumulate<kD>(dss, ks, kLd, ty, tx, dq);  // dQ += dS K (scaled at the end)
  }
  float* dqg = a.dq.data + i64(b) * a.dq.sb + i64(h) * a.dq.sh;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int qi = q0 + 4 * ty + i;
    if (qi >= a.Sq) continue;
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      const int d = tx + 16 * c;
      if (d < a.D) dqg[i64(qi) * a.dq.ss + i64(d) * a.dq.sd] = a.scale * dq[i][c];
    }
  }
}

}  // namespace tg::cuda::attn32
