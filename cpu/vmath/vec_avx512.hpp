// Z16: sixteen floats in a zmm register, with F8's interface (vec_avx2.hpp), so that
// cpu/vmath/vmath.hpp's algorithms and the op templates (*_impl.hpp) run unchanged at
// width 16. Masks are AVX-512 mask registers (K16), and partial loads and stores are
// masked moves: a tail is one instruction, never a lane loop. Include only from
// translation units compiled with the AVX-512 flags (the *_avx512.cpp files: F, BW, DQ,
// VL). vec_wide.hpp has the same interface in plain C++ (P16), so the 16-lane
// algorithms are tested on machines without AVX-512 too.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "tilegrad/cpu/vmath/vec_pair.hpp"

namespace tg::cpu::simd {

struct K16 {  // one bit per lane
  __mmask16 m;
};
inline K16 operator&(K16 a, K16 b) { return {__mmask16(a.m & b.m)}; }
inline K16 operator|(K16 a, K16 b) { return {__mmask16(a.m | b.m)}; }
inline K16 operator!(K16 a) { return {__mmask16(~a.m)}; }
inline bool any(K16 a) { return a.m != 0; }
inline bool all(K16 a) { return a.m == 0xffff; }

// Lanes [0, n) set, n in [0, 16].
inline __mmask16 lanes_below16(int n) { return __mmask16((1u << n) - 1u); }

struct Z16 {
  using Mask = K16;
  static constexpr int kLanes = 16;
  __m512 v;

  Z16() = default;
  Z16(__m512 x) : v(x) {}
  Z16(float x) : v(_mm512_set1_ps(x)) {}
  static Z16 load(const float* p) { return _mm512_loadu_ps(p); }
  // The first n < 16 floats, zeros beyond; lanes past n are not read (no fault).
  static Z16 load_partial(const float* p, int n) { return _mm512_maskz_loadu_ps(lanes_below16(n), p); }
  static Z16 load_partial_fill(const float* p, int n, float fill) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), lanes_below16(n), p);
  }
  static void stream_fence() { _mm_sfence(); }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
};

inline Z16 operator+(Z16 a, Z16 b) { return _mm512_add_ps(a.v, b.v); }
inline Z16 operator-(Z16 a, Z16 b) { return _mm512_sub_ps(a.v, b.v); }
inline Z16 operator*(Z16 a, Z16 b) { return _mm512_mul_ps(a.v, b.v); }
inline Z16 operator/(Z16 a, Z16 b) { return _mm512_div_ps(a.v, b.v); }
inline Z16 operator-(Z16 a) { return _mm512_xor_ps(a.v, _mm512_set1_ps(-0.0f)); }
inline Z16 fma(Z16 a, Z16 b, Z16 c) { return _mm512_fmadd_ps(a.v, b.v, c.v); }
inline Z16 fnma(Z16 a, Z16 b, Z16 c) { return _mm512_fnmadd_ps(a.v, b.v, c.v); }
inline Z16 fms(Z16 a, Z16 b, Z16 c) { return _mm512_fmsub_ps(a.v, b.v, c.v); }
// VMINPS/VMAXPS: b when either is NaN, as on the other paths.
inline Z16 min(Z16 a, Z16 b) { return _mm512_min_ps(a.v, b.v); }
inline Z16 max(Z16 a, Z16 b) { return _mm512_max_ps(a.v, b.v); }
inline Z16 abs(Z16 a) { return _mm512_andnot_ps(_mm512_set1_ps(-0.0f), a.v); }
inline Z16 sign_bit(Z16 a) { return _mm512_and_ps(_mm512_set1_ps(-0.0f), a.v); }
inline Z16 xor_bits(Z16 a, Z16 b) { return _mm512_xor_ps(a.v, b.v); }
inline Z16 select(K16 m, Z16 a, Z16 b) { return _mm512_mask_blend_ps(m.m, b.v, a.v); }  // m ? a : b
inline K16 operator<(Z16 a, Z16 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ)}; }
inline K16 operator<=(Z16 a, Z16 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LE_OQ)}; }
inline K16 operator>(Z16 a, Z16 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ)}; }
inline K16 operator>=(Z16 a, Z16 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ)}; }
inline K16 operator==(Z16 a, Z16 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_EQ_OQ)}; }
inline K16 is_nan(Z16 a) { return {_mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q)}; }

