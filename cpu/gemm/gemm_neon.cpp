// The SGEMM leaves for AArch64 Advanced SIMD (NEON): an 8x12 micro-kernel and its
// packers, under the five loops of gemm.cpp.
//
// Register block: 32 128-bit registers. C is 8 rows x 12 columns = 24 accumulators
// (three 4-float vectors a row); per k step two vectors hold A's 8 values (a packed
// panel: 8 consecutive floats) and three hold B's 12, 29 registers in all. Each
// accumulator takes `fmla vC.4s, vB.4s, vA.s[lane]` (FMLA by element: A's value comes
// from a lane, no broadcast instruction), 24 FMLAs to 5 loads a k step, the shape of
// BLIS's and OpenBLAS's ARMv8 kernels. The k loop is checked in the object code by
// tests/neon_gemm_check.py (FMLA by element, no stack traffic).
//
// Floors (not measured: no ARM machine has run this; cpu/NOTES.md has the per-machine
// numbers): a Neoverse V1 or V2 core (Graviton 3 and 4, Grace) issues four 128-bit FMLAs
// a cycle, so the kernel's 24 FMLAs take 6 cycles a k step, in which its 5 loads fit the
// load ports with room: FMA-bound, as it should be.
#include <arm_neon.h>

#include <algorithm>

#include "tilegrad/cpu/activation.hpp"
#include "tilegrad/cpu/gemm/gemm_impl.hpp"

