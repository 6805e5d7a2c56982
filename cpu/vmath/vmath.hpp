// Vector math for the CPU kernels: exp, log, tanh, sigmoid, erf, the normal CDF, and
// the activations with their derivatives, each written once over a lane type V (Z16:
// sixteen floats in AVX-512, vec_avx512.hpp; F8: eight floats in AVX2, vec_avx2.hpp;
// F1: one float, vec_scalar.hpp; P16: sixteen floats in plain C++ for the tests,
// vec_wide.hpp), so every path computes the same thing, bit for bit.
//
// Methods: range reduction + minimax polynomials fitted by scripts/fit-vmath (Remez,
// relative error), no libm in the loops. Accuracy, measured by tests/test_vmath.cpp over
// every finite float (cpu/vmath/NOTES.md has the table): exp, sigmoid, tanh within
// 2 ulp of the correctly rounded result, erf and the gelus within 4. Special values as
// the functions have them: NaN in gives NaN, +-inf give the limits, exp overflows to
// +inf above 88.72 and is subnormal then 0 below -87.3, -0 is kept where f(-0) = -0.
//
// Two devices recur:
//   - results that may be subnormal are formed as (something normal) * 2^n with 2^n
//     applied last (scale2), so they are rounded once, not after a subnormal exp lost
//     its bits;
//   - exp of a quantity known only as hi + lo (-x^2/2, gelu_tanh's argument) is
//     exp(hi) (1 + lo), lo from an FMA or from double arithmetic: the float rounding of
//     x^2 alone would cost hundreds of ulps at |x| ~ 10.
#pragma once

#include <cstddef>

#include "tilegrad/kernels/activation.hpp"

// Forced inline: these are building blocks of one loop body, and a call would pass
// X2 vectors through memory (GCC's size limits refuse the larger X2 bodies otherwise).
#define TG_VMATH_INLINE inline __attribute__((always_inline))

