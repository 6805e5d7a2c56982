// CPU GEMM, AVX-512 leaves: the 12x32 micro-kernel and its packers. Compiled with the
// AVX-512 flags (F, BW, DQ, VL) and reached only when cpuid says so (cpu/isa.hpp).
//
// gemm_avx512_12x32: MR x NR = 12 x 32 fp32 = 24 zmm accumulators; per k, 2 loads of B
// (32 floats) and 12 broadcasts of A feed 24 FMAs, so the 32 zmm registers hold 24
// accumulators + 2 B vectors + 2 A broadcasts, alternating so that one broadcast issues
// while the previous one feeds its two FMAs (the register budget of BLIS's and
// oneDNN's AVX-512 sgemm kernels, in our row-major orientation). Two 512-bit FMA pipes
// with 4-cycle latency need 8 independent accumulators; 24 leave slack. Per k: 14 loads
// for 24 FMAs (12 cycles at two FMAs a cycle): 1.2 loads a cycle, within the 2 a cycle
// that 512-bit loads get. Embedded-broadcast FMAs ({1to16}) would load each A value
// twice (26 loads per 12 cycles), so A is broadcast once into a register.
// 12 rows also divide the attention's 48-, 96- and 192-row tiles and the MLP's
// batches of 96, 192, 384 exactly. cpu/gemm/NOTES.md has the floors and measurements.
//
// The tiny path (at most 16^3 multiply-adds, no packing) is the AVX2 one: those
// problems are bound by call overhead and one 16-wide row, not by vector width.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>

#include "cpu/activation.hpp"
#include "cpu/gemm/gemm_impl.hpp"
#include "cpu/gemm/pack_avx2.hpp"
#include "cpu/vmath/vec_avx512.hpp"
#include "cpu/vmath/vmath.hpp"

namespace tg::cpu::gemm_impl {

namespace {

constexpr int kMR = 12;
constexpr int kNR = 32;

// The epilogue's activation on one vector, in registers: the kind is a per-call
// constant, so the switch is predicted and each case is the inlined math.
inline __m512 act_reg(const Activation& act, __m512 v) {
  const simd::Z16 x(v), slope(act.slope);
  switch (act.kind) {
    case Act::none: return v;
    case Act::relu: return vmath::activate<Act::relu>(x, slope).v;
    case Act::leaky_relu: return vmath::activate<Act::leaky_relu>(x, slope).v;
    case Act::gelu_erf: return vmath::activate<Act::gelu_erf>(x, slope).v;
    case Act::gelu_tanh: return vmath::activate<Act::gelu_tanh>(x, slope).v;
    case Act::silu: return vmath::activate<Act::silu>(x, slope).v;
    case Act::sigmoid: return vmath::activate<Act::sigmoid>(x, slope).v;
    case Act::tanh: return vmath::activate<Act::tanh>(x, slope).v;
  }
  return v;
}

// The epilogue's operands, built once per tile into locals (stores to C could alias a
// TileEpilogue's fields and force reloads after every row).
struct RowEpilogue {
  __m512 alpha, beta;
  bool scale, read_c;
  Activation act;
  int n;              // columns of the row (partial rows: < 32)
  __mmask16 m0, m1;   // lanes [0, n) and [16, n) of the two halves

