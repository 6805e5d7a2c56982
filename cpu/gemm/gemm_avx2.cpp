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

#include "tilegrad/cpu/activation.hpp"
#include "tilegrad/cpu/gemm/gemm_impl.hpp"
#include "tilegrad/cpu/gemm/pack_avx2.hpp"
#include "tilegrad/cpu/vmath/vec_avx2.hpp"
#include "tilegrad/cpu/vmath/vmath.hpp"

namespace tg::cpu::gemm_impl {

namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;

// Stores the first r (0..8) lanes of v. Not vmaskmovps: its store form is microcoded
// on AMD (tens of cycles); 4-, 2- and 1-float stores chosen by r's bits are a few.
inline void store_partial(float* p, __m256 v, int r) {
  if (r >= 8) {
    _mm256_storeu_ps(p, v);
    return;
  }
  __m128 x = _mm256_castps256_ps128(v);
  if (r & 4) {
    _mm_storeu_ps(p, x);
    x = _mm256_extractf128_ps(v, 1);
    p += 4;
  }
  if (r & 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(p), x);
    x = _mm_movehl_ps(x, x);
    p += 2;
  }
  if (r & 1) _mm_store_ss(p, x);
}

// The epilogue's operands, built once per tile or row loop into locals: stores to C
// could alias a TileEpilogue's fields, which would make the compiler reload them after
// every row (the tiny path spent its time so).
struct RowEpilogue {
  __m256 alpha, beta;
  bool scale, read_c;
  const float* bias;
  Activation act;
  int n;           // columns of the row (partial rows: < 16)
  __m256i m0, m1;  // lanes [0, n) and [8, n) of the two halves

  RowEpilogue(const TileEpilogue<float>& e, int cols)
      : alpha(_mm256_set1_ps(e.alpha)), beta(_mm256_set1_ps(e.beta)), scale(e.alpha != 1.0f),
        read_c(e.beta != 0.0f), bias(e.bias), act(e.act), n(cols),
        m0(lanes_below(cols)), m1(lanes_below(cols - 8)) {}
};