inline Z16 round_int(Z16 a) { return _mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline Z16 pow2_int(Z16 n) {
  const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127));
  return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
}
// v 2^n (n integral, 2^n normal) rounded once: vmath's mul_pow2 in one instruction.
inline Z16 mul_pow2(Z16 v, Z16 n) { return _mm512_scalef_ps(v.v, n.v); }
inline Z16 exponent_of(Z16 a) {
  const __m512i e = _mm512_srli_epi32(_mm512_castps_si512(a.v), 23);
  return _mm512_cvtepi32_ps(_mm512_sub_epi32(e, _mm512_set1_epi32(127)));
}
inline Z16 mantissa_of(Z16 a) {
  const __m512i m = _mm512_and_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(0x007fffff));
  return _mm512_castsi512_ps(_mm512_or_si512(m, _mm512_set1_epi32(0x3f800000)));
}

// Quarter octaves (vec_scalar.hpp): a's top eleven bits, and a sixteen-entry table read
// by one VPERMPS (it uses the low four bits of each lane's index).
inline Z16 quarter_octave_floor(Z16 a) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(int(0xffe00000u))));
}
inline Z16 lookup_quarter_octave(const float (&t)[16], Z16 a) {
  return _mm512_permutexvar_ps(_mm512_srli_epi32(_mm512_castps_si512(a.v), 21), _mm512_loadu_ps(t));
}

// Non-temporal store, p 64-byte aligned (see vec_avx2.hpp).
inline void store_stream(float* p, Z16 v) { _mm512_stream_ps(p, v.v); }
// Stores the first n (< 16) lanes: one masked store (lanes past n are not touched).
inline void store_partial(float* p, Z16 v, int n) { _mm512_mask_storeu_ps(p, lanes_below16(n), v.v); }

// Horizontal reductions: halves folded 256 -> 128 -> 64 -> 32 bits.
inline float reduce_add(Z16 v) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v.v), _mm512_extractf32x8_ps(v.v, 1));
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  return _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)));
}
// Sixteen horizontal sums at once: lane k of the result is reduce_add(v[k]), the same
// bits (the same pairs added: lane i with i + 8, then i + 4, i + 2, i + 1), by a
// transposing fold: each level adds two vectors' halves side by side, so the 16 sums
// take 15 adds and 31 shuffles where 16 reduce_adds take 64 operations, each a chain.
inline Z16 reduce_add_each(const Z16* v) {
  __m512 h[8], q[4], e[2];
  for (int i = 0; i < 8; ++i)  // 256-bit halves: rows 2i, 2i + 1 side by side
    h[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i].v, v[2 * i + 1].v, 0x44),
                         _mm512_shuffle_f32x4(v[2 * i].v, v[2 * i + 1].v, 0xEE));
  for (int i = 0; i < 4; ++i)  // 128-bit halves: quarter j holds row 4i + j
    q[i] = _mm512_add_ps(_mm512_shuffle_f32x4(h[2 * i], h[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(h[2 * i], h[2 * i + 1], 0xDD));
  for (int i = 0; i < 2; ++i)  // 64-bit halves: quarter j holds rows j, 4 + j (of 8i)
    e[i] =
        _mm512_add_ps(_mm512_shuffle_ps(q[2 * i], q[2 * i + 1], 0x44), _mm512_shuffle_ps(q[2 * i], q[2 * i + 1], 0xEE));
  // 32-bit halves: lane 4j + t holds row 4t + j; the permute puts row k in lane k.
  const __m512 s = _mm512_add_ps(_mm512_shuffle_ps(e[0], e[1], 0x88), _mm512_shuffle_ps(e[0], e[1], 0xDD));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), s);
}
inline float reduce_max(Z16 v) {  // NaN lanes are not guaranteed to win: check NaN apart
  const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v.v), _mm512_extractf32x8_ps(v.v, 1));
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  return _mm_cvtss_f32(_mm_max_ss(x, _mm_movehdup_ps(x)));
}

// 32 registers hold two chains of the vector math: its loops run on pairs.
template <>
struct Paired<Z16> {
  using type = Pair<Z16>;
};

}  // namespace tg::cpu::simd
