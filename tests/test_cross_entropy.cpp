// Fused cross-entropy (kernels/cross_entropy.hpp): the forward against log-softmax
// written out in double, with label smoothing and ignored rows; the backward against
// central differences of the forward; every CPU path's float kernels against the double
// reference; the checked entry's target validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/kernels/cross_entropy.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tests/support/testing.hpp"
#include "tests/support/wide16_ops.hpp"

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
    std::vector<double> loss(static_cast<std::size_t>(rows), testing::kPoison<double>), lse(2 * loss.size());
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
      EXPECT_EQ(lse[std::size_t(2 * i)], m);  // the pair (max, log sum)
      EXPECT_NEAR(lse[std::size_t(2 * i)] + lse[std::size_t(2 * i + 1)], l, 1e-12 * std::max(1.0, std::fabs(l)));
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
    std::vector<double> loss(rows), lse(2 * rows);
    cross_entropy_forward_ref<double>(rows, C, zz.data(), C, t.data(), -1, s, loss.data(), lse.data());
    double sum = 0;
    for (index_t i = 0; i < rows; ++i) sum += dloss[std::size_t(i)] * loss[std::size_t(i)];
    return sum;
  };
  const std::vector<double> num = testing::central_diff(total, z);
  std::vector<double> loss(rows), lse(2 * rows), dz(rows * C, testing::kPoison<double>);
  cpu::ops().f64.cross_entropy_forward(rows, C, z.data(), C, t.data(), -1, s, loss.data(), lse.data());
  cpu::ops().f64.cross_entropy_backward(rows, C, z.data(), C, t.data(), -1, s, lse.data(), dloss.data(), dz.data(), C);
  for (std::size_t k = 0; k < dz.size(); ++k) EXPECT_NEAR(dz[k], num[k], 1e-7) << k;
  for (index_t j = 0; j < C; ++j) EXPECT_EQ(dz[std::size_t(C + j)], 0.0);  // the ignored row
}

