// F8: eight floats in a ymm register, with the operations cpu/vmath/vmath.hpp's
// algorithms are written in. Include only from translation units compiled with
// -mavx2 -mfma (the *_avx2.cpp files). vec_scalar.hpp gives the same interface for one
// float, so each algorithm is written once and runs on both paths.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace tg::cpu::simd {

struct M8 {  // a lane mask: all ones or all zeros per lane
  __m256 m;
};
inline M8 operator&(M8 a, M8 b) { return {_mm256_and_ps(a.m, b.m)}; }
inline M8 operator|(M8 a, M8 b) { return {_mm256_or_ps(a.m, b.m)}; }
inline M8 operator!(M8 a) { return {_mm256_xor_ps(a.m, _mm256_castsi256_ps(_mm256_set1_epi32(-1)))}; }
inline bool any(M8 a) { return _mm256_movemask_ps(a.m) != 0; }
inline bool all(M8 a) { return _mm256_movemask_ps(a.m) == 0xff; }

struct I8 {  // eight int32
  __m256i v;
};

struct F8 {
  using Mask = M8;
  using Int = I8;
  static constexpr int kLanes = 8;
  __m256 v;

  F8() = default;
  F8(__m256 x) : v(x) {}
  F8(float x) : v(_mm256_set1_ps(x)) {}
  static F8 load(const float* p) { return _mm256_loadu_ps(p); }
  static F8 load_partial(const float* p, int n) {  // the first n < 8 floats, zeros beyond
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
  }
  // The first n < 8 floats, `fill` beyond.
  static F8 load_partial_fill(const float* p, int n, float fill) {
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
  }
  static void stream_fence() { _mm_sfence(); }  // after store_stream, before handing on
  void store(float* p) const { _mm256_storeu_ps(p, v); }
};

inline F8 operator+(F8 a, F8 b) { return _mm256_add_ps(a.v, b.v); }
inline F8 operator-(F8 a, F8 b) { return _mm256_sub_ps(a.v, b.v); }
inline F8 operator*(F8 a, F8 b) { return _mm256_mul_ps(a.v, b.v); }
inline F8 operator/(F8 a, F8 b) { return _mm256_div_ps(a.v, b.v); }
inline F8 operator-(F8 a) { return _mm256_xor_ps(a.v, _mm256_set1_ps(-0.0f)); }
inline F8 fma(F8 a, F8 b, F8 c) { return _mm256_fmadd_ps(a.v, b.v, c.v); }    // a b + c
inline F8 fnma(F8 a, F8 b, F8 c) { return _mm256_fnmadd_ps(a.v, b.v, c.v); }  // c - a b
inline F8 fms(F8 a, F8 b, F8 c) { return _mm256_fmsub_ps(a.v, b.v, c.v); }    // a b - c
// min/max return b when either is NaN (MINPS/MAXPS), so min(limit, x) keeps x's NaN.
inline F8 min(F8 a, F8 b) { return _mm256_min_ps(a.v, b.v); }
inline F8 max(F8 a, F8 b) { return _mm256_max_ps(a.v, b.v); }
inline F8 abs(F8 a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v); }
inline F8 sign_bit(F8 a) { return _mm256_and_ps(_mm256_set1_ps(-0.0f), a.v); }
inline F8 xor_bits(F8 a, F8 b) { return _mm256_xor_ps(a.v, b.v); }  // e.g. apply a sign
inline F8 select(M8 m, F8 a, F8 b) { return _mm256_blendv_ps(b.v, a.v, m.m); }  // m ? a : b
inline M8 operator<(F8 a, F8 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ)}; }
inline M8 operator<=(F8 a, F8 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LE_OQ)}; }
inline M8 operator>(F8 a, F8 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ)}; }
inline M8 operator>=(F8 a, F8 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ)}; }
inline M8 operator==(F8 a, F8 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ)}; }
inline M8 is_nan(F8 a) { return {_mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q)}; }

// Round to the nearest integer (ties to even), as a float.
inline F8 round_int(F8 a) { return _mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
// 2^n for integral n in [-126, 127] (normal range), built in the exponent field.
inline F8 pow2_int(F8 n) {
  const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127));
  return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
}
// The unbiased exponent field of a (normal, positive) float as a float, and the
// mantissa with the exponent set to 0 (a value in [1, 2)).
inline F8 exponent_of(F8 a) {
  const __m256i e = _mm256_srli_epi32(_mm256_castps_si256(a.v), 23);
  return _mm256_cvtepi32_ps(_mm256_sub_epi32(e, _mm256_set1_epi32(127)));
}
inline F8 mantissa_of(F8 a) {
  const __m256i m = _mm256_and_si256(_mm256_castps_si256(a.v), _mm256_set1_epi32(0x007fffff));
  return _mm256_castsi256_ps(_mm256_or_si256(m, _mm256_set1_epi32(0x3f800000)));
}

// Quarter octaves (vec_scalar.hpp): a's top eleven bits, and a sixteen-entry table read
// as two eight-entry VPERMPS (each uses the low three bits of a lane's index) and a
// blend on the fourth bit (bit 24 of a, shifted to the sign for BLENDVPS).
inline F8 quarter_octave_floor(F8 a) {
  return _mm256_castsi256_ps(_mm256_and_si256(_mm256_castps_si256(a.v), _mm256_set1_epi32(int(0xffe00000u))));
}
inline F8 lookup_quarter_octave(const float (&t)[16], F8 a) {
  const __m256i bits = _mm256_castps_si256(a.v);
  const __m256i k = _mm256_srli_epi32(bits, 21);
  const __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(t), k);
  const __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(t + 8), k);
  return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(bits, 7)));
}

// Non-temporal store (p 32-byte aligned): for outputs far larger than the caches, it
// skips the read-for-ownership a normal store costs. stream_fence() before the data is
// handed on.
inline void store_stream(float* p, F8 v) { _mm256_stream_ps(p, v.v); }

// Stores of the first n (< 8) lanes (F8::load_partial loads them, zeros beyond).
inline void store_partial(float* p, F8 v, int n) {
  __m128 x = _mm256_castps256_ps128(v.v);  // not vmaskmovps: microcoded on AMD
  if (n & 4) {
    _mm_storeu_ps(p, x);
    x = _mm256_extractf128_ps(v.v, 1);
    p += 4;
  }
  if (n & 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(p), x);
    x = _mm_movehl_ps(x, x);
    p += 2;
  }
  if (n & 1) _mm_store_ss(p, x);
}
// Horizontal reductions.
inline float reduce_add(F8 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v.v), _mm256_extractf128_ps(v.v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  return _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)));
}
inline float reduce_max(F8 v) {  // NaN lanes are not guaranteed to win: check NaN apart
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v.v), _mm256_extractf128_ps(v.v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  return _mm_cvtss_f32(_mm_max_ss(x, _mm_movehdup_ps(x)));
}

}  // namespace tg::cpu::simd
