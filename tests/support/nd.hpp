// Random N-D views for the elementwise tests (CPU and CUDA): sizes that find bugs, and a
// layout per operand with its dimensions in random memory order, random padding between
// them and, for inputs, random broadcast dimensions (stride 0).
#pragma once

#include <algorithm>
#include <functional>
#include <numeric>
#include <vector>

#include "tilegrad/kernels/reference/nd.hpp"
#include "tilegrad/kernels/shape.hpp"
#include "tests/support/testing.hpp"

namespace tg::testing {

// Rank 0 to 5; sizes 0, 1 and odd ones, sometimes a long inner run of `long_lo` to
// `long_hi`; halved until at most max_numel elements.
inline std::vector<index_t> random_nd_sizes(Rng& rng, index_t long_lo, index_t long_hi, index_t max_numel) {
  const int rank = int(rng.integer(0, 5));
  std::vector<index_t> sizes(static_cast<std::size_t>(rank));
  const index_t pick[] = {0, 1, 1, 2, 3, 5, 7, 8, 13, 17, 33};
  for (index_t& n : sizes) n = pick[rng.integer(0, 10)];
  if (rng.integer(0, 4) == 0 && rank > 0) sizes.back() = rng.integer(long_lo, long_hi);
  auto numel = [&] { return std::accumulate(sizes.begin(), sizes.end(), index_t(1), std::multiplies<>()); };
  while (numel() > max_numel) *std::max_element(sizes.begin(), sizes.end()) /= 2;
  return sizes;
}

// A layout of `sizes`: dimensions in a random memory order (half the time), padded by
// 0-3 elements now and then, and (inputs only) broadcast with probability 1/5 each.
inline Shape random_layout(Rng& rng, const std::vector<index_t>& sizes, bool input) {
  const int rank = int(sizes.size());
  std::vector<int> order(static_cast<std::size_t>(rank));
  std::iota(order.begin(), order.end(), 0);
  if (rng.coin()) std::shuffle(order.begin(), order.end(), rng.engine());
  std::vector<index_t> strides(static_cast<std::size_t>(rank));
  index_t s = 1;
  for (int k = rank; k-- > 0;) {  // order[rank - 1] innermost
    const int d = order[std::size_t(k)];
    const bool broadcast = input && rng.integer(0, 4) == 0;
    strides[std::size_t(d)] = broadcast ? 0 : s;
    if (!broadcast) s = s * std::max<index_t>(sizes[std::size_t(d)], 1) + (rng.coin() ? rng.integer(0, 3) : 0);
  }
  return Shape(sizes, strides);
}

// A random_layout view with its whole storage: values in [-3, 3) where an input reaches,
// NaN in the gaps (and everywhere in an output, poisoned before the call).
struct StoredView {
  Shape shape;
  std::vector<float> data;
};
inline StoredView random_stored_view(Rng& rng, const std::vector<index_t>& sizes, bool input) {
  StoredView v{random_layout(rng, sizes, input), {}};
  v.data.assign(std::size_t(v.shape.extent() + 1), kPoison<float>);
  if (input)
    ref::nd_for_each<1>(v.shape.sizes(), {&v.shape}, [&](index_t o) { v.data[std::size_t(o)] = float(rng.uniform(-3, 3)); });
  return v;
}

}  // namespace tg::testing