TEST(CrossEntropy, FloatMatchesDouble) {
  TG_TEST_RNG(rng);
  const index_t rows = 64, C = 10;
  std::vector<float> z(rows * C), loss(rows), lse(2 * rows), dz(rows * C), ones(rows, 1.0f);
  std::vector<double> zd(rows * C), lossd(rows), lsed(2 * rows), dzd(rows * C), onesd(rows, 1.0);
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

// Every CPU table's float kernels (scalar, avx2, avx512 where the CPU has them, and the
// portable 16-lane one) against the reference computed in double from the same floats:
// random rows and classes (1, lane widths and their neighbours, more than one online
// block of 256), padded strides, ignored rows, label smoothing, logits offset by 1e3 or
// -1e4 (where rounding m + log s would lose the loss's and the gradient's digits),
// NaN-poisoned outputs whose padding must stay poisoned, and the rows the contract makes
// NaN.
//
// Error model (u = 2^-24): lse is the pair (m, log s), m exact, log s carrying the
// rounding of s's float terms and its own (a few u, absolute: b = 8 u (log C + 2)); the
// loss the same plus its rounding and the smoothing sum's terms (u (m - z_j) each). The
// backward's e^((z - m) - log s) is within 2 ulp (cpu/vmath) of e^(z - lse) e^(-b), then
// two roundings: per element |g| (4 u (e + 1) + b e) against the gradient in double from
// the logits alone. A lost target correction or a wrong row is off by |g| (1 - eps), far
// outside these; so is a lse rounded to float before the exponential (3e-5 e at 1e3).
TEST(CrossEntropy, EveryCpuPathMatchesTheDoubleReference) {
  TG_TEST_RNG(rng);
  const double u = std::ldexp(1.0, -24);
  const index_t class_counts[] = {1, 2, 7, 8, 9, 10, 15, 16, 17, 33, 100, 257, 1000};
  for (const OpTable* table : testing::cpu_tables()) {
    for (int rep = 0; rep < 40; ++rep) {
      const index_t C = rep < 13 ? class_counts[rep] : rng.integer(1, 600);
      const index_t rows = rep % 9 == 0 ? rng.integer(0, 2) : rng.integer(1, 70);
      const index_t ld = C + rng.integer(0, 5), ldd = C + rng.integer(0, 5);
      const double s = rng.coin() ? 0.0 : rng.uniform(0, 0.3);
      const double offset = rep % 5 == 3 ? 1e3 : rep % 5 == 4 ? -1e4 : 0.0;
      std::vector<float> z(std::size_t(std::max<index_t>(rows * ld, 1)), testing::kPoison<float>);
      std::vector<index_t> t(static_cast<std::size_t>(rows));
      for (index_t i = 0; i < rows; ++i) {
        for (index_t j = 0; j < C; ++j) z[std::size_t(i * ld + j)] = float(offset + rng.uniform(-8, 8));
        t[std::size_t(i)] = rng.integer(0, 4) == 0 ? -100 : rng.integer(0, C - 1);
      }
      // The contract's NaN rows: a NaN, a +inf, all -inf (each target or ignored).
      if (rows >= 6 && C >= 2) {
        z[std::size_t(1 * ld + C / 2)] = std::numeric_limits<float>::quiet_NaN();
        z[std::size_t(3 * ld)] = INFINITY;
        for (index_t j = 0; j < C; ++j) z[std::size_t(5 * ld + j)] = -INFINITY;
      }
      const std::string what = std::string(table->name) + " rows " + std::to_string(rows) + " C " +
                               std::to_string(C) + " smoothing " + std::to_string(s) + " offset " +
                               std::to_string(offset);
      std::vector<float> loss(std::size_t(rows) + 1, testing::kPoison<float>), lse(2 * loss.size(), testing::kPoison<float>);
      std::vector<double> zd(z.begin(), z.end()), ref_loss(loss.size()), ref_lse(lse.size());
      table->f32.cross_entropy_forward(rows, C, z.data(), ld, t.data(), -100, s, loss.data(), lse.data());
      cross_entropy_forward_ref<double>(rows, C, zd.data(), ld, t.data(), -100, s, ref_loss.data(), ref_lse.data());
      ASSERT_TRUE(std::isnan(loss[std::size_t(rows)]) && std::isnan(lse[2 * std::size_t(rows)]) &&
                  std::isnan(lse[2 * std::size_t(rows) + 1]))
          << what << ": wrote past the rows";
      const double base = 8 * u * (std::log(double(C)) + 2);
      for (index_t i = 0; i < rows; ++i) {
        const std::size_t k = std::size_t(i);
        const double l = double(lse[2 * k]) + lse[2 * k + 1], ref_l = ref_lse[2 * k] + ref_lse[2 * k + 1];
        ASSERT_EQ(std::isnan(ref_l), std::isnan(l)) << what << " row " << i << " lse " << l;
        ASSERT_EQ(std::isnan(ref_loss[k]), std::isnan(loss[k])) << what << " row " << i << " loss " << loss[k];
        if (std::isnan(ref_l)) continue;
        EXPECT_EQ(double(lse[2 * k]), ref_lse[2 * k]) << what << " row " << i << ": the max";
        double range = 0;  // max (m - z_j): the smoothing sum's terms
        for (index_t j = 0; j < C; ++j) range = std::max(range, ref_l - z[std::size_t(i * ld + j)]);
        EXPECT_NEAR(lse[2 * k + 1], ref_lse[2 * k + 1], base) << what << " row " << i;
        EXPECT_NEAR(loss[k], ref_loss[k], base + 2 * u * std::fabs(ref_loss[k]) + 2 * u * s * range)
            << what << " row " << i;
      }

      // Backward from the kernel's own lse, against the gradient in double from the
      // logits and the reference's double lse.
      std::vector<float> dloss(static_cast<std::size_t>(rows));
      for (float& g : dloss) g = float(rng.uniform(-2, 2));
      const std::vector<double> dlossd(dloss.begin(), dloss.end());
      std::vector<float> dz(std::size_t(std::max<index_t>(rows * ldd, 1)), testing::kPoison<float>);
      std::vector<double> ref_dz(dz.size(), testing::kPoison<double>);
      table->f32.cross_entropy_backward(rows, C, z.data(), ld, t.data(), -100, s, lse.data(), dloss.data(), dz.data(), ldd);
      cross_entropy_backward_ref<double>(rows, C, zd.data(), ld, t.data(), -100, s, ref_lse.data(), dlossd.data(),
                                         ref_dz.data(), ldd);
      for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < ldd; ++j) {
          const std::size_t k = std::size_t(i * ldd + j);
          if (j >= C) {
            ASSERT_TRUE(std::isnan(dz[k])) << what << ": padding of row " << i << " written";
            continue;
          }
          if (t[std::size_t(i)] == -100) {  // ignored: exact zeros, whatever the logits
            ASSERT_EQ(dz[k], 0.0f) << what << " dz(" << i << ", " << j << ")";
            continue;
          }
          ASSERT_EQ(std::isnan(ref_dz[k]), std::isnan(dz[k])) << what << " dz(" << i << ", " << j << ")";
          if (std::isnan(ref_dz[k])) continue;
          const double e = std::exp((zd[std::size_t(i * ld + j)] - ref_lse[2 * std::size_t(i)]) - ref_lse[2 * std::size_t(i) + 1]);
          EXPECT_NEAR(dz[k], ref_dz[k], std::fabs(dloss[std::size_t(i)]) * (4 * u * (e + 1) + base * e))
              << what << " dz(" << i << ", " << j << ")";
        }
    }
  }
}

