// Sum, mean and max over one axis of a strided view.
//
// Any single-axis reduction of a strided tensor is a reduction over the middle axis of
// a 3-D view (outer, n, inner): merge the axes before the reduced one into `outer` and
// those after it into `inner` (the Tensor layer does this).
//   y[o, i] = sum_{r < n} x[o * xs_outer + r * xs_n + i * xs_inner]      (Reduce::sum)
//   y[o, i] = that sum / n                                               (Reduce::mean)
//   y[o, i] = max_{r < n} x[...], NaN if any is NaN                      (Reduce::max)
// y is (outer, inner) with strides ys_outer, ys_inner. n == 0 gives 0 for sum, NaN
// (0 / 0) for mean and -inf for max. Strides are non-negative; y must not overlap x.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tilegrad/kernels/types.hpp"

namespace tg {

enum class Reduce : std::uint8_t { sum, mean, max };
inline const char* reduce_name(Reduce kind) {
  return kind == Reduce::sum ? "sum" : kind == Reduce::mean ? "mean" : "max";
}

void check_reduce(const char* op, index_t outer, index_t n, index_t inner, const void* x,
                  index_t xs_outer, index_t xs_n, index_t xs_inner, const void* y,
                  index_t ys_outer, index_t ys_inner, std::size_t elem);

template <class T>
void reduce_ref(Reduce kind, index_t outer, index_t n, index_t inner, const T* x,
                index_t xs_outer, index_t xs_n, index_t xs_inner, T* y, index_t ys_outer,
                index_t ys_inner);

}  // namespace tg