  RowEpilogue(const TileEpilogue<float>& e, int cols)
      : alpha(_mm512_set1_ps(e.alpha)), beta(_mm512_set1_ps(e.beta)), scale(e.alpha != 1.0f),
        read_c(e.beta != 0.0f), act(e.act), n(cols), m0(simd::lanes_below16(std::min(cols, 16))),
        m1(simd::lanes_below16(std::clamp(cols - 16, 0, 16))) {}
};

// C[0:32] of one row = act(alpha * acc + beta * C + bias); only n columns when !kFull,
// through masked loads and stores (lanes past n are neither read nor written).
template <bool kFull>
inline void store_row(float* c, __m512 v0, __m512 v1, const RowEpilogue& r, const float* bias) {
  const bool two = kFull || r.n > 16;
  if (r.scale) {
    v0 = _mm512_mul_ps(v0, r.alpha);
    v1 = _mm512_mul_ps(v1, r.alpha);
  }
  if (r.read_c) {  // beta == 0 never reads C
    v0 = _mm512_fmadd_ps(r.beta, kFull ? _mm512_loadu_ps(c) : _mm512_maskz_loadu_ps(r.m0, c), v0);
    if (two) v1 = _mm512_fmadd_ps(r.beta, kFull ? _mm512_loadu_ps(c + 16) : _mm512_maskz_loadu_ps(r.m1, c + 16), v1);
  }
  if (bias) {
    v0 = _mm512_add_ps(v0, kFull ? _mm512_loadu_ps(bias) : _mm512_maskz_loadu_ps(r.m0, bias));
    if (two) v1 = _mm512_add_ps(v1, kFull ? _mm512_loadu_ps(bias + 16) : _mm512_maskz_loadu_ps(r.m1, bias + 16));
  }
  v0 = act_reg(r.act, v0);
  if (two) v1 = act_reg(r.act, v1);
  if (kFull) {
    _mm512_storeu_ps(c, v0);
    _mm512_storeu_ps(c + 16, v1);
  } else {
    _mm512_mask_storeu_ps(c, r.m0, v0);
    if (two) _mm512_mask_storeu_ps(c + 16, r.m1, v1);
  }
}

// One k step of the 12x32 tile in AT&T syntax. A's twelve values for this k sit at
// %%rax + r * rs (rows 0-2), %%r11 (3-5), %%r12 (6-8) and %%r13 (9-11), rs in %%r9; B's
// 32 floats at boff(%%rdx) go into zmm0/zmm1; each A value is broadcast into zmm2/zmm3
// (alternating) and feeds 2 of the 24 FMAs into %[c00]..%[c111]. Then the four row
// pointers move one k on (ks bytes, in %%r10).
#define TG_ROW(base, idx, reg, r0, r1)                      \
  "vbroadcastss " base idx ", %%" reg "\n\t"                \
  "vfmadd231ps %%zmm0, %%" reg ", %[" r0 "]\n\t"            \
  "vfmadd231ps %%zmm1, %%" reg ", %[" r1 "]\n\t"
#define TG_K_STEP(boff)                                     \
  "vmovups " #boff "(%%rdx), %%zmm0\n\t"                    \
  "vmovups " #boff "+64(%%rdx), %%zmm1\n\t"                 \
  TG_ROW("(%%rax", ")", "zmm2", "c00", "c01")               \
  TG_ROW("(%%rax", ",%%r9,1)", "zmm3", "c10", "c11")        \
  TG_ROW("(%%rax", ",%%r9,2)", "zmm2", "c20", "c21")        \
  TG_ROW("(%%r11", ")", "zmm3", "c30", "c31")               \
  TG_ROW("(%%r11", ",%%r9,1)", "zmm2", "c40", "c41")        \
  TG_ROW("(%%r11", ",%%r9,2)", "zmm3", "c50", "c51")        \
  TG_ROW("(%%r12", ")", "zmm2", "c60", "c61")               \
  TG_ROW("(%%r12", ",%%r9,1)", "zmm3", "c70", "c71")        \
  TG_ROW("(%%r12", ",%%r9,2)", "zmm2", "c80", "c81")        \
  TG_ROW("(%%r13", ")", "zmm3", "c90", "c91")               \
  TG_ROW("(%%r13", ",%%r9,1)", "zmm2", "c100", "c101")      \
  TG_ROW("(%%r13", ",%%r9,2)", "zmm3", "c110", "c111")      \
  "add %%r10, %%rax\n\t"                                    \
  "add %%r10, %%r11\n\t"                                    \
  "add %%r10, %%r12\n\t"                                    \
  "add %%r10, %%r13\n\t"

// The k loop's scalars, read by the assembly from memory.
struct KLoop {
  const float* a;
  const float* b;
  index_t k4, k1;  // k steps in groups of 4, then single ones
  index_t rs, ks;  // A's row and k strides, in bytes
};
static_assert(offsetof(KLoop, a) == 0 && offsetof(KLoop, b) == 8 && offsetof(KLoop, k4) == 16 &&
                  offsetof(KLoop, k1) == 24 && offsetof(KLoop, rs) == 32 && offsetof(KLoop, ks) == 40,
              "the assembly reads KLoop by these offsets");

// C[0:m, 0:n] = epilogue(A (12 x kc) * B panel (kc x 32)). A is read in place: element
// (r, k) at a[r * a_rs + k * a_ks] (a packed panel: a_rs = 1, a_ks = 12; rows of a
// row-major A: a_rs = lda, a_ks = 1). All 12 rows are read.
void gemm_avx512_12x32(index_t kc, const float* a, index_t a_rs, index_t a_ks, const float* b, float* c,
                       index_t ldc, int m, int n, const TileEpilogue<float>& e) {
  // The k loop is inline assembly, as on the AVX2 path (GCC spills in the intrinsics
  // version of such loops; cpu/gemm/NOTES.md). The accumulators are outputs zeroed by
  // the assembly itself (24 in-out operands would exceed the asm operand limit of 30),
  // pinned to zmm8-zmm31.
  register __m512 c00 asm("zmm8"), c01 asm("zmm9"), c10 asm("zmm10"), c11 asm("zmm11");
  register __m512 c20 asm("zmm12"), c21 asm("zmm13"), c30 asm("zmm14"), c31 asm("zmm15");
  register __m512 c40 asm("zmm16"), c41 asm("zmm17"), c50 asm("zmm18"), c51 asm("zmm19");
  register __m512 c60 asm("zmm20"), c61 asm("zmm21"), c70 asm("zmm22"), c71 asm("zmm23");
  register __m512 c80 asm("zmm24"), c81 asm("zmm25"), c90 asm("zmm26"), c91 asm("zmm27");
  register __m512 c100 asm("zmm28"), c101 asm("zmm29"), c110 asm("zmm30"), c111 asm("zmm31");
  for (int i = 0; i < m; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_T0);
  }
  const KLoop loop{a, b, kc / 4, kc % 4, a_rs * index_t(sizeof(float)), a_ks * index_t(sizeof(float))};
  asm volatile(
      "vpxord %[c00], %[c00], %[c00]\n\t"
      "vmovaps %[c00], %[c01]\n\t" "vmovaps %[c00], %[c10]\n\t" "vmovaps %[c00], %[c11]\n\t"
      "vmovaps %[c00], %[c20]\n\t" "vmovaps %[c00], %[c21]\n\t" "vmovaps %[c00], %[c30]\n\t"
      "vmovaps %[c00], %[c31]\n\t" "vmovaps %[c00], %[c40]\n\t" "vmovaps %[c00], %[c41]\n\t"
      "vmovaps %[c00], %[c50]\n\t" "vmovaps %[c00], %[c51]\n\t" "vmovaps %[c00], %[c60]\n\t"
      "vmovaps %[c00], %[c61]\n\t" "vmovaps %[c00], %[c70]\n\t" "vmovaps %[c00], %[c71]\n\t"
      "vmovaps %[c00], %[c80]\n\t" "vmovaps %[c00], %[c81]\n\t" "vmovaps %[c00], %[c90]\n\t"
      "vmovaps %[c00], %[c91]\n\t" "vmovaps %[c00], %[c100]\n\t" "vmovaps %[c00], %[c101]\n\t"
      "vmovaps %[c00], %[c110]\n\t" "vmovaps %[c00], %[c111]\n\t"
      "mov 0(%[loop]), %%rax\n\t"          // a
      "mov 8(%[loop]), %%rdx\n\t"          // b
      "mov 32(%[loop]), %%r9\n\t"          // rs
      "mov 40(%[loop]), %%r10\n\t"         // ks
      "lea (%%rax,%%r9,2), %%r11\n\t"
      "add %%r9, %%r11\n\t"                // r11 = a + 3 rs
      "lea (%%r11,%%r9,2), %%r12\n\t"
      "add %%r9, %%r12\n\t"                // r12 = a + 6 rs
      "lea (%%r12,%%r9,2), %%r13\n\t"
      "add %%r9, %%r13\n\t"                // r13 = a + 9 rs
      "mov 16(%[loop]), %%r8\n\t"          // k4
      "test %%r8, %%r8\n\t"
      "jz 2f\n\t"
      ".p2align 5\n"
      "1:\n\t"
      TG_K_STEP(0)
      TG_K_STEP(128)
      TG_K_STEP(256)
      TG_K_STEP(384)
      "add $512, %%rdx\n\t"
      "dec %%r8\n\t"
      "jnz 1b\n"
      "2:\n\t"
      "mov 24(%[loop]), %%r8\n\t"          // k1
      "test %%r8, %%r8\n\t"
      "jz 4f\n"
      "3:\n\t"
      TG_K_STEP(0)
      "add $128, %%rdx\n\t"
      "dec %%r8\n\t"
      "jnz 3b\n"
      "4:\n\t"
      : [c00] "=v"(c00), [c01] "=v"(c01), [c10] "=v"(c10), [c11] "=v"(c11), [c20] "=v"(c20),
        [c21] "=v"(c21), [c30] "=v"(c30), [c31] "=v"(c31), [c40] "=v"(c40), [c41] "=v"(c41),
        [c50] "=v"(c50), [c51] "=v"(c51), [c60] "=v"(c60), [c61] "=v"(c61), [c70] "=v"(c70),
        [c71] "=v"(c71), [c80] "=v"(c80), [c81] "=v"(c81), [c90] "=v"(c90), [c91] "=v"(c91),
        [c100] "=v"(c100), [c101] "=v"(c101), [c110] "=v"(c110), [c111] "=v"(c111)
      : [loop] "r"(&loop)
      : "rax", "rdx", "r8", "r9", "r10", "r11", "r12", "r13", "xmm0", "xmm1", "xmm2", "xmm3", "cc", "memory");
  const __m512 acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21},   {c30, c31},   {c40, c41},   {c50, c51},
                              {c60, c61}, {c70, c71}, {c80, c81},   {c90, c91},   {c100, c101}, {c110, c111}};
  const RowEpilogue r(e, n);
  if (m == kMR && n == kNR) {
    for (int i = 0; i < kMR; ++i) store_row<true>(c + i * ldc, acc[i][0], acc[i][1], r, e.bias);
  } else {
    for (int i = 0; i < m; ++i) store_row<false>(c + i * ldc, acc[i][0], acc[i][1], r, e.bias);
  }
}
#undef TG_K_STEP
#undef TG_ROW

