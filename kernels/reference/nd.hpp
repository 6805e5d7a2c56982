// Row-major iteration over the index space of N-D strided views, for the reference
// kernels: f(o0, o1, ...) gets each operand's element offset. Plain and obviously
// correct (an odometer), not fast.
#pragma once

#include <array>
#include <span>
#include <tuple>

#include "tilegrad/kernels/shape.hpp"

namespace tg::ref {

template <std::size_t N, class F>
void nd_for_each(std::span<const index_t> sizes, const std::array<const Shape*, N>& views, F&& f) {
  const int rank = int(sizes.size());
  for (index_t s : sizes)
    if (s == 0) return;
  std::array<index_t, Shape::kMaxRank> idx{};
  std::array<index_t, N> off{};
  while (true) {
    std::apply(f, off);
    int d = rank - 1;
    for (; d >= 0; --d) {
      ++idx[std::size_t(d)];
      for (std::size_t k = 0; k < N; ++k) off[k] += views[k]->stride(d);
      if (idx[std::size_t(d)] < sizes[std::size_t(d)]) break;
      for (std::size_t k = 0; k < N; ++k) off[k] -= views[k]->stride(d) * sizes[std::size_t(d)];
      idx[std::size_t(d)] = 0;
    }
    if (d < 0) return;
  }
}

}  // namespace tg::ref
