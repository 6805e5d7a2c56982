// The elementwise kernels (kernels/elementwise.hpp) over N-D strided views, written once
// and compiled per path (elementwise.cpp portable, elementwise_avx2.cpp with AVX2/FMA):
// V is the float lane type for the transcendental ops (simd::F1 or simd::F8), the rest
// are plain loops the compiler vectorizes for the path's flags. Not a public header.
//
// Plan: dimensions of size 1 are dropped and neighbours that every operand walks as one
// (stride[d] == stride[d+1] size[d+1]) are merged, so a contiguous tensor, a row
// broadcast or a transposed view all reach a 1-D inner loop over the last merged
// dimension; the outer dimensions are rows for cpu::for_each_range, which threads only
// above kParallelElems (a 1-element add must not pay for a fork).
#pragma once

#include <array>
#include <cmath>
#include <type_traits>

#include "tilegrad/cpu/parallel.hpp"
#include "tilegrad/cpu/vmath/vec_scalar.hpp"
#include "tilegrad/cpu/vmath/vmath.hpp"
#include "tilegrad/kernels/elementwise.hpp"

namespace tg::cpu {
namespace {  // internal linkage: one copy per path's unit (docs/design.md)
namespace ew_impl {

inline constexpr index_t kParallelElems = index_t(1) << 16;

// N operands walked together; the last is the output.
template <int N>
struct Plan {
  int rank = 1;                                           // >= 1 after merging
  std::array<index_t, Shape::kMaxRank> size{};            // size[rank - 1] is the inner loop
  std::array<std::array<index_t, Shape::kMaxRank>, N> st{};

