// Fused attention forward on CUDA, FP32 (FlashAttention-2's forward, Dao 2023, on CUDA
// cores): the contract of kernels/attention.hpp (strided Q, K, V, O in any layout, GQA,
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
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "cuda/check.cuh"
#include "cuda/ops.hpp"
#include "kernels/attention.hpp"
#include "kernels/error.hpp"

namespace tg::cuda {

namespace {

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
};

template <int kD>
constexpr std::size_t smem_bytes() {
  return sizeof(float) * (2 * kTile * (kD + 4) + kTile * kD + kTile * kTile);
}

__device__ __forceinline__ float row_max16(float v) {
  for (int o = 8; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float row_sum16(float v) {
  for (int o = 8; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <int kD>
__global__ void __launch_bounds__(kThreads, 1) attention_fwd(Fwd a) {
  constexpr int kLd = kD + 4, kC = kD / 16;
  extern __shared__ __align__(16) float smem[];
  float* qs = smem;                   // [64][kLd]
  float* ks = qs + kTile * kLd;       // [64][kLd]
  float* vs = ks + kTile * kLd;       // [64][kD]
  float* ps = vs + kTile * kD;        // [64][64]
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * kTile;
  const int hk = h / (a.H / a.Hkv);
  const float* qg = a.q.data + i64(b) * a.q.sb + i64(h) * a.q.sh;
  const float* kg = a.k.data + i64(b) * a.k.sb + i64(hk) * a.k.sh;
  const float* vg = a.v.data + i64(b) * a.v.sb + i64(hk) * a.v.sh;

  for (int idx = t; idx < kTile * kD; idx += kThreads) {
    const int r = idx / kD, d = idx % kD;
    qs[r * kLd + d] = (q0 + r < a.Sq && d < a.D) ? qg[i64(q0 + r) * a.q.ss + i64(d) * a.q.sd] : 0.0f;
  }

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
  for (int k0 = 0; k0 < k_end; k0 += kTile) {
    __syncthreads();  // the previous tile's readers are done (and Q is stored, the first time)
    for (int idx = t; idx < kTile * kD; idx += kThreads) {
      const int r = idx / kD, d = idx % kD;
      const bool in = k0 + r < a.Sk && d < a.D;
      ks[r * kLd + d] = in ? kg[i64(k0 + r) * a.k.ss + i64(d) * a.k.sd] : 0.0f;
      vs[r * kD + d] = in ? vg[i64(k0 + r) * a.v.ss + i64(d) * a.v.sd] : 0.0f;
    }
    __syncthreads();
    // Scores of rows 4 ty + i, keys 16 jj + tx.
    float s[4][4] = {};
#pragma unroll 4
    for (int d = 0; d < kD; d += 4) {
      float4 qv[4], kv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) qv[i] = *reinterpret_cast<const float4*>(&qs[(4 * ty + i) * kLd + d]);
#pragma unroll
      for (int j = 0; j < 4; ++j) kv[j] = *reinterpret_cast<const float4*>(&ks[(16 * j + tx) * kLd + d]);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          s[i][j] += qv[i].x * kv[j].x + qv[i].y * kv[j].y + qv[i].z * kv[j].z + qv[i].w * kv[j].w;
    }
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
      // exp(-inf - -inf) would be NaN: a row that has seen nothing keeps m = -inf, p = 0.
      const float alpha = m_new == kNegInf ? 1.0f : __expf(m[i] - m_new);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float p = m_new == kNegInf ? 0.0f : __expf(s[i][j] - m_new);
        ps[(4 * ty + i) * kTile + 16 * j + tx] = p;
        sum += p;
      }
      l[i] = l[i] * alpha + row_sum16(sum);
      m[i] = m_new;
#pragma unroll
      for (int c = 0; c < kC; ++c) o[i][c] *= alpha;
    }
    __syncthreads();
    // O += P V over this tile's keys.
#pragma unroll 2
    for (int j = 0; j < kTile; j += 4) {
      float4 p4[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) p4[i] = *reinterpret_cast<const float4*>(&ps[(4 * ty + i) * kTile + j]);
#pragma unroll
      for (int c = 0; c < kC; ++c) {
        const int d = tx + 16 * c;
        const float v0 = vs[j * kD + d], v1 = vs[(j + 1) * kD + d], v2 = vs[(j + 2) * kD + d], v3 = vs[(j + 3) * kD + d];
#pragma unroll
        for (int i = 0; i < 4; ++i) o[i][c] += p4[i].x * v0 + p4[i].y * v1 + p4[i].z * v2 + p4[i].w * v3;
      }
    }
  }
  // O = o / l, lse = m + log l; a row that saw no key: O = 0, lse = -inf.
  float* og = a.o.data + i64(b) * a.o.sb + i64(h) * a.o.sh;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int qi = q0 + 4 * ty + i;
    if (qi >= a.Sq) continue;
    const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      const int d = tx + 16 * c;
      if (d < a.D) og[i64(qi) * a.o.ss + i64(d) * a.o.sd] = o[i][c] * inv;
    }
    if (a.lse && tx == 0) a.lse[(i64(b) * a.H + h) * a.Sq + qi] = l[i] > 0.0f ? m[i] + logf(l[i]) : kNegInf;
  }
}

template <int kD>
void launch_fwd(const Fwd& f) {
  constexpr std::size_t bytes = smem_bytes<kD>();
  static bool raised = false;  // the opt-in above 48 KiB, once per width
  if (!raised) {
    TG_CUDA_CHECK(cudaFuncSetAttribute(attention_fwd<kD>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
    raised = true;
  }
  const dim3 grid(unsigned((f.Sq + kTile - 1) / kTile), unsigned(f.H), unsigned(f.B));
  attention_fwd<kD><<<grid, kThreads, bytes, detail::stream()>>>(f);
  TG_CUDA_LAUNCHED();
}

}  // namespace

void attention_forward(const AttentionForwardArgs<float>& args) {
  check_attention_forward("cuda::attention_forward", args);
  const AttentionDims& d = args.dims;
  TG_CHECK(d.head_dim <= 256, "cuda::attention_forward", "head_dim", "expected a head dim of at most 256, got ",
           d.head_dim);
  TG_CHECK(d.batch <= 65535 && d.heads <= 65535 && d.seq_q < (index_t(1) << 31) && d.seq_k < (index_t(1) << 31),
           "cuda::attention_forward", "dims", "expected batch and heads <= 65535 and sequences below 2^31");
  if (d.batch == 0 || d.heads == 0 || d.seq_q == 0) return;
  Fwd f{int(d.batch), int(d.heads), int(d.kv_heads), int(d.seq_q), int(d.seq_k), int(d.head_dim), args.scale,
        args.causal, args.q, args.k, args.v, args.mask, args.o, args.lse};
  if (d.head_dim <= 32) launch_fwd<32>(f);
  else if (d.head_dim <= 64) launch_fwd<64>(f);
  else if (d.head_dim <= 128) launch_fwd<128>(f);
  else launch_fwd<256>(f);
}

}  // namespace tg::cuda