// A -inf logit is a masked class: without smoothing the loss is that of the other
// classes alone (the reference once made it NaN through 0 * sum(z) = 0 * -inf), its
// gradient 0; with smoothing, or as the target, the loss is +inf. Every CPU path, and
// the reference in float and double.
TEST(CrossEntropy, MaskedClassesAreLeftOut) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> z = {1.0f, -inf, 2.0f, 0.5f, -inf, -1.0f};  // two rows of 3
  const std::vector<float> alone = {1.0f, 2.0f, 0.5f, -1.0f};           // the same rows unmasked, 2 classes
  const std::vector<index_t> t = {0, 0}, t_alone = {0, 0};
  std::vector<double> want(2), want_lse(4);
  const std::vector<double> alone_d(alone.begin(), alone.end());
  cross_entropy_forward_ref<double>(2, 2, alone_d.data(), 2, t_alone.data(), -100, 0.0, want.data(), want_lse.data());
  for (const OpTable* table : testing::cpu_tables()) {
    std::vector<float> loss(2), lse(4), dz(6, testing::kPoison<float>), ones(2, 1.0f);
    table->f32.cross_entropy_forward(2, 3, z.data(), 3, t.data(), -100, 0.0, loss.data(), lse.data());
    for (int i = 0; i < 2; ++i) EXPECT_NEAR(loss[std::size_t(i)], want[std::size_t(i)], 1e-6) << table->name << " row " << i;
    table->f32.cross_entropy_backward(2, 3, z.data(), 3, t.data(), -100, 0.0, lse.data(), ones.data(), dz.data(), 3);
    EXPECT_EQ(dz[1], 0.0f) << table->name;
    EXPECT_EQ(dz[4], 0.0f) << table->name;
    table->f32.cross_entropy_forward(2, 3, z.data(), 3, t.data(), -100, 0.1, loss.data(), lse.data());
    EXPECT_EQ(loss[0], inf) << table->name << ": smoothing weighs the masked class";
    const std::vector<index_t> masked_target = {1, 1};
    table->f32.cross_entropy_forward(2, 3, z.data(), 3, masked_target.data(), -100, 0.0, loss.data(), lse.data());
    EXPECT_EQ(loss[0], inf) << table->name << ": the target is masked";
  }
  for (bool f64 : {false, true}) {
    std::vector<double> loss(2), lse(4);
    std::vector<float> lossf(2), lsef(4);
    const std::vector<double> zd(z.begin(), z.end());
    if (f64) cross_entropy_forward_ref<double>(2, 3, zd.data(), 3, t.data(), -100, 0.0, loss.data(), lse.data());
    else cross_entropy_forward_ref<float>(2, 3, z.data(), 3, t.data(), -100, 0.0, lossf.data(), lsef.data());
    for (int i = 0; i < 2; ++i)
      EXPECT_NEAR(f64 ? loss[std::size_t(i)] : double(lossf[std::size_t(i)]), want[std::size_t(i)], 1e-6)
          << (f64 ? "f64" : "f32") << " reference row " << i;
  }
}

// Logits near 1e30: the loss log s + (m - z_t) keeps log s, which (m + log s) - z_t lost
// to m's rounding (the double reference gave 0 for a row (1e30, 1e30), found by fuzz_ops).
TEST(CrossEntropy, HugeLogitsKeepTheLoss) {
  const std::vector<index_t> t = {0, 1};
  const std::vector<double> zd = {1e30, 1e30, -1e30, -1e30};
  const std::vector<float> zf(zd.begin(), zd.end());
  for (double s : {0.0, 0.2}) {
    std::vector<double> loss(2), lse(4);
    cpu::ops().f64.cross_entropy_forward(2, 2, zd.data(), 2, t.data(), -100, s, loss.data(), lse.data());
    std::vector<float> lossf(2), lsef(4);
    cpu::ops().f32.cross_entropy_forward(2, 2, zf.data(), 2, t.data(), -100, s, lossf.data(), lsef.data());
    for (int i = 0; i < 2; ++i) {
      EXPECT_NEAR(loss[std::size_t(i)], std::log(2.0), 1e-12) << "f64 smoothing " << s << " row " << i;
      EXPECT_NEAR(lossf[std::size_t(i)], std::log(2.0), 1e-6) << "f32 smoothing " << s << " row " << i;
    }
  }
}

TEST(CrossEntropy, CheckedEntryRejectsTargetsOutOfRange) {
  std::vector<float> z(6), loss(2), lse(4);
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
