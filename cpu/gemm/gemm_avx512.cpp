// CPU GEMM, AVX-512 leaves: the 6x64 micro-kernel and its packers. Compiled with the
// AVX-512 flags (F, BW, DQ, VL) and reached only when cpuid says so (cpu/isa.hpp).
//
// gemm_avx512_6x64: MR x NR = 6 x 64 fp32 = 24 zmm accumulators; per k, 4 loads of B
// (64 floats) and 6 broadcasts of A feed 24 FMAs, so the 32 zmm registers hold 24
// accumulators + 4 B vectors + 2 A broadcasts (alternating, so one broadcast issues
// while the previous one feeds its four FMAs). Two 512-bit FMA pipes with 4-cycle
// latency need 8 independent accumulators; 24 leave slack. What bounds the loop is the
// load ports: a broadcast is a load, and per 24 FMAs (12 cycles) this block issues 10
// loads where 12x32 issues 14 and 8x48 11. Measured alone on the Sapphire Rapids-class
// VM (L1-resident panels, no epilogue): 12x32 205-216 GFLOP/s, 8x48 231-234, 6x64
// 225-232, of a 240 FMA peak; 6x64 keeps N = 256 in four whole panels where 48 would
// waste 11%, and its 6 rows divide the attention's 48-, 96- and 192-row tiles.
// Embedded-broadcast FMAs ({1to16}) would load each A value four times: no.
// cpu/gemm/NOTES.md has the floors and measurements.
//
// The tiny path (at most 16^3 multiply-adds, no packing) is the AVX2 one, and so is the
// A packer (6-row panels, the same layout): those are bound by call overhead and
// shuffles, not by vector width.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>

#include "tilegrad/cpu/activation.hpp"
#include "tilegrad/cpu/gemm/gemm_impl.hpp"
#include "tilegrad/cpu/gemm/pack_avx2.hpp"
#include "tilegrad/cpu/vmath/vec_avx512.hpp"
#include "tilegrad/cpu/vmath/vmath.hpp"

namespace tg::cpu::gemm_impl {

namespace {

constexpr int kMR = 6;
constexpr int kNR = 64;
constexpr int kNV = kNR / 16;  // zmm vectors per row

// The epilogue's operands, built once per tile into locals (stores to C could alias a
// TileEpilogue's fields and force reloads after every row).
struct RowEpilogue {
  __m512 alpha, beta;
  bool scale, read_c;
  Activation act;
  int n;                // columns of the row (partial rows: < 64)
  __mmask16 mask[kNV];  // lanes [16 v, n) of each vector