// op(A) rows [0, rows) x [0, kc) into 12-row panels: out[k * 12 + r] = op(A)(r, k).
void pack_a_avx512(Trans ta, const float* A, index_t lda, index_t rows, index_t kc, float* out) {
  const index_t panels = (rows + kMR - 1) / kMR;
  if (ta == Trans::T) {
    // op(A)(r, k) = A[k * lda + r]: row k of the block is contiguous in A. Walk A row by
    // row and deal each row out to every panel (panel by panel would read kc rows a
    // stride apart per panel: one L1 set when lda * 4 is a multiple of 4 KiB; NOTES.md).
    // Masked loads and stores: exactly 12 floats (fewer, zero-filled, in the last panel).
    const int tail = int(rows - (panels - 1) * kMR);
    const __mmask16 full = simd::lanes_below16(kMR), part = simd::lanes_below16(tail);
    for (index_t k = 0; k < kc; ++k) {
      const float* src = A + k * lda;
      float* dst = out + k * kMR;
      for (index_t p = 0; p < panels; ++p, src += kMR, dst += kc * kMR)
        _mm512_mask_storeu_ps(dst, full, _mm512_maskz_loadu_ps(p + 1 == panels ? part : full, src));
    }
    return;
  }
  for (index_t i0 = 0; i0 < rows; i0 += kMR, out += kc * kMR) {
    const int valid = int(std::min<index_t>(kMR, rows - i0));
    // Trans::N: 12 rows of A, 8 k at a time: rows 0-7 and rows 8-11 (with 4 zero rows)
    // each as an 8x8 transpose; per k, 8 + 4 floats stored.
    const float* rowp[kMR];
    for (int r = 0; r < kMR; ++r) rowp[r] = A + (i0 + std::min(r, valid - 1)) * lda;
    index_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      __m256 lo[8], hi[8];
      for (int r = 0; r < 8; ++r) {
        lo[r] = r < valid ? _mm256_loadu_ps(rowp[r] + k) : _mm256_setzero_ps();
        hi[r] = r < 4 && r + 8 < valid ? _mm256_loadu_ps(rowp[r + 8] + k) : _mm256_setzero_ps();
      }
      transpose8(lo);
      transpose8(hi);
      for (int q = 0; q < 8; ++q) {
        _mm256_storeu_ps(out + (k + q) * kMR, lo[q]);
        _mm_storeu_ps(out + (k + q) * kMR + 8, _mm256_castps256_ps128(hi[q]));
      }
    }
    for (; k < kc; ++k)
      for (int r = 0; r < kMR; ++r) out[k * kMR + r] = r < valid ? rowp[r][k] : 0.0f;
  }
}

