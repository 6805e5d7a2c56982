// FP32 <-> bf16/f16 on AVX-512, 16 values a step, bit for bit kernels/half.hpp's scalar
// functions, by the same integer recipes as convert_avx2.cpp (which states them); tails
// are masked loads and stores of the same step, not a scalar loop:
//   bf16 encode: u + 0x7fff + (bit 16 of u), the top half; NaN quieted (0x40);
//   f16 encode:  vcvtps2ph with round-to-nearest-even;
//   decode:      integers for both, so a signalling NaN stays signalling.
#include <immintrin.h>

#include <cstdint>

#include "tilegrad/cpu/convert.hpp"
#include "tilegrad/cpu/vmath/vec_avx512.hpp"

namespace tg::cpu::convert_impl {
namespace {

inline __m256i bf16_from_f32(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i abs = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
  const __mmask16 nan = _mm512_cmpgt_epi32_mask(abs, _mm512_set1_epi32(0x7f800000));
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
  const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet));
}

inline __m512 f32_from_bf16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

inline __m512 f32_from_f16(__m256i h16) {
  const __m512i h = _mm512_cvtepu16_epi32(h16);
  const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(h, _mm512_set1_epi32(0x8000)), 16);
  const __m512i e = _mm512_and_si512(h, _mm512_set1_epi32(0x7c00));
  const __m512i m = _mm512_and_si512(h, _mm512_set1_epi32(0x03ff));
  const __m512i normal = _mm512_add_epi32(_mm512_slli_epi32(_mm512_and_si512(h, _mm512_set1_epi32(0x7fff)), 13),
                                          _mm512_set1_epi32(112 << 23));
  const __m512i special = _mm512_or_si512(_mm512_set1_epi32(0x7f800000), _mm512_slli_epi32(m, 13));
  const __m512i tiny = _mm512_castps_si512(_mm512_mul_ps(_mm512_cvtepi32_ps(m), _mm512_set1_ps(5.9604644775390625e-8f)));
  __m512i bits = _mm512_mask_blend_epi32(_mm512_cmpeq_epi32_mask(e, _mm512_set1_epi32(0x7c00)), normal, special);
  bits = _mm512_mask_blend_epi32(_mm512_cmpeq_epi32_mask(e, _mm512_setzero_si512()), bits, tiny);
  return _mm512_castsi512_ps(_mm512_or_si512(bits, sign));
}

// One conversion in 16-value steps; the last, partial step under a mask.
template <class Step>
void run(index_t n, Step&& step) {
  index_t i = 0;
  for (; i + 16 <= n; i += 16) step(i, __mmask16(0xffff));
  if (i < n) step(i, simd::lanes_below16(int(n - i)));
}

}  // namespace

bool convert_avx512(DType from, DType to, index_t n, const void* src, void* dst) {
  const auto* f = static_cast<const float*>(src);
  const auto* h = static_cast<const std::uint16_t*>(src);
  auto* fo = static_cast<float*>(dst);
  auto* ho = static_cast<std::uint16_t*>(dst);
  auto load16 = [&](index_t i, __mmask16 m) { return _mm256_maskz_loadu_epi16(m, h + i); };
  auto store16 = [&](index_t i, __mmask16 m, __m256i v) { _mm256_mask_storeu_epi16(ho + i, m, v); };
  if (from == DType::f32 && to == DType::bf16) {
    run(n, [&](index_t i, __mmask16 m) { store16(i, m, bf16_from_f32(_mm512_maskz_loadu_ps(m, f + i))); });
    return true;
  }
  if (from == DType::f32 && to == DType::f16) {
    run(n, [&](index_t i, __mmask16 m) {
      store16(i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, f + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    });
    return true;
  }
  if (from == DType::bf16 && to == DType::f32) {
    run(n, [&](index_t i, __mmask16 m) { _mm512_mask_storeu_ps(fo + i, m, f32_from_bf16(load16(i, m))); });
    return true;
  }
  if (from == DType::f16 && to == DType::f32) {
    run(n, [&](index_t i, __mmask16 m) { _mm512_mask_storeu_ps(fo + i, m, f32_from_f16(load16(i, m))); });
    return true;
  }
  return false;
}

}  // namespace tg::cpu::convert_impl
