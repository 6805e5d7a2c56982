// Activations: the reference math against closed forms, limits and special values, its
// derivatives against central differences, and the reference kernels' strided views,
// bias and in-place behaviour. The shared body over the CPU kernels joins this file with
// the activation/softmax issue.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/activation.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using testing::Mat;
using testing::random_ld;
using testing::random_mat;
using testing::rel_close;

constexpr double kInf = std::numeric_limits<double>::infinity();
const Act kAll[] = {Act::none, Act::relu, Act::leaky_relu, Act::gelu_erf, Act::gelu_tanh,
                    Act::silu, Act::sigmoid, Act::tanh};

double f(Act a, double x, float slope = 0.01f) { return act_value({a, slope}, x); }
double df(Act a, double x, float slope = 0.01f) { return act_derivative({a, slope}, x); }

TEST(ActivationMath, ClosedFormsAtZeroAndOne) {
  for (Act a : kAll) EXPECT_EQ(f(a, 0.0), a == Act::sigmoid ? 0.5 : 0.0) << act_name(a);
  EXPECT_EQ(f(Act::relu, -3), 0);
  EXPECT_EQ(f(Act::relu, 2.5), 2.5);
  EXPECT_DOUBLE_EQ(f(Act::leaky_relu, -3, 0.2f), -3 * double(0.2f));
  EXPECT_DOUBLE_EQ(f(Act::sigmoid, 1), 1 / (1 + std::exp(-1.0)));
  EXPECT_DOUBLE_EQ(f(Act::silu, 1), 1 / (1 + std::exp(-1.0)));
  EXPECT_DOUBLE_EQ(f(Act::gelu_erf, 1), 0.5 * (1 + std::erf(1 / std::sqrt(2.0))));
  EXPECT_DOUBLE_EQ(f(Act::tanh, 0.5), std::tanh(0.5));
  EXPECT_DOUBLE_EQ(df(Act::sigmoid, 0), 0.25);
  EXPECT_DOUBLE_EQ(df(Act::tanh, 0), 1);
  EXPECT_DOUBLE_EQ(df(Act::gelu_erf, 0), 0.5);
  EXPECT_DOUBLE_EQ(df(Act::gelu_tanh, 0), 0.5);
  EXPECT_DOUBLE_EQ(df(Act::silu, 0), 0.5);
}

TEST(ActivationMath, GeluTanhApproximatesGeluErf) {
  // The tanh form is within 1e-3 of the exact one over the range that matters
  // (Hendrycks & Gimpel report max error ~ 2e-4 near |x| ~ 2).
  for (double x = -6; x <= 6; x += 0.01) EXPECT_NEAR(f(Act::gelu_tanh, x), f(Act::gelu_erf, x), 1e-3) << x;
}

TEST(ActivationMath, LimitsAtInfinityAreNeverNaN) {
  for (Act a : kAll) {
    for (double x : {-kInf, kInf}) {
      EXPECT_FALSE(std::isnan(f(a, x))) << act_name(a) << "(" << x << ")";
      EXPECT_FALSE(std::isnan(df(a, x))) << act_name(a) << "'(" << x << ")";
    }
  }
  EXPECT_EQ(f(Act::gelu_erf, -kInf), 0);
  EXPECT_EQ(f(Act::gelu_tanh, -kInf), 0);
  EXPECT_EQ(f(Act::silu, -kInf), 0);
  EXPECT_EQ(f(Act::gelu_erf, kInf), kInf);
  EXPECT_EQ(f(Act::sigmoid, -kInf), 0);
  EXPECT_EQ(f(Act::sigmoid, kInf), 1);
  EXPECT_EQ(f(Act::tanh, -kInf), -1);
  EXPECT_EQ(f(Act::leaky_relu, -kInf, 0.0f), 0);
  EXPECT_EQ(df(Act::silu, kInf), 1);
  EXPECT_EQ(df(Act::gelu_tanh, -kInf), 0);
  EXPECT_EQ(df(Act::leaky_relu, -kInf, 0.3f), double(0.3f));
  // Far tails stay finite and take the right sign (no 1 + erf cancellation to 0 * x).
  EXPECT_LT(f(Act::gelu_erf, -8), 0);
  EXPECT_GT(f(Act::gelu_erf, -8), -1e-12);
  EXPECT_LT(f(Act::gelu_tanh, -8), 0);
}

