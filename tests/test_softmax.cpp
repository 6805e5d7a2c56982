// softmax and log_softmax: the reference against closed forms and properties (equal
// values, rows summing to 1, shift invariance, log_softmax = log softmax), the special
// rows of the contract, and the backward against central differences in double; then
// one body over every CPU path (each ISA, 1 and 2 threads) against the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/cpu/softmax.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/softmax.hpp"
#include "tests/support/guards.hpp"
#include "tests/support/testing.hpp"
#include "tests/support/wide16_ops.hpp"

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

// ---------------------------------------------------------------------------------
// Every CPU path against the reference.
// ---------------------------------------------------------------------------------

using Impl = testing::CpuImpl;

using testing::ThreadsGuard;

// Tolerances from the error model. Forward: each output carries the exp's ~1 ulp, the
// scale's and the division's roundings, and the row sum's error (blocks of 256 summed
// in float lanes of 32 terms, blocks in double): a few ulps, so 1e-6 relative.
// Backward: dx_j = y_j (dy_j - dot) and dy_j - e^y_j sum cancel whenever the two terms
// are close (y ~ one-hot: dx ~ 0), so the error is measured against the size of the
// terms, s_j = |y_j| (|dy_j| + sum_k |dy_k y_k|) (log: |dy_j| + e^y_j sum_k |dy_k|), not
// against |dx|: ||dx - ref|| <= tol ||s||, tol from docs/design.md's reduction bound
// 1e-4 sqrt(n) / 16 (n the row length), floored at 1e-6.
double back_tol(index_t n) { return std::max(1e-6, 1e-4 * std::sqrt(double(n)) / 16); }

::testing::AssertionResult backward_close(bool log, const Mat<float>& y, const Mat<float>& dy,
                                          const Mat<float>& dx, const Mat<float>& ref, double tol) {
  double err = 0, scale = 0;
  for (index_t i = 0; i < dx.rows; ++i) {
    double sum = 0;
    for (index_t j = 0; j < dx.cols; ++j)
      sum += log ? std::fabs(double(dy.at(i, j))) : std::fabs(double(dy.at(i, j)) * double(y.at(i, j)));
    for (index_t j = 0; j < dx.cols; ++j) {
      const double o = dx.at(i, j), r = ref.at(i, j);
      if (std::isnan(o) != std::isnan(r)) return ::testing::AssertionFailure() << "NaN mismatch at " << i << "," << j;
      if (std::isnan(r)) continue;
      const double yv = y.at(i, j), d = std::fabs(double(dy.at(i, j)));
      const double s = log ? d + (std::isinf(yv) ? 0.0 : std::exp(yv)) * sum : std::fabs(yv) * (d + sum);
      err += (o - r) * (o - r);
      scale += s * s;
    }
  }
  const double rel = scale > 0 ? std::sqrt(err / scale) : std::sqrt(err);
  if (rel <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "error " << rel << " of the terms' size exceeds " << tol;
}

// A NaN anywhere makes the whole row NaN, whichever way the kernels meet it: after a
// finite maximum (through the exponentials it turns into NaN), in a block of -inf
// (where no exponential is formed), beside a +inf (NaN wins), as the last element of a
// 256-wide online block, in a tail, and in a long row split across threads.
TEST(Softmax, ANanAnywhereMakesTheRowNan) {
  ThreadsGuard guard;
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  struct Case {
    const char* what;
    index_t cols;
    std::vector<std::pair<index_t, float>> set;  // (column, value) over a row of fill
    float fill;
  };
  const Case cases[] = {
      {"NaN among -inf, second block", 300, {{280, nan}}, -inf},
      {"+inf then NaN", 300, {{10, inf}, {290, nan}}, 0.5f},
      {"NaN then +inf", 300, {{5, nan}, {290, inf}}, 0.5f},
      {"first block all -inf, NaN among finite", 600, {{300, 1.0f}, {301, nan}}, -inf},
      {"NaN last in its block", 512, {{255, nan}}, 0.25f},
      {"NaN first, tail of 17", 17, {{0, nan}}, -1.0f},
      {"NaN in a split long row", 200003, {{150000, nan}}, 0.0f},
  };
  for (const Impl& impl : testing::cpu_implementations()) {
    cpu::set_num_threads(impl.threads);
    for (const Case& c : cases)
      for (bool log : {false, true}) {
        std::vector<float> x(static_cast<std::size_t>(c.cols), c.fill), y(x.size(), 0.0f);
        for (auto [j, v] : c.set) x[std::size_t(j)] = v;
        (log ? impl.ops->log_softmax_forward : impl.ops->softmax_forward)(1, c.cols, x.data(), c.cols, y.data(),
                                                                          c.cols);
        for (index_t j = 0; j < c.cols; ++j)
          ASSERT_TRUE(std::isnan(y[std::size_t(j)]))
              << impl.name << " threads " << impl.threads << (log ? " log_softmax: " : " softmax: ") << c.what
              << ", column " << j << " = " << y[std::size_t(j)];
      }
  }
}

// The backward of a NaN row (what the forward makes of a row with a NaN) is NaN: the
// log_softmax backward took a row with no y above -inf for a fully masked one and
// returned zeros. Short rows, rows with a tail, one row split across threads.
TEST(Softmax, TheBackwardOfANanRowIsNan) {
  ThreadsGuard guard;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const Impl& impl : testing::cpu_implementations()) {
    cpu::set_num_threads(impl.threads);
    for (const index_t cols : {index_t(4), index_t(37), index_t(300), index_t(200003)})
      for (bool log : {false, true}) {
        std::vector<float> y(static_cast<std::size_t>(cols), nan), dy(y.size(), 0.5f), dx(y.size(), 0.0f);
        (log ? impl.ops->log_softmax_backward : impl.ops->softmax_backward)(1, cols, y.data(), cols, dy.data(), cols,
                                                                            dx.data(), cols);
        for (index_t j = 0; j < cols; ++j)
          ASSERT_TRUE(std::isnan(dx[std::size_t(j)])) << impl.name << " threads " << impl.threads
                                                      << (log ? " log_softmax" : " softmax") << " cols " << cols
                                                      << " at " << j << ": " << dx[std::size_t(j)];
      }
  }
}

