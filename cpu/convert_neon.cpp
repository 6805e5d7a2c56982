// FP32 <-> bf16/f16 with NEON (aarch64), 4 values a step, bit for bit kernels/half.hpp's
// scalar functions (the tail goes through them), by the AVX2 path's rules
// (convert_avx2.cpp):
//   bf16 encode: integers, u + 0x7fff + (bit 16 of u), the top half; NaN keeps its top
//                bits and gets the quiet bit (0x40);
//   f16 encode:  FCVTN, which rounds to nearest even under Linux's default FPCR (as
//                F16C's vcvtps2ph with that rounding): subnormals, overflow to inf, NaN
//                as its top payload bits with the quiet bit;
//   decode:      integers for both (bf16: a shift; f16: rebased exponent for normals,
//                inf/NaN payload kept, subnormals as m * 2^-24, exact), so a signalling
//                NaN stays signalling as in the scalar decode (FCVTL would quiet it).
#include <arm_neon.h>

#include <cstdint>

#include "tilegrad/cpu/convert.hpp"
#include "tilegrad/kernels/half.hpp"

namespace tg::cpu::convert_impl {
namespace {

inline uint16x4_t bf16_from_f32(float32x4_t x) {
  const uint32x4_t u = vreinterpretq_u32_f32(x);
  const uint32x4_t abs = vandq_u32(u, vdupq_n_u32(0x7fffffffu));
  const uint32x4_t nan = vcgtq_u32(abs, vdupq_n_u32(0x7f800000u));
  const uint32x4_t lsb = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
  const uint32x4_t rounded = vshrq_n_u32(vaddq_u32(u, vaddq_u32(vdupq_n_u32(0x7fff), lsb)), 16);
  const uint32x4_t quiet = vorrq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(0x40));
  return vmovn_u32(vbslq_u32(nan, quiet, rounded));
}

inline float32x4_t f32_from_bf16(uint16x4_t h) { return vreinterpretq_f32_u32(vshll_n_u16(h, 16)); }

inline float32x4_t f32_from_f16(uint16x4_t h16) {
  const uint32x4_t h = vmovl_u16(h16);
  const uint32x4_t sign = vshlq_n_u32(vandq_u32(h, vdupq_n_u32(0x8000)), 16);
  const uint32x4_t e = vandq_u32(h, vdupq_n_u32(0x7c00));
  const uint32x4_t m = vandq_u32(h, vdupq_n_u32(0x03ff));
  // Normal: exponent + 112, mantissa << 13; inf/NaN: 0x7f800000 | mantissa << 13.
  const uint32x4_t normal = vaddq_u32(vshlq_n_u32(vandq_u32(h, vdupq_n_u32(0x7fff)), 13), vdupq_n_u32(112u << 23));
  const uint32x4_t special = vorrq_u32(vdupq_n_u32(0x7f800000u), vshlq_n_u32(m, 13));
  // Zero or subnormal: m * 2^-24, exact.
  const uint32x4_t tiny = vreinterpretq_u32_f32(vmulq_f32(vcvtq_f32_u32(m), vdupq_n_f32(5.9604644775390625e-8f)));
  uint32x4_t bits = vbslq_u32(vceqq_u32(e, vdupq_n_u32(0x7c00)), special, normal);
  bits = vbslq_u32(vceqq_u32(e, vdupq_n_u32(0)), tiny, bits);
  return vreinterpretq_f32_u32(vorrq_u32(bits, sign));
}

inline uint16x4_t f16_from_f32(float32x4_t x) { return vreinterpret_u16_f16(vcvt_f16_f32(x)); }

// One conversion on 4-value steps, the tail by the scalar functions.
template <class Step, class Tail>
void run(index_t n, Step&& step, Tail&& tail) {
  index_t i = 0;
  for (; i + 4 <= n; i += 4) step(i);
  for (; i < n; ++i) tail(i);
}

}  // namespace

bool convert_neon(DType from, DType to, index_t n, const void* src, void* dst) {
  const auto* f = static_cast<const float*>(src);
  const auto* h = static_cast<const std::uint16_t*>(src);
  auto* fo = static_cast<float*>(dst);
  auto* ho = static_cast<std::uint16_t*>(dst);
  if (from == DType::f32 && to == DType::bf16) {
    run(n, [&](index_t i) { vst1_u16(ho + i, bf16_from_f32(vld1q_f32(f + i))); },
        [&](index_t i) { ho[i] = bf16_bits_from_float(f[i]); });
    return true;
  }
  if (from == DType::f32 && to == DType::f16) {
    run(n, [&](index_t i) { vst1_u16(ho + i, f16_from_f32(vld1q_f32(f + i))); },
        [&](index_t i) { ho[i] = f16_bits_from_float(f[i]); });
    return true;
  }
  if (from == DType::bf16 && to == DType::f32) {
    run(n, [&](index_t i) { vst1q_f32(fo + i, f32_from_bf16(vld1_u16(h + i))); },
        [&](index_t i) { fo[i] = float_from_bf16_bits(h[i]); });
    return true;
  }
  if (from == DType::f16 && to == DType::f32) {
    run(n, [&](index_t i) { vst1q_f32(fo + i, f32_from_f16(vld1_u16(h + i))); },
        [&](index_t i) { fo[i] = float_from_f16_bits(h[i]); });
    return true;
  }
  return false;
}

}  // namespace tg::cpu::convert_impl
