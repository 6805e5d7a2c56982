// Activations: the reference math against closed forms, limits and special values, its
// derivatives against central differences, and the reference kernels' strided views,
// bias and in-place behaviour; then one body over every CPU path (each ISA, 1 and 2
// threads) against the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tilegrad/cpu/activation.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/kernels/activation.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tests/support/guards.hpp"
#include "tests/support/testing.hpp"
#include "tests/support/wide16_ops.hpp"

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

// ---------------------------------------------------------------------------------
// Every CPU path against the reference.
// ---------------------------------------------------------------------------------

using Impl = testing::CpuImpl;

using testing::ThreadsGuard;

// Forward: each element within 4 ulp of the exact value (cpu/vmath/NOTES.md), so the
// relative norm error is below 4 * 2^-24 = 2.4e-7: 1e-6 leaves room for nothing else.
// Backward: the derivatives are formed from several rounded pieces and cancel near
// their zeros (silu' at x ~ -1.28); docs/design.md's 1e-5 for elementwise ops.
constexpr double kForwardTol = 1e-6;
constexpr double kBackwardTol = 1e-5;

TEST(Activation, EveryPathMatchesTheReference) {
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  std::vector<index_t> sizes = testing::mixed_sizes(rng, 16, 300);
  for (const Impl& impl : testing::cpu_implementations()) {
    cpu::set_num_threads(impl.threads);
    for (Act a : kAll) {
      for (int rep = 0; rep < 6; ++rep) {
        index_t rows = sizes[rng.integer(0, 15)], cols = sizes[rng.integer(0, 15)];
        if (rep == 0) rows = 1, cols = 100003;       // one long row: threads split it
        if (rep == 1) rows = 257, cols = 129;        // many rows
        const Activation act{a, float(rng.uniform(0.01, 0.3))};
        const bool with_bias = rng.coin(), in_place = rng.coin();
        Mat<float> x = random_mat<float>(rng, rows, cols, random_ld(rng, cols), -6, 6);
        std::vector<float> bias = testing::random_vec<float>(rng, cols);
        const float* b = with_bias ? bias.data() : nullptr;
        Mat<float> ref = testing::poisoned_mat<float>(rows, cols, cols);
        act_forward_ref<float>(act, rows, cols, x.ptr(), x.ld, b, ref.ptr(), cols);
        Mat<float> y = in_place ? x : testing::poisoned_mat<float>(rows, cols, random_ld(rng, cols));
        impl.ops->act_forward(act, rows, cols, in_place ? y.ptr() : x.ptr(), in_place ? y.ld : x.ld, b, y.ptr(), y.ld);
        const std::string what = impl.name + " threads " + std::to_string(impl.threads) + " " + act_name(a) + " " +
                                 std::to_string(rows) + "x" + std::to_string(cols) + (with_bias ? " +bias" : "") +
                                 (in_place ? " in place" : "");
        ASSERT_TRUE(testing::rel_close(y, ref, kForwardTol)) << what;
        ASSERT_TRUE(in_place || y.padding_untouched()) << what;

        Mat<float> dy = random_mat<float>(rng, rows, cols, random_ld(rng, cols));
        Mat<float> dref = testing::poisoned_mat<float>(rows, cols, cols);
        act_backward_ref<float>(act, rows, cols, x.ptr(), x.ld, b, dy.ptr(), dy.ld, dref.ptr(), cols);
        Mat<float> dx = in_place ? dy : testing::poisoned_mat<float>(rows, cols, random_ld(rng, cols));
        impl.ops->act_backward(act, rows, cols, x.ptr(), x.ld, b, in_place ? dx.ptr() : dy.ptr(), in_place ? dx.ld : dy.ld,
                      dx.ptr(), dx.ld);
        ASSERT_TRUE(testing::rel_close(dx, dref, kBackwardTol)) << what << " backward";
        ASSERT_TRUE(in_place || dx.padding_untouched()) << what << " backward";
      }
    }
  }
}

