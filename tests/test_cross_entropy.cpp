// Fused cross-entropy (kernels/cross_entropy.hpp): the forward against log-softmax
// written out in double, with label smoothing and ignored rows; the backward against
// central differences of the forward; the checked entry's target validation.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cpu/ops.hpp"
#include "kernels/cross_entropy.hpp"
#include "kernels/error.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

TEST(CrossEntropy, ForwardIsLogSumExpMinusTheSmoothedTarget) {
  TG_TEST_RNG(rng);
  for (int rep = 0; rep < 20; ++rep) {
    const index_t rows = rng.integer(1, 9), C = rng.integer(1, 40), ld = C + rng.integer(0, 3);
    const double s = rng.coin() ? 0.0 : rng.uniform(0, 0.3);
    std::vector<double> z(std::size_t(rows * ld), testing::kPoison<double>);
    std::vector<index_t> t(static_cast<std::size_t>(rows));
    for (index_t i = 0; i < rows; ++i) {
      for (index_t j = 0; j < C; ++j) z[std::size_t(i * ld + j)] = rng.uniform(-8, 8);
      t[std::size_t(i)] = rng.integer(0, 5) == 0 ? -100 : rng.integer(0, C - 1);
    }
    std::vector<double> loss(static_cast<std::size_t>(rows), testing::kPoison<double>), lse(loss);
    cpu::ops().f64.cross_entropy_forward(rows, C, z.data(), ld, t.data(), -100, s, loss.data(), lse.data());
    for (index_t i = 0; i < rows; ++i) {
      double m = -INFINITY, sum = 0;
      for (index_t j = 0; j < C; ++j) m = std::max(m, z[std::size_t(i * ld + j)]);
      for (index_t j = 0; j < C; ++j) sum += std::exp(z[std::size_t(i * ld + j)] - m);
      const double l = m + std::log(sum);
      double want = 0;
      if (t[std::size_t(i)] != -100)
        for (index_t j = 0; j < C; ++j) {
          const double q = (j == t[std::size_t(i)] ? 1 - s : 0) + s / double(C);  // target distribution
          want -= q * (z[std::size_t(i * ld + j)] - l);                         // -q log p
        }
      EXPECT_NEAR(lse[std::size_t(i)], l, 1e-12 * std::max(1.0, std::fabs(l)));
      EXPECT_NEAR(loss[std::size_t(i)], want, 1e-12 * std::max(1.0, std::fabs(want))) << "row " << i;
    }
  }
}

TEST(CrossEntropy, BackwardMatchesCentralDifferences) {
  TG_TEST_RNG(rng);
  const index_t rows = 3, C = 7;
  const double s = 0.1;
  std::vector<index_t> t = {2, -1, 6};  // the middle row ignored (ignore_index -1)
  std::vector<double> z(rows * C), dloss = {0.7, 1.3, -0.4};
  for (double& v : z) v = rng.uniform(-3, 3);
  auto total = [&](const std::vector<double>& zz) {
    std::vector<double> loss(rows), lse(rows);
    cross_entropy_forward_ref<double>(rows, C, zz.data(), C, t.data(), -1, s, loss.data(), lse.data());
    double sum = 0;
    for (index_t i = 0; i < rows; ++i) sum += dloss[std::size_t(i)] * loss[std::size_t(i)];
    return sum;
  };
  const std::vector<double> num = testing::central_diff(total, z);
  std::vector<double> loss(rows), lse(rows), dz(rows * C, testing::kPoison<double>);
  cpu::ops().f64.cross_entropy_forward(rows, C, z.data(), C, t.data(), -1, s, loss.data(), lse.data());
  cpu::ops().f64.cross_entropy_backward(rows, C, z.data(), C, t.data(), -1, s, lse.data(), dloss.data(), dz.data(), C);
  for (std::size_t k = 0; k < dz.size(); ++k) EXPECT_NEAR(dz[k], num[k], 1e-7) << k;
  for (index_t j = 0; j < C; ++j) EXPECT_EQ(dz[std::size_t(C + j)], 0.0);  // the ignored row
}

TEST(CrossEntropy, FloatMatchesDouble) {
  TG_TEST_RNG(rng);
  const index_t rows = 64, C = 10;
  std::vector<float> z(rows * C), loss(rows), lse(rows), dz(rows * C), ones(rows, 1.0f);
  std::vector<double> zd(rows * C), lossd(rows), lsed(rows), dzd(rows * C), onesd(rows, 1.0);
  std::vector<index_t> t(rows);
  for (std::size_t k = 0; k < z.size(); ++k) zd[k] = z[k] = float(rng.uniform(-5, 5));
  for (index_t& v : t) v = rng.integer(0, C - 1);
  cpu::ops().f32.cross_entropy_forward(rows, C, z.data(), C, t.data(), -100, 0.0, loss.data(), lse.data());
  cpu::ops().f32.cross_entropy_backward(rows, C, z.data(), C, t.data(), -100, 0.0, lse.data(), ones.data(), dz.data(), C);
  cross_entropy_forward_ref<double>(rows, C, zd.data(), C, t.data(), -100, 0.0, lossd.data(), lsed.data());
  cross_entropy_backward_ref<double>(rows, C, zd.data(), C, t.data(), -100, 0.0, lsed.data(), onesd.data(), dzd.data(), C);
  // One rounding of a double result each: 1e-6 relative in norm.
  EXPECT_TRUE(testing::rel_close(loss, lossd, 1e-6));
  EXPECT_TRUE(testing::rel_close(dz, dzd, 1e-6));
}

TEST(CrossEntropy, CheckedEntryRejectsTargetsOutOfRange) {
  std::vector<float> z(6), loss(2), lse(2);
  std::vector<index_t> bad = {0, 3};
  try {
    check_cross_entropy("cross_entropy", 2, 3, z.data(), 3, bad.data(), -100, 0.0, loss.data(), lse.data(), 4);
    ADD_FAILURE() << "no error for target 3 of 3 classes";
  } catch (const Error& e) {
    EXPECT_EQ(e.arg(), "target");
    EXPECT_NE(std::string(e.what()).find("row 1"), std::string::npos) << e.what();
  }
  std::vector<index_t> ok = {-100, 2};
  EXPECT_NO_THROW(check_cross_entropy("cross_entropy", 2, 3, z.data(), 3, ok.data(), -100, 0.0, loss.data(), lse.data(), 4));
  EXPECT_THROW(check_cross_entropy("cross_entropy", 2, 3, z.data(), 3, ok.data(), -100, 1.0, loss.data(), lse.data(), 4),
               Error);
}

}  // namespace
}  // namespace tg
