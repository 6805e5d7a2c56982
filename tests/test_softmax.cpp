// softmax and log_softmax: the reference against closed forms and properties (equal
// values, rows summing to 1, shift invariance, log_softmax = log softmax), the special
// rows of the contract, and the backward against central differences in double.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/softmax.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using testing::Mat;
using testing::poisoned_mat;
using testing::random_ld;
using testing::random_mat;

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(SoftmaxReference, EqualValuesGiveTheUniformDistribution) {
  for (index_t n : {1, 2, 7, 257}) {
    Mat<float> x(3, n, n);
    for (float& v : x.data) v = 0.75f;
    Mat<float> y = poisoned_mat<float>(3, n, n + 2), ly = poisoned_mat<float>(3, n, n);
    softmax_forward_ref<float>(3, n, x.ptr(), n, y.ptr(), y.ld);
    log_softmax_forward_ref<float>(3, n, x.ptr(), n, ly.ptr(), ly.ld);
    for (index_t i = 0; i < 3; ++i)
      for (index_t j = 0; j < n; ++j) {
        EXPECT_FLOAT_EQ(y.at(i, j), 1.0f / float(n));
        EXPECT_FLOAT_EQ(ly.at(i, j), -std::log(float(n)));
      }
    EXPECT_TRUE(y.padding_untouched());
  }
}

TEST(SoftmaxReference, RowsSumToOneAndAreShiftInvariant) {
  TG_TEST_RNG(rng);
  for (index_t cols : testing::mixed_sizes(rng, 10, 3000)) {
    if (cols == 0) continue;
    const index_t rows = rng.integer(1, 6);
    Mat<double> x = random_mat<double>(rng, rows, cols, random_ld(rng, cols), -30, 30);
    Mat<double> shifted = x;
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) shifted.at(i, j) += 1000.0 * double(i + 1);
    Mat<double> y = poisoned_mat<double>(rows, cols, cols), ys = y, ly = y;
    softmax_forward_ref<double>(rows, cols, x.ptr(), x.ld, y.ptr(), cols);
    softmax_forward_ref<double>(rows, cols, shifted.ptr(), x.ld, ys.ptr(), cols);
    log_softmax_forward_ref<double>(rows, cols, x.ptr(), x.ld, ly.ptr(), cols);
    for (index_t i = 0; i < rows; ++i) {
      double sum = 0;
      for (index_t j = 0; j < cols; ++j) {
        sum += y.at(i, j);
        EXPECT_GE(y.at(i, j), 0.0);
        EXPECT_NEAR(std::log(y.at(i, j)), ly.at(i, j), 1e-12 * (1 + std::abs(ly.at(i, j))));
      }
      EXPECT_NEAR(sum, 1.0, 1e-13 * double(cols));
    }
    EXPECT_TRUE(testing::rel_close(ys, y, 1e-12));
  }
}

