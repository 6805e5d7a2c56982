// Sum, mean and max over the middle axis of an (outer, n, inner) strided view
// (kernels/reduce.hpp), written once and compiled per path (reduce.cpp portable,
// reduce_avx2.cpp with AVX2/FMA): plain loops over arrays of independent lanes, which
// the compiler turns into vector code for the path's flags. Not a public header.
//
// Two layouts carry the work, the others take a scalar loop:
//   runs     (xs_n == 1): each output reduces a contiguous run of n elements (row sums,
//            the sum of a whole tensor). 16 lanes of T accumulate a block of 256
//            elements; each block's lanes are added into a double. The run is cut into
//            fixed chunks of 32768 elements whose double partials are added in order, so
//            one long run is split over threads and the result does not depend on how
//            many there are.
//   columns  (xs_inner == 1, inner > 1): each output is a column of an (n, inner) slab
//            (a bias gradient: the sum over the batch). Up to 64 adjacent columns
//            accumulate together in T over 64 rows, then into double.
// Sums are exact in double apart from the T lanes' short partial sums: the error is
// that of a 16-term (runs) or 64-term (columns) float sum, far inside the reductions'
// tolerance. Max keeps a NaN flag per lane, since a vector max drops NaN.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "tilegrad/cpu/parallel.hpp"
#include "tilegrad/cpu/scratch.hpp"
#include "tilegrad/kernels/reduce.hpp"

