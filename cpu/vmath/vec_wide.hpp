// P16: sixteen floats in plain C++, with the interface of Z16 (vec_avx512.hpp) and F8
// (vec_avx2.hpp). Each operation is F1's (vec_scalar.hpp) applied lane by lane, so a
// 16-lane algorithm (tails of 1-15 lanes, masks, cross-lane reductions) computes here
// what it computes on AVX-512, on any CPU: the tests run the op templates at width 16
// through this type wherever the machine lacks AVX-512. Not fast, and not meant to be.
#pragma once

#include "tilegrad/cpu/vmath/vec_pair.hpp"
#include "tilegrad/cpu/vmath/vec_scalar.hpp"

namespace tg::cpu::simd {

struct PM16 {  // one bool per lane
  bool m[16];
};
inline PM16 operator&(PM16 a, PM16 b) {
  PM16 r;
  for (int i = 0; i < 16; ++i) r.m[i] = a.m[i] && b.m[i];
  return r;
}
inline PM16 operator|(PM16 a, PM16 b) {
  PM16 r;
  for (int i = 0; i < 16; ++i) r.m[i] = a.m[i] || b.m[i];
  return r;
}
inline PM16 operator!(PM16 a) {
  PM16 r;
  for (int i = 0; i < 16; ++i) r.m[i] = !a.m[i];
  return r;
}
inline bool any(PM16 a) {
  for (bool b : a.m)
    if (b) return true;
  return false;
}
inline bool all(PM16 a) {
  for (bool b : a.m)
    if (!b) return false;
  return true;
}

struct P16 {
  using Mask = PM16;
  static constexpr int kLanes = 16;
  float v[16];

  P16() = default;
  P16(float x) {
    for (float& e : v) e = x;
  }
  static P16 load(const float* p) {
    P16 r;
    for (int i = 0; i < 16; ++i) r.v[i] = p[i];
    return r;
  }
  static P16 load_partial(const float* p, int n) { return load_partial_fill(p, n, 0.0f); }
  static P16 load_partial_fill(const float* p, int n, float fill) {  // lanes past n not read
    P16 r;
    for (int i = 0; i < 16; ++i) r.v[i] = i < n ? p[i] : fill;
    return r;
  }
  static void stream_fence() {}
  void store(float* p) const {
    for (int i = 0; i < 16; ++i) p[i] = v[i];
  }
};

namespace detail {
// r[i] = f(F1(a[i]), ...).v, lane by lane.
template <class F>
inline P16 lanes(F f) {
  P16 r;
  for (int i = 0; i < 16; ++i) r.v[i] = f(i);
  return r;
}
template <class F>
inline PM16 mask_lanes(F f) {
  PM16 r;
  for (int i = 0; i < 16; ++i) r.m[i] = f(i);
  return r;
}
}  // namespace detail

#define TG_P16_BINARY(op)                                                                  \
  inline P16 operator op(P16 a, P16 b) {                                                   \
    return detail::lanes([&](int i) { return (F1(a.v[i]) op F1(b.v[i])).v; });             \
  }
TG_P16_BINARY(+)
TG_P16_BINARY(-)
TG_P16_BINARY(*)
TG_P16_BINARY(/)
#undef TG_P16_BINARY
#define TG_P16_COMPARE(op)                                                                 \
  inline PM16 operator op(P16 a, P16 b) {                                                  \
    return detail::mask_lanes([&](int i) { return (F1(a.v[i]) op F1(b.v[i])).m; });         \
  }
TG_P16_COMPARE(<)
TG_P16_COMPARE(<=)
TG_P16_COMPARE(>)
TG_P16_COMPARE(>=)
TG_P16_COMPARE(==)
#undef TG_P16_COMPARE
#define TG_P16_CALL1(fn) \
  inline P16 fn(P16 a) { return detail::lanes([&](int i) { return fn(F1(a.v[i])).v; }); }
#define TG_P16_CALL2(fn) \
  inline P16 fn(P16 a, P16 b) { return detail::lanes([&](int i) { return fn(F1(a.v[i]), F1(b.v[i])).v; }); }
#define TG_P16_CALL3(fn)                                                                   \
  inline P16 fn(P16 a, P16 b, P16 c) {                                                     \
    return detail::lanes([&](int i) { return fn(F1(a.v[i]), F1(b.v[i]), F1(c.v[i])).v; }); \
  }
inline P16 operator-(P16 a) { return detail::lanes([&](int i) { return (-F1(a.v[i])).v; }); }
TG_P16_CALL3(fma)
TG_P16_CALL3(fnma)
TG_P16_CALL3(fms)
TG_P16_CALL2(min)
TG_P16_CALL2(max)
TG_P16_CALL1(abs)
TG_P16_CALL1(sign_bit)
TG_P16_CALL2(xor_bits)
TG_P16_CALL1(round_int)
TG_P16_CALL1(pow2_int)
TG_P16_CALL1(exponent_of)
TG_P16_CALL1(mantissa_of)
#undef TG_P16_CALL1
#undef TG_P16_CALL2
#undef TG_P16_CALL3

inline P16 quarter_octave_floor(P16 a) {
  return detail::lanes([&](int i) { return quarter_octave_floor(F1(a.v[i])).v; });
}
inline P16 lookup_quarter_octave(const float (&t)[16], P16 a) {
  return detail::lanes([&](int i) { return lookup_quarter_octave(t, F1(a.v[i])).v; });
}
inline P16 select(PM16 m, P16 a, P16 b) { return detail::lanes([&](int i) { return m.m[i] ? a.v[i] : b.v[i]; }); }
inline PM16 is_nan(P16 a) { return detail::mask_lanes([&](int i) { return is_nan(F1(a.v[i])).m; }); }

inline void store_stream(float* p, P16 v) { v.store(p); }
inline void store_partial(float* p, P16 v, int n) {
  for (int i = 0; i < n; ++i) p[i] = v.v[i];
}
// The same pairing as Z16's: halves folded 16 -> 8 -> 4 -> 2 -> 1.
inline float reduce_add(P16 v) {
  for (int w = 8; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) v.v[i] = v.v[i] + v.v[i + w];
  return v.v[0];
}
// Lane k = reduce_add(v[k]): Z16's transposing fold, whose pairs are reduce_add's, as
// sixteen plain reductions (the layer norm's 16-row groups run on any CPU through it).
inline P16 reduce_add_each(const P16* v) {
  P16 out;
  for (int k = 0; k < 16; ++k) out.v[k] = reduce_add(v[k]);
  return out;
}
inline float reduce_max(P16 v) {
  for (int w = 8; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) v.v[i] = max(F1(v.v[i]), F1(v.v[i + w])).v;
  return v.v[0];
}

// Paired as Z16 is, so the paired loops run in the tests on every machine.
template <>
struct Paired<P16> {
  using type = Pair<P16>;
};

}  // namespace tg::cpu::simd
