// Sum and mean over one axis: closed forms (arange sums), every axis of a strided 3-D
// tensor, empty reductions, and Kokkos's parallel_reduce as a second oracle where found.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/reduce.hpp"
#include "tests/support/testing.hpp"

namespace tg {

#ifdef TG_PEER_KOKKOS
// tests/peers/kokkos_reduce.cpp (C++17): row sums of a (rows, cols) row-major matrix.
std::vector<double> kokkos_row_sums(const std::vector<double>& x, long rows, long cols, std::string* devices);
#endif

namespace {

TEST(ReduceReference, SumsAndMeansOfArangeAreClosedForms) {
  const index_t n = 1001;
  std::vector<double> x(n);
  for (index_t i = 0; i < n; ++i) x[i] = double(i);
  double s = -1, m = -1;
  reduce_ref<double>(Reduce::sum, 1, n, 1, x.data(), 0, 1, 0, &s, 0, 0);
  reduce_ref<double>(Reduce::mean, 1, n, 1, x.data(), 0, 1, 0, &m, 0, 0);
  EXPECT_EQ(s, double(n * (n - 1) / 2));
  EXPECT_EQ(m, double(n - 1) / 2);
}

// A (4, 5, 6) tensor with padded strides, reduced over each axis by the (outer, n,
// inner) view that the Tensor layer would build; small integers keep every sum exact.
TEST(ReduceReference, EveryAxisOfAStridedTensor) {
  TG_TEST_RNG(rng);
  const index_t size[3] = {4, 5, 6};
  const index_t stride[3] = {5 * 15 + 1, 15, 2};  // rows padded, every other element used
  std::vector<float> x(std::size_t(size[0] * stride[0]), testing::kPoison<float>);
  auto at = [&](index_t a, index_t b, index_t c) -> float& {
    return x[std::size_t(a * stride[0] + b * stride[1] + c * stride[2])];
  };
  for (index_t a = 0; a < size[0]; ++a)
    for (index_t b = 0; b < size[1]; ++b)
      for (index_t c = 0; c < size[2]; ++c) at(a, b, c) = float(rng.integer(-9, 9));
  for (int axis = 0; axis < 3; ++axis) {
    // The two kept axes, in order: outer is the first, inner the second.
    const int keep0 = axis == 0 ? 1 : 0, keep1 = axis == 2 ? 1 : 2;
    std::vector<float> y(std::size_t(size[keep0] * size[keep1]), testing::kPoison<float>);
    reduce_ref<float>(Reduce::sum, size[keep0], size[axis], size[keep1], x.data(), stride[keep0],
                      stride[axis], stride[keep1], y.data(), size[keep1], 1);
    for (index_t o = 0; o < size[keep0]; ++o)
      for (index_t i = 0; i < size[keep1]; ++i) {
        index_t idx[3];
        idx[keep0] = o;
        idx[keep1] = i;
        double expected = 0;
        for (idx[axis] = 0; idx[axis] < size[axis]; ++idx[axis]) expected += at(idx[0], idx[1], idx[2]);
        EXPECT_EQ(y[std::size_t(o * size[keep1] + i)], float(expected)) << "axis " << axis;
      }
  }
}

TEST(ReduceReference, EmptyReductionGivesZeroSumAndNaNMean) {
  float s = 5, m = 5;
  reduce_ref<float>(Reduce::sum, 1, 0, 1, nullptr, 0, 1, 0, &s, 0, 0);
  reduce_ref<float>(Reduce::mean, 1, 0, 1, nullptr, 0, 1, 0, &m, 0, 0);
  EXPECT_EQ(s, 0.0f);
  EXPECT_TRUE(std::isnan(m));
}

TEST(ReduceReference, MaxIsTheLargestElementNaNWinsAndEmptyIsMinusInfinity) {
  TG_TEST_RNG(rng);
  std::vector<float> x(37);
  for (float& v : x) v = float(rng.uniform(-5, 5));
  float y = 0;
  reduce_ref<float>(Reduce::max, 1, 37, 1, x.data(), 0, 1, 0, &y, 0, 0);
  EXPECT_EQ(y, *std::max_element(x.begin(), x.end()));
  // Strided: the max of every third element.
  reduce_ref<float>(Reduce::max, 1, 12, 1, x.data(), 0, 3, 0, &y, 0, 0);
  float want = x[0];
  for (int r = 0; r < 12; ++r) want = std::max(want, x[std::size_t(3 * r)]);
  EXPECT_EQ(y, want);
  x[20] = std::numeric_limits<float>::quiet_NaN();
  reduce_ref<float>(Reduce::max, 1, 37, 1, x.data(), 0, 1, 0, &y, 0, 0);
  EXPECT_TRUE(std::isnan(y));
  reduce_ref<float>(Reduce::max, 1, 0, 1, nullptr, 0, 1, 0, &y, 0, 0);
  EXPECT_EQ(y, -std::numeric_limits<float>::infinity());
}

TEST(ReduceReference, AgreesWithKokkos) {
#ifndef TG_PEER_KOKKOS
  GTEST_SKIP() << "Kokkos was not found at configure time";
#else
  TG_TEST_RNG(rng);
  const index_t rows = 37, cols = 1013;
  std::vector<double> x = testing::random_vec<double>(rng, rows * cols);
  std::vector<double> ours(rows);
  reduce_ref<double>(Reduce::sum, rows, cols, 1, x.data(), cols, 1, 0, ours.data(), 1, 0);
  std::string devices;
  const std::vector<double> theirs = kokkos_row_sums(x, rows, cols, &devices);
  RecordProperty("kokkos_devices", devices);
  // Both sum 1013 values in [-1, 1] in double; orders differ: 1e-13 relative is ample.
  EXPECT_TRUE(testing::rel_close(ours, theirs, 1e-13)) << "Kokkos devices: " << devices;
#endif
}

}  // namespace
}  // namespace tg
