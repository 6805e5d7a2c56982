// layer_norm: the reference against its defining properties (zero mean, unit variance,
// constant rows, the affine part, the saved statistics) and its backward against
// central differences in double for x, gamma and beta; then one body over every CPU path
// (each ISA, 1 and 2 threads) against the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tilegrad/cpu/layer_norm.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/layer_norm.hpp"
#include "tests/support/guards.hpp"
#include "tests/support/testing.hpp"
#include "tests/support/wide16_ops.hpp"

namespace tg {
namespace {

using testing::Mat;
using testing::poisoned_mat;
using testing::random_ld;
using testing::random_mat;

TEST(LayerNormReference, NormalizesEachRowToZeroMeanAndUnitVariance) {
  TG_TEST_RNG(rng);
  for (index_t cols : {1, 2, 7, 64, 257, 1000}) {
    const index_t rows = rng.integer(1, 5);
    Mat<double> x = random_mat<double>(rng, rows, cols, random_ld(rng, cols), -50, 80);
    Mat<double> y = poisoned_mat<double>(rows, cols, random_ld(rng, cols));
    std::vector<double> mean(rows), rstd(rows);
    layer_norm_forward_ref<double>(rows, cols, x.ptr(), x.ld, nullptr, nullptr, 1e-12f, y.ptr(), y.ld, mean.data(), rstd.data());
    for (index_t i = 0; i < rows; ++i) {
      double m = 0, v = 0, xm = 0;
      for (index_t j = 0; j < cols; ++j) {
        m += y.at(i, j);
        xm += x.at(i, j);
      }
      m /= double(cols);
      for (index_t j = 0; j < cols; ++j) v += (y.at(i, j) - m) * (y.at(i, j) - m);
      v /= double(cols);
      EXPECT_NEAR(m, 0.0, 1e-12);
      if (cols > 1) {
        EXPECT_NEAR(v, 1.0, 1e-9);  // eps = 1e-12 against variances ~ 500
      }
      EXPECT_NEAR(mean[i], xm / double(cols), 1e-12 * 80);
    }
    EXPECT_TRUE(y.padding_untouched());
  }
}

TEST(LayerNormReference, ConstantRowGivesBetaAndAffineIsApplied) {
  TG_TEST_RNG(rng);
  const index_t cols = 13;
  std::vector<float> gamma = testing::random_vec<float>(rng, cols), beta = testing::random_vec<float>(rng, cols);
  Mat<float> x(2, cols, cols);
  for (index_t j = 0; j < cols; ++j) {
    x.at(0, j) = 3.5f;                        // constant: xhat = 0, y = beta
    x.at(1, j) = float(rng.uniform(-2, 2));
  }
  Mat<float> y = poisoned_mat<float>(2, cols, cols), plain = y;
  std::vector<float> mean(2), rstd(2);
  layer_norm_forward_ref<float>(2, cols, x.ptr(), cols, gamma.data(), beta.data(), 1e-5f, y.ptr(), cols, mean.data(), rstd.data());
  layer_norm_forward_ref<float>(2, cols, x.ptr(), cols, nullptr, nullptr, 1e-5f, plain.ptr(), cols, nullptr, nullptr);
  EXPECT_FLOAT_EQ(mean[0], 3.5f);
  EXPECT_FLOAT_EQ(rstd[0], 1.0f / std::sqrt(1e-5f));
  for (index_t j = 0; j < cols; ++j) {
    EXPECT_FLOAT_EQ(y.at(0, j), beta[j]);
    EXPECT_NEAR(y.at(1, j), plain.at(1, j) * gamma[j] + beta[j], 1e-6);
  }
}

// L = sum w * y: dx, dgamma and dbeta against central differences, in double, with
// and without the affine part, in place (dx over dy) too.
TEST(LayerNormReference, BackwardMatchesCentralDifferences) {
  TG_TEST_RNG(rng);
  for (bool affine : {false, true}) {
    const index_t rows = rng.integer(1, 4), cols = rng.integer(2, 17);
    const float eps = 1e-3f;
    Mat<double> x = random_mat<double>(rng, rows, cols, random_ld(rng, cols), -2, 2);
    Mat<double> w = random_mat<double>(rng, rows, cols, random_ld(rng, cols));
    std::vector<double> gamma = testing::random_vec<double>(rng, cols, 0.5, 1.5);
    std::vector<double> beta = testing::random_vec<double>(rng, cols);
    const double* g = affine ? gamma.data() : nullptr;
    const double* b = affine ? beta.data() : nullptr;
    std::vector<double> mean(rows), rstd(rows);
    Mat<double> y = poisoned_mat<double>(rows, cols, cols);
    layer_norm_forward_ref<double>(rows, cols, x.ptr(), x.ld, g, b, eps, y.ptr(), cols, mean.data(), rstd.data());
    Mat<double> dx = poisoned_mat<double>(rows, cols, random_ld(rng, cols));
    std::vector<double> dgamma(cols), dbeta(cols);
    layer_norm_backward_ref<double>(rows, cols, x.ptr(), x.ld, w.ptr(), w.ld, g, mean.data(), rstd.data(), eps, dx.ptr(), dx.ld, dgamma.data(), dbeta.data());
    Mat<double> in_place = w;
    layer_norm_backward_ref<double>(rows, cols, x.ptr(), x.ld, in_place.ptr(), w.ld, g, mean.data(), rstd.data(), eps, in_place.ptr(), w.ld, nullptr, nullptr);
    EXPECT_TRUE(testing::rel_close(in_place, dx, 0.0));

    // Parameters packed as [x (rows*cols), gamma (cols), beta (cols)].
    std::vector<double> p;
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) p.push_back(x.at(i, j));
    p.insert(p.end(), gamma.begin(), gamma.end());
    p.insert(p.end(), beta.begin(), beta.end());
    auto loss = [&](const std::vector<double>& q) {
      std::vector<double> out(rows * cols);
      layer_norm_forward_ref<double>(rows, cols, q.data(), cols, affine ? q.data() + rows * cols : nullptr,
                                     affine ? q.data() + rows * cols + cols : nullptr, eps, out.data(), cols, nullptr, nullptr);
      double s = 0;
      for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < cols; ++j) s += w.at(i, j) * out[i * cols + j];
      return s;
    };
    const std::vector<double> fd = testing::central_diff(loss, p, 1e-6);
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) EXPECT_NEAR(dx.at(i, j), fd[i * cols + j], 1e-6) << "dx " << i << "," << j;
    for (index_t j = 0; affine && j < cols; ++j) {
      EXPECT_NEAR(dgamma[j], fd[rows * cols + j], 1e-6) << "dgamma " << j;
      EXPECT_NEAR(dbeta[j], fd[rows * cols + cols + j], 1e-6) << "dbeta " << j;
    }
  }
}

