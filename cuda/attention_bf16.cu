// Fused attention forward on BF16 tensor cores (FlashAttention-2's forward with mma.sync
// m16n8k16; the CUDA path II issue). Step 1, written without a GPU (cuda/NOTES.md):
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

#include <cstdint>
#include <limits>

#include "cuda/check.cuh"
#include "cuda/launch.cuh"
#include "cuda/ops.hpp"
#include "kernels/attention.hpp"
#include "kernels/error.hpp"

namespace tg::cuda {

namespace {

using i64 = std::int64_t;
constexpr int kRows = 64, kKeys = 64, kThreads = 128;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct FwdBf16 {
  int B, H, Hkv, Sq, Sk;
  float scale;
  bool causal;
  const std::uint16_t *q, *k, *v;
  std::uint16_t* o;
  i64 qb, qh, qs, kb, kh, ks, vb, vh, vs, ob, oh, os;  // strides in elements (head dim: 1)
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

// Rows r0.. (64, `rows` in the matrix) of a (seq, kD) bf16 matrix with row stride ld into
// shared memory [64][kD + 8], 16 bytes per thread per step, zeros past the matrix.
template <int kD>
__device__ __forceinline__ void load_rows(std::uint16_t* dst, const std::uint16_t* src, i64 ld, int r0, int rows) {
  constexpr int kChunks = kD / 8;  // 16-byte pieces per row
  for (int c = int(threadIdx.x); c < kRows * kChunks; c += kThreads) {
    const int r = c / kChunks, d = (c % kChunks) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r0 + r < rows) v = *reinterpret_cast<const uint4*>(src + i64(r0 + r) * ld + d);
    *reinterpret_cast<uint4*>(dst + r * (kD + 8) + d) = v;
  }
}

// The same rows of V stored transposed: dst[d][key], row stride kKeys + 8.
template <int kD>
__device__ __forceinline__ void load_rows_transposed(std::uint16_t* dst, const std::uint16_t* src, i64 ld, int r0,
                                                     int rows) {
  constexpr int kChunks = kD / 8;
  for (int c = int(threadIdx.x); c < kKeys * kChunks; c += kThreads) {
    const int r = c / kChunks, d = (c % kChunks) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r0 + r < rows) v = *reinterpret_cast<const uint4*>(src + i64(r0 + r) * ld + d);
    const std::uint16_t* e = reinterpret_cast<const std::uint16_t*>(&v);
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[(d + i) * (kKeys + 8) + r] = e[i];
  }
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
  const std::uint16_t* q = f.q + i64(b) * f.qb + i64(h) * f.qh;
  const std::uint16_t* k = f.k + i64(b) * f.kb + i64(hk) * f.kh;
  const std::uint16_t* v = f.v + i64(b) * f.vb + i64(hk) * f.vh;

  load_rows<kD>(qs, q, f.qs, i0, f.Sq);
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
    load_rows<kD>(ks, k, f.ks, j0, f.Sk);
    load_rows_transposed<kD>(vt, v, f.vs, j0, f.Sk);
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
    std::uint16_t* out = f.o + i64(b) * f.ob + i64(h) * f.oh + i64(row[r]) * f.os + 2 * t;
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

}  // namespace

void attention_forward_bf16(const AttentionForwardArgs<bfloat16>& a, float* lse) {
  const char* op = "cuda::attention_forward_bf16";
  const AttentionDims& d = a.dims;
  TG_CHECK(d.batch >= 0 && d.heads >= 1 && d.kv_heads >= 1 && d.heads % d.kv_heads == 0, op, "dims",
           "expected batch >= 0 and heads a multiple of kv_heads >= 1, got ", d.batch, ", ", d.heads, ", ", d.kv_heads);
  TG_CHECK(d.head_dim == 64 || d.head_dim == 128, op, "head_dim", "expected 64 or 128 on this path, got ", d.head_dim);
  TG_CHECK(d.seq_q >= 0 && d.seq_k >= 0 && d.seq_q < (index_t(1) << 31) && d.seq_k < (index_t(1) << 31) &&
               d.batch * d.heads < 65536,
           op, "dims", "expected sequence lengths below 2^31 and batch x heads below 65536");
  TG_CHECK(a.mask.data == nullptr, op, "mask", "no additive mask on the bf16 path (causal is supported)");
  TG_CHECK(a.lse == nullptr, op, "lse", "the bf16 path writes lse as FP32 through its own argument");
  auto check_view = [&](const char* name, const void* p, index_t sb, index_t sh, index_t ss, index_t sd) {
    TG_CHECK(p != nullptr, op, name, "expected a device pointer");
    TG_CHECK(sd == 1 && sb % 8 == 0 && sh % 8 == 0 && ss % 8 == 0 && sb >= 0 && sh >= 0 && ss >= d.head_dim &&
                 detail::aligned16(p),
             op, name, "expected unit stride along the head dim, other strides multiples of 8 (rows >= head_dim) and "
             "16-byte alignment, got strides (", sb, ", ", sh, ", ", ss, ", ", sd, ")");
  };
  if (d.batch == 0 || d.seq_q == 0) return;
  check_view("q", a.q.data, a.q.sb, a.q.sh, a.q.ss, a.q.sd);
  check_view("k", a.k.data, a.k.sb, a.k.sh, a.k.ss, a.k.sd);
  check_view("v", a.v.data, a.v.sb, a.v.sh, a.v.ss, a.v.sd);
  check_view("o", a.o.data, a.o.sb, a.o.sh, a.o.ss, a.o.sd);
  const auto bits = [](const bfloat16* p) { return reinterpret_cast<const std::uint16_t*>(p); };
  FwdBf16 f{int(d.batch), int(d.heads), int(d.kv_heads), int(d.seq_q), int(d.seq_k), a.scale, a.causal,
            bits(a.q.data), bits(a.k.data), bits(a.v.data), reinterpret_cast<std::uint16_t*>(a.o.data),
            a.q.sb, a.q.sh, a.q.ss, a.k.sb, a.k.sh, a.k.ss, a.v.sb, a.v.sh, a.v.ss, a.o.sb, a.o.sh, a.o.ss, lse};
  if (d.head_dim == 64) launch<64>(f);
  else launch<128>(f);
}

}  // namespace tg::cuda