// C[0:16] of one row = act(alpha * acc + beta * C + bias); only n columns when !kFull.
// bias points at the row's first column (the caller offsets it).
template <bool kFull>
inline void store_row(float* c, __m256 v0, __m256 v1, const RowEpilogue& r, const float* bias) {
  const bool two = kFull || r.n > 8;
  if (r.scale) {
    v0 = _mm256_mul_ps(v0, r.alpha);
    v1 = _mm256_mul_ps(v1, r.alpha);
  }
  if (r.read_c) {  // beta == 0 never reads C
    v0 = _mm256_fmadd_ps(r.beta, kFull ? _mm256_loadu_ps(c) : _mm256_maskload_ps(c, r.m0), v0);
    if (two) v1 = _mm256_fmadd_ps(r.beta, kFull ? _mm256_loadu_ps(c + 8) : _mm256_maskload_ps(c + 8, r.m1), v1);
  }
  if (bias) {
    v0 = _mm256_add_ps(v0, kFull ? _mm256_loadu_ps(bias) : _mm256_maskload_ps(bias, r.m0));
    if (two) v1 = _mm256_add_ps(v1, kFull ? _mm256_loadu_ps(bias + 8) : _mm256_maskload_ps(bias + 8, r.m1));
  }
  v0 = vmath::activate_any(r.act, simd::F8(v0)).v;
  if (two) v1 = vmath::activate_any(r.act, simd::F8(v1)).v;
  if (kFull) {
    _mm256_storeu_ps(c, v0);
    _mm256_storeu_ps(c + 8, v1);
  } else if (r.n >= 8) {
    _mm256_storeu_ps(c, v0);
    store_partial(c + 8, v1, r.n - 8);
  } else {
    store_partial(c, v0, r.n);
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
  const RowEpilogue r(e, n);
  if (m == kMR && n == kNR) {
    for (int i = 0; i < kMR; ++i) store_row<true>(c + i * ldc, acc[i][0], acc[i][1], r, e.bias);
  } else {
    for (int i = 0; i < m; ++i) store_row<false>(c + i * ldc, acc[i][0], acc[i][1], r, e.bias);
  }
}
#undef TG_K_STEP

// 6 floats at p: 4 + 2, no store past them.
inline void store6(float* p, __m256 v) {
  _mm_storeu_ps(p, _mm256_castps256_ps128(v));
  _mm_storel_pi(reinterpret_cast<__m64*>(p + 4), _mm256_extractf128_ps(v, 1));
}

// op(A) rows [0, rows) x [0, kc) into 6-row panels: out[k * 6 + r] = op(A)(r, k).
void pack_a_avx2(Trans ta, const float* A, index_t lda, index_t rows, index_t kc, float* out) {
  if (ta == Trans::T) {
    // op(A)(r, k) = A[k * lda + r]: row k of the block is contiguous in A. Walk A row by
    // row and deal each row out to every panel: walking panel by panel instead reads
    // kc rows a stride apart per panel, and with lda * 4 a multiple of 4 KiB those rows
    // share one L1 set and are refetched for every panel (2048x64x64 tn ran at 66
    // GFLOP/s that way). The 8-wide store spills 2 floats into the panel's next k,
    // written later; the last k stores exactly 6, because the next panel's first k
    // follows it.
    const index_t panels = (rows + kMR - 1) / kMR;
    const int tail = int(rows - (panels - 1) * kMR);
    const __m256i tail_mask = lanes_below(tail);
    for (index_t k = 0; k < kc; ++k) {
      const float* src = A + k * lda;
      float* dst = out + k * kMR;
      const bool last = k + 1 == kc;
      for (index_t p = 0; p < panels; ++p, src += kMR, dst += kc * kMR) {
        // A full 8-float load would read past the block for the last panels.
        const bool full = (p + 1) * kMR + 2 <= rows;
        const __m256 v = full ? _mm256_loadu_ps(src)
                              : _mm256_maskload_ps(src, p + 1 == panels ? tail_mask : lanes_below(kMR));
        if (last) {
          store6(dst, v);
        } else {
          _mm256_storeu_ps(dst, v);
        }
      }
    }
    return;
  }
  for (index_t i0 = 0; i0 < rows; i0 += kMR, out += kc * kMR) {
    const int valid = int(std::min<index_t>(kMR, rows - i0));
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

// Lane 0 of the result = the sum of v's 8 lanes.
inline __m128 hsum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  return _mm_add_ss(x, _mm_movehdup_ps(x));
}

// The products of a K-long row of op(A) (stride a_ks) and a contiguous column of op(B),
// summed 8 lanes wide (reduce with hsum).
inline __m256 dot(const float* a, index_t a_ks, const float* b, index_t K) {
  __m256 acc = _mm256_setzero_ps();
  if (a_ks == 1) {
    index_t p = 0;
    for (; p + 8 <= K; p += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + p), _mm256_loadu_ps(b + p), acc);
    if (p < K) {
      const __m256i mk = lanes_below(int(K - p));
      acc = _mm256_fmadd_ps(_mm256_maskload_ps(a + p, mk), _mm256_maskload_ps(b + p, mk), acc);
    }
  } else {
    for (index_t p = 0; p < K; ++p)
      acc = _mm256_fmadd_ps(_mm256_zextps128_ps256(_mm_set_ss(a[p * a_ks])),
                            _mm256_zextps128_ps256(_mm_set_ss(b[p])), acc);
  }
  return acc;
}

// Lane c of the result = the sum of the 8 lanes of s[c].
inline __m256 hsum8(const __m256 s[8]) {
  const __m256 t0 = _mm256_hadd_ps(s[0], s[1]), t1 = _mm256_hadd_ps(s[2], s[3]);
  const __m256 t2 = _mm256_hadd_ps(s[4], s[5]), t3 = _mm256_hadd_ps(s[6], s[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// Tiny problems (at most 16^3 multiply-adds): no packing, no threads, and the
// epilogue's choices (read C? bias? which activation?) made once per call by template
// parameters, not per row: at 10x10x1 the per-row branches and reloads were most of the
// time (cpu/gemm/NOTES.md). Two loops:
//   rows: a row of C, 16 columns at a time, from broadcasts of op(A)(i, p) times rows
//         of op(B) (contiguous when tb == N);
//   dots: each element a dot product along K, 8 products per FMA, when a column of
//         op(B) is contiguous (tb == T, or a single column with ldb == 1: 10x1x10).
struct Tiny {
  Trans ta, tb;
  index_t M, N, K;
  float alpha;
  const float* A;
  index_t lda;
  const float* B;
  index_t ldb;
  float beta;
  float* C;
  index_t ldc;
  const float* bias;
  float slope;
};

template <int kAct>  // 0 none, 1 relu, 2 leaky_relu (others: none here, applied after)
inline __m256 tiny_act(__m256 v, __m256 slope) {
  if constexpr (kAct == 1) return _mm256_max_ps(_mm256_setzero_ps(), v);
  if constexpr (kAct == 2)
    return _mm256_blendv_ps(_mm256_mul_ps(v, slope), v, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ));
  return v;
}

// One column of C (N == 1, the layer of width 1), with op(A)'s rows and op(B)'s column
// contiguous: per row one dot product, summed in lane 0, and a scalar epilogue.
template <bool kReadC, bool kBias, int kAct>
void tiny_gemv(const Tiny& t) {
  const float* bcol = t.B;
  const __m128 alpha = _mm_set_ss(t.alpha), beta = _mm_set_ss(t.beta);
  const __m128 bias = kBias ? _mm_load_ss(t.bias) : _mm_setzero_ps();
  const __m256 slope = _mm256_set1_ps(t.slope);
  for (index_t i = 0; i < t.M; ++i) {
    __m128 v = _mm_mul_ss(hsum(dot(t.A + i * t.lda, 1, bcol, t.K)), alpha);
    float* c = t.C + i * t.ldc;
    if constexpr (kReadC) v = _mm_fmadd_ss(beta, _mm_load_ss(c), v);
    if constexpr (kBias) v = _mm_add_ss(v, bias);
    _mm_store_ss(c, _mm256_castps256_ps128(tiny_act<kAct>(_mm256_castps128_ps256(v), slope)));
  }
}

// K == 1 (the layer fed by one input): C = act(alpha a b^T + beta C + bias), op(B)'s
// row held in registers, alpha folded into it, bias the FMA's addend: a few
// instructions per row of C.
template <bool kReadC, bool kBias, int kAct>
void tiny_outer(const Tiny& t) {
  // Locals, not t's fields: the row loop then keeps them in registers.
  const index_t M = t.M, N = t.N, ldc = t.ldc;
  const index_t a_rs = t.ta == Trans::N ? t.lda : 1;
  const index_t b_cs = t.tb == Trans::N ? 1 : t.ldb;
  const float* A = t.A;
  const __m256 alpha = _mm256_set1_ps(t.alpha), beta = _mm256_set1_ps(t.beta), slope = _mm256_set1_ps(t.slope);
  for (index_t j0 = 0; j0 < N; j0 += kNR) {
    const int n = int(std::min<index_t>(kNR, N - j0));
    const __m256i m0 = lanes_below(n), m1 = lanes_below(n - 8);
    __m256 b0, b1;
    if (b_cs == 1) {
      b0 = _mm256_maskload_ps(t.B + j0, m0);
      b1 = _mm256_maskload_ps(t.B + j0 + 8, m1);
    } else {
      alignas(32) float row[kNR] = {};
      for (int c = 0; c < n; ++c) row[c] = t.B[(j0 + c) * b_cs];
      b0 = _mm256_load_ps(row);
      b1 = _mm256_load_ps(row + 8);
    }
    b0 = _mm256_mul_ps(b0, alpha);
    b1 = _mm256_mul_ps(b1, alpha);
    const __m256 add0 = kBias ? _mm256_maskload_ps(t.bias + j0, m0) : _mm256_setzero_ps();
    const __m256 add1 = kBias ? _mm256_maskload_ps(t.bias + j0 + 8, m1) : _mm256_setzero_ps();
    float* c = t.C + j0;
    const float* a = A;
    for (index_t i = 0; i < M; ++i, c += ldc, a += a_rs) {
      const __m256 ai = _mm256_broadcast_ss(a);
      __m256 v0 = _mm256_fmadd_ps(ai, b0, add0);
      if constexpr (kReadC) v0 = _mm256_fmadd_ps(beta, _mm256_maskload_ps(c, m0), v0);
      v0 = tiny_act<kAct>(v0, slope);
      if (n > 8) {
        __m256 v1 = _mm256_fmadd_ps(ai, b1, add1);
        if constexpr (kReadC) v1 = _mm256_fmadd_ps(beta, _mm256_maskload_ps(c + 8, m1), v1);
        v1 = tiny_act<kAct>(v1, slope);
        _mm256_storeu_ps(c, v0);
        store_partial(c + 8, v1, n - 8);
      } else {
        store_partial(c, v0, n);
      }
    }
  }
}

// One column of C with A transposed (y = A^T x, as in a backward pass): op(A)'s rows
// are strided but A's rows are contiguous, so C's column is built 8 rows at a time
// from broadcasts of x_p times rows of A.
template <bool kReadC, bool kBias, int kAct>
void tiny_gemv_t(const Tiny& t) {
  const index_t M = t.M, K = t.K, lda = t.lda, ldc = t.ldc;
  const index_t b_ks = t.tb == Trans::N ? t.ldb : 1;  // op(B)(p, 0)
  const __m256 alpha = _mm256_set1_ps(t.alpha), beta = _mm256_set1_ps(t.beta), slope = _mm256_set1_ps(t.slope);
  const __m256 bias = _mm256_set1_ps(kBias ? t.bias[0] : 0.0f);
  for (index_t i0 = 0; i0 < M; i0 += 8) {
    const int m = int(std::min<index_t>(8, M - i0));
    const __m256i mask = lanes_below(m);
    __m256 v = _mm256_setzero_ps();
    for (index_t p = 0; p < K; ++p)
      v = _mm256_fmadd_ps(_mm256_broadcast_ss(t.B + p * b_ks), _mm256_maskload_ps(t.A + p * lda + i0, mask), v);
    alignas(32) float col[8] = {};
    v = _mm256_mul_ps(v, alpha);
    if constexpr (kReadC) {
      for (int r = 0; r < m; ++r) col[r] = t.C[(i0 + r) * ldc];
      v = _mm256_fmadd_ps(beta, _mm256_load_ps(col), v);  // lanes >= m: unused
    }
    if constexpr (kBias) v = _mm256_add_ps(v, bias);
    _mm256_store_ps(col, tiny_act<kAct>(v, slope));
    for (int r = 0; r < m; ++r) t.C[(i0 + r) * ldc] = col[r];
  }
}

template <bool kReadC, bool kBias, int kAct>
void tiny_gemm(const Tiny& t) {
  if (t.N == 1 && t.ta == Trans::N && (t.tb == Trans::T || t.ldb == 1)) return tiny_gemv<kReadC, kBias, kAct>(t);
  if (t.N == 1 && t.ta == Trans::T) return tiny_gemv_t<kReadC, kBias, kAct>(t);
  if (t.K == 1) return tiny_outer<kReadC, kBias, kAct>(t);
  const index_t a_rs = t.ta == Trans::N ? t.lda : 1, a_ks = t.ta == Trans::N ? 1 : t.lda;
  const bool dots = t.tb == Trans::T || (t.N == 1 && t.ldb == 1);
  const index_t b_cs = t.tb == Trans::T ? t.ldb : 1;  // column stride of op(B), for dots
  const __m256 alpha = _mm256_set1_ps(t.alpha), beta = _mm256_set1_ps(t.beta), slope = _mm256_set1_ps(t.slope);
  for (index_t j0 = 0; j0 < t.N; j0 += kNR) {
    const int n = int(std::min<index_t>(kNR, t.N - j0));
    const __m256i m0 = lanes_below(n), m1 = lanes_below(n - 8);
    const __m256 bias0 = kBias ? _mm256_maskload_ps(t.bias + j0, m0) : _mm256_setzero_ps();
    const __m256 bias1 = kBias ? _mm256_maskload_ps(t.bias + j0 + 8, m1) : _mm256_setzero_ps();
    for (index_t i = 0; i < t.M; ++i) {
      const float* arow = t.A + i * a_rs;
      __m256 v0 = _mm256_setzero_ps(), v1 = _mm256_setzero_ps();
      if (!dots) {
        const float* brow = t.B + j0;
        for (index_t p = 0; p < t.K; ++p, brow += t.ldb) {
          const __m256 ai = _mm256_broadcast_ss(arow + p * a_ks);
          v0 = _mm256_fmadd_ps(ai, _mm256_maskload_ps(brow, m0), v0);
          if (n > 8) v1 = _mm256_fmadd_ps(ai, _mm256_maskload_ps(brow + 8, m1), v1);
        }
      } else {
        // Up to 16 dot products, reduced 8 at a time into one vector (hsum8): storing
        // each scalar and reloading a vector would stall on store forwarding per row.
        for (int g = 0; g < n; g += 8) {
          __m256 sums[8];
          const int cnt = std::min(8, n - g);
          for (int c = 0; c < cnt; ++c) sums[c] = dot(arow, a_ks, t.B + (j0 + g + c) * b_cs, t.K);
          __m256 part;
          if (cnt == 1) {
            part = _mm256_zextps128_ps256(_mm_move_ss(_mm_setzero_ps(), hsum(sums[0])));
          } else {
            for (int c = cnt; c < 8; ++c) sums[c] = _mm256_setzero_ps();
            part = hsum8(sums);
          }
          (g == 0 ? v0 : v1) = part;
        }
      }
      float* c = t.C + i * t.ldc + j0;
      v0 = _mm256_mul_ps(v0, alpha);
      if constexpr (kReadC) v0 = _mm256_fmadd_ps(beta, _mm256_maskload_ps(c, m0), v0);
      if constexpr (kBias) v0 = _mm256_add_ps(v0, bias0);
      v0 = tiny_act<kAct>(v0, slope);
      if (n > 8) {
        v1 = _mm256_mul_ps(v1, alpha);
        if constexpr (kReadC) v1 = _mm256_fmadd_ps(beta, _mm256_maskload_ps(c + 8, m1), v1);
        if constexpr (kBias) v1 = _mm256_add_ps(v1, bias1);
        v1 = tiny_act<kAct>(v1, slope);
        _mm256_storeu_ps(c, v0);
        store_partial(c + 8, v1, n - 8);
      } else {
        store_partial(c, v0, n);
      }
    }
  }
}

template <bool kReadC, bool kBias>
void tiny_gemm_act(const Tiny& t, Act act) {
  switch (act) {
    case Act::relu: return tiny_gemm<kReadC, kBias, 1>(t);
    case Act::leaky_relu: return tiny_gemm<kReadC, kBias, 2>(t);
    default: return tiny_gemm<kReadC, kBias, 0>(t);
  }
}

void small_avx2(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
                index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc,
                const GemmEpilogue<float>& ep) {
  const Tiny t{ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep.bias, float(ep.act.slope)};
  const bool read_c = beta != 0.0f, bias = ep.bias != nullptr;
  if (read_c) {
    bias ? tiny_gemm_act<true, true>(t, ep.act.kind) : tiny_gemm_act<true, false>(t, ep.act.kind);
  } else {
    bias ? tiny_gemm_act<false, true>(t, ep.act.kind) : tiny_gemm_act<false, false>(t, ep.act.kind);
  }
  // The tiny loops do none, relu and leaky_relu themselves; the other activations run
  // over the (L1-hot) result.
  const Act k = ep.act.kind;
  if (k != Act::none && k != Act::relu && k != Act::leaky_relu) act_forward_avx2(ep.act, M, N, C, ldc, nullptr, C, ldc);
}

void activate_avx2(Activation act, float* c, index_t ldc, index_t rows, index_t cols) {
  act_forward_avx2(act, rows, cols, c, ldc, nullptr, c, ldc);
}

constexpr Arch<float> kAvx2{"avx2",         kMR, kNR, &pack_a_avx2, &pack_b_avx2, &gemm_avx2_6x16, &small_avx2,
                            &activate_avx2, &blocking_of<kMR, kNR, float>};

}  // namespace

const Arch<float>& arch_avx2_f32() { return kAvx2; }

}  // namespace tg::cpu::gemm_impl
