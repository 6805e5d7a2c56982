// layer_norm: the reference against its defining properties (zero mean, unit variance,
// constant rows, the affine part, the saved statistics) and its backward against
// central differences in double for x, gamma and beta.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/layer_norm.hpp"
#include "tests/support/testing.hpp"

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

}  // namespace
}  // namespace tg
