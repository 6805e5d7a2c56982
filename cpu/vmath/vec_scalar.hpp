// F1: one float with F8's interface (vec_avx2.hpp), so cpu/vmath/vmath.hpp's algorithms
// run unchanged on the portable path, plain C++ that compiles for any target.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace tg::cpu::simd {

struct M1 {
  bool m;
};
inline M1 operator&(M1 a, M1 b) { return {a.m && b.m}; }
inline M1 operator|(M1 a, M1 b) { return {a.m || b.m}; }
inline M1 operator!(M1 a) { return {!a.m}; }
inline bool any(M1 a) { return a.m; }
inline bool all(M1 a) { return a.m; }

struct F1 {
  using Mask = M1;
  static constexpr int kLanes = 1;
  float v;

  F1() = default;
  F1(float x) : v(x) {}
  static F1 load(const float* p) { return *p; }
  static F1 load_partial(const float* p, int n) { return n > 0 ? *p : 0.0f; }
  static F1 load_partial_fill(const float* p, int n, float fill) { return n > 0 ? *p : fill; }
  static void stream_fence() {}
  void store(float* p) const { *p = v; }
};

inline F1 operator+(F1 a, F1 b) { return a.v + b.v; }
inline F1 operator-(F1 a, F1 b) { return a.v - b.v; }
inline F1 operator*(F1 a, F1 b) { return a.v * b.v; }
inline F1 operator/(F1 a, F1 b) { return a.v / b.v; }
inline F1 operator-(F1 a) { return -a.v; }
inline F1 fma(F1 a, F1 b, F1 c) { return std::fma(a.v, b.v, c.v); }
inline F1 fnma(F1 a, F1 b, F1 c) { return std::fma(-a.v, b.v, c.v); }
inline F1 fms(F1 a, F1 b, F1 c) { return std::fma(a.v, b.v, -c.v); }
// As MINPS/MAXPS: b when either is NaN.
inline F1 min(F1 a, F1 b) { return a.v < b.v ? a.v : b.v; }
inline F1 max(F1 a, F1 b) { return a.v > b.v ? a.v : b.v; }
inline F1 abs(F1 a) { return std::fabs(a.v); }
inline F1 sign_bit(F1 a) { return std::bit_cast<float>(std::bit_cast<std::uint32_t>(a.v) & 0x80000000u); }
inline F1 xor_bits(F1 a, F1 b) {
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(a.v) ^ std::bit_cast<std::uint32_t>(b.v));
}
inline F1 select(M1 m, F1 a, F1 b) { return m.m ? a : b; }
inline M1 operator<(F1 a, F1 b) { return {a.v < b.v}; }
inline M1 operator<=(F1 a, F1 b) { return {a.v <= b.v}; }
inline M1 operator>(F1 a, F1 b) { return {a.v > b.v}; }
inline M1 operator>=(F1 a, F1 b) { return {a.v >= b.v}; }
inline M1 operator==(F1 a, F1 b) { return {a.v == b.v}; }
inline M1 is_nan(F1 a) { return {a.v != a.v}; }

inline F1 round_int(F1 a) { return std::nearbyint(a.v); }
// Outside its domain (NaN, +-inf, |n| past any exponent: the lanes that callers replace
// afterwards, such as exp_nonpositive's below -87.33) it gives 1: int() of such a float
// would be undefined behaviour, where the vector paths' conversions merely give garbage.
inline F1 pow2_int(F1 n) {
  if (!(n.v > -1024.0f && n.v < 1024.0f)) return 1.0f;
  return std::bit_cast<float>(std::uint32_t(int(n.v) + 127) << 23);
}
inline F1 exponent_of(F1 a) { return float(int(std::bit_cast<std::uint32_t>(a.v) >> 23) - 127); }
// Quarter octaves, for piecewise polynomials (vmath's mills_table): the float with a's
// sign, exponent and top two mantissa bits (a rounded toward zero to a quarter of its
// octave), and t[k] for k = bits 21-24 of a (the exponent's low two bits and those two
// mantissa bits: sixteen consecutive quarter octaves, [1, 16) for positive a).
inline F1 quarter_octave_floor(F1 a) { return std::bit_cast<float>(std::bit_cast<std::uint32_t>(a.v) & 0xffe00000u); }
inline F1 lookup_quarter_octave(const float (&t)[16], F1 a) { return t[(std::bit_cast<std::uint32_t>(a.v) >> 21) & 15u]; }
inline F1 mantissa_of(F1 a) {
  return std::bit_cast<float>((std::bit_cast<std::uint32_t>(a.v) & 0x007fffffu) | 0x3f800000u);
}
inline void store_stream(float* p, F1 v) { *p = v.v; }
inline void store_partial(float* p, F1 v, int n) {
  if (n > 0) *p = v.v;
}
inline float reduce_add(F1 v) { return v.v; }
inline float reduce_max(F1 v) { return v.v; }

}  // namespace tg::cpu::simd
