// The 16-bit floating types: bfloat16 (8 exponent bits, 7 mantissa bits: f32's range)
// and float16 (IEEE binary16: 5 and 10, largest finite 65504, subnormals from 2^-24).
// Storage types only: the arithmetic kernels take f32 (a 16-bit GEMM multiplies exactly
// and accumulates in f32). Conversions round to nearest, ties to even; NaN stays a
// (quiet) NaN with its sign; f32 values past float16's range become +-inf. The same
// functions serve the host and CUDA kernels, so both devices round alike.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define TG_HOST_DEVICE __host__ __device__
#else
#define TG_HOST_DEVICE
#endif

namespace tg {

namespace half_detail {
TG_HOST_DEVICE inline std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
TG_HOST_DEVICE inline float float_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace half_detail

TG_HOST_DEVICE inline std::uint16_t bf16_bits_from_float(float f) {
  std::uint32_t u = half_detail::bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((u >> 16) | 0x40u);  // NaN: keep it quiet
  u += 0x7fffu + ((u >> 16) & 1u);  // ties to even; a carry rounds into the exponent (up to inf)
  return std::uint16_t(u >> 16);
}

TG_HOST_DEVICE inline float float_from_bf16_bits(std::uint16_t h) { return half_detail::float_of(std::uint32_t(h) << 16); }

TG_HOST_DEVICE inline std::uint16_t f16_bits_from_float(float f) {
  const std::uint32_t u = half_detail::bits_of(f);
  const std::uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return std::uint16_t(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN
  if (a >= 0x477ff000u) return std::uint16_t(sign | 0x7c00u);  // >= 65520: past the tie with 65504, inf
  if (a >= 0x38800000u) {                                       // a normal float16 (>= 2^-14)
    std::uint32_t r = a - (112u << 23);                         // exponent rebased from 127 to 15
    r += 0xfffu + ((r >> 13) & 1u);                             // 23 -> 10 mantissa bits, ties to even
    return std::uint16_t(sign | (r >> 13));
  }
  // Subnormal (or zero): multiples of 2^-24. |f| * 2^24 is exact and below 1024; rounding
  // it to an integer (ties to even) gives the mantissa, and 1024 is the smallest normal.
#if defined(__CUDA_ARCH__)
  const float m = rintf(half_detail::float_of(a) * 16777216.0f);
#else
  const float m = std::nearbyint(half_detail::float_of(a) * 16777216.0f);
#endif
  return std::uint16_t(sign | std::uint32_t(m));
}

TG_HOST_DEVICE inline float float_from_f16_bits(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) {  // zero or subnormal: m * 2^-24, exact in f32
    const float v = float(m) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (e == 31) return half_detail::float_of(sign | 0x7f800000u | (m << 13));  // inf, NaN
  return half_detail::float_of(sign | ((e + 112u) << 23) | (m << 13));
}

// The element types of DType::bf16 and DType::f16 tensors (raw bits inside).
struct bfloat16 {
  std::uint16_t bits = 0;
  bfloat16() = default;
  TG_HOST_DEVICE explicit bfloat16(float f) : bits(bf16_bits_from_float(f)) {}
  TG_HOST_DEVICE explicit operator float() const { return float_from_bf16_bits(bits); }
};
struct float16 {
  std::uint16_t bits = 0;
  float16() = default;
  TG_HOST_DEVICE explicit float16(float f) : bits(f16_bits_from_float(f)) {}
  TG_HOST_DEVICE explicit operator float() const { return float_from_f16_bits(bits); }
};
static_assert(sizeof(bfloat16) == 2 && sizeof(float16) == 2);

}  // namespace tg