// Large outputs take the non-temporal store path (over half of the L3, which counts
// at most 64 MiB: so over 32 MiB on any machine), forward and backward: same results.
TEST(Activation, StreamingStoresOnLargeOutputs) {
  TG_TEST_RNG(rng);
  const index_t n = (index_t(33) << 20) / 4 + 5;  // 33 MiB + 20 bytes, unaligned tail
  std::vector<float> x = testing::random_vec<float>(rng, n, -5, 5), y(n + 1, testing::kPoison<float>), ref(n);
  for (const Impl& impl : testing::cpu_implementations()) {
    if (impl.threads != 2) continue;
    impl.ops->act_forward({Act::gelu_tanh}, 1, n, x.data(), n, nullptr, y.data() + 1, n);  // misaligned output
    act_forward_ref<float>({Act::gelu_tanh}, 1, n, x.data(), n, nullptr, ref.data(), n);
    EXPECT_TRUE(testing::rel_close(y.data() + 1, n, ref.data(), n, 1, n, kForwardTol)) << impl.name;
    EXPECT_TRUE(std::isnan(y[0])) << impl.name;
  }
  // The backward's dx the same way: a memory-bound kind and a paired one, misaligned.
  const std::vector<float> dy = testing::random_vec<float>(rng, n);
  for (const Act a : {Act::relu, Act::silu}) {
    std::vector<float> dref(n);
    act_backward_ref<float>({a}, 1, n, x.data(), n, nullptr, dy.data(), n, dref.data(), n);
    for (const Impl& impl : testing::cpu_implementations()) {
      if (impl.threads != 2) continue;
      std::vector<float> dx(n + 1, testing::kPoison<float>);
      impl.ops->act_backward({a}, 1, n, x.data(), n, nullptr, dy.data(), n, dx.data() + 1, n);
      EXPECT_TRUE(testing::rel_close(dx.data() + 1, n, dref.data(), n, 1, n, kBackwardTol))
          << impl.name << " " << act_name(a);
      EXPECT_TRUE(std::isnan(dx[0])) << impl.name;
    }
  }
}

TEST(Activation, SpecialValuesMatchTheReferenceExactly) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {inf, -inf, nan, 0.0f, -0.0f, 1e30f, -1e30f, 3.4e38f, -3.4e38f, 1e-40f, -1e-40f};
  const index_t n = index_t(x.size());
  for (const Impl& impl : testing::cpu_implementations()) {
    for (Act a : kAll) {
      std::vector<float> y(n), dx(n), ones(n, 1.0f);
      impl.ops->act_forward({a, 0.1f}, 1, n, x.data(), n, nullptr, y.data(), n);
      impl.ops->act_backward({a, 0.1f}, 1, n, x.data(), n, nullptr, ones.data(), n, dx.data(), n);
      for (index_t i = 0; i < n; ++i) {
        const float fv = float(act_value({a, 0.1f}, x[i])), dv = float(act_derivative({a, 0.1f}, x[i]));
        if (std::isnan(fv)) {
          EXPECT_TRUE(std::isnan(y[i])) << impl.name << " " << act_name(a) << "(" << x[i] << ")";
        } else if (std::isinf(fv) || fv == 0 || std::fabs(fv) < 1e-30f) {
          EXPECT_EQ(y[i], fv) << impl.name << " " << act_name(a) << "(" << x[i] << ")";
        } else {
          EXPECT_NEAR(y[i], fv, 4e-7 * std::fabs(fv)) << impl.name << " " << act_name(a) << "(" << x[i] << ")";
        }
        if (std::isnan(dv)) {
          EXPECT_TRUE(std::isnan(dx[i])) << impl.name << " " << act_name(a) << "'(" << x[i] << ")";
        } else {
          EXPECT_NEAR(dx[i], dv, 1e-6 * (1 + std::fabs(dv))) << impl.name << " " << act_name(a) << "'(" << x[i] << ")";
        }
      }
    }
  }
}

TEST(Activation, PublicEntriesCheckTheirArguments) {
  std::vector<float> x(32), y(32);
  EXPECT_NO_THROW(cpu::act_forward({Act::relu}, 4, 8, x.data(), 8, nullptr, y.data(), 8));
  EXPECT_THROW(cpu::act_forward({Act::relu}, 4, 8, x.data(), 7, nullptr, y.data(), 8), Error);
  EXPECT_THROW(cpu::act_forward({Act::relu}, 4, 8, x.data(), 8, nullptr, x.data() + 1, 8), Error);
  EXPECT_THROW(cpu::act_backward({Act::relu}, 4, 8, x.data(), 8, nullptr, y.data(), 8, x.data(), 8), Error);
  std::vector<double> xd(32), yd(32);
  EXPECT_NO_THROW(cpu::act_forward({Act::tanh}, 4, 8, xd.data(), 8, nullptr, yd.data(), 8));
}

}  // namespace
}  // namespace tg