// op(B) [0, kc) x columns [0, cols) into 32-column panels: out[k * 32 + c] = op(B)(k, c).
void pack_b_avx512(Trans tb, const float* B, index_t ldb, index_t kc, index_t cols, float* out) {
  for (index_t j0 = 0; j0 < cols; j0 += kNR, out += kc * kNR) {
    const int valid = int(std::min<index_t>(kNR, cols - j0));
    if (tb == Trans::N) {
      const float* src = B + j0;
      if (valid == kNR) {
        for (index_t k = 0; k < kc; ++k) {
          _mm512_storeu_ps(out + k * kNR, _mm512_loadu_ps(src + k * ldb));
          _mm512_storeu_ps(out + k * kNR + 16, _mm512_loadu_ps(src + k * ldb + 16));
        }
      } else {
        const __mmask16 m0 = simd::lanes_below16(std::min(valid, 16));
        const __mmask16 m1 = simd::lanes_below16(std::max(valid - 16, 0));
        for (index_t k = 0; k < kc; ++k) {
          _mm512_storeu_ps(out + k * kNR, _mm512_maskz_loadu_ps(m0, src + k * ldb));
          _mm512_storeu_ps(out + k * kNR + 16, _mm512_maskz_loadu_ps(m1, src + k * ldb + 16));
        }
      }
      continue;
    }
    // Trans::T: 32 rows of B (one per output column), 8 k at a time, four 8x8 transposes.
    const float* colp[kNR];
    for (int c = 0; c < kNR; ++c) colp[c] = B + (j0 + std::min(c, valid - 1)) * ldb;
    index_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      for (int g = 0; g < kNR / 8; ++g) {
        __m256 t[8];
        for (int c = 0; c < 8; ++c) t[c] = 8 * g + c < valid ? _mm256_loadu_ps(colp[8 * g + c] + k) : _mm256_setzero_ps();
        transpose8(t);
        for (int q = 0; q < 8; ++q) _mm256_storeu_ps(out + (k + q) * kNR + 8 * g, t[q]);
      }
    }
    for (; k < kc; ++k)
      for (int c = 0; c < kNR; ++c) out[k * kNR + c] = c < valid ? colp[c][k] : 0.0f;
  }
}

void activate_avx512(Activation act, float* c, index_t ldc, index_t rows, index_t cols) {
  act_forward_avx512(act, rows, cols, c, ldc, nullptr, c, ldc);
}

}  // namespace

const Arch<float>& arch_avx512_f32() {
  static const Arch<float> arch{"avx512", kMR, kNR, &pack_a_avx512, &pack_b_avx512, &gemm_avx512_12x32,
                                arch_avx2_f32().small, &activate_avx512};
  return arch;
}

}  // namespace tg::cpu::gemm_impl