TEST(Softmax, EveryPathMatchesTheReference) {
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  std::vector<index_t> sizes = testing::mixed_sizes(rng, 16, 700);
  const float inf = std::numeric_limits<float>::infinity();
  for (const Impl& impl : testing::cpu_implementations()) {
    cpu::set_num_threads(impl.threads);
    for (bool log : {false, true}) {
      auto fwd = log ? impl.ops->log_softmax_forward : impl.ops->softmax_forward;
      auto bwd = log ? impl.ops->log_softmax_backward : impl.ops->softmax_backward;
      auto fwd_ref = log ? &log_softmax_forward_ref<float> : &softmax_forward_ref<float>;
      auto bwd_ref = log ? &log_softmax_backward_ref<float> : &softmax_backward_ref<float>;
      for (int rep = 0; rep < 10; ++rep) {
        index_t rows = sizes[rng.integer(0, 15)], cols = sizes[rng.integer(0, 15)];
        if (rep == 0) rows = 1, cols = 200003;   // one long row: split across the threads
        if (rep == 1) rows = 3, cols = 70001;    // long rows, fewer than threads or not
        if (rep == 2) rows = 300, cols = 1;
        const bool in_place = rep % 3 == 1;
        Mat<float> x = random_mat<float>(rng, rows, cols, random_ld(rng, cols), -20, 20);
        // Rows that are not ordinary numbers: masked entries, a fully masked row, +inf
        // entries, a NaN.
        for (index_t i = 0; i < rows && cols > 1; ++i) {
          const index_t kind = rng.integer(0, 9);
          for (index_t j = 0; j < cols; ++j) {
            if (kind == 0 && rng.coin()) x.at(i, j) = -inf;
            if (kind == 1) x.at(i, j) = -inf;
          }
          if (kind == 2) x.at(i, rng.integer(0, cols - 1)) = inf, x.at(i, rng.integer(0, cols - 1)) = inf;
          if (kind == 3) x.at(i, rng.integer(0, cols - 1)) = std::numeric_limits<float>::quiet_NaN();
        }
        Mat<float> ref = poisoned_mat<float>(rows, cols, cols);
        fwd_ref(rows, cols, x.ptr(), x.ld, ref.ptr(), cols);
        Mat<float> y = in_place ? x : poisoned_mat<float>(rows, cols, random_ld(rng, cols));
        fwd(rows, cols, in_place ? y.ptr() : x.ptr(), in_place ? y.ld : x.ld, y.ptr(), y.ld);
        const std::string what = impl.name + " threads " + std::to_string(impl.threads) + (log ? " log_" : " ") +
                                 "softmax " + std::to_string(rows) + "x" + std::to_string(cols) +
                                 (in_place ? " in place" : "");
        // NaN rows must be NaN on both sides: compare them apart, the rest by norm.
        for (index_t i = 0; i < rows; ++i) {
          const bool nan_row = cols > 0 && std::isnan(ref.at(i, 0));
          for (index_t j = 0; nan_row && j < cols; ++j) ASSERT_TRUE(std::isnan(y.at(i, j))) << what << " row " << i;
          if (nan_row) {
            for (index_t j = 0; j < cols; ++j) y.at(i, j) = ref.at(i, j) = 0;
          }
        }
        ASSERT_TRUE(testing::rel_close(y, ref, 1e-6)) << what;
        ASSERT_TRUE(in_place || y.padding_untouched()) << what;

        // Backward from the reference's (NaN-free) output.
        Mat<float> dy = random_mat<float>(rng, rows, cols, random_ld(rng, cols));
        Mat<float> dref = poisoned_mat<float>(rows, cols, cols);
        bwd_ref(rows, cols, ref.ptr(), cols, dy.ptr(), dy.ld, dref.ptr(), cols);
        Mat<float> dx = in_place ? dy : poisoned_mat<float>(rows, cols, random_ld(rng, cols));
        bwd(rows, cols, ref.ptr(), cols, in_place ? dx.ptr() : dy.ptr(), in_place ? dx.ld : dy.ld, dx.ptr(), dx.ld);
        ASSERT_TRUE(backward_close(log, ref, dy, dx, dref, back_tol(cols))) << what << " backward";
        ASSERT_TRUE(in_place || dx.padding_untouched()) << what << " backward";
      }
    }
  }
}