  RowEpilogue(const TileEpilogue<float>& e, int cols)
      : alpha(_mm512_set1_ps(e.alpha)), beta(_mm512_set1_ps(e.beta)), scale(e.alpha != 1.0f),
        read_c(e.beta != 0.0f), act(e.act), n(cols) {
    for (int v = 0; v < kNV; ++v) mask[v] = simd::lanes_below16(std::clamp(cols - 16 * v, 0, 16));
  }
};

// C[0:64] of one row = act(alpha * acc + beta * C + bias); only n columns when !kFull,
// through masked loads and stores (lanes past n are neither read nor written).
template <bool kFull>
inline void store_row(float* c, const __m512 (&acc)[kNV], const RowEpilogue& r, const float* bias) {
  for (int v = 0; v < kNV; ++v) {
    if (!kFull && 16 * v >= r.n) break;
    const __mmask16 m = r.mask[v];
    __m512 x = acc[v];
    if (r.scale) x = _mm512_mul_ps(x, r.alpha);
    if (r.read_c)  // beta == 0 never reads C
      x = _mm512_fmadd_ps(r.beta, kFull ? _mm512_loadu_ps(c + 16 * v) : _mm512_maskz_loadu_ps(m, c + 16 * v), x);
    if (bias) x = _mm512_add_ps(x, kFull ? _mm512_loadu_ps(bias + 16 * v) : _mm512_maskz_loadu_ps(m, bias + 16 * v));
    x = vmath::activate_any(r.act, simd::Z16(x)).v;
    if (kFull) {
      _mm512_storeu_ps(c + 16 * v, x);
    } else {
      _mm512_mask_storeu_ps(c + 16 * v, m, x);
    }
  }
}

// One row of a k step: A's value broadcast into `reg` (zmm4 or zmm5, alternating) feeds
// the row's four FMAs, B's 64 floats being in zmm0-zmm3.
#define TG_ROW(aaddr, reg, r)                                                           \
  "vbroadcastss " aaddr ", %%" reg "\n\t"                                                \
  "vfmadd231ps %%zmm0, %%" reg ", %[c" #r "0]\n\t"                                       \
  "vfmadd231ps %%zmm1, %%" reg ", %[c" #r "1]\n\t"                                       \
  "vfmadd231ps %%zmm2, %%" reg ", %[c" #r "2]\n\t"                                       \
  "vfmadd231ps %%zmm3, %%" reg ", %[c" #r "3]\n\t"
// B's 64 floats of one k at the address `baddr` (a displacement and a base, e.g.
// "256(%%rdx)" or "(%%rdx,%%r13,2)"): the four loads at baddr + 0, 64, 128 and 192.
#define TG_LOAD_B(baddr) \
  "vmovups " baddr       \
  ", %%zmm0\n\t"         \
  "vmovups 64+" baddr    \
  ", %%zmm1\n\t"         \
  "vmovups 128+" baddr   \
  ", %%zmm2\n\t"         \
  "vmovups 192+" baddr ", %%zmm3\n\t"
// One k step: B's 64 floats loaded, then the six rows' broadcasts (A's values at the
// addresses r0-r5) and FMAs, the broadcasts alternating between zmm4 and zmm5. `boff`
// is the k step's place in a group of four (0-3): on a packed panel the displacement
// 256 boff from %%rdx; on rows of a row-major B read in place (ldb bytes apart, in
// %%r13), %%rdx + boff ldb, where %%r14 = %%rdx + 3 ldb (TG_B_ROWS). TG_B_AT picks.
#define TG_B_PACKED_0 "0(%%rdx)"
#define TG_B_PACKED_1 "256(%%rdx)"
#define TG_B_PACKED_2 "512(%%rdx)"
#define TG_B_PACKED_3 "768(%%rdx)"
#define TG_B_ROWS_0 "0(%%rdx)"
#define TG_B_ROWS_1 "0(%%rdx,%%r13,1)"
#define TG_B_ROWS_2 "0(%%rdx,%%r13,2)"
#define TG_B_ROWS_3 "0(%%r14)"
// After four k steps and after one: B's pointers move on.
#define TG_B_PACKED_NEXT4 "add $1024, %%rdx\n\t"
#define TG_B_PACKED_NEXT1 "add $256, %%rdx\n\t"
#define TG_B_ROWS_NEXT4  \
  "add %%r15, %%rdx\n\t" \
  "add %%r15, %%r14\n\t"
#define TG_B_ROWS_NEXT1  \
  "add %%r13, %%rdx\n\t" \
  "add %%r13, %%r14\n\t"
// Before the loops: r13 = ldb, r14 = b + 3 ldb, r15 = 4 ldb (bytes).
#define TG_B_PACKED_SETUP ""
#define TG_B_ROWS_SETUP            \
  "mov 80(%[loop]), %%r13\n\t"     \
  "lea (%%rdx,%%r13,2), %%r14\n\t" \
  "add %%r13, %%r14\n\t"           \
  "lea (,%%r13,4), %%r15\n\t"
// The registers that mode takes besides the packed one's.
#define TG_B_PACKED_CLOBBERS
#define TG_B_ROWS_CLOBBERS , "r13", "r14", "r15"
// TG_B_MODE (PACKED or ROWS) is defined before each use of the kernel's assembly below.
#define TG_B_CAT_(mode, what) TG_B_##mode##_##what
#define TG_B_CAT(mode, what) TG_B_CAT_(mode, what)
#define TG_STEP(boff, r0, r1, r2, r3, r4, r5) \
  TG_LOAD_B(TG_B_CAT(TG_B_MODE, boff))        \
  TG_ROW(r0, "zmm4", 0)                       \
  TG_ROW(r1, "zmm5", 1)                       \
  TG_ROW(r2, "zmm4", 2)                       \
  TG_ROW(r3, "zmm5", 3)                       \
  TG_ROW(r4, "zmm4", 4)                       \
  TG_ROW(r5, "zmm5", 5)
// A packed panel (6 floats per k): every address a displacement from %%rax and %%rdx, so
// four unrolled steps cost one pointer add each for A and B. Integer adds issue on the
// ports the 512-bit FMAs use (0 and 5): each one dropped is an FMA slot kept (the
// kernel alone went 196 -> 211 GFLOP/s when the 12x32 block dropped four per step).
#define TG_P_STEP(boff, a0, a1, a2, a3, a4, a5)                                        \
  TG_STEP(boff, #a0 "(%%rax)", #a1 "(%%rax)", #a2 "(%%rax)", #a3 "(%%rax)", #a4 "(%%rax)", #a5 "(%%rax)")
// Rows of A read in place, rs bytes apart (in %%r9): rows 0-2 from %%rax, 3-5 from
// %%r11, each at the displacement koff. For a row-major A (k stride 4 bytes) koff is
// the k offset, so four unrolled steps move each row pointer once.
#define TG_R_STEP(boff, koff)                                                           \
  TG_STEP(boff, #koff "(%%rax)", #koff "(%%rax,%%r9,1)", #koff "(%%rax,%%r9,2)", #koff "(%%r11)",       \
          #koff "(%%r11,%%r9,1)", #koff "(%%r11,%%r9,2)")
// Any other k stride (ks bytes, in %%r10): both row pointers move one k on per step.
#define TG_S_STEP(boff)                                                                 \
  TG_R_STEP(boff, 0)                                                                    \
  "add %%r10, %%rax\n\t"                                                                \
  "add %%r10, %%r11\n\t"
// Columns of a row-major matrix read in place as A's rows (A = M^T: row stride 4
// bytes, k stride ks in %%r10): a step's six values are displacements 0-20 from its k
// address `base`, the four k addresses of a group %%rax + {0, 1, 2} ks and %%r11 + 2 ks
// (%%r11 = %%rax + ks); both move 4 ks (%%r12) per group.
#define TG_C_STEP(boff, base) TG_STEP(boff, "0" base, "4" base, "8" base, "12" base, "16" base, "20" base)

// The k loop around the steps: k4 rounds of four unrolled steps (`four`, B moving 1024
// bytes after them), the C tile's rows prefetched into L1, k4_late more rounds, then k1
// single steps (`one`, B moving 256); each argument also moves A on as its addressing
// needs. The prefetch comes late because the B micro-panel (up to 128 KiB) streams
// through L1 during the loop and would evict lines fetched at its start; and the C +=
// epilogue of a K block after the first reads the tile, as the first one's stores
// write it.
#define TG_K_LOOPS(four, one) \
  "mov 16(%[loop]), %%r8\n\t" /* k4 before the C prefetch */                             \
  "test %%r8, %%r8\n\t"                                                                  \
  "jz 2f\n\t"                                                                            \
  ".p2align 5\n"                                                                          \
  "1:\n\t"                                                                               \
  four                                                                                  \
  TG_B_CAT(TG_B_MODE, NEXT4)                                                            \
  "dec %%r8\n\t"                                                                         \
  "jnz 1b\n"                                                                              \
  "2:\n\t"                                                                               \
  "mov 48(%[loop]), %%rcx\n\t" /* c */                                                   \
  "mov 56(%[loop]), %%rsi\n\t" /* ldc in bytes */                                        \
  "mov 64(%[loop]), %%rdi\n\t" /* rows */                                                 \
  "test %%rdi, %%rdi\n\t"                                                                \
  "jz 8f\n"                                                                               \
  "7:\n\t"                                                                               \
  "prefetcht0 (%%rcx)\n\t"                                                               \
  "prefetcht0 64(%%rcx)\n\t"                                                             \
  "prefetcht0 128(%%rcx)\n\t"                                                            \
  "prefetcht0 192(%%rcx)\n\t"                                                            \
  "add %%rsi, %%rcx\n\t"                                                                 \
  "dec %%rdi\n\t"                                                                        \
  "jnz 7b\n"                                                                              \
  "8:\n\t"                                                                               \
  "mov 72(%[loop]), %%r8\n\t" /* the last k4 */                                          \
  "test %%r8, %%r8\n\t"                                                                  \
  "jz 6f\n\t"                                                                            \
  ".p2align 5\n"                                                                          \
  "5:\n\t"                                                                               \
  four                                                                                  \
  TG_B_CAT(TG_B_MODE, NEXT4)                                                            \
  "dec %%r8\n\t"                                                                         \
  "jnz 5b\n"                                                                              \
  "6:\n\t"                                                                               \
  "mov 24(%[loop]), %%r8\n\t" /* k1 */                                                   \
  "test %%r8, %%r8\n\t"                                                                  \
  "jz 4f\n"                                                                               \
  "3:\n\t"                                                                               \
  one                                                                                   \
  TG_B_CAT(TG_B_MODE, NEXT1)                                                            \
  "dec %%r8\n\t"                                                                         \
  "jnz 3b\n"                                                                              \
  "4:\n\t"

// The k loop's scalars, read by the assembly from memory.
struct KLoop {
  const float* a;
  const float* b;
  index_t k4, k1;  // k steps in groups of 4 before C's prefetch, then single ones
  index_t rs, ks;  // A's row and k strides, in bytes
  const float* c;  // the C tile, prefetched kLateGroups groups of 4 before the end
  index_t ldc;     // in bytes
  index_t rows;    // of C to prefetch (none when 0)
  index_t k4_late; // groups of 4 after C's prefetch
  index_t ldb;     // B's k stride in bytes when its rows are read in place
};
static_assert(offsetof(KLoop, a) == 0 && offsetof(KLoop, b) == 8 && offsetof(KLoop, k4) == 16 &&
                  offsetof(KLoop, k1) == 24 && offsetof(KLoop, rs) == 32 && offsetof(KLoop, ks) == 40 &&
                  offsetof(KLoop, c) == 48 && offsetof(KLoop, ldc) == 56 && offsetof(KLoop, rows) == 64 &&
                  offsetof(KLoop, k4_late) == 72 && offsetof(KLoop, ldb) == 80,
              "the assembly reads KLoop by these offsets");
constexpr index_t kLateGroups = 8;

// The last panel of a C whose width is not a multiple of 64 (N = 784: twelve panels and
// 16 columns) holds n <= 32 live columns: the 6x64 block would run all 24 FMAs a k for
// 6 or 12 useful ones. This block reads the panel's first 16 NV columns (B rows stay 64
// floats apart) into 6 NV accumulators; with NV = 1 two sets alternate over k, so that
// 12 chains, not 6, cover the FMA latency. Per k: NV loads of B and 6 broadcasts of A.
template <int NV>
void edge_6xn(index_t kc, const float* a, index_t a_rs, index_t a_ks, const float* b, index_t b_ks, float* c,
              index_t ldc, int m, int n, const TileEpilogue<float>& e) {
  constexpr int kSets = NV == 1 ? 2 : 1;
  __m512 acc[kSets][kMR][NV];
  for (auto& set : acc)
    for (auto& row : set)
      for (__m512& v : row) v = _mm512_setzero_ps();
  index_t k = 0;
  for (; k + kSets <= kc; k += kSets)
    for (int s = 0; s < kSets; ++s) {
      const float* bk = b + (k + s) * b_ks;
      __m512 bv[NV];
      for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(bk + 16 * v);
      for (int r = 0; r < kMR; ++r) {
        const __m512 av = _mm512_set1_ps(a[r * a_rs + (k + s) * a_ks]);
        for (int v = 0; v < NV; ++v) acc[s][r][v] = _mm512_fmadd_ps(av, bv[v], acc[s][r][v]);
      }
    }
  for (; k < kc; ++k) {
    for (int v = 0; v < NV; ++v) {
      const __m512 bv = _mm512_loadu_ps(b + k * b_ks + 16 * v);
      for (int r = 0; r < kMR; ++r) acc[0][r][v] = _mm512_fmadd_ps(_mm512_set1_ps(a[r * a_rs + k * a_ks]), bv, acc[0][r][v]);
    }
  }
  const RowEpilogue rows(e, n);
  for (int r = 0; r < m; ++r) {
    __m512 out[kNV] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int v = 0; v < NV; ++v) out[v] = kSets == 2 ? _mm512_add_ps(acc[0][r][v], acc[kSets - 1][r][v]) : acc[0][r][v];
    store_row<false>(c + r * ldc, out, rows, e.bias);
  }
}

// The last tile of an M that is not a multiple of 6 (M = 128: 21 tiles and 2 rows) with
// m <= 3 live rows: the 6x64 block would run 24 FMAs a k for 4m useful ones. This block
// runs R = m rows of 4 accumulators, one chain each in k order, as the 6x64 block sums
// them (the same bits for those rows). Per k: 4 loads of B, R broadcasts, 4R FMAs; at
// R <= 2 the B panel's 256 bytes a k from L2, not the FMAs, set its pace.
template <int R>
void edge_rx64(index_t kc, const float* a, index_t a_rs, index_t a_ks, const float* b, index_t b_ks, float* c,
               index_t ldc, int n, const TileEpilogue<float>& e) {
  __m512 acc[R][kNV];
  for (auto& row : acc)
    for (__m512& v : row) v = _mm512_setzero_ps();
  for (index_t k = 0; k < kc; ++k) {
    const float* bk = b + k * b_ks;
    __m512 bv[kNV];
    for (int v = 0; v < kNV; ++v) bv[v] = _mm512_loadu_ps(bk + 16 * v);
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * a_rs + k * a_ks]);
      for (int v = 0; v < kNV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
  const RowEpilogue rows(e, n);
  for (int r = 0; r < R; ++r) store_row<false>(c + r * ldc, acc[r], rows, e.bias);  // masks: n <= 64
}

// C[0:m, 0:n] = epilogue(A (6 x kc) * B (kc x 64)). A is read in place: element (r, k)
// at a[r * a_rs + k * a_ks] (a packed panel: a_rs = 1, a_ks = 6; rows of a row-major A:
// a_rs = lda, a_ks = 1). All 6 rows may be read. B's row k is the 64 floats at
// b + k b_ks: a packed panel (kRowsB false, b_ks = 64) or, with kRowsB, rows of a
// row-major op(B) read in place (b_ks = ldb), where the driver passes only whole
// panels: all 64 columns are read.
template <bool kRowsB>
void kernel_6x64(index_t kc, const float* a, index_t a_rs, index_t a_ks, const float* b, index_t b_ks, float* c,
                 index_t ldc, int m, int n, const TileEpilogue<float>& e) {
  if (n <= 16) return edge_6xn<1>(kc, a, a_rs, a_ks, b, b_ks, c, ldc, m, n, e);
  if (n <= 32) return edge_6xn<2>(kc, a, a_rs, a_ks, b, b_ks, c, ldc, m, n, e);
  if (m == 1) return edge_rx64<1>(kc, a, a_rs, a_ks, b, b_ks, c, ldc, n, e);
  if (m == 2) return edge_rx64<2>(kc, a, a_rs, a_ks, b, b_ks, c, ldc, n, e);
  if (m == 3) return edge_rx64<3>(kc, a, a_rs, a_ks, b, b_ks, c, ldc, n, e);
  // The k loop is inline assembly, as on the AVX2 path (GCC spills in the intrinsics
  // version of such loops; cpu/gemm/NOTES.md). The accumulators are outputs zeroed by
  // the assembly itself (24 in-out operands would exceed the asm operand limit of 30),
  // pinned to zmm8-zmm31.
  register __m512 c00 asm("zmm8"), c01 asm("zmm9"), c02 asm("zmm10"), c03 asm("zmm11");
  register __m512 c10 asm("zmm12"), c11 asm("zmm13"), c12 asm("zmm14"), c13 asm("zmm15");
  register __m512 c20 asm("zmm16"), c21 asm("zmm17"), c22 asm("zmm18"), c23 asm("zmm19");
  register __m512 c30 asm("zmm20"), c31 asm("zmm21"), c32 asm("zmm22"), c33 asm("zmm23");
  register __m512 c40 asm("zmm24"), c41 asm("zmm25"), c42 asm("zmm26"), c43 asm("zmm27");
  register __m512 c50 asm("zmm28"), c51 asm("zmm29"), c52 asm("zmm30"), c53 asm("zmm31");
  const index_t k4 = kc / 4, late = std::min(k4, kLateGroups);
  const KLoop loop{a,
                   b,
                   k4 - late,
                   kc % 4,
                   a_rs * index_t(sizeof(float)),
                   a_ks * index_t(sizeof(float)),
                   c,
                   ldc * index_t(sizeof(float)),
                   m,
                   late,
                   b_ks * index_t(sizeof(float))};
#define TG_ZERO_ACC                                                                                  \
  "vpxord %[c00], %[c00], %[c00]\n\t"                                                                  \
  "vmovaps %[c00], %[c01]\n\t" "vmovaps %[c00], %[c02]\n\t" "vmovaps %[c00], %[c03]\n\t"             \
  "vmovaps %[c00], %[c10]\n\t" "vmovaps %[c00], %[c11]\n\t" "vmovaps %[c00], %[c12]\n\t"             \
  "vmovaps %[c00], %[c13]\n\t" "vmovaps %[c00], %[c20]\n\t" "vmovaps %[c00], %[c21]\n\t"             \
  "vmovaps %[c00], %[c22]\n\t" "vmovaps %[c00], %[c23]\n\t" "vmovaps %[c00], %[c30]\n\t"             \
  "vmovaps %[c00], %[c31]\n\t" "vmovaps %[c00], %[c32]\n\t" "vmovaps %[c00], %[c33]\n\t"             \
  "vmovaps %[c00], %[c40]\n\t" "vmovaps %[c00], %[c41]\n\t" "vmovaps %[c00], %[c42]\n\t"             \
  "vmovaps %[c00], %[c43]\n\t" "vmovaps %[c00], %[c50]\n\t" "vmovaps %[c00], %[c51]\n\t"             \
  "vmovaps %[c00], %[c52]\n\t" "vmovaps %[c00], %[c53]\n\t"
#define TG_ACC_OUTPUTS                                                                               \
  [c00] "=v"(c00), [c01] "=v"(c01), [c02] "=v"(c02), [c03] "=v"(c03), [c10] "=v"(c10),                 \
  [c11] "=v"(c11), [c12] "=v"(c12), [c13] "=v"(c13), [c20] "=v"(c20), [c21] "=v"(c21),                 \
  [c22] "=v"(c22), [c23] "=v"(c23), [c30] "=v"(c30), [c31] "=v"(c31), [c32] "=v"(c32),                 \
  [c33] "=v"(c33), [c40] "=v"(c40), [c41] "=v"(c41), [c42] "=v"(c42), [c43] "=v"(c43),                 \
  [c50] "=v"(c50), [c51] "=v"(c51), [c52] "=v"(c52), [c53] "=v"(c53)
// One k loop in assembly: the accumulators zeroed, A's and B's pointers loaded, `setup`
// (the A addressing's registers), the loops of `four` and `one` steps. The clobbers are
// every scratch register any of the loops uses.
#define TG_KERNEL_ASM(setup, four, one)                                                                              \
  asm volatile(TG_ZERO_ACC                                                                                           \
               "mov 0(%[loop]), %%rax\n\t" /* a */ "mov 8(%[loop]), %%rdx\n\t" /* b */ setup TG_B_CAT(               \
                   TG_B_MODE, SETUP) TG_K_LOOPS(four, one)                                                           \
               : TG_ACC_OUTPUTS                                                                                      \
               : [loop] "r"(&loop)                                                                                   \
               : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "xmm0", "xmm1", "xmm2", "xmm3", \
                 "xmm4", "xmm5", "cc", "memory" TG_B_CAT(TG_B_MODE, CLOBBERS))
// The four A addressings, each with the B addressing of TG_B_MODE: a packed panel;
// rows of a row-major A read in place (r9 = rs, r11 = a + 3 rs); columns of a
// row-major matrix read in place as A's rows (r10 = ks, r11 = a + ks, r12 = 4 ks);
// rows of A read in place at any strides (r9 = rs, r10 = ks, r11 = a + 3 rs).
// clang-format off
#define TG_KERNEL_A_MODES                                                                                              \
  if (a_rs == 1 && a_ks == kMR) {                                                                                      \
    TG_KERNEL_ASM("",                                                                                                  \
                  TG_P_STEP(0, 0, 4, 8, 12, 16, 20) TG_P_STEP(1, 24, 28, 32, 36, 40, 44)                               \
                      TG_P_STEP(2, 48, 52, 56, 60, 64, 68) TG_P_STEP(3, 72, 76, 80, 84, 88, 92) "add $96, %%rax\n\t",  \
                  TG_P_STEP(0, 0, 4, 8, 12, 16, 20) "add $24, %%rax\n\t");                                             \
  } else if (a_ks == 1) {                                                                                              \
    TG_KERNEL_ASM("mov 32(%[loop]), %%r9\n\t" "lea (%%rax,%%r9,2), %%r11\n\t" "add %%r9, %%r11\n\t",                   \
                  TG_R_STEP(0, 0) TG_R_STEP(1, 4) TG_R_STEP(2, 8) TG_R_STEP(3, 12)                                     \
                      "add $16, %%rax\n\t" "add $16, %%r11\n\t",                                                       \
                  TG_R_STEP(0, 0) "add $4, %%rax\n\t" "add $4, %%r11\n\t");                                            \
  } else if (a_rs == 1) {                                                                                              \
    TG_KERNEL_ASM("mov 40(%[loop]), %%r10\n\t" "lea (%%rax,%%r10,1), %%r11\n\t" "lea (,%%r10,4), %%r12\n\t",           \
                  TG_C_STEP(0, "(%%rax)") TG_C_STEP(1, "(%%rax,%%r10,1)") TG_C_STEP(2, "(%%rax,%%r10,2)")              \
                      TG_C_STEP(3, "(%%r11,%%r10,2)") "add %%r12, %%rax\n\t" "add %%r12, %%r11\n\t",                   \
                  TG_C_STEP(0, "(%%rax)") "add %%r10, %%rax\n\t" "add %%r10, %%r11\n\t");                              \
  } else {                                                                                                             \
    TG_KERNEL_ASM("mov 32(%[loop]), %%r9\n\t" "mov 40(%[loop]), %%r10\n\t"                                             \
                  "lea (%%rax,%%r9,2), %%r11\n\t" "add %%r9, %%r11\n\t",                                               \
                  TG_S_STEP(0) TG_S_STEP(1) TG_S_STEP(2) TG_S_STEP(3), TG_S_STEP(0));                                  \
  }
  // clang-format on
  if constexpr (kRowsB) {
#define TG_B_MODE ROWS
    TG_KERNEL_A_MODES
#undef TG_B_MODE
  } else {
#define TG_B_MODE PACKED
    TG_KERNEL_A_MODES
#undef TG_B_MODE
  }
#undef TG_KERNEL_A_MODES
#undef TG_KERNEL_ASM
#undef TG_ZERO_ACC
#undef TG_ACC_OUTPUTS
  const __m512 acc[kMR][kNV] = {{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23},
                                {c30, c31, c32, c33}, {c40, c41, c42, c43}, {c50, c51, c52, c53}};
  if (m == kMR && n == kNR && e.bias == nullptr && e.act.kind == Act::none && (e.beta == 0.0f || e.beta == 1.0f)) {
    // The tiles of every K block but the last (C = acc, or C += acc), and the
    // attention's scaled products (C = scale acc, C += scale acc): straight from the
    // registers, no per-vector choices (the general epilogue cost ~250 cycles a call,
    // 10% of a KC = 160 tile and a third of the attention's 64-deep QK^T tile). The
    // same operations as the general epilogue's (alpha acc rounded, then C added), so
    // the same bits.
    const __m512 alpha = _mm512_set1_ps(e.alpha);
    const bool scale = e.alpha != 1.0f;
    if (e.beta == 0.0f) {
      for (int i = 0; i < kMR; ++i)
        for (int v = 0; v < kNV; ++v)
          _mm512_storeu_ps(c + i * ldc + 16 * v, scale ? _mm512_mul_ps(acc[i][v], alpha) : acc[i][v]);
    } else {
      // Row i + 1 is loaded before row i is stored: with ldc a multiple of 1024 floats
      // the rows are 4 KiB apart, and a load behind a store to the same address bits
      // 0-11 waits for that store (4K aliasing).
      __m512 cur[kNV], next[kNV];
      for (int v = 0; v < kNV; ++v) cur[v] = _mm512_loadu_ps(c + 16 * v);
      for (int i = 0; i < kMR; ++i) {
        const bool more = i + 1 < kMR;
        if (more)
          for (int v = 0; v < kNV; ++v) next[v] = _mm512_loadu_ps(c + (i + 1) * ldc + 16 * v);
        for (int v = 0; v < kNV; ++v)
          _mm512_storeu_ps(c + i * ldc + 16 * v, _mm512_add_ps(cur[v], scale ? _mm512_mul_ps(acc[i][v], alpha) : acc[i][v]));
        if (more)
          for (int v = 0; v < kNV; ++v) cur[v] = next[v];
      }
    }
    return;
  }
  const RowEpilogue r(e, n);
  if (m == kMR && n == kNR) {
    for (int i = 0; i < kMR; ++i) store_row<true>(c + i * ldc, acc[i], r, e.bias);
  } else {
    for (int i = 0; i < m; ++i) store_row<false>(c + i * ldc, acc[i], r, e.bias);
  }
}
void gemm_avx512_6x64(index_t kc, const float* a, index_t a_rs, index_t a_ks, const float* b, float* c, index_t ldc,
                      int m, int n, const TileEpilogue<float>& e) {
  kernel_6x64<false>(kc, a, a_rs, a_ks, b, kNR, c, ldc, m, n, e);
}
void gemm_avx512_6x64_b_rows(index_t kc, const float* a, index_t a_rs, index_t a_ks, const float* b, index_t ldb,
                             float* c, index_t ldc, int m, int n, const TileEpilogue<float>& e) {
  kernel_6x64<true>(kc, a, a_rs, a_ks, b, ldb, c, ldc, m, n, e);
}
#undef TG_ROW
#undef TG_STEP
#undef TG_LOAD_B
#undef TG_B_CAT
#undef TG_B_CAT_
#undef TG_P_STEP
#undef TG_S_STEP
#undef TG_R_STEP
#undef TG_C_STEP
#undef TG_K_LOOPS

// op(B) [0, kc) x columns [0, cols) into 64-column panels: out[k * 64 + c] = op(B)(k, c).
void pack_b_avx512(Trans tb, const float* B, index_t ldb, index_t kc, index_t cols, float* out) {
  // Whole panels of a row-major B row by row: each k reads one contiguous stretch of B
  // (what the hardware prefetchers follow) and writes 64 floats into every panel. Panel
  // by panel instead reads 256 bytes a row, each row a new 4 KiB page when ldb is 1024:
  // 15% slower to pack (1024^3 on 2 threads, timed apart).
  if (tb == Trans::N && cols >= kNR) {
    const index_t whole = cols / kNR;
    for (index_t k = 0; k < kc; ++k) {
      const float* src = B + k * ldb;
      float* dst = out + k * kNR;
      for (index_t p = 0; p < whole; ++p)
        for (int v = 0; v < kNV; ++v) _mm512_storeu_ps(dst + p * kc * kNR + 16 * v, _mm512_loadu_ps(src + p * kNR + 16 * v));
    }
    if (whole * kNR == cols) return;
    B += whole * kNR;
    out += whole * kc * kNR;
    cols -= whole * kNR;
  }
  for (index_t j0 = 0; j0 < cols; j0 += kNR, out += kc * kNR) {
    const int valid = int(std::min<index_t>(kNR, cols - j0));
    if (tb == Trans::N) {
      // The last, partial panel (whole ones went row by row above).
      const float* src = B + j0;
      __mmask16 m[kNV];
      for (int v = 0; v < kNV; ++v) m[v] = simd::lanes_below16(std::clamp(valid - 16 * v, 0, 16));
      for (index_t k = 0; k < kc; ++k)
        for (int v = 0; v < kNV; ++v)
          _mm512_storeu_ps(out + k * kNR + 16 * v, _mm512_maskz_loadu_ps(m[v], src + k * ldb + 16 * v));
      continue;
    }
    // Trans::T: 64 rows of B (one per output column), 8 k at a time, 8x8 transposes of
    // the columns that exist (the rest of the panel zero).
    const float* colp[kNR];
    for (int c = 0; c < kNR; ++c) colp[c] = B + (j0 + std::min(c, valid - 1)) * ldb;
    const int groups = (valid + 7) / 8;
    index_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      for (int g = 0; g < kNR / 8; ++g) {
        if (g >= groups) {
          for (int q = 0; q < 8; ++q) _mm256_storeu_ps(out + (k + q) * kNR + 8 * g, _mm256_setzero_ps());
          continue;
        }
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
  static_assert(kMR == 6, "the A packer is the AVX2 path's 6-row one");
  static const Arch<float> arch{"avx512",
                                kMR,
                                kNR,
                                arch_avx2_f32().pack_a,
                                &pack_b_avx512,
                                &gemm_avx512_6x64,
                                arch_avx2_f32().small,
                                &activate_avx512,
                                &blocking_of<kMR, kNR, float>,
                                16,  // edge_6xn<1>
                                true,
                                &gemm_avx512_6x64_b_rows};
  return arch;
}

}  // namespace tg::cpu::gemm_impl