namespace tg::cpu::vmath {

namespace k {
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;        // 355/512: n * kLn2Hi exact for |n| < 2^15
constexpr float kLn2Lo = -2.12194440e-4f;     // ln 2 - kLn2Hi
constexpr float kSqrt2 = 1.41421356237309505f;
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
// exp: e^r = 1 + r + r^2 q(r), |r| <= ln2/2 (scripts/fit-vmath exp).
constexpr float kExpQ[] = {0.49999999552860608f, 0.16666577319915851f, 0.041666853345612265f,
                           0.0083631403801029871f, 0.0013901285053852016f};
// exp2: 2^r = 1 + r q(r), |r| <= 1/2, q of degree 4 (scripts/fit-vmath exp2: 4.3e-7
// relative to q, under 1.3e-7 relative to 2^r).
constexpr float kExp2Q[] = {0.69314714350617546f, 0.24022351343145831f, 0.055505002135069897f, 0.0096662454248386386f,
                            0.0013333538697047225f};
// tanh: x + x^3 p(x^2), |x| <= 0.625.
constexpr float kTanhP[] = {-0.33333333172298618f, 0.13333303576871486f, -0.053959263624177259f,
                            0.021768947458646413f, -0.0083440293625300921f, 0.0022928303306421539f};
// erf: x E(x^2), |x| <= 0.75.
constexpr float kErfE[] = {1.1283791670678003f, -0.37612638427558576f, 0.11283778252403141f,
                           -0.026864742519014218f, 0.0052166899794962723f,
                           -0.00083553665178392545f, 9.461262420717413e-05f};
// Normal tail: Phi(-a) = exp(-a^2/2) t h(t), t = 1 / (1 + a/2), a in [1, 15]
// (double: mills_part keeps c0 and c1 as float pairs).
constexpr double kMillsH[] = {0.19947343107197685, 0.19939322516333768, 0.15071287888095414,
                              0.04131434891872094, -0.024343026501377152, -0.20289946266750183,
                              0.025446315380128034, 0.3756314331028055, -0.39057079832433123,
                              0.12643385153457881};
// m(a) = Phi(-a) e^(a^2/2) on the sixteen quarter octaves of s = a + 1 (mills_table):
// kMillsT[i][k] is c_i of interval k (scripts/fit-vmath mills-table).
constexpr float kMillsT[7][16] = {
    {0.2615783f, 0.20578067f, 0.168102f, 0.14133133f, 0.12151395f, 0.09441064f, 0.0769193f, 0.06477931f, 0.05589348f, 0.04379879f, 0.03597489f, 0.030509414f, 0.5f, 0.4140321f, 0.34961882f, 0.30023247f},
    {-0.13736396f, -0.090271264f, -0.06273827f, -0.04561395f, -0.034400396f, -0.021299707f, -0.014345753f, -0.010266393f, -0.0076878904f, -0.004753178f, -0.003218494f, -0.0023198917f, -0.39894226f, -0.29543424f, -0.22413287f, -0.17376794f},
    {0.06210598f, 0.035186473f, 0.021312572f, 0.013648165f, 0.009155713f, 0.004605749f, 0.0025952242f, 0.001590461f, 0.0010389754f, 0.000510062f, 0.0002857197f, 0.00017540797f, 0.24999945f, 0.17008649f, 0.11877605f, 0.084953174f},
    {-0.025071433f, -0.012492134f, -0.006702464f, -0.0038303977f, -0.0023067796f, -0.00095785875f, -0.00045623883f, -0.00024110578f, -0.0001377953f, -5.4086784e-05f, -2.5159128e-05f, -1.3184916e-05f, -0.13296762f, -0.0842974f, -0.05491132f, -0.036682364f},
    {0.009172674f, 0.004082039f, 0.0019654795f, 0.001013344f, 0.0005452305f, 0.00019022201f, 7.7511606e-05f, 3.56139e-05f, 1.7590044e-05f, 5.597425e-06f, 2.1792475e-06f, 9.795749e-07f, 0.062348343f, 0.037174396f, 0.022788104f, 0.014337307f},
    {-0.0029125782f, -0.0011797877f, -0.0005182497f, -0.0002444868f, -0.00011114033f, -3.3601536e-05f, -1.1989446e-05f, -4.8745737e-06f, -1.9473478e-06f, -5.2047113e-07f, -1.7375393e-07f, -6.8143684e-08f, -0.025685137f, -0.014528176f, -0.008450491f, -0.005046758f},
    {0.0006087545f, 0.00023089259f, 9.500753e-05f, 4.2023636e-05f, 1.4067334e-05f, 3.85922e-06f, 1.254926e-06f, 4.6728766e-07f, 1.3160451e-07f, 3.124581e-08f, 9.36293e-09f, 3.326773e-09f, 0.0076146857f, 0.004141083f, 0.0023155224f, 0.0013293058f}};
constexpr double kGeluTanhK2 = 1.5957691216057308;  // 2 sqrt(2 / pi): y = 2u
constexpr double kGeluTanhC = 0.044715;
}  // namespace k

template <class V, std::size_t N>
TG_VMATH_INLINE V horner(V x, const float (&c)[N]) {
  V acc = c[N - 1];
  for (std::size_t i = N - 1; i-- > 0;) acc = fma(acc, x, V(c[i]));
  return acc;
}

// p * 2^n with a single rounding, n integral in [-252, 254]: 2^n as two normal
// factors, the first product exact (p is in [0.7, 1.5] or another normal value).
template <class V>
TG_VMATH_INLINE V scale2(V p, V n) {
  const V n1 = round_int(n * V(0.5f));
  return (p * pow2_int(n1)) * pow2_int(n - n1);
}

// v 2^n for integral n whose 2^n is normal (n in [-126, 127]): the product rounded
// once. One multiply by pow2_int(n) here; the AVX-512 lane type overloads it with one
// VSCALEFPS (vec_avx512.hpp), which rounds the same product once too, so the paths agree
// bit for bit, and saves the three integer operations that build 2^n.
template <class V>
TG_VMATH_INLINE V mul_pow2(V v, V n) {
  return v * pow2_int(n);
}

// v 2^n: one multiply when every lane's 2^n is known normal, scale2 otherwise. Equal
// wherever the result is normal, so a lane's value does not depend on its neighbours.
template <class V>
TG_VMATH_INLINE V times_pow2(V v, V n, bool normal) {
  return normal ? mul_pow2(v, n) : scale2(v, n);
}

// e^x = (1 + t) 2^n for finite x in [-174, 88.8] (Cody & Waite reduction, then the
// minimax polynomial): t in [-0.3, 0.42] known to ~0.1 ulp of 1 + t, n integral.
// Callers that divide by or multiply into e^x keep 1 + t unrounded (fma(q, t, q))
// and save an ulp.
template <class V>
struct ExpParts {
  V t, n;
  TG_VMATH_INLINE V p() const { return t + V(1.0f); }
};
template <class V>
TG_VMATH_INLINE ExpParts<V> exp_parts(V x) {
  const V n = round_int(x * V(k::kLog2e));
  V r = fnma(n, V(k::kLn2Hi), x);
  r = fnma(n, V(k::kLn2Lo), r);
  return {fma(r * r, horner(r, k::kExpQ), r), n};
}

template <class V>
TG_VMATH_INLINE V exp(V x) {
  const typename V::Mask nan = is_nan(x);
  // Clamped: above 89 the result is +inf, below -104 it rounds to 0. NaN lanes take 0
  // through the integer part and get their NaN back at the end.
  const V xc = select(nan, V(0.0f), max(V(-104.0f), min(V(89.0f), x)));
  const ExpParts<V> e = exp_parts(xc);
  // One power of two while every lane's result is normal; the rare vector with a
  // subnormal or near-overflow lane takes scale2.
  if (!any((e.n < V(-125.0f)) | (e.n > V(127.0f)))) return select(nan, x, mul_pow2(e.p(), e.n));
  return select(nan, x, scale2(e.p(), e.n));
}

// e^y - 1 for y in [0, 30], accurate near 0: 2^n t + (2^n - 1), both parts exact, one
// rounding.
template <class V>
TG_VMATH_INLINE V expm1_nonnegative(V y) {
  const ExpParts<V> e = exp_parts(y);
  const V s = pow2_int(e.n);
  return fma(s, e.t, s - V(1.0f));
}

// e^x for x <= 0 only, where results below FLT_MIN do not matter (softmax: a
// probability under 1e-38 next to a sum >= 1): one power of two, no subnormals, and 0
// below -87.3 or for -inf. ~1 ulp like exp. Below -87.33 (and for -inf, where the
// reduction makes NaN) the lanes compute garbage that the select replaces: no clamp
// first; a NaN stays NaN.
template <class V>
TG_VMATH_INLINE V exp_nonpositive(V x) {
  const ExpParts<V> e = exp_parts(x);
  return select(x < V(-87.33f), V(0.0f), mul_pow2(e.p(), e.n));
}

// 2^x for x <= 0 only, where results below FLT_MIN do not matter: the fused
// attention's probabilities, whose scores carry log2 e in their scale, so that each
// exponential is x = n + r with n = round(x) and r = x - n in [-1/2, 1/2] exactly (base 2
// needs no Cody-Waite split), 2^r = 1 + r q(r) by five FMAs, then one power of two. Five
// multiply-class operations where exp_nonpositive takes nine (it adds the multiply by
// log2 e, two reduction steps and r^2), with a polynomial one degree lower: within 3 ulp
// (2.73 over every float) where exp is within 1.1 (tests/test_vmath.cpp). 0 below -126 and for
// -inf (whose lanes compute garbage that the select replaces); a NaN stays NaN. Results
// in [2^-127, 2^-126) are subnormal, rounded once.
template <class V>
TG_VMATH_INLINE V exp2_nonpositive(V x) {
  const V n = round_int(x);
  const V r = x - n;
  return select(x < V(-126.0f), V(0.0f), mul_pow2(fma(horner(r, k::kExp2Q), r, V(1.0f)), n));
}

// Natural log: x = 2^e m, m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s) with
// s = (m - 1) / (m + 1), |s| <= 0.172, as 2s (1 + s^2/3 + s^4/5 + ...): the series'
// truncation after s^10 is below 2e-9.
template <class V>
TG_VMATH_INLINE V log(V x) {
  using M = typename V::Mask;
  const M sub = x < V(1.17549435e-38f);  // subnormal (or 0, negative): scale up first
  const V xs = select(sub, x * V(8388608.0f), x);
  V e = exponent_of(xs) - select(sub, V(23.0f), V(0.0f));
  V m = mantissa_of(xs);
  const M hi = m > V(k::kSqrt2);
  m = select(hi, m * V(0.5f), m);
  e = select(hi, e + V(1.0f), e);
  const V s = (m - V(1.0f)) / (m + V(1.0f));
  const V z = s * s;
  const V r = z * fma(z, fma(z, fma(z, fma(z, V(1.0f / 11), V(1.0f / 9)), V(1.0f / 7)), V(1.0f / 5)), V(1.0f / 3));
  const V log_m = fma(s + s, r, s + s);
  V y = fma(e, V(k::kLn2Hi), fma(e, V(k::kLn2Lo), log_m));
  y = select(x == V(0.0f), V(-__builtin_inff()), y);
  y = select(x == V(__builtin_inff()), x, y);
  return select((x < V(0.0f)) | is_nan(x), V(__builtin_nanf("")), y);
}

// x sigmoid(y), y = yhi + ylo (ylo a correction, 0 for plain arguments), with
// e = e^-|y| = (1 + t) 2^n:
//   y >= 0: x / (1 + e)
//   y <  0: x e / (1 + e)
// 1 + e is kept exact as den + den_lo (Fast2Sum: e <= 1), and the quotient is one
// division corrected by an FMA residual: inv = 1 / den, c = 1 - inv (den + den_lo), so
// q = inv (1 + c) = 1 / (1 + e) to within half an ulp. Then x q, or x (q (1 + t)) 2^n
// with 2^n applied last: while every lane's e is normal (|y| <= 87) 2^n is one multiply
// (2^0 on the positive side); a vector with a larger |y| applies it by scale2 (rounded
// once, as sigmoid(-100) is subnormal), and since scale2 equals the multiply wherever the
// result is normal, every lane gets the same value whichever way its vector went. Beyond
// |y| = 174 the negative side is a signed zero. ylo matters on the negative side only,
// where the result's relative error is y's absolute one; on the positive side it would
// move 1 + e by under a quarter of an ulp. Max error: sigmoid 1.2 ulp, silu 1.6 (the
// product with x).
// kLo = false: ylo is zero and its correction is skipped (sigmoid, silu). kNan = false:
// the caller knows yhi has no NaN lane (an all-finite x), and its handling is skipped
// (the same values for such lanes).
template <bool kLo = true, bool kNan = true, class V>
TG_VMATH_INLINE V mul_sigmoid(V x, V yhi, V ylo) {
  using M = typename V::Mask;
  const M neg = yhi < V(0.0f);
  const V a = min(V(174.0f), abs(yhi));  // NaN: min keeps it
  M nan{};
  if constexpr (kNan) nan = is_nan(a);
  const ExpParts<V> e = exp_parts(kNan ? select(nan, V(0.0f), -a) : -a);
  V t = e.t;
  if constexpr (kLo) {
    // e^y (1 + ylo) where y < 0; ylo dropped where it is not small (inf - inf, NaN).
    const V lo = select(neg & (abs(ylo) < V(1.0f)), ylo, V(0.0f));
    t = fma(e.t, lo, e.t + lo);
  }
  const bool normal = !any(a > V(87.0f));
  const V ev = times_pow2(t + V(1.0f), e.n, normal);
  const V den = V(1.0f) + ev;
  const V den_lo = (V(1.0f) - den) + ev;
  const V inv = V(1.0f) / den;
  const V c = fnma(inv, den_lo, fnma(inv, den, V(1.0f)));
  const V q = fma(inv, c, inv);
  const V f = x * select(neg, fma(q, t, q), q);
  V r = times_pow2(f, select(neg, e.n, V(0.0f)), normal);
  if (!normal) r = select(neg & (abs(yhi) >= V(174.0f)), x * V(0.0f), r);
  if constexpr (!kNan) return r;
  return select(nan, yhi, r);
}

template <class V>
TG_VMATH_INLINE V sigmoid(V x) {
  return mul_sigmoid<false>(V(1.0f), x, V(0.0f));
}

// tanh |x| = E / (E + 2), E = e^2|x| - 1 (expm1: accurate near 0, so one formula
// serves every |x|; beyond 10 tanh is 1 in float), the sign put back. E + 2 is kept
// exact as D + D_lo and the quotient corrected by its residual (as mul_sigmoid): the
// plain division left 2.3 ulp near |x| = 0.2.
template <class V>
TG_VMATH_INLINE V tanh(V x) {
  const V a = min(V(10.0f), abs(x));  // NaN: min keeps it
  const V e = expm1_nonnegative(a + a);
  const V big = max(e, V(2.0f)), small = min(e, V(2.0f));
  const V d = big + small;
  const V d_lo = (big - d) + small;  // Fast2Sum: d + d_lo = E + 2 exactly
  const V inv = V(1.0f) / d;
  const V q0 = e * inv;
  const V r = fnma(q0, d, e);                    // E - q0 d, exact
  const V q = fma(fnma(q0, d_lo, r), inv, q0);   // q0 + (E - q0 (d + d_lo)) / d
  return xor_bits(q, sign_bit(x));
}

// The normal tail's Mills part t h(t), t = 1 / (1 + a/2), a in [1, 15], h the degree-9
// polynomial c: 0.74 ulp at most (a float evaluation throughout costs 3.9: t's rounding,
// ten Horner steps, the product). t is carried as hi + lo (1 + a/2 split exactly, the
// quotient corrected by its FMA residual); h's high terms c2..c9 in float, whose errors
// reach h through t^2 (under a quarter of h); its last two steps, c1 + t (...) and
// c0 + t (...), and the product t h in float-float, the coefficients as float pairs.
// Those steps add by Fast2Sum, valid as |t (...)| < c1 and < c0 over the interval
// (scripts/fit-vmath mills checks it). Plain float operations: every path, the same bits.
template <class V, int N>
TG_VMATH_INLINE V mills_part(V a, const double (&c)[N]) {
  static_assert(N > 3);
  const V half = a * V(0.5f);
  const V d = half + V(1.0f);
  const V d_lo = half - (d - V(1.0f));  // d - 1 and this difference are exact
  const V t = V(1.0f) / d;
  const V t_lo = fnma(t, d_lo, fnma(t, d, V(1.0f))) * t;  // (1 - t (d + d_lo)) / d
  V hi = V(float(c[N - 1]));
  for (int i = N - 2; i >= 2; --i) hi = fma(hi, t, V(float(c[i])));
  // hi + lo <- c_i + t (hi + lo): i = 1 (lo = 0 coming in), then i = 0.
  V lo(0.0f);
  for (int i = 1; i >= 0; --i) {
    const float ch = float(c[i]), cl = float(c[i] - double(ch));
    const V p = hi * t;
    V small = fms(hi, t, p) + V(cl);
    if (i == 0) small = fma(lo, t, small);
    small = fma(hi, t_lo, small);
    const V s = V(ch) + p;
    lo = ((V(ch) - s) + p) + small;
    hi = s;
  }
  return fma(hi, t, fma(hi, t_lo, lo * t));
}

// e^(-x^2/2) as p 2^n for |x| <= 15 (callers clamp), x^2 = hi + lo exactly (FMA):
// e^-hi/2 (1 - lo/2).
template <class V>
TG_VMATH_INLINE ExpParts<V> exp_neg_half_square(V x) {
  const V hi = x * x;
  const V lo = fms(x, x, hi);
  ExpParts<V> e = exp_parts(hi * V(-0.5f));
  const V l = lo * V(-0.5f);
  e.t = fma(e.t, l, e.t + l);  // (1 + t)(1 - lo/2)
  return e;
}

// erf(x) = x E(x^2) for |x| <= 0.75; beyond, sign(x) (1 - erfc|x|) with
// erfc(a) = 2 Phi(-a sqrt 2) = 2 e^(-a^2) t h(t), t = 1 / (1 + a / sqrt 2).
template <class V>
TG_VMATH_INLINE V erf(V x) {
  const V a = abs(x);
  const V central = x * horner(x * x, k::kErfE);
  if (all(a <= V(0.75f))) return central;
  const V ac = min(V(10.0f), a);
  const V hi = ac * ac;
  const V lo = fms(ac, ac, hi);
  const ExpParts<V> e = exp_parts(-hi);
  const V p = fnma(e.p(), lo, e.p());  // e^-(hi + lo)
  const V m = V(2.0f) * mills_part(ac * V(k::kSqrt2), k::kMillsH) * p;
  const V erfc = any(ac > V(9.0f)) ? scale2(m, e.n) : mul_pow2(m, e.n);
  const V outer = xor_bits(V(1.0f) - erfc, sign_bit(x));
  return select(a <= V(0.75f), central, select(is_nan(x), x, outer));
}

// r, except the limits at x = -inf and +inf (where inf * 0 would make NaN).
template <class V>
TG_VMATH_INLINE V with_limits(V x, V r, float at_neg_inf, float at_pos_inf) {
  const V inf(__builtin_inff());
  return select(x == -inf, V(at_neg_inf), select(x == inf, V(at_pos_inf), r));
}

// m(a) = Phi(-a) e^(a^2/2) for a in [0, 14.5]: on each quarter octave of s = a + 1 a
// polynomial of degree 6 in r = a - a0, its coefficients read from kMillsT by s's bits
// (lookup_quarter_octave). a0 = s's quarter-octave floor minus 1, and both differences
// are exact (a0 >= a / 2 where a0 > 0: Sterbenz); where s rounded up to the next
// interval r is a hair below 0, inside the fit's reach. About 1 ulp: the fit 0.08, the
// float evaluation the rest (scripts/fit-vmath mills-table).
template <class V>
TG_VMATH_INLINE V mills_table(V a) {
  const V s = a + V(1.0f);
  const V r = a - (quarter_octave_floor(s) - V(1.0f));
  V acc = lookup_quarter_octave(k::kMillsT[6], s);
  for (int i = 5; i >= 0; --i) acc = fma(acc, r, lookup_quarter_octave(k::kMillsT[i], s));
  return acc;
}

// The normal tail shared by gelu_erf and its derivative, at a = min(14.5, |x|) (NaN:
// min keeps it): E = e^(-a^2/2) = (1 + t) 2^n and m(a) (mills_table), so Phi(-a) = E m.
// scaled(v) = v (1 + t) 2^n rounded once: one multiply while every lane's 2^n is normal
// (a <= 13), scale2 otherwise (equal wherever the result is normal). Past the clamp every
// product it forms is below the smallest float.
template <class V>
struct NormalTail {
  V a, m;
  ExpParts<V> e;
  bool normal;
  TG_VMATH_INLINE V scaled(V v) const { return times_pow2(fma(v, e.t, v), e.n, normal); }
};
constexpr float kNormalTailClamp = 14.5f;
template <class V>
TG_VMATH_INLINE NormalTail<V> normal_tail(V x) {
  const V a = min(V(kNormalTailClamp), abs(x));
  return {a, mills_table(a), exp_neg_half_square(a), !any(a > V(13.0f))};
}

// gelu(x) = x Phi(x) from r = Phi(-|x|) = e^(-a^2/2) m(a), a = |x|, for every x (no
// central branch: each lane does the same work whatever its neighbours hold): x <= 0 as
// (x m (1 + te)) 2^n, rounded once; x > 0 as x - x r, one FMA. Below x = -14.5 the tail
// is clamped there and x with it: the product, under 1e-46, rounds to -0 as the exact
// value does. A vector whose lanes are all finite skips the selects for NaN and the
// infinite limits.
template <class V>
TG_VMATH_INLINE V gelu_erf(V x) {
  const NormalTail<V> t = normal_tail(x);
  const typename V::Mask neg = x <= V(0.0f);  // -0 and +0 keep their sign through x m
  const V v = select(neg, max(V(-kNormalTailClamp), x) * t.m, t.m);
  const V r = t.scaled(v);
  const V out = select(neg, r, fnma(x, r, x));
  if (!any(is_nan(x - x))) return out;  // NaN for NaN, +-inf
  return select(is_nan(x), x, with_limits(x, out, -0.0f, __builtin_inff()));
}

// gelu'(x) = Phi(x) + x phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi), from one exponential
// E = e^(-a^2/2) and the table's m (mills_table), a = min(14.5, |x|): Phi(-a) = E m and
// a phi(a) = E a / sqrt(2 pi), so with w = m - a / sqrt(2 pi)
//   x <= 0: Phi(x) + x phi(x) = E w, formed as (w (1 + te)) 2^n, rounded once;
//   x > 0:  1 - Phi(-a) + a phi(a) = 1 - E w.
// w cancels where the derivative crosses zero (x = -0.75179), to within an ulp of m,
// the larger term's size. Past the clamp E w is below every float: the derivative
// comes out as 1 or -0, as it is to float precision. NaN lanes: the caller restores them.
template <class V>
TG_VMATH_INLINE V gelu_erf_grad(V x) {
  const NormalTail<V> t = normal_tail(x);
  const V ew = t.scaled(fnma(t.a, V(k::kInvSqrt2Pi), t.m));
  return select(x <= V(0.0f), ew, V(1.0f) - ew);
}

// y = x (k + kc x^2) as hi + lo in float-float arithmetic (x^2 and each product split
// exactly by an FMA, the sum k + kc x^2 by Fast2Sum, k and kc as float pairs): hi + lo
// within ~2^-44 of y, where a float y would be off by up to half an ulp of y, which exp
// turns into hundreds of ulp at |y| ~ 100. Plain float operations on every path, so
// every path gives the same bits (16 operations).
// Where x^2 overflows lo is NaN and hi +-inf: mul_sigmoid drops such a lo.
template <class V>
TG_VMATH_INLINE V cubic_arg_ff(V x, double k, double c, V& lo) {
  const double kc = k * c;
  const float kh = float(k), kl = float(k - double(kh));
  const float ch = float(kc), cl = float(kc - double(ch));
  const V s = x * x;
  const V s_lo = fms(x, x, s);  // x^2 = s + s_lo
  const V t = V(ch) * s;
  const V t_lo = fma(V(cl), s, fma(V(ch), s_lo, fms(V(ch), s, t)));  // kc x^2 = t + t_lo
  const V big = max(V(kh), t), small = min(V(kh), t);
  const V w = big + small;
  const V w_lo = ((big - w) + small) + (t_lo + V(kl));  // k + kc x^2 = w + w_lo
  const V y = x * w;
  lo = fma(x, w_lo, fms(x, w, y));  // x (w + w_lo) = y + lo
  return y;
}

// gelu_tanh(x) = x/2 (1 + tanh u) = x sigmoid(2u), 2u = 2 sqrt(2/pi) (x + 0.044715 x^3)
// as hi + lo (cubic_arg_ff): at x = -10, 2u = -99 and a float 2u would be off by 1e-5,
// i.e. 170 ulp after exp. A vector whose lanes are all finite skips the selects for
// NaN and the infinite limits (equal values where the lanes are finite).
template <class V>
TG_VMATH_INLINE V gelu_tanh(V x) {
  V lo;
  const V hi = cubic_arg_ff(x, k::kGeluTanhK2, k::kGeluTanhC, lo);
  if (!any(is_nan(x - x))) return mul_sigmoid<true, false>(x, hi, lo);  // x - x: NaN for NaN and +-inf
  return select(is_nan(x), x, with_limits(x, mul_sigmoid(x, hi, lo), -0.0f, __builtin_inff()));
}

template <class V>
TG_VMATH_INLINE V silu(V x) {
  return with_limits(x, mul_sigmoid<false>(x, x, V(0.0f)), -0.0f, __builtin_inff());
}

// ---------------------------------------------------------------------------------
// Activations and their derivatives by kind: the kernels pick the kind outside their
// loops (activate<kind>), so these switches fold away.
// ---------------------------------------------------------------------------------
template <Act kKind, class V>
TG_VMATH_INLINE V activate(V x, V slope) {
  if constexpr (kKind == Act::none) return x;
  if constexpr (kKind == Act::relu) return max(V(0.0f), x);  // MAXPS: NaN in, NaN out
  if constexpr (kKind == Act::leaky_relu) return select(x >= V(0.0f), x, x * slope);
  if constexpr (kKind == Act::gelu_erf) return gelu_erf(x);
  if constexpr (kKind == Act::gelu_tanh) return gelu_tanh(x);
  if constexpr (kKind == Act::silu) return silu(x);
  if constexpr (kKind == Act::sigmoid) return sigmoid(x);
  if constexpr (kKind == Act::tanh) return tanh(x);
}

// activate<kind> for a kind known only at run time: a per-call constant in the GEMM
// epilogues, so the switch is predicted and each case is the inlined math.
template <class V>
TG_VMATH_INLINE V activate_any(const Activation& act, V x) {
  const V slope(float(act.slope));
  switch (act.kind) {
    case Act::none: return x;
    case Act::relu: return activate<Act::relu>(x, slope);
    case Act::leaky_relu: return activate<Act::leaky_relu>(x, slope);
    case Act::gelu_erf: return activate<Act::gelu_erf>(x, slope);
    case Act::gelu_tanh: return activate<Act::gelu_tanh>(x, slope);
    case Act::silu: return activate<Act::silu>(x, slope);
    case Act::sigmoid: return activate<Act::sigmoid>(x, slope);
    case Act::tanh: return activate<Act::tanh>(x, slope);
  }
  return x;
}

// f'(x); at the kinks the left derivative (0 for relu, slope for leaky_relu), NaN for
// NaN, limits at +-inf (as act_derivative in kernels/reference/activation.cpp).
template <Act kKind, class V>
TG_VMATH_INLINE V activate_grad(V x, V slope) {
  using M = typename V::Mask;
  const M nan = is_nan(x);
  V g;
  if constexpr (kKind == Act::none) {
    g = V(1.0f);
  } else if constexpr (kKind == Act::relu) {
    g = select(x > V(0.0f), V(1.0f), V(0.0f));
  } else if constexpr (kKind == Act::leaky_relu) {
    g = select(x > V(0.0f), V(1.0f), slope);
  } else if constexpr (kKind == Act::sigmoid) {
    const V s = sigmoid(x);
    g = s - s * s;
  } else if constexpr (kKind == Act::tanh) {
    // 1 - tanh^2 = 4 e / (1 + e)^2 with e = e^-2|x|: no cancellation once tanh ~ +-1.
    const V a = abs(x);
    const V e = exp(-(a + a));
    const V d = V(1.0f) + e;
    g = V(4.0f) * e / (d * d);
  } else if constexpr (kKind == Act::silu) {
    const V s = sigmoid(x);
    g = with_limits(x, s * fma(x, V(1.0f) - s, V(1.0f)), 0.0f, 1.0f);  // s (1 + x (1 - s))
  } else if constexpr (kKind == Act::gelu_erf) {
    g = gelu_erf_grad(x);
  } else if constexpr (kKind == Act::gelu_tanh) {
    // s + x s (1 - s) dy/dx, s = sigmoid(y), dy/dx = k2 (1 + 3 c x^2).
    V lo;
    const V y = cubic_arg_ff(x, k::kGeluTanhK2, k::kGeluTanhC, lo);
    const bool finite = !any(is_nan(x - x));  // then no NaN lane to restore below
    const V s = finite ? mul_sigmoid<true, false>(V(1.0f), y, lo) : mul_sigmoid(V(1.0f), y, lo);
    const V dy = V(float(k::kGeluTanhK2)) * fma(V(float(3 * k::kGeluTanhC)) * x, x, V(1.0f));
    g = fma(x * (s - s * s), dy, s);
    // Past |x| = 15 the derivative is 0 or 1 to float precision, and x^2 in dy/dx
    // overflows at |x| ~ 1e19 (inf * 0).
    g = select(abs(x) > V(15.0f), select(x > V(0.0f), V(1.0f), V(0.0f)), g);
    if (finite) return g;
  }
  return select(nan, x, g);
}

}  // namespace tg::cpu::vmath