namespace tg::cpu::gemm_impl {

namespace {

constexpr int kMR = 8;
constexpr int kNR = 12;
constexpr int kNV = kNR / 4;

using Tile = float32x4_t[kMR][kNV];

// kc steps of the packed panels: a (8 floats a k), b (12 floats a k). Fully unrolled over
// the 24 accumulators so that they stay in registers through the loop.
inline __attribute__((always_inline)) void k_steps(Tile& c, const float* a, const float* b, index_t kc) {
  float32x4_t c00 = c[0][0], c01 = c[0][1], c02 = c[0][2], c10 = c[1][0], c11 = c[1][1], c12 = c[1][2];
  float32x4_t c20 = c[2][0], c21 = c[2][1], c22 = c[2][2], c30 = c[3][0], c31 = c[3][1], c32 = c[3][2];
  float32x4_t c40 = c[4][0], c41 = c[4][1], c42 = c[4][2], c50 = c[5][0], c51 = c[5][1], c52 = c[5][2];
  float32x4_t c60 = c[6][0], c61 = c[6][1], c62 = c[6][2], c70 = c[7][0], c71 = c[7][1], c72 = c[7][2];
  for (index_t k = 0; k < kc; ++k) {
    const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
    const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
#define TG_NEON_ROW(r, av, lane)              \
  c##r##0 = vfmaq_laneq_f32(c##r##0, b0, av, lane); \
  c##r##1 = vfmaq_laneq_f32(c##r##1, b1, av, lane); \
  c##r##2 = vfmaq_laneq_f32(c##r##2, b2, av, lane);
    TG_NEON_ROW(0, a0, 0)
    TG_NEON_ROW(1, a0, 1)
    TG_NEON_ROW(2, a0, 2)
    TG_NEON_ROW(3, a0, 3)
    TG_NEON_ROW(4, a1, 0)
    TG_NEON_ROW(5, a1, 1)
    TG_NEON_ROW(6, a1, 2)
    TG_NEON_ROW(7, a1, 3)
#undef TG_NEON_ROW
    a += kMR;
    b += kNR;
  }
  c[0][0] = c00, c[0][1] = c01, c[0][2] = c02, c[1][0] = c10, c[1][1] = c11, c[1][2] = c12;
  c[2][0] = c20, c[2][1] = c21, c[2][2] = c22, c[3][0] = c30, c[3][1] = c31, c[3][2] = c32;
  c[4][0] = c40, c[4][1] = c41, c[4][2] = c42, c[5][0] = c50, c[5][1] = c51, c[5][2] = c52;
  c[6][0] = c60, c[6][1] = c61, c[6][2] = c62, c[7][0] = c70, c[7][1] = c71, c[7][2] = c72;
}

// C[0:m, 0:n] = act(alpha acc + beta C + bias). Full tiles without bias or activation
// straight from the registers; the rest through a row buffer, then the path's
// activation over the stored tile (as the portable kernel does).
void store_tile(const Tile& acc, float* c, index_t ldc, int m, int n, const TileEpilogue<float>& e) {
  const float32x4_t alpha = vdupq_n_f32(e.alpha), beta = vdupq_n_f32(e.beta);
  const bool scale = e.alpha != 1.0f, read_c = e.beta != 0.0f;
  float32x4_t bias[kNV] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};  // zeros past n
  if (e.bias) {
    float padded[kNR] = {};
    std::copy(e.bias, e.bias + n, padded);
    for (int q = 0; q < kNV; ++q) bias[q] = vld1q_f32(padded + 4 * q);
  }
  for (int i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    float row[kNR] = {};  // a partial row's C in, and its result out
    if (n < kNR && read_c) std::copy(ci, ci + n, row);
    float32x4_t v[kNV];
    for (int q = 0; q < kNV; ++q) {
      v[q] = scale ? vmulq_f32(acc[i][q], alpha) : acc[i][q];
      if (read_c) v[q] = vfmaq_f32(v[q], beta, vld1q_f32(n == kNR ? ci + 4 * q : row + 4 * q));
      if (e.bias) v[q] = vaddq_f32(v[q], bias[q]);
    }
    if (n == kNR) {
      for (int q = 0; q < kNV; ++q) vst1q_f32(ci + 4 * q, v[q]);
    } else {
      for (int q = 0; q < kNV; ++q) vst1q_f32(row + 4 * q, v[q]);
      std::copy(row, row + n, ci);
    }
  }
  if (e.act.kind != Act::none) act_forward_neon(e.act, m, n, c, ldc, nullptr, c, ldc);
}

// C[0:m, 0:n] = epilogue(A (8 x kc) * B panel (kc x 12)). A's element (r, k) is
// a[r * a_rs + k * a_ks]; a packed panel (a_rs = 1, a_ks = 8) streams straight into the
// k loop, any other layout (the attention's operands read in place) is packed here in
// chunks of 128 k steps first. All 8 rows are read.
void gemm_neon_8x12(index_t kc, const float* a, index_t a_rs, index_t a_ks, const float* b, float* c, index_t ldc,
                    int m, int n, const TileEpilogue<float>& e) {
  Tile acc;
  for (auto& row : acc)
    for (float32x4_t& v : row) v = vdupq_n_f32(0.0f);
  if (a_rs == 1 && a_ks == kMR) {
    k_steps(acc, a, b, kc);
  } else {
    constexpr index_t kChunk = 128;
    alignas(16) float panel[kChunk * kMR];
    for (index_t k0 = 0; k0 < kc; k0 += kChunk) {
      const index_t len = std::min(kChunk, kc - k0);
      for (index_t k = 0; k < len; ++k)
        for (int r = 0; r < kMR; ++r) panel[k * kMR + r] = a[r * a_rs + (k0 + k) * a_ks];
      k_steps(acc, panel, b + k0 * kNR, len);
    }
  }
  store_tile(acc, c, ldc, m, n, e);
}

// op(A) rows [0, rows) x kc into 8-row panels, k-major: whole panels of a transposed A
// (8 consecutive floats a k) by vector copies, the rest by the generic packer.
void pack_a_neon(Trans ta, const float* A, index_t lda, index_t rows, index_t kc, float* out) {
  index_t i0 = 0;
  if (ta == Trans::T)
    for (; i0 + kMR <= rows; i0 += kMR, out += kc * kMR)
      for (index_t k = 0; k < kc; ++k) {
        const float* src = A + k * lda + i0;
        vst1q_f32(out + k * kMR, vld1q_f32(src));
        vst1q_f32(out + k * kMR + 4, vld1q_f32(src + 4));
      }
  if (i0 < rows) pack_a_portable<float, kMR>(ta, ta == Trans::N ? A + i0 * lda : A + i0, lda, rows - i0, kc, out);
}

// kc rows x op(B) columns [0, cols) into 12-column panels: whole panels of a row-major B
// (12 consecutive floats a k) by vector copies, the rest by the generic packer.
void pack_b_neon(Trans tb, const float* B, index_t ldb, index_t kc, index_t cols, float* out) {
  index_t j0 = 0;
  if (tb == Trans::N)
    for (; j0 + kNR <= cols; j0 += kNR, out += kc * kNR)
      for (index_t k = 0; k < kc; ++k)
        for (int q = 0; q < kNV; ++q) vst1q_f32(out + k * kNR + 4 * q, vld1q_f32(B + k * ldb + j0 + 4 * q));
  if (j0 < cols) pack_b_portable<float, kNR>(tb, tb == Trans::N ? B + j0 : B + j0 * ldb, ldb, kc, cols - j0, out);
}

void activate_neon(Activation act, float* c, index_t ldc, index_t rows, index_t cols) {
  act_forward_neon(act, rows, cols, c, ldc, nullptr, c, ldc);
}

// A packed A panel is one 32-byte stream the kernel reads with two loads a k; rows read
// in place would take eight lane loads a k step (or a transpose), so the driver packs A
// on this path (direct_a = false).
constexpr Arch<float> kNeon{"neon",        kMR, kNR, &pack_a_neon, &pack_b_neon, &gemm_neon_8x12, nullptr,
                            &activate_neon, &blocking_of<kMR, kNR, float>, 0, false};

}  // namespace

const Arch<float>& arch_neon_f32() { return kNeon; }

}  // namespace tg::cpu::gemm_impl
