// CPU GEMM, AVX2/FMA leaves: the 6x16 micro-kernel, the packers and the small path.
// Compiled with -mavx2 -mfma and reached only when cpuid says so (cpu/isa.hpp).
//
// gemm_avx2_6x16: MR x NR = 6 x 16 fp32 = 12 ymm accumulators; per k, 2 loads of B
// (16 floats) and 6 broadcasts of A feed 12 FMAs, so the 16 ymm registers hold 12
// accumulators + 2 B vectors + 1-2 A broadcasts (BLIS's Haswell sgemm shape). Two FMA
// pipes need 2 x latency (4 cycles on Zen 3/4) = 8 independent accumulators to stay
// busy; 12 leave slack, and 8 loads per 12 FMAs fit the 2-3 loads per cycle.
// cpu/gemm/NOTES.md has the measurements.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "cpu/gemm/gemm_impl.hpp"

namespace tg::cpu::gemm_impl {

namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;

// Lanes [0, n) set, for n in [0, 8] (n outside clamps).
inline __m256i lanes_below(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Activations evaluated in registers; the others are applied to the stored tile by
// activate_tile while it is still in L1.
inline bool act_in_registers(Act a) { return a == Act::none || a == Act::relu || a == Act::leaky_relu; }

inline __m256 act_reg(const Activation& act, __m256 v) {
  switch (act.kind) {
    case Act::relu:  // max(0, v): MAXPS returns its second operand when either is NaN
      return _mm256_max_ps(_mm256_setzero_ps(), v);
    case Act::leaky_relu: {
      const __m256 neg = _mm256_mul_ps(v, _mm256_set1_ps(act.slope));
      return _mm256_blendv_ps(neg, v, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ));
    }
    default:
      return v;
  }
}

// C[0:16] of one row = act(alpha * acc + beta * C + bias), masked past n when !kFull.
template <bool kFull>
inline void store_row(float* c, __m256 v0, __m256 v1, const TileEpilogue<float>& e,
                      __m256i m0, __m256i m1) {
  const __m256 alpha = _mm256_set1_ps(e.alpha);
  v0 = _mm256_mul_ps(v0, alpha);
  v1 = _mm256_mul_ps(v1, alpha);
  if (e.beta != 0.0f) {  // beta == 0 never reads C
    const __m256 beta = _mm256_set1_ps(e.beta);
    v0 = _mm256_fmadd_ps(beta, kFull ? _mm256_loadu_ps(c) : _mm256_maskload_ps(c, m0), v0);
    v1 = _mm256_fmadd_ps(beta, kFull ? _mm256_loadu_ps(c + 8) : _mm256_maskload_ps(c + 8, m1), v1);
  }
  if (e.bias) {
    v0 = _mm256_add_ps(v0, kFull ? _mm256_loadu_ps(e.bias) : _mm256_maskload_ps(e.bias, m0));
    v1 = _mm256_add_ps(v1, kFull ? _mm256_loadu_ps(e.bias + 8) : _mm256_maskload_ps(e.bias + 8, m1));
  }
  v0 = act_reg(e.act, v0);
  v1 = act_reg(e.act, v1);
  if (kFull) {
    _mm256_storeu_ps(c, v0);
    _mm256_storeu_ps(c + 8, v1);
  } else {
    _mm256_maskstore_ps(c, m0, v0);
    _mm256_maskstore_ps(c + 8, m1, v1);
  }
}

// One k step of the 6x16 tile in AT&T syntax. A's six values for this k sit at
// %[a] + r * rs (rows 0-2, rs in %%r9) and %%r11 + (r - 3) * rs (rows 3-5); B's 16
// floats at boff(%[b]) go into ymm0/ymm1; each A value is broadcast into ymm2/ymm3
// (alternating, so one broadcast issues while the previous feeds its two FMAs) and
// feeds 2 of the 12 FMAs into the accumulators %[c00]..%[c51]. Then A moves one k on
// (ks bytes, in %%r10).
#define TG_K_STEP(boff)                                     \
  "vmovaps " #boff "(%[b]), %%ymm0\n\t"                     \
  "vmovaps " #boff "+32(%[b]), %%ymm1\n\t"                  \
  "vbroadcastss (%[a]), %%ymm2\n\t"                         \
  "vfmadd231ps %%ymm0, %%ymm2, %[c00]\n\t"                  \
  "vfmadd231ps %%ymm1, %%ymm2, %[c01]\n\t"                  \
  "vbroadcastss (%[a],%%r9,1), %%ymm3\n\t"                  \
  "vfmadd231ps %%ymm0, %%ymm3, %[c10]\n\t"                  \
  "vfmadd231ps %%ymm1, %%ymm3, %[c11]\n\t"                  \
  "vbroadcastss (%[a],%%r9,2), %%ymm2\n\t"                  \
  "vfmadd231ps %%ymm0, %%ymm2, %[c20]\n\t"                  \
  "vfmadd231ps %%ymm1, %%ymm2, %[c21]\n\t"                  \
  "vbroadcastss (%%r11), %%ymm3\n\t"                        \
  "vfmadd231ps %%ymm0, %%ymm3, %[c30]\n\t"                  \
  "vfmadd231ps %%ymm1, %%ymm3, %[c31]\n\t"                  \
  "vbroadcastss (%%r11,%%r9,1), %%ymm2\n\t"                 \
  "vfmadd231ps %%ymm0, %%ymm2, %[c40]\n\t"                  \
  "vfmadd231ps %%ymm1, %%ymm2, %[c41]\n\t"                  \
  "vbroadcastss (%%r11,%%r9,2), %%ymm3\n\t"                 \
  "vfmadd231ps %%ymm0, %%ymm3, %[c50]\n\t"                  \
  "vfmadd231ps %%ymm1, %%ymm3, %[c51]\n\t"                  \
  "add %%r10, %[a]\n\t"                                     \
  "add %%r10, %%r11\n\t"

// The k loop's scalars, read by the assembly from memory (an asm statement takes at
// most 30 operands, and the 12 accumulators take 24).
struct KLoop {
  index_t k4, k1;         // k steps in groups of 4, then single ones
  index_t rs, ks;         // A's row and k strides, in bytes
};

static_assert(offsetof(KLoop, k4) == 0 && offsetof(KLoop, k1) == 8 && offsetof(KLoop, rs) == 16 &&
              offsetof(KLoop, ks) == 24, "the assembly reads KLoop by these offsets");

// C[0:m, 0:n] = epilogue(A (6 x kc) * B panel (kc x 16)). A is read in place: element
// (r, k) at a[r * a_rs + k * a_ks], so one kernel serves packed panels (a_rs = 1,
// a_ks = 6) and rows of a row-major A (a_rs = lda, a_ks = 1) without packing them.
void gemm_avx2_6x16(index_t kc, const float* a, index_t a_rs, index_t a_ks, const float* b,
                    float* c, index_t ldc, int m, int n, const TileEpilogue<float>& e) {
  // The k loop is inline assembly: GCC 12 compiles the same loop written with
  // intrinsics with register moves and a stack spill per iteration (86% of peak at 256^3
  // against 92%; the kernel alone reaches 99%; cpu/gemm/NOTES.md). The accumulators
  // are pinned to ymm4-ymm15.
  register __m256 c00 asm("ymm4") = _mm256_setzero_ps();
  register __m256 c01 asm("ymm5") = _mm256_setzero_ps();
  register __m256 c10 asm("ymm6") = _mm256_setzero_ps();
  register __m256 c11 asm("ymm7") = _mm256_setzero_ps();
  register __m256 c20 asm("ymm8") = _mm256_setzero_ps();
  register __m256 c21 asm("ymm9") = _mm256_setzero_ps();
  register __m256 c30 asm("ymm10") = _mm256_setzero_ps();
  register __m256 c31 asm("ymm11") = _mm256_setzero_ps();
  register __m256 c40 asm("ymm12") = _mm256_setzero_ps();
  register __m256 c41 asm("ymm13") = _mm256_setzero_ps();
  register __m256 c50 asm("ymm14") = _mm256_setzero_ps();
  register __m256 c51 asm("ymm15") = _mm256_setzero_ps();
  for (int i = 0; i < m; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
  const KLoop loop{kc / 4, kc % 4, a_rs * index_t(sizeof(float)), a_ks * index_t(sizeof(float))};
  asm volatile(
      "mov 16(%[loop]), %%r9\n\t"          // rs
      "mov 24(%[loop]), %%r10\n\t"         // ks
      "lea (%[a],%%r9,2), %%r11\n\t"
      "add %%r9, %%r11\n\t"                // r11 = a + 3 rs: rows 3-5
      "mov 0(%[loop]), %%r8\n\t"           // k4
      "test %%r8, %%r8\n\t"
      "jz 2f\n\t"
      ".p2align 5\n"
      "1:\n\t"
      TG_K_STEP(0)
      TG_K_STEP(64)
      TG_K_STEP(128)
      TG_K_STEP(192)
      "add $256, %[b]\n\t"
      "dec %%r8\n\t"
      "jnz 1b\n"
      "2:\n\t"
      "mov 8(%[loop]), %%r8\n\t"           // k1
      "test %%r8, %%r8\n\t"
      "jz 4f\n"
      "3:\n\t"
      TG_K_STEP(0)
      "add $64, %[b]\n\t"
      "dec %%r8\n\t"
      "jnz 3b\n"
      "4:\n\t"
      : [a] "+r"(a), [b] "+r"(b),
        [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11), [c20] "+x"(c20),
        [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31), [c40] "+x"(c40), [c41] "+x"(c41),
        [c50] "+x"(c50), [c51] "+x"(c51)
      : [loop] "r"(&loop)
      : "r8", "r9", "r10", "r11", "ymm0", "ymm1", "ymm2", "ymm3", "cc", "memory");
  const __m256 acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (m == kMR && n == kNR) {
    const __m256i all = _mm256_set1_epi32(-1);
    for (int i = 0; i < kMR; ++i) store_row<true>(c + i * ldc, acc[i][0], acc[i][1], e, all, all);
  } else {
    const __m256i m0 = lanes_below(n), m1 = lanes_below(n - 8);
    for (int i = 0; i < m; ++i) store_row<false>(c + i * ldc, acc[i][0], acc[i][1], e, m0, m1);
  }
  if (!act_in_registers(e.act.kind)) activate_tile(e.act, c, ldc, m, n);
}
#undef TG_K_STEP

// The 8x8 transpose of r[0..7] in place (unpack, shuffle, 128-bit permute: 24 shuffles).
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// op(A) rows [0, rows) x [0, kc) into 6-row panels: out[k * 6 + r] = op(A)(r, k).
void pack_a_avx2(Trans ta, const float* A, index_t lda, index_t rows, index_t kc, float* out) {
  for (index_t i0 = 0; i0 < rows; i0 += kMR, out += kc * kMR) {
    const int valid = int(std::min<index_t>(kMR, rows - i0));
    if (ta == Trans::T) {
      // Row k of the panel is 6 contiguous floats of A's row k: one 8-wide load and one
      // 8-wide store that the next one overwrites. The load reads 2 floats past the panel,
      // which stay inside the block's rows while 8 more of them exist; the last panels
      // use a masked load (no read past the valid columns, zeros beyond).
      const float* src = A + i0;
      if (i0 + 8 <= rows) {
        for (index_t k = 0; k < kc; ++k) _mm256_storeu_ps(out + k * kMR, _mm256_loadu_ps(src + k * lda));
      } else {
        const __m256i mask = lanes_below(valid);
        for (index_t k = 0; k < kc; ++k) _mm256_storeu_ps(out + k * kMR, _mm256_maskload_ps(src + k * lda, mask));
      }
      continue;
    }
    // Trans::N: 6 rows of A, 8 k at a time, transposed (two zero rows make it 8x8).
    const float* rowp[kMR];
    for (int r = 0; r < kMR; ++r) rowp[r] = A + (i0 + std::min(r, valid - 1)) * lda;
    index_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      __m256 t[8];
      for (int r = 0; r < kMR; ++r) t[r] = r < valid ? _mm256_loadu_ps(rowp[r] + k) : _mm256_setzero_ps();
      t[6] = t[7] = _mm256_setzero_ps();
      transpose8(t);
      for (int q = 0; q < 8; ++q) _mm256_storeu_ps(out + (k + q) * kMR, t[q]);
    }
    for (; k < kc; ++k)
      for (int r = 0; r < kMR; ++r) out[k * kMR + r] = r < valid ? rowp[r][k] : 0.0f;
  }
}

// op(B) [0, kc) x columns [0, cols) into 16-column panels: out[k * 16 + c] = op(B)(k, c).
void pack_b_avx2(Trans tb, const float* B, index_t ldb, index_t kc, index_t cols, float* out) {
  for (index_t j0 = 0; j0 < cols; j0 += kNR, out += kc * kNR) {
    const int valid = int(std::min<index_t>(kNR, cols - j0));
    if (tb == Trans::N) {
      const float* src = B + j0;
      if (valid == kNR) {
        for (index_t k = 0; k < kc; ++k) {
          _mm256_store_ps(out + k * kNR, _mm256_loadu_ps(src + k * ldb));
          _mm256_store_ps(out + k * kNR + 8, _mm256_loadu_ps(src + k * ldb + 8));
        }
      } else {
        const __m256i m0 = lanes_below(valid), m1 = lanes_below(valid - 8);
        for (index_t k = 0; k < kc; ++k) {
          _mm256_store_ps(out + k * kNR, _mm256_maskload_ps(src + k * ldb, m0));
          _mm256_store_ps(out + k * kNR + 8, _mm256_maskload_ps(src + k * ldb + 8, m1));
        }
      }
      continue;
    }
    // Trans::T: 16 rows of B (one per output column), 8 k at a time, two 8x8 transposes.
    const float* colp[kNR];
    for (int c = 0; c < kNR; ++c) colp[c] = B + (j0 + std::min(c, valid - 1)) * ldb;
    index_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      __m256 lo[8], hi[8];
      for (int c = 0; c < 8; ++c) {
        lo[c] = c < valid ? _mm256_loadu_ps(colp[c] + k) : _mm256_setzero_ps();
        hi[c] = c + 8 < valid ? _mm256_loadu_ps(colp[c + 8] + k) : _mm256_setzero_ps();
      }
      transpose8(lo);
      transpose8(hi);
      for (int q = 0; q < 8; ++q) {
        _mm256_store_ps(out + (k + q) * kNR, lo[q]);
        _mm256_store_ps(out + (k + q) * kNR + 8, hi[q]);
      }
    }
    for (; k < kc; ++k)
      for (int c = 0; c < kNR; ++c) out[k * kNR + c] = c < valid ? colp[c][k] : 0.0f;
  }
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Tiny problems, no packing: with op(B) rows contiguous (tb == N) a row of C is built
// 16 columns at a time from broadcasts of op(A); with B transposed each element is a
// dot product along K (vectorized when op(A)'s rows are contiguous too).
void small_avx2(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
                index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc,
                const GemmEpilogue<float>& ep) {
  TileEpilogue<float> e{alpha, beta, nullptr, ep.act};
  auto a_at = [&](index_t i, index_t p) { return ta == Trans::N ? A[i * lda + p] : A[p * lda + i]; };
  for (index_t i = 0; i < M; ++i) {
    for (index_t j0 = 0; j0 < N; j0 += kNR) {
      const int n = int(std::min<index_t>(kNR, N - j0));
      const __m256i m0 = lanes_below(n), m1 = lanes_below(n - 8);
      __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
      if (tb == Trans::N) {
        for (index_t p = 0; p < K; ++p) {
          const __m256 ai = _mm256_set1_ps(a_at(i, p));
          acc0 = _mm256_fmadd_ps(ai, _mm256_maskload_ps(B + p * ldb + j0, m0), acc0);
          acc1 = _mm256_fmadd_ps(ai, _mm256_maskload_ps(B + p * ldb + j0 + 8, m1), acc1);
        }
      } else {
        alignas(32) float dots[kNR] = {};
        for (int c = 0; c < n; ++c) {
          const float* bj = B + (j0 + c) * ldb;
          if (ta == Trans::N) {
            const float* ai = A + i * lda;
            __m256 s = _mm256_setzero_ps();
            index_t p = 0;
            for (; p + 8 <= K; p += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(ai + p), _mm256_loadu_ps(bj + p), s);
            if (p < K) {
              const __m256i mk = lanes_below(int(K - p));
              s = _mm256_fmadd_ps(_mm256_maskload_ps(ai + p, mk), _mm256_maskload_ps(bj + p, mk), s);
            }
            dots[c] = hsum(s);
          } else {
            float s = 0;
            for (index_t p = 0; p < K; ++p) s = std::fma(a_at(i, p), bj[p], s);
            dots[c] = s;
          }
        }
        acc0 = _mm256_load_ps(dots);
        acc1 = _mm256_load_ps(dots + 8);
      }
      e.bias = ep.bias ? ep.bias + j0 : nullptr;
      float* c = C + i * ldc + j0;
      if (n == kNR) {
        const __m256i all = _mm256_set1_epi32(-1);
        store_row<true>(c, acc0, acc1, e, all, all);
      } else {
        store_row<false>(c, acc0, acc1, e, m0, m1);
      }
      if (!act_in_registers(e.act.kind)) activate_tile(e.act, c, ldc, 1, n);
    }
  }
}

constexpr Arch<float> kAvx2{"avx2", kMR, kNR, &pack_a_avx2, &pack_b_avx2, &gemm_avx2_6x16, &small_avx2};

}  // namespace

const Arch<float>& arch_avx2_f32() { return kAvx2; }

}  // namespace tg::cpu::gemm_impl