namespace tg::cpu {
namespace {  // internal linkage: one copy per path's unit (docs/design.md)
namespace reduce_impl {

inline constexpr index_t kParallelElems = index_t(1) << 16;
inline constexpr int kLanes = 16;
inline constexpr index_t kBlock = 256;           // elements per T-lane block (runs)
inline constexpr index_t kChunk = 32768;         // elements per double partial (runs)
inline constexpr index_t kCols = 64;             // columns at a time (columns)
inline constexpr index_t kColRows = 64;          // rows per T block (columns)

// Sum of x[0, n) in double, 16 T lanes per block of kBlock.
template <class T>
double sum_contiguous(const T* x, index_t n) {
  double total = 0;
  const index_t full = n - n % kLanes;
  index_t i = 0;
  while (i < full) {
    const index_t end = std::min(full, i + kBlock);
    T acc[kLanes] = {};
    for (; i < end; i += kLanes)
      for (int k = 0; k < kLanes; ++k) acc[k] += x[i + k];
    double part = 0;
    for (int k = 0; k < kLanes; ++k) part += double(acc[k]);
    total += part;
  }
  for (; i < n; ++i) total += double(x[i]);
  return total;
}

// Max of x[0, n) (n >= 1), NaN if any element is NaN.
template <class T>
T max_contiguous(const T* x, index_t n) {
  T best = -std::numeric_limits<T>::infinity();
  bool nan = false;
  const index_t full = n - n % kLanes;
  if (full > 0) {
    T acc[kLanes];
    int bad[kLanes] = {};
    for (int k = 0; k < kLanes; ++k) acc[k] = best;
    for (index_t i = 0; i < full; i += kLanes)
      for (int k = 0; k < kLanes; ++k) {
        const T v = x[i + k];
        acc[k] = v > acc[k] ? v : acc[k];
        bad[k] |= v != v;
      }
    for (int k = 0; k < kLanes; ++k) {
      best = acc[k] > best ? acc[k] : best;
      nan |= bad[k] != 0;
    }
  }
  for (index_t i = full; i < n; ++i) {
    best = x[i] > best ? x[i] : best;
    nan |= x[i] != x[i];
  }
  return nan ? std::numeric_limits<T>::quiet_NaN() : best;
}

template <class T>
T finish_sum(Reduce kind, double s, index_t n) {
  if (kind == Reduce::mean) return n > 0 ? T(s / double(n)) : std::numeric_limits<T>::quiet_NaN();
  return T(s);
}

// Any layout, one output: the reference's loop in double.
template <class T>
T reduce_strided(Reduce kind, const T* x, index_t n, index_t xs_n) {
  if (kind == Reduce::max) {
    T best = -std::numeric_limits<T>::infinity();
    for (index_t r = 0; r < n; ++r) {
      const T v = x[r * xs_n];
      if (v != v) return v;
      best = v > best ? v : best;
    }
    return best;
  }
  double s = 0;
  for (index_t r = 0; r < n; ++r) s += double(x[r * xs_n]);
  return finish_sum<T>(kind, s, n);
}

// Contiguous runs: one output per (o, i), each over x[o xs_outer + i xs_inner + (0..n)].
template <class T>
void runs(Reduce kind, index_t outer, index_t n, index_t inner, const T* x, index_t xs_outer, index_t xs_inner, T* y,
          index_t ys_outer, index_t ys_inner) {
  const index_t outputs = outer * inner;
  auto run_of = [&](index_t u) { return x + (u / inner) * xs_outer + (u % inner) * xs_inner; };
  auto out_of = [&](index_t u) -> T& { return y[(u / inner) * ys_outer + (u % inner) * ys_inner]; };
  if (kind == Reduce::max || n <= kChunk) {
    // Whole runs per thread.
    for_each_rows(outputs, n, kParallelElems, [&](index_t u0, index_t u1) {
      for (index_t u = u0; u < u1; ++u)
        out_of(u) = kind == Reduce::max ? max_contiguous(run_of(u), n)
                                        : finish_sum<T>(kind, sum_contiguous(run_of(u), n), n);
    });
    return;
  }
  // Long runs: fixed chunks, their partials summed in order.
  const index_t chunks = (n + kChunk - 1) / kChunk;
  const ZeroScratch<double> parts(static_cast<std::size_t>(outputs * chunks));
  double* part = parts.data();
  for_each_rows(outputs * chunks, kChunk, kParallelElems, [&](index_t c0, index_t c1) {
    for (index_t c = c0; c < c1; ++c) {
      const index_t u = c / chunks, k = c % chunks, b = k * kChunk;
      part[c] = sum_contiguous(run_of(u) + b, std::min(kChunk, n - b));
    }
  });
  for (index_t u = 0; u < outputs; ++u) {
    double s = 0;
    for (index_t k = 0; k < chunks; ++k) s += part[u * chunks + k];
    out_of(u) = finish_sum<T>(kind, s, n);
  }
}

// Columns: for each o, outputs i of an (n, inner) slab with unit inner stride.
template <class T>
void columns(Reduce kind, index_t outer, index_t n, index_t inner, const T* x, index_t xs_outer, index_t xs_n, T* y,
             index_t ys_outer, index_t ys_inner) {
  const index_t groups = (inner + kCols - 1) / kCols;
  for_each_rows(outer * groups, n * std::min(inner, kCols), kParallelElems, [&](index_t g0, index_t g1) {
    for (index_t g = g0; g < g1; ++g) {
      const index_t o = g / groups, i0 = (g % groups) * kCols, w = std::min(kCols, inner - i0);
      const T* slab = x + o * xs_outer + i0;
      T* out = y + o * ys_outer + i0 * ys_inner;
      if (kind == Reduce::max) {
        T acc[kCols];
        int bad[kCols] = {};
        for (index_t j = 0; j < w; ++j) acc[j] = -std::numeric_limits<T>::infinity();
        for (index_t r = 0; r < n; ++r) {
          const T* row = slab + r * xs_n;
          for (index_t j = 0; j < w; ++j) {
            const T v = row[j];
            acc[j] = v > acc[j] ? v : acc[j];
            bad[j] |= v != v;
          }
        }
        for (index_t j = 0; j < w; ++j) out[j * ys_inner] = bad[j] ? std::numeric_limits<T>::quiet_NaN() : acc[j];
        continue;
      }
      double total[kCols] = {};
      for (index_t r0 = 0; r0 < n; r0 += kColRows) {
        const index_t r1 = std::min(n, r0 + kColRows);
        T acc[kCols] = {};
        for (index_t r = r0; r < r1; ++r) {
          const T* row = slab + r * xs_n;
          for (index_t j = 0; j < w; ++j) acc[j] += row[j];
        }
        for (index_t j = 0; j < w; ++j) total[j] += double(acc[j]);
      }
      for (index_t j = 0; j < w; ++j) out[j * ys_inner] = finish_sum<T>(kind, total[j], n);
    }
  });
}

template <class T>
void reduce(Reduce kind, index_t outer, index_t n, index_t inner, const T* x, index_t xs_outer, index_t xs_n,
            index_t xs_inner, T* y, index_t ys_outer, index_t ys_inner) {
  if (outer == 0 || inner == 0) return;
  if (n == 0) {
    const T empty = kind == Reduce::sum    ? T(0)
                    : kind == Reduce::mean ? std::numeric_limits<T>::quiet_NaN()
                                           : -std::numeric_limits<T>::infinity();
    for (index_t o = 0; o < outer; ++o)
      for (index_t i = 0; i < inner; ++i) y[o * ys_outer + i * ys_inner] = empty;
    return;
  }
  if (xs_n == 1 || n == 1) return runs(kind, outer, n, inner, x, xs_outer, xs_inner, y, ys_outer, ys_inner);
  if (xs_inner == 1 && inner > 1) return columns(kind, outer, n, inner, x, xs_outer, xs_n, y, ys_outer, ys_inner);
  for_each_rows(outer * inner, n, kParallelElems, [&](index_t u0, index_t u1) {
    for (index_t u = u0; u < u1; ++u) {
      const index_t o = u / inner, i = u % inner;
      y[o * ys_outer + i * ys_inner] = reduce_strided(kind, x + o * xs_outer + i * xs_inner, n, xs_n);
    }
  });
}

}  // namespace reduce_impl
}  // namespace
}  // namespace tg::cpu

// A path's entries of cpu/reduce.hpp (float and double), defined by one line in
// namespace tg::cpu of each path's translation unit: the same lane loops under that
// unit's ISA flags.
#define TG_REDUCE_PATH_T(path, T)                                                                         \
  void reduce_##path(Reduce kind, index_t outer, index_t n, index_t inner, const T* x, index_t xs_outer,  \
                     index_t xs_n, index_t xs_inner, T* y, index_t ys_outer, index_t ys_inner) {          \
    reduce_impl::reduce(kind, outer, n, inner, x, xs_outer, xs_n, xs_inner, y, ys_outer, ys_inner);       \
  }
#define TG_REDUCE_PATH(path) TG_REDUCE_PATH_T(path, float) TG_REDUCE_PATH_T(path, double)