TEST(ActivationMath, NaNPropagatesThroughEveryFunctionAndDerivative) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (Act a : kAll) {
    EXPECT_TRUE(std::isnan(f(a, nan))) << act_name(a);
    EXPECT_TRUE(std::isnan(df(a, nan))) << act_name(a);
  }
}

TEST(ActivationMath, DerivativesMatchCentralDifferences) {
  TG_TEST_RNG(rng);
  for (Act a : kAll) {
    for (int i = 0; i < 200; ++i) {
      double x = rng.uniform(-8, 8);
      if (std::abs(x) < 1e-3) x += 0.01;  // off the kinks of relu and leaky_relu
      const double h = 1e-6;
      const double fd = (f(a, x + h, 0.1f) - f(a, x - h, 0.1f)) / (2 * h);
      EXPECT_NEAR(df(a, x, 0.1f), fd, 1e-7 * (1 + std::abs(fd))) << act_name(a) << " at " << x;
    }
  }
  EXPECT_EQ(df(Act::relu, 0), 0);  // the kink takes the left derivative, as PyTorch
  EXPECT_EQ(df(Act::leaky_relu, 0, 0.1f), double(0.1f));
}

TEST(ActivationReference, ForwardAppliesBiasPerColumnOnStridedViews) {
  TG_TEST_RNG(rng);
  for (Act a : kAll)
    for (index_t rows : {0, 1, 7}) {
      const index_t cols = rng.integer(0, 70);
      Mat<float> x = random_mat<float>(rng, rows, cols, random_ld(rng, cols), -4, 4);
      std::vector<float> bias = testing::random_vec<float>(rng, cols);
      const bool with_bias = rng.coin();
      Mat<float> y = testing::poisoned_mat<float>(rows, cols, random_ld(rng, cols));
      Mat<double> expected(rows, cols, cols);
      for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < cols; ++j)
          expected.at(i, j) = f(a, double(x.at(i, j)) + (with_bias ? double(bias[j]) : 0.0), 0.05f);
      act_forward_ref<float>({a, 0.05f}, rows, cols, x.ptr(), x.ld, with_bias ? bias.data() : nullptr, y.ptr(), y.ld);
      // One rounding of the exact value: half an ulp, 6e-8 relative.
      EXPECT_TRUE(rel_close(y, expected, 6e-8)) << act_name(a);
      EXPECT_TRUE(y.padding_untouched()) << act_name(a);
      // In place gives the same as out of place.
      Mat<float> in_place = x;
      act_forward_ref<float>({a, 0.05f}, rows, cols, in_place.ptr(), x.ld, with_bias ? bias.data() : nullptr, in_place.ptr(), x.ld);
      Mat<float> y_same_ld = testing::poisoned_mat<float>(rows, cols, x.ld);
      act_forward_ref<float>({a, 0.05f}, rows, cols, x.ptr(), x.ld, with_bias ? bias.data() : nullptr, y_same_ld.ptr(), x.ld);
      EXPECT_TRUE(rel_close(in_place, y_same_ld, 0.0)) << act_name(a);
    }
}

TEST(ActivationReference, BackwardIsDyTimesTheDerivativeAtXPlusBias) {
  TG_TEST_RNG(rng);
  for (Act a : kAll) {
    const index_t rows = rng.integer(1, 9), cols = rng.integer(1, 40);
    Mat<double> x = random_mat<double>(rng, rows, cols, random_ld(rng, cols), -4, 4);
    Mat<double> dy = random_mat<double>(rng, rows, cols, random_ld(rng, cols));
    std::vector<double> bias = testing::random_vec<double>(rng, cols);
    Mat<double> dx = testing::poisoned_mat<double>(rows, cols, random_ld(rng, cols));
    act_backward_ref<double>({a, 0.05f}, rows, cols, x.ptr(), x.ld, bias.data(), dy.ptr(), dy.ld, dx.ptr(), dx.ld);
    // The loss L = sum dy * f(x + b): its gradient by central differences, in double.
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) {
        const double z = x.at(i, j) + bias[j];
        const double h = 1e-6;
        const double fd = dy.at(i, j) * (f(a, z + h, 0.05f) - f(a, z - h, 0.05f)) / (2 * h);
        EXPECT_NEAR(dx.at(i, j), fd, 1e-7 * (1 + std::abs(fd))) << act_name(a) << " at " << z;
      }
    EXPECT_TRUE(dx.padding_untouched());
  }
}

}  // namespace
}  // namespace tg