// log_softmax of logits far from 0 (offset + U(-3, 3)): y = (x - m) - log s keeps its
// digits where x - float(m + log s) lost half an ulp of m (3e-5 at 1e3, 5e-4 at 1e4).
// Error model, per element: x - m exact (same binade), log s off by the row sum's
// relative error (~2^-22) plus its rounding (half an ulp of log n <= 2^-21 for n < 2^12),
// the result rounded: |y - ref| <= 2^-23 |ref| + 2^-20.
TEST(Softmax, LogSoftmaxKeepsItsDigitsForOffsetLogits) {
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  for (const Impl& impl : testing::cpu_implementations()) {
    cpu::set_num_threads(impl.threads);
    for (const double offset : {1e3, 1e4, -1e4, 0.0})
      for (const index_t cols : {index_t(32), index_t(1000), index_t(3001)}) {
        const index_t rows = 17;
        Mat<float> x = random_mat<float>(rng, rows, cols, random_ld(rng, cols), -3, 3);
        Mat<double> xd(rows, cols, cols);
        for (index_t i = 0; i < rows; ++i)
          for (index_t j = 0; j < cols; ++j) xd.at(i, j) = x.at(i, j) = float(offset + double(x.at(i, j)));
        Mat<double> ref(rows, cols, cols);
        log_softmax_forward_ref<double>(rows, cols, xd.ptr(), cols, ref.ptr(), cols);
        Mat<float> y = poisoned_mat<float>(rows, cols, random_ld(rng, cols));
        impl.ops->log_softmax_forward(rows, cols, x.ptr(), x.ld, y.ptr(), y.ld);
        for (index_t i = 0; i < rows; ++i)
          for (index_t j = 0; j < cols; ++j) {
            const double r = ref.at(i, j), bound = std::ldexp(std::fabs(r), -23) + std::ldexp(1.0, -20);
            ASSERT_LE(std::fabs(double(y.at(i, j)) - r), bound)
                << impl.name << " threads " << impl.threads << " offset " << offset << " " << rows << "x" << cols
                << " at " << i << "," << j;
          }
      }
  }
}

TEST(Softmax, PublicEntriesCheckTheirArguments) {
  std::vector<float> x(32), y(32);
  EXPECT_NO_THROW(cpu::softmax_forward(4, 8, x.data(), 8, y.data(), 8));
  EXPECT_NO_THROW(cpu::log_softmax_forward(4, 8, x.data(), 8, x.data(), 8));
  EXPECT_THROW(cpu::softmax_forward(4, 8, x.data(), 7, y.data(), 8), Error);
  EXPECT_THROW(cpu::log_softmax_forward(4, 8, x.data(), 8, x.data() + 1, 8), Error);
  EXPECT_THROW(cpu::softmax_backward(4, 8, y.data(), 8, x.data(), 8, y.data(), 8), Error);
  std::vector<double> xd(32), yd(32);
  EXPECT_NO_THROW(cpu::softmax_forward(4, 8, xd.data(), 8, yd.data(), 8));
}

}  // namespace
}  // namespace tg
