// N4: four floats in a 128-bit NEON register (AArch64 Advanced SIMD), with the interface
// of F8 (vec_avx2.hpp) and Z16 (vec_avx512.hpp), so that cpu/vmath/vmath.hpp's algorithms
// and the op templates (*_impl.hpp) run unchanged at width 4 on aarch64. Each operation
// rounds as its x86 counterpart does (FMLA/FMLS fuse as VFMADD does; min and max are
// written as compare-and-select to return b when either input is NaN, as MINPS/MAXPS do,
// where FMIN would return the NaN), so the paths agree bit for bit. NEON is in AArch64's
// baseline: include only from the *_neon.cpp units, which aarch64 builds compile.
#pragma once

#include <arm_neon.h>

#include <cstdint>

namespace tg::cpu::simd {

struct M4 {  // a lane mask: all ones or all zeros per lane
  uint32x4_t m;
};
inline M4 operator&(M4 a, M4 b) { return {vandq_u32(a.m, b.m)}; }
inline M4 operator|(M4 a, M4 b) { return {vorrq_u32(a.m, b.m)}; }
inline M4 operator!(M4 a) { return {vmvnq_u32(a.m)}; }
inline bool any(M4 a) { return vmaxvq_u32(a.m) != 0; }
inline bool all(M4 a) { return vminvq_u32(a.m) == 0xffffffffu; }

struct N4 {
  using Mask = M4;
  static constexpr int kLanes = 4;
  float32x4_t v;

  N4() = default;
  N4(float32x4_t x) : v(x) {}
  N4(float x) : v(vdupq_n_f32(x)) {}
  static N4 load(const float* p) { return vld1q_f32(p); }
  // The first n < 4 floats, zeros beyond; lanes past n are not read (no fault).
  static N4 load_partial(const float* p, int n) { return load_partial_fill(p, n, 0.0f); }
  static N4 load_partial_fill(const float* p, int n, float fill) {
    float32x4_t r = vdupq_n_f32(fill);
    if (n > 0) r = vsetq_lane_f32(p[0], r, 0);
    if (n > 1) r = vsetq_lane_f32(p[1], r, 1);
    if (n > 2) r = vsetq_lane_f32(p[2], r, 2);
    return r;
  }
  static void stream_fence() {}  // store_stream is an ordinary store here
  void store(float* p) const { vst1q_f32(p, v); }
};

inline N4 operator+(N4 a, N4 b) { return vaddq_f32(a.v, b.v); }
inline N4 operator-(N4 a, N4 b) { return vsubq_f32(a.v, b.v); }
inline N4 operator*(N4 a, N4 b) { return vmulq_f32(a.v, b.v); }
inline N4 operator/(N4 a, N4 b) { return vdivq_f32(a.v, b.v); }
inline N4 operator-(N4 a) { return vnegq_f32(a.v); }
inline N4 fma(N4 a, N4 b, N4 c) { return vfmaq_f32(c.v, a.v, b.v); }   // a b + c, one rounding
inline N4 fnma(N4 a, N4 b, N4 c) { return vfmsq_f32(c.v, a.v, b.v); }  // c - a b
// a b - c: -(c - a b), the negation exact and round-to-nearest symmetric.
inline N4 fms(N4 a, N4 b, N4 c) { return vnegq_f32(vfmsq_f32(c.v, a.v, b.v)); }
// b when either is NaN (MINPS/MAXPS's rule, which the algorithms rely on).
inline N4 min(N4 a, N4 b) { return vbslq_f32(vcltq_f32(a.v, b.v), a.v, b.v); }
inline N4 max(N4 a, N4 b) { return vbslq_f32(vcgtq_f32(a.v, b.v), a.v, b.v); }
inline N4 abs(N4 a) { return vabsq_f32(a.v); }
inline N4 sign_bit(N4 a) {
  return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(a.v), vdupq_n_u32(0x80000000u)));
}
inline N4 xor_bits(N4 a, N4 b) {
  return vreinterpretq_f32_u32(veorq_u32(vreinterpretq_u32_f32(a.v), vreinterpretq_u32_f32(b.v)));
}
inline N4 select(M4 m, N4 a, N4 b) { return vbslq_f32(m.m, a.v, b.v); }  // m ? a : b
// Ordered compares: false when either is NaN, as _CMP_*_OQ.
inline M4 operator<(N4 a, N4 b) { return {vcltq_f32(a.v, b.v)}; }
inline M4 operator<=(N4 a, N4 b) { return {vcleq_f32(a.v, b.v)}; }
inline M4 operator>(N4 a, N4 b) { return {vcgtq_f32(a.v, b.v)}; }
inline M4 operator>=(N4 a, N4 b) { return {vcgeq_f32(a.v, b.v)}; }
inline M4 operator==(N4 a, N4 b) { return {vceqq_f32(a.v, b.v)}; }
inline M4 is_nan(N4 a) { return {vmvnq_u32(vceqq_f32(a.v, a.v))}; }

