// Pair<V>: two vectors of a lane type V (Z16, F8, ...) worked as one of 2 V::kLanes lanes,
// every operation applied to both halves in turn. The vector math is long chains of
// dependent operations (gelu_tanh: ~60 operations and ~150 cycles from x to the result on
// Zen 4); one chain at a time leaves the FMA units waiting on latency once the scheduler
// fills with the chain's blocked operations. Written as pairs, the two chains'
// operations alternate in program order, so each unit has an independent operation to
// start every cycle. Each lane computes exactly what V computes: the same operations in
// the same order, so the same bits. For the 32-register AVX-512 file (two halves of the
// whole live state fit); with AVX2's 16 registers the doubled state spills
// (cpu/vmath/NOTES.md). The tests' P16 (vec_wide.hpp) pairs too, so the paired loops
// run on every machine.
#pragma once

namespace tg::cpu::simd {

template <class M>
struct PairMask {
  M lo, hi;
};
template <class M>
inline PairMask<M> operator&(PairMask<M> a, PairMask<M> b) {
  return {a.lo & b.lo, a.hi & b.hi};
}
template <class M>
inline PairMask<M> operator|(PairMask<M> a, PairMask<M> b) {
  return {a.lo | b.lo, a.hi | b.hi};
}
template <class M>
inline PairMask<M> operator!(PairMask<M> a) {
  return {!a.lo, !a.hi};
}
template <class M>
inline bool any(PairMask<M> a) {
  return any(a.lo | a.hi);
}
template <class M>
inline bool all(PairMask<M> a) {
  return all(a.lo & a.hi);
}

template <class V>
struct Pair {
  using Mask = PairMask<typename V::Mask>;
  static constexpr int kLanes = 2 * V::kLanes;
  V lo, hi;

  Pair() = default;
  Pair(V a, V b) : lo(a), hi(b) {}
  Pair(float x) : lo(x), hi(x) {}
  static Pair load(const float* p) { return {V::load(p), V::load(p + V::kLanes)}; }
  void store(float* p) const {
    lo.store(p);
    hi.store(p + V::kLanes);
  }
};

template <class V>
inline void store_stream(float* p, Pair<V> v) {
  store_stream(p, v.lo);
  store_stream(p + V::kLanes, v.hi);
}

// Every lane-wise operation of the lane types, lifted: f(a, b) = {f(a.lo, b.lo), f(a.hi, b.hi)}.
#define TG_PAIR_UNARY(name)          \
  template <class V>                 \
  inline Pair<V> name(Pair<V> a) {   \
    return {name(a.lo), name(a.hi)}; \
  }
#define TG_PAIR_BINARY(name)                     \
  template <class V>                             \
  inline Pair<V> name(Pair<V> a, Pair<V> b) {    \
    return {name(a.lo, b.lo), name(a.hi, b.hi)}; \
  }
#define TG_PAIR_TERNARY(name)                                \
  template <class V>                                         \
  inline Pair<V> name(Pair<V> a, Pair<V> b, Pair<V> c) {     \
    return {name(a.lo, b.lo, c.lo), name(a.hi, b.hi, c.hi)}; \
  }
#define TG_PAIR_COMPARE(name)                                \
  template <class V>                                         \
  inline typename Pair<V>::Mask name(Pair<V> a, Pair<V> b) { \
    return {name(a.lo, b.lo), name(a.hi, b.hi)};             \
  }
TG_PAIR_BINARY(operator+)
TG_PAIR_BINARY(operator-)
TG_PAIR_BINARY(operator*)
TG_PAIR_BINARY(operator/)
TG_PAIR_UNARY(operator-)
TG_PAIR_TERNARY(fma)
TG_PAIR_TERNARY(fnma)
TG_PAIR_TERNARY(fms)
TG_PAIR_BINARY(min)
TG_PAIR_BINARY(max)
TG_PAIR_UNARY(abs)
TG_PAIR_UNARY(sign_bit)
TG_PAIR_BINARY(xor_bits)
TG_PAIR_COMPARE(operator<)
TG_PAIR_COMPARE(operator<=)
TG_PAIR_COMPARE(operator>)
TG_PAIR_COMPARE(operator>=)
TG_PAIR_COMPARE(operator==)
TG_PAIR_UNARY(round_int)
TG_PAIR_UNARY(pow2_int)
TG_PAIR_UNARY(exponent_of)
TG_PAIR_UNARY(mantissa_of)
TG_PAIR_UNARY(quarter_octave_floor)
#undef TG_PAIR_UNARY
#undef TG_PAIR_BINARY
#undef TG_PAIR_TERNARY
#undef TG_PAIR_COMPARE

template <class V>
inline typename Pair<V>::Mask is_nan(Pair<V> a) {
  return {is_nan(a.lo), is_nan(a.hi)};
}
template <class V>
inline Pair<V> select(typename Pair<V>::Mask m, Pair<V> a, Pair<V> b) {
  return {select(m.lo, a.lo, b.lo), select(m.hi, a.hi, b.hi)};
}
// v 2^n rounded once: the lane type's own mul_pow2 where it has one (Z16: VSCALEFPS),
// else the multiply vmath's generic one does (the same bits either way).
template <class V>
inline Pair<V> mul_pow2(Pair<V> v, Pair<V> n) {
  if constexpr (requires { mul_pow2(v.lo, n.lo); }) {
    return {mul_pow2(v.lo, n.lo), mul_pow2(v.hi, n.hi)};
  } else {
    return {v.lo * pow2_int(n.lo), v.hi * pow2_int(n.hi)};
  }
}
template <class V>
inline Pair<V> lookup_quarter_octave(const float (&t)[16], Pair<V> a) {
  return {lookup_quarter_octave(t, a.lo), lookup_quarter_octave(t, a.hi)};
}

// The lane type the long-chain loops run on: V itself unless V's header names a pair.
template <class V>
struct Paired {
  using type = V;
};

}  // namespace tg::cpu::simd