using Impl = testing::CpuImpl;

using testing::ThreadsGuard;

// Forward: the statistics in double, each output a few roundings from (x - mean) rstd:
// 1e-6 relative. Backward: dgamma and dbeta sum over rows: docs/design.md's reduction bound
// 1e-4 sqrt(n) / 16 for n terms, floored at 1e-5. dx = rstd (g - mean(g) - xhat
// mean(g xhat)) cancels (two-element rows: dx ~ 0), and xhat comes from the saved
// float mean, as the contract says: its error is measured against the terms' size,
// s_j = rstd (|g_j| + |mean(g)| + |xhat_j mean(g xhat)|), not against |dx|.
double reduce_tol(index_t n) { return std::max(1e-5, 1e-4 * std::sqrt(double(n)) / 16); }

::testing::AssertionResult dx_close(const Mat<float>& x, const Mat<float>& dy, const float* gamma,
                                    const std::vector<float>& mean, const std::vector<float>& rstd,
                                    const Mat<float>& dx, const Mat<float>& ref, double tol) {
  double err = 0, scale = 0;
  for (index_t i = 0; i < dx.rows; ++i) {
    double mg = 0, mgx = 0;
    const index_t n = dx.cols;
    for (index_t j = 0; j < n; ++j) {
      const double g = double(dy.at(i, j)) * (gamma ? gamma[j] : 1.0);
      mg += g / double(n);
      mgx += g * (double(x.at(i, j)) - mean[i]) * rstd[i] / double(n);
    }
    for (index_t j = 0; j < n; ++j) {
      const double g = double(dy.at(i, j)) * (gamma ? gamma[j] : 1.0);
      const double xh = (double(x.at(i, j)) - mean[i]) * rstd[i];
      const double s = rstd[i] * (std::fabs(g) + std::fabs(mg) + std::fabs(xh * mgx));
      const double d = double(dx.at(i, j)) - double(ref.at(i, j));
      if (d != d) return ::testing::AssertionFailure() << "NaN at " << i << "," << j;
      err += d * d;
      scale += s * s;
    }
  }
  const double rel = scale > 0 ? std::sqrt(err / scale) : std::sqrt(err);
  if (rel <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "error " << rel << " of the terms' size exceeds " << tol;
}

// Rows of finite values past ~1e19, whose (x - mean)^2 overflows float: every path
// normalizes them as the double reference does (the float statistics gave inf variance,
// rstd 0 and outputs 0), short rows (the grouped statistics) and long ones alike.
TEST(LayerNorm, RowsOfHugeFiniteValuesNormalize) {
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  for (const Impl& impl : testing::cpu_implementations()) {
    cpu::set_num_threads(impl.threads);
    for (const index_t cols : {index_t(3), index_t(64), index_t(3000)}) {
      const index_t rows = 6;
      Mat<float> x = random_mat<float>(rng, rows, cols, cols, -2, 2);
      for (index_t i = 0; i < rows; ++i) x.at(i, rng.integer(0, cols - 1)) = (i % 2 ? -1 : 1) * float(rng.uniform(1e20, 3e38));
      Mat<float> y = testing::poisoned_mat<float>(rows, cols, cols);
      Mat<double> xd(rows, cols, cols), ref(rows, cols, cols);
      for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < cols; ++j) xd.at(i, j) = x.at(i, j);
      layer_norm_forward_ref<double>(rows, cols, xd.ptr(), cols, nullptr, nullptr, 1e-5, ref.ptr(), cols, nullptr, nullptr);
      impl.ops->layer_norm_forward(rows, cols, x.ptr(), cols, nullptr, nullptr, 1e-5, y.ptr(), cols, nullptr, nullptr);
      for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < cols; ++j)
          ASSERT_NEAR(y.at(i, j), ref.at(i, j), 1e-5 * (1 + std::fabs(ref.at(i, j))))
              << impl.name << " threads " << impl.threads << " " << rows << "x" << cols << " at " << i << "," << j;
    }
  }
}