TEST(SoftmaxReference, SpecialRowsFollowTheContract) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // row 0: all -inf; row 1: some -inf; row 2: two +inf; row 3: a NaN.
  const float x[4][4] = {{-kInf, -kInf, -kInf, -kInf}, {0.0f, -kInf, 0.0f, -kInf},
                         {kInf, 1.0f, kInf, -kInf}, {0.0f, nan, 1.0f, 2.0f}};
  float y[4][4], ly[4][4];
  softmax_forward_ref<float>(4, 4, &x[0][0], 4, &y[0][0], 4);
  log_softmax_forward_ref<float>(4, 4, &x[0][0], 4, &ly[0][0], 4);
  for (int j = 0; j < 4; ++j) {
    EXPECT_EQ(y[0][j], 0.0f);
    EXPECT_EQ(ly[0][j], -kInf);
    EXPECT_EQ(y[1][j], j % 2 == 0 ? 0.5f : 0.0f);
    EXPECT_EQ(ly[1][j], j % 2 == 0 ? -std::log(2.0f) : -kInf);
    EXPECT_EQ(y[2][j], j % 2 == 0 ? 0.5f : 0.0f);
    EXPECT_EQ(ly[2][j], j % 2 == 0 ? -std::log(2.0f) : -kInf);
    EXPECT_TRUE(std::isnan(y[3][j]));
    EXPECT_TRUE(std::isnan(ly[3][j]));
  }
  // A fully masked row has zero gradient in both backward passes.
  const float dy[4] = {1, -2, 3, 0.5f};
  float dx[4], ldx[4];
  softmax_backward_ref<float>(1, 4, &y[0][0], 4, dy, 4, dx, 4);
  log_softmax_backward_ref<float>(1, 4, &ly[0][0], 4, dy, 4, ldx, 4);
  for (int j = 0; j < 4; ++j) {
    EXPECT_EQ(dx[j], 0.0f);
    EXPECT_EQ(ldx[j], 0.0f);
  }
  // An empty row is fine and touches nothing.
  softmax_forward_ref<float>(1, 0, &x[0][0], 0, &y[0][0], 0);
}

// L(x) = sum_ij w_ij y_ij(x): the backward with dy = w must equal dL/dx by central
// differences, for both ops, in double, on strided views and in place.
TEST(SoftmaxReference, BackwardMatchesCentralDifferences) {
  TG_TEST_RNG(rng);
  for (bool log : {false, true}) {
    auto forward = log ? &log_softmax_forward_ref<double> : &softmax_forward_ref<double>;
    auto backward = log ? &log_softmax_backward_ref<double> : &softmax_backward_ref<double>;
    for (int rep = 0; rep < 6; ++rep) {
      const index_t rows = rng.integer(1, 4), cols = rng.integer(1, 20);
      Mat<double> x = random_mat<double>(rng, rows, cols, random_ld(rng, cols), -3, 3);
      Mat<double> w = random_mat<double>(rng, rows, cols, random_ld(rng, cols));
      if (rep == 0) {
        // A masked entry: its log_softmax output is the constant -inf, so the loss
        // cannot weight it; dy = 0 there, as any consumer of a masked output has.
        x.at(0, 0) = -std::numeric_limits<double>::infinity();
        w.at(0, 0) = 0;
      }
      Mat<double> y = poisoned_mat<double>(rows, cols, random_ld(rng, cols));
      forward(rows, cols, x.ptr(), x.ld, y.ptr(), y.ld);
      Mat<double> dx = poisoned_mat<double>(rows, cols, random_ld(rng, cols));
      backward(rows, cols, y.ptr(), y.ld, w.ptr(), w.ld, dx.ptr(), dx.ld);
      // In place (dx over dy) agrees.
      Mat<double> in_place = w;
      backward(rows, cols, y.ptr(), y.ld, in_place.ptr(), w.ld, in_place.ptr(), w.ld);
      EXPECT_TRUE(testing::rel_close(in_place, dx, 0.0));
      for (index_t i = 0; i < rows; ++i) {
        std::vector<double> row(cols);
        for (index_t j = 0; j < cols; ++j) row[j] = x.at(i, j);
        auto loss = [&](const std::vector<double>& r) {
          std::vector<double> out(cols);
          forward(1, cols, r.data(), cols, out.data(), cols);
          double s = 0;
          for (index_t j = 0; j < cols; ++j)
            if (std::isfinite(out[j])) s += w.at(i, j) * out[j];
          return s;
        };
        const std::vector<double> g = testing::central_diff(loss, row, 1e-6);
        for (index_t j = 0; j < cols; ++j) {
          if (!std::isfinite(row[j])) continue;
          EXPECT_NEAR(dx.at(i, j), g[j], 1e-7 * (1 + std::abs(g[j]))) << (log ? "log_" : "") << "softmax (" << i << "," << j << ")";
        }
      }
    }
  }
}

}  // namespace
}  // namespace tg