  index_t rows() const {
    index_t r = 1;
    for (int d = 0; d + 1 < rank; ++d) r *= size[std::size_t(d)];
    return r;
  }
  index_t cols() const { return size[std::size_t(rank - 1)]; }
  // Element offsets of row i's first element, one per operand.
  std::array<index_t, N> row_offsets(index_t i) const {
    std::array<index_t, N> off{};
    for (int d = rank - 2; d >= 0; --d) {
      const index_t n = size[std::size_t(d)], k = i % n;
      i /= n;
      for (int o = 0; o < N; ++o) off[std::size_t(o)] += k * st[std::size_t(o)][std::size_t(d)];
    }
    return off;
  }
};

template <int N>
Plan<N> make_plan(const std::array<const Shape*, N>& v) {
  const Shape& y = *v[N - 1];
  Plan<N> p;
  int r = 0;
  for (int d = 0; d < y.rank(); ++d) {
    const index_t n = y.sizes()[std::size_t(d)];
    if (n == 1) continue;
    bool merge = r > 0;
    for (int o = 0; merge && o < N; ++o)
      merge = p.st[std::size_t(o)][std::size_t(r - 1)] == v[std::size_t(o)]->strides()[std::size_t(d)] * n;
    if (merge) {
      p.size[std::size_t(r - 1)] *= n;
      for (int o = 0; o < N; ++o) p.st[std::size_t(o)][std::size_t(r - 1)] = v[std::size_t(o)]->strides()[std::size_t(d)];
      continue;
    }
    p.size[std::size_t(r)] = n;
    for (int o = 0; o < N; ++o) p.st[std::size_t(o)][std::size_t(r)] = v[std::size_t(o)]->strides()[std::size_t(d)];
    ++r;
  }
  if (r == 0) {  // every size is 1 (or rank 0): one element
    p.size[0] = 1;
    for (int o = 0; o < N; ++o) p.st[std::size_t(o)][0] = 1;
    r = 1;
  }
  p.rank = r;
  return p;
}

// Runs inner(n, offsets, inner strides) over every row segment of the plan.
template <int N, class Inner>
void run(const Plan<N>& p, index_t numel, Inner&& inner) {
  if (numel == 0) return;
  const index_t rows = p.rows(), cols = p.cols();
  std::array<index_t, N> s{};
  for (int o = 0; o < N; ++o) s[std::size_t(o)] = p.st[std::size_t(o)][std::size_t(p.rank - 1)];
  for_each_range(rows, cols, kParallelElems, [&](index_t i, index_t j0, index_t j1) {
    std::array<index_t, N> off = p.row_offsets(i);
    for (int o = 0; o < N; ++o) off[std::size_t(o)] += j0 * s[std::size_t(o)];
    inner(j1 - j0, off, s);
  });
}

// exp / log of a float array through the vector math (identical bits on every path).
template <class V, bool kLog>
void vmath_contiguous(index_t n, const float* x, float* y) {
  constexpr int L = V::kLanes;
  index_t j = 0;
  for (; j + L <= n; j += L) {
    const V v = V::load(x + j);
    (kLog ? vmath::log(v) : vmath::exp(v)).store(y + j);
  }
  for (; j < n; ++j) {
    const simd::F1 v(x[j]);
    y[j] = (kLog ? vmath::log(v) : vmath::exp(v)).v;
  }
}

template <class T>
T scalar_exp(T x) {
  if constexpr (std::is_same_v<T, float>) return vmath::exp(simd::F1(x)).v;
  else return std::exp(x);
}
template <class T>
T scalar_log(T x) {
  if constexpr (std::is_same_v<T, float>) return vmath::log(simd::F1(x)).v;
  else return std::log(x);
}

// y = f(x) over one inner segment; the contiguous case is a plain loop to vectorize.
template <class T, class F>
inline void unary_inner(index_t n, const T* x, index_t sx, T* y, index_t sy, F f) {
  if (sx == 1 && sy == 1) {
    for (index_t j = 0; j < n; ++j) y[j] = f(x[j]);
  } else if (sx == 0 && sy == 1) {
    const T v = f(x[0]);
    for (index_t j = 0; j < n; ++j) y[j] = v;
  } else {
    for (index_t j = 0; j < n; ++j) y[j * sy] = f(x[j * sx]);
  }
}

template <class V, class T>
void unary(Unary op, double p0d, double p1d, const Shape& xs, const T* x, const Shape& ys, T* y) {
  const T p0 = T(p0d), p1 = T(p1d);
  if (op == Unary::fill) {
    const Plan<1> p = make_plan<1>({&ys});
    run(p, ys.numel(), [&](index_t n, const std::array<index_t, 1>& o, const std::array<index_t, 1>& s) {
      T* yo = y + o[0];
      if (s[0] == 1) {
        for (index_t j = 0; j < n; ++j) yo[j] = p0;
      } else {
        for (index_t j = 0; j < n; ++j) yo[j * s[0]] = p0;
      }
    });
    return;
  }
  const Plan<2> p = make_plan<2>({&xs, &ys});
  auto go = [&](auto f) {
    run(p, ys.numel(), [&](index_t n, const std::array<index_t, 2>& o, const std::array<index_t, 2>& s) {
      unary_inner(n, x + o[0], s[0], y + o[1], s[1], f);
    });
  };
  switch (op) {
    case Unary::fill: break;
    case Unary::copy: return go([](T v) { return v; });
    case Unary::neg: return go([](T v) { return -v; });
    case Unary::exp:
    case Unary::log:
      if constexpr (std::is_same_v<T, float>) {
        const bool lg = op == Unary::log;
        return run(p, ys.numel(), [&](index_t n, const std::array<index_t, 2>& o, const std::array<index_t, 2>& s) {
          if (s[0] == 1 && s[1] == 1) {
            lg ? vmath_contiguous<V, true>(n, x + o[0], y + o[1]) : vmath_contiguous<V, false>(n, x + o[0], y + o[1]);
          } else {
            lg ? unary_inner(n, x + o[0], s[0], y + o[1], s[1], scalar_log<float>)
               : unary_inner(n, x + o[0], s[0], y + o[1], s[1], scalar_exp<float>);
          }
        });
      } else {
        return op == Unary::log ? go([](T v) { return scalar_log(v); }) : go([](T v) { return scalar_exp(v); });
      }
    case Unary::sqrt: return go([](T v) { return std::sqrt(v); });
    case Unary::rsqrt: return go([](T v) { return T(1) / std::sqrt(v); });
    case Unary::abs: return go([](T v) { return std::fabs(v); });
    case Unary::sign: return go([](T v) { return v != v ? v : T((v > T(0)) - (v < T(0))); });
    case Unary::square: return go([](T v) { return v * v; });
    case Unary::reciprocal: return go([](T v) { return T(1) / v; });
    case Unary::add_scalar: return go([p0](T v) { return v + p0; });
    case Unary::mul_scalar: return go([p0](T v) { return v * p0; });
    case Unary::pow_scalar:
      if (p0d == 2) return go([](T v) { return v * v; });
      if (p0d == 1) return go([](T v) { return v; });
      return go([p0](T v) { return T(std::pow(v, p0)); });
    case Unary::clamp: return go([p0, p1](T v) { return v != v ? v : std::min(std::max(v, p0), p1); });
    case Unary::in_range: return go([p0, p1](T v) { return (p0 <= v && v <= p1) ? T(1) : T(0); });
    case Unary::gt_scalar: return go([p0](T v) { return v > p0 ? T(1) : T(0); });
  }
}

template <class T, class F>
inline void binary_inner(index_t n, const T* a, index_t sa, const T* b, index_t sb, T* y, index_t sy, F f) {
  if (sy == 1 && sa == 1 && sb == 1) {
    for (index_t j = 0; j < n; ++j) y[j] = f(a[j], b[j]);
  } else if (sy == 1 && sa == 1 && sb == 0) {
    const T bv = b[0];
    for (index_t j = 0; j < n; ++j) y[j] = f(a[j], bv);
  } else if (sy == 1 && sa == 0 && sb == 1) {
    const T av = a[0];
    for (index_t j = 0; j < n; ++j) y[j] = f(av, b[j]);
  } else {
    for (index_t j = 0; j < n; ++j) y[j * sy] = f(a[j * sa], b[j * sb]);
  }
}

template <class T>
void binary(Binary op, const Shape& as, const T* a, const Shape& bs, const T* b, const Shape& ys, T* y) {
  const Plan<3> p = make_plan<3>({&as, &bs, &ys});
  auto go = [&](auto f) {
    run(p, ys.numel(), [&](index_t n, const std::array<index_t, 3>& o, const std::array<index_t, 3>& s) {
      binary_inner(n, a + o[0], s[0], b + o[1], s[1], y + o[2], s[2], f);
    });
  };
  switch (op) {
    case Binary::add: return go([](T u, T v) { return u + v; });
    case Binary::sub: return go([](T u, T v) { return u - v; });
    case Binary::mul: return go([](T u, T v) { return u * v; });
    case Binary::div: return go([](T u, T v) { return u / v; });
    case Binary::eq: return go([](T u, T v) { return u == v ? T(1) : T(0); });
    case Binary::gt: return go([](T u, T v) { return u > v ? T(1) : T(0); });
    case Binary::max: return go([](T u, T v) { return (u != u || v != v) ? u + v : (u > v ? u : v); });
    case Binary::min: return go([](T u, T v) { return (u != u || v != v) ? u + v : (u < v ? u : v); });
  }
}

template <class T>
void where(const Shape& cs, const T* c, const Shape& as, const T* a, const Shape& bs, const T* b, const Shape& ys,
           T* y) {
  const Plan<4> p = make_plan<4>({&cs, &as, &bs, &ys});
  run(p, ys.numel(), [&](index_t n, const std::array<index_t, 4>& o, const std::array<index_t, 4>& s) {
    const T* co = c + o[0];
    const T* ao = a + o[1];
    const T* bo = b + o[2];
    T* yo = y + o[3];
    for (index_t j = 0; j < n; ++j) yo[j * s[3]] = co[j * s[0]] != T(0) ? ao[j * s[1]] : bo[j * s[2]];
  });
}

}  // namespace ew_impl
}  // namespace
}  // namespace tg::cpu

// A path's entries of cpu/elementwise.hpp for float and double, exp and log through the
// lane type V, defined by one line in namespace tg::cpu of each path's translation unit.
#define TG_ELEMENTWISE_PATH_T(path, V, T)                                                                 \
  void unary_##path(Unary op, double p0, double p1, const Shape& xs, const T* x, const Shape& ys, T* y) { \
    ew_impl::unary<V>(op, p0, p1, xs, x, ys, y);                                                          \
  }                                                                                                       \
  void binary_##path(Binary op, const Shape& as, const T* a, const Shape& bs, const T* b, const Shape& ys, \
                     T* y) {                                                                              \
    ew_impl::binary(op, as, a, bs, b, ys, y);                                                             \
  }                                                                                                       \
  void where_##path(const Shape& cs, const T* c, const Shape& as, const T* a, const Shape& bs, const T* b, \
                    const Shape& ys, T* y) {                                                              \
    ew_impl::where(cs, c, as, a, bs, b, ys, y);                                                           \
  }
#define TG_ELEMENTWISE_PATH(path, V) TG_ELEMENTWISE_PATH_T(path, V, float) TG_ELEMENTWISE_PATH_T(path, V, double)