TEST(LayerNorm, EveryPathMatchesTheReference) {
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  std::vector<index_t> sizes = testing::mixed_sizes(rng, 16, 600);
  for (const Impl& impl : testing::cpu_implementations()) {
    cpu::set_num_threads(impl.threads);
    for (int rep = 0; rep < 10; ++rep) {
      index_t rows = std::max<index_t>(1, sizes[rng.integer(0, 15)]), cols = std::max<index_t>(1, sizes[rng.integer(0, 15)]);
      if (rep == 0) rows = 1, cols = 100003;
      if (rep == 1) rows = 5001, cols = 64;  // many rows: threads, dgamma folded over rows
      const bool affine = rep % 2 == 0, in_place = rep % 3 == 2;
      const float eps = rep % 4 == 0 ? 1e-5f : 0.1f;
      Mat<float> x = random_mat<float>(rng, rows, cols, random_ld(rng, cols), -3, 5);
      std::vector<float> gamma = testing::random_vec<float>(rng, cols, 0.5, 1.5), beta = testing::random_vec<float>(rng, cols);
      const float* g = affine ? gamma.data() : nullptr;
      const float* b = affine ? beta.data() : nullptr;
      Mat<float> ref = testing::poisoned_mat<float>(rows, cols, cols);
      std::vector<float> mean_ref(rows), rstd_ref(rows), mean(rows, testing::kPoison<float>), rstd(rows, testing::kPoison<float>);
      layer_norm_forward_ref<float>(rows, cols, x.ptr(), x.ld, g, b, eps, ref.ptr(), cols, mean_ref.data(), rstd_ref.data());
      Mat<float> y = in_place ? x : testing::poisoned_mat<float>(rows, cols, random_ld(rng, cols));
      impl.ops->layer_norm_forward(rows, cols, in_place ? y.ptr() : x.ptr(), in_place ? y.ld : x.ld, g, b, eps, y.ptr(),
                                   y.ld, mean.data(), rstd.data());
      const std::string what = impl.name + " threads " + std::to_string(impl.threads) + " " + std::to_string(rows) +
                               "x" + std::to_string(cols) + (affine ? " affine" : "") + (in_place ? " in place" : "");
      ASSERT_TRUE(testing::rel_close(y, ref, 1e-6)) << what;
      ASSERT_TRUE(in_place || y.padding_untouched()) << what;
      ASSERT_TRUE(testing::rel_close(mean, mean_ref, 1e-6)) << what << " mean";
      ASSERT_TRUE(testing::rel_close(rstd, rstd_ref, 1e-6)) << what << " rstd";

      Mat<float> dy = random_mat<float>(rng, rows, cols, random_ld(rng, cols));
      Mat<float> dref = testing::poisoned_mat<float>(rows, cols, cols);
      std::vector<float> dg_ref(cols), db_ref(cols), dg(cols, testing::kPoison<float>), db(cols, testing::kPoison<float>);
      layer_norm_backward_ref<float>(rows, cols, x.ptr(), x.ld, dy.ptr(), dy.ld, g, mean_ref.data(), rstd_ref.data(), eps,
                                     dref.ptr(), cols, dg_ref.data(), db_ref.data());
      Mat<float> dx = in_place ? dy : testing::poisoned_mat<float>(rows, cols, random_ld(rng, cols));
      impl.ops->layer_norm_backward(rows, cols, x.ptr(), x.ld, in_place ? dx.ptr() : dy.ptr(), in_place ? dx.ld : dy.ld, g,
                                    mean.data(), rstd.data(), eps, dx.ptr(), dx.ld, dg.data(), db.data());
      ASSERT_TRUE(dx_close(x, dy, g, mean_ref, rstd_ref, dx, dref, reduce_tol(cols))) << what << " dx";
      ASSERT_TRUE(in_place || dx.padding_untouched()) << what << " dx";
      ASSERT_TRUE(testing::rel_close(dg, dg_ref, reduce_tol(rows))) << what << " dgamma";
      ASSERT_TRUE(testing::rel_close(db, db_ref, reduce_tol(rows))) << what << " dbeta";
    }
  }
}