// Round to the nearest integer, ties to even (FRINTN).
inline N4 round_int(N4 a) { return vrndnq_f32(a.v); }
// 2^n for integral n in [-126, 127], built in the exponent field.
inline N4 pow2_int(N4 n) {
  const int32x4_t e = vaddq_s32(vcvtnq_s32_f32(n.v), vdupq_n_s32(127));
  return vreinterpretq_f32_s32(vshlq_n_s32(e, 23));
}
inline N4 exponent_of(N4 a) {
  const int32x4_t e = vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_f32(a.v), 23));
  return vcvtq_f32_s32(vsubq_s32(e, vdupq_n_s32(127)));
}
inline N4 mantissa_of(N4 a) {
  const uint32x4_t m = vandq_u32(vreinterpretq_u32_f32(a.v), vdupq_n_u32(0x007fffffu));
  return vreinterpretq_f32_u32(vorrq_u32(m, vdupq_n_u32(0x3f800000u)));
}

// Quarter octaves (vec_scalar.hpp): a's top eleven bits, and a sixteen-entry table (64
// bytes, four registers) read by one TBL on byte indices 4k + {0, 1, 2, 3}.
inline N4 quarter_octave_floor(N4 a) {
  return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(a.v), vdupq_n_u32(0xffe00000u)));
}
inline N4 lookup_quarter_octave(const float (&t)[16], N4 a) {
  const uint32x4_t k = vandq_u32(vshrq_n_u32(vreinterpretq_u32_f32(a.v), 21), vdupq_n_u32(15));
  const uint32x4_t bytes = vmlaq_u32(vdupq_n_u32(0x03020100u), k, vdupq_n_u32(0x04040404u));
  const auto* p = reinterpret_cast<const std::uint8_t*>(t);
  const uint8x16x4_t table = {{vld1q_u8(p), vld1q_u8(p + 16), vld1q_u8(p + 32), vld1q_u8(p + 48)}};
  return vreinterpretq_f32_u8(vqtbl4q_u8(table, vreinterpretq_u8_u32(bytes)));
}

// No cache-bypassing store is worth its ordering rules here: an ordinary store.
inline void store_stream(float* p, N4 v) { vst1q_f32(p, v.v); }
// Stores the first n (< 4) lanes; lanes past n are not touched.
inline void store_partial(float* p, N4 v, int n) {
  if (n > 0) vst1q_lane_f32(p, v.v, 0);
  if (n > 1) vst1q_lane_f32(p + 1, v.v, 1);
  if (n > 2) vst1q_lane_f32(p + 2, v.v, 2);
}
// Horizontal reductions, halves folded 4 -> 2 -> 1 (the pairing of F8's last steps).
inline float reduce_add(N4 v) {
  const float32x2_t h = vadd_f32(vget_low_f32(v.v), vget_high_f32(v.v));
  return vget_lane_f32(h, 0) + vget_lane_f32(h, 1);
}
inline float reduce_max(N4 v) {  // NaN lanes are not guaranteed to win: check NaN apart
  const float32x2_t h = vmax_f32(vget_low_f32(v.v), vget_high_f32(v.v));
  return vget_lane_f32(vpmax_f32(h, h), 0);
}

}  // namespace tg::cpu::simd
