// FP32 <-> bf16/f16 on AVX2, 8 values a step, bit for bit kernels/half.hpp's scalar
// functions (the tail goes through them):
//   bf16 encode: integers, as the scalar one: u + 0x7fff + (bit 16 of u), the top half;
//                NaN keeps its top bits and gets the quiet bit (0x40);
//   f16 encode:  F16C's vcvtps2ph with round-to-nearest-even (subnormals, overflow to
//                inf, NaN as top payload bits with the quiet bit: the scalar rules);
//   decode:      integers for both (bf16: a shift; f16: rebased exponent for normals,
//                inf/NaN payload kept as it is, subnormals as m * 2^-24, exact), so a
//                signalling NaN stays signalling, as in the scalar decode (vcvtph2ps
//                would quiet it).
#include <immintrin.h>

#include <cstdint>

#include "tilegrad/cpu/convert.hpp"
#include "tilegrad/kernels/half.hpp"

namespace tg::cpu::convert_impl {
namespace {

// 8 x 32-bit -> 8 x 16-bit (values < 2^16), in order.
inline __m128i narrow(__m256i v) {
  const __m256i packed = _mm256_packus_epi32(v, v);  // per 128-bit lane: a0..a3 a0..a3 | b0..b3 b0..b3
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(packed, 0x08));  // a0..a3 b0..b3
}

inline __m128i bf16_from_f32(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i abs = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
  const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));  // as signed: abs < 2^31
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)), 16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  return narrow(_mm256_blendv_epi8(rounded, quiet, nan));
}

inline __m256 f32_from_bf16(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }

inline __m256 f32_from_f16(__m128i h16) {
  const __m256i h = _mm256_cvtepu16_epi32(h16);
  const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x8000)), 16);
  const __m256i e = _mm256_and_si256(h, _mm256_set1_epi32(0x7c00));
  const __m256i m = _mm256_and_si256(h, _mm256_set1_epi32(0x03ff));
  // Normal: exponent + 112, mantissa << 13; inf/NaN: 0x7f800000 | mantissa << 13.
  const __m256i normal = _mm256_add_epi32(_mm256_slli_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x7fff)), 13),
                                          _mm256_set1_epi32(112 << 23));
  const __m256i special = _mm256_or_si256(_mm256_set1_epi32(0x7f800000), _mm256_slli_epi32(m, 13));
  // Zero or subnormal: m * 2^-24, exact.
  const __m256i tiny = _mm256_castps_si256(_mm256_mul_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(5.9604644775390625e-8f)));
  __m256i bits = _mm256_blendv_epi8(normal, special, _mm256_cmpeq_epi32(e, _mm256_set1_epi32(0x7c00)));
  bits = _mm256_blendv_epi8(bits, tiny, _mm256_cmpeq_epi32(e, _mm256_setzero_si256()));
  return _mm256_castsi256_ps(_mm256_or_si256(bits, sign));
}

// The whole f16 encoding loop in a function of its own: F16C is enabled for it alone
// (called only when cpuid has it), so nothing else in this file may use it.
[[gnu::target("avx2,fma,f16c"), gnu::noinline]] void f16_from_f32(index_t n, const float* f, std::uint16_t* ho) {
  index_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(ho + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(f + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) ho[i] = f16_bits_from_float(f[i]);
}

// One conversion on 8-value steps, the tail by the scalar functions.
template <class Step, class Tail>
void run(index_t n, Step&& step, Tail&& tail) {
  index_t i = 0;
  for (; i + 8 <= n; i += 8) step(i);
  for (; i < n; ++i) tail(i);
}

}  // namespace

bool convert_avx2(DType from, DType to, index_t n, const void* src, void* dst) {
  const auto* f = static_cast<const float*>(src);
  const auto* h = static_cast<const std::uint16_t*>(src);
  auto* fo = static_cast<float*>(dst);
  auto* ho = static_cast<std::uint16_t*>(dst);
  auto load16 = [&](index_t i) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i)); };
  auto store16 = [&](index_t i, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(ho + i), v); };
  if (from == DType::f32 && to == DType::bf16) {
    run(n, [&](index_t i) { store16(i, bf16_from_f32(_mm256_loadu_ps(f + i))); },
        [&](index_t i) { ho[i] = bf16_bits_from_float(f[i]); });
    return true;
  }
  if (from == DType::f32 && to == DType::f16) {
    if (!cpu_info().f16c) return false;
    f16_from_f32(n, f, ho);
    return true;
  }
  if (from == DType::bf16 && to == DType::f32) {
    run(n, [&](index_t i) { _mm256_storeu_ps(fo + i, f32_from_bf16(load16(i))); },
        [&](index_t i) { fo[i] = float_from_bf16_bits(h[i]); });
    return true;
  }
  if (from == DType::f16 && to == DType::f32) {
    run(n, [&](index_t i) { _mm256_storeu_ps(fo + i, f32_from_f16(load16(i))); },
        [&](index_t i) { fo[i] = float_from_f16_bits(h[i]); });
    return true;
  }
  return false;
}

}  // namespace tg::cpu::convert_impl