// Rows are grouped four at a time inside each thread's range, so the groups move with
// the thread count; a row's output must not.
TEST(LayerNorm, ForwardIsTheSameBitsOnOneAndTwoThreads) {
  if (testing::emulated()) GTEST_SKIP() << testing::kNoThreadsUnderEmulation;
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  for (cpu::Isa isa : cpu::supported_isas()) {
    const TypedOps<float>& ops = cpu::ops(isa).f32;
    for (index_t cols : {index_t(7), index_t(64), index_t(256), index_t(257), index_t(1500), index_t(5000)}) {
      const index_t rows = rng.integer(1200, 1300) * 8192 / (cols + 8192) + rng.integer(1, 7);
      Mat<float> x = random_mat<float>(rng, rows, cols, cols, -3, 5);
      std::vector<float> y[2], mean[2], rstd[2];
      for (int t : {1, 2}) {
        cpu::set_num_threads(t);
        y[t - 1].assign(std::size_t(rows * cols), testing::kPoison<float>);
        mean[t - 1].assign(std::size_t(rows), testing::kPoison<float>);
        rstd[t - 1].assign(std::size_t(rows), testing::kPoison<float>);
        ops.layer_norm_forward(rows, cols, x.ptr(), x.ld, nullptr, nullptr, 1e-5f, y[t - 1].data(), cols,
                               mean[t - 1].data(), rstd[t - 1].data());
      }
      const std::string what = std::string(cpu::isa_name(isa)) + " " + std::to_string(rows) + "x" + std::to_string(cols);
      EXPECT_EQ(0, std::memcmp(y[0].data(), y[1].data(), y[0].size() * sizeof(float))) << what;
      EXPECT_EQ(0, std::memcmp(mean[0].data(), mean[1].data(), mean[0].size() * sizeof(float))) << what;
      EXPECT_EQ(0, std::memcmp(rstd[0].data(), rstd[1].data(), rstd[0].size() * sizeof(float))) << what;
    }
  }
}

// Short rows take their statistics in groups (of the lane count, of four, or alone), and
// each grouping must give a row the same bits: a block of rows normalized at once against
// each row normalized alone, on every path, on one thread (the groups then start at row 0).
TEST(LayerNorm, ARowGetsTheSameBitsInAnyGroup) {
  ThreadsGuard guard;
  cpu::set_num_threads(1);
  TG_TEST_RNG(rng);
  for (const OpTable* table : testing::cpu_tables()) {
    for (index_t cols : {index_t(1), index_t(7), index_t(16), index_t(17), index_t(64), index_t(100), index_t(256)}) {
      const index_t rows = rng.integer(17, 80);
      Mat<float> x = random_mat<float>(rng, rows, cols, random_ld(rng, cols), -3, 5);
      std::vector<float> gamma = testing::random_vec<float>(rng, cols, 0.5, 1.5),
                         beta = testing::random_vec<float>(rng, cols);
      Mat<float> y = poisoned_mat<float>(rows, cols, cols), y1 = poisoned_mat<float>(rows, cols, cols);
      std::vector<float> mean(rows, testing::kPoison<float>), rstd(rows, testing::kPoison<float>);
      std::vector<float> mean1(rows, testing::kPoison<float>), rstd1(rows, testing::kPoison<float>);
      table->f32.layer_norm_forward(rows, cols, x.ptr(), x.ld, gamma.data(), beta.data(), 1e-5f, y.ptr(), y.ld,
                                    mean.data(), rstd.data());
      for (index_t i = 0; i < rows; ++i)
        table->f32.layer_norm_forward(1, cols, x.ptr() + i * x.ld, x.ld, gamma.data(), beta.data(), 1e-5f,
                                      y1.ptr() + i * y1.ld, y1.ld, &mean1[i], &rstd1[i]);
      const std::string what = std::string(table->name) + " " + std::to_string(rows) + "x" + std::to_string(cols);
      for (index_t i = 0; i < rows; ++i)
        ASSERT_EQ(0, std::memcmp(y.ptr() + i * y.ld, y1.ptr() + i * y1.ld, std::size_t(cols) * sizeof(float)))
            << what << " row " << i;
      EXPECT_EQ(0, std::memcmp(mean.data(), mean1.data(), mean.size() * sizeof(float))) << what << " mean";
      EXPECT_EQ(0, std::memcmp(rstd.data(), rstd1.data(), rstd.size() * sizeof(float))) << what << " rstd";
    }
  }
}

TEST(LayerNorm, PublicEntriesCheckTheirArguments) {
  std::vector<float> x(32), y(32), mean(4), rstd(4);
  EXPECT_NO_THROW(cpu::layer_norm_forward(4, 8, x.data(), 8, nullptr, nullptr, 1e-5f, y.data(), 8, mean.data(), rstd.data()));
  EXPECT_THROW(cpu::layer_norm_forward(4, 8, x.data(), 8, nullptr, nullptr, 0.0f, y.data(), 8, nullptr, nullptr), Error);
  EXPECT_THROW(cpu::layer_norm_forward(4, 0, x.data(), 8, nullptr, nullptr, 1e-5f, y.data(), 8, nullptr, nullptr), Error);
  EXPECT_THROW(cpu::layer_norm_backward(4, 8, x.data(), 8, y.data(), 8, nullptr, mean.data(), nullptr, 1e-5f, y.data(), 8,
                                        nullptr, nullptr),
               Error);
}

}  // namespace
}  // namespace tg
