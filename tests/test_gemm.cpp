// GEMM: the reference against closed forms and exact integer products, its BLAS
// semantics (beta = 0, alpha = 0, K = 0, empty shapes, padding), and OpenBLAS as a
// second oracle where it was found. The shared body over the CPU and CUDA kernels
// joins this file with the CPU GEMM issue.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/peers/peers.hpp"
#include "kernels/gemm.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using testing::Mat;
using testing::poisoned_mat;
using testing::random_ld;
using testing::random_mat;
using testing::rel_close;

// Stored shape of op(X) = rows x cols given the transpose flag.
Mat<float> stored(testing::Rng& rng, Trans t, index_t rows, index_t cols, double lo = -1, double hi = 1) {
  const index_t r = t == Trans::N ? rows : cols, c = t == Trans::N ? cols : rows;
  return random_mat<float>(rng, r, c, random_ld(rng, c), lo, hi);
}

float op_at(const Mat<float>& m, Trans t, index_t i, index_t j) { return t == Trans::N ? m.at(i, j) : m.at(j, i); }

Mat<float> identity(index_t n) {
  Mat<float> eye(n, n, n);
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j < n; ++j) eye.at(i, j) = i == j ? 1.0f : 0.0f;
  return eye;
}

TEST(GemmReference, IdentityLeavesTheOtherFactorUnchanged) {
  TG_TEST_RNG(rng);
  for (index_t n : {1, 7, 33}) {
    const index_t m = rng.integer(1, 40);
    Mat<float> a = random_mat<float>(rng, m, n, random_ld(rng, n));
    const Mat<float> eye_n = identity(n), eye_m = identity(m);
    Mat<float> c = poisoned_mat<float>(m, n, random_ld(rng, n));
    // Exact: one nonzero product per element.
    gemm_ref<float>(Trans::N, Trans::N, m, n, n, 1.0f, a.ptr(), a.ld, eye_n.ptr(), n, 0.0f, c.ptr(), c.ld);
    EXPECT_TRUE(rel_close(c, a, 0.0));
    c = poisoned_mat<float>(m, n, c.ld);
    gemm_ref<float>(Trans::N, Trans::N, m, n, m, 1.0f, eye_m.ptr(), m, a.ptr(), a.ld, 0.0f, c.ptr(), c.ld);
    EXPECT_TRUE(rel_close(c, a, 0.0));
    EXPECT_TRUE(c.padding_untouched());
  }
}

TEST(GemmReference, RankOneProductIsTheOuterProduct) {
  TG_TEST_RNG(rng);
  const index_t m = 13, n = 17;
  std::vector<float> u = testing::random_vec<float>(rng, m), v = testing::random_vec<float>(rng, n);
  Mat<float> c = poisoned_mat<float>(m, n, n + 3);
  gemm_ref<float>(Trans::N, Trans::N, m, n, 1, 1.0f, u.data(), 1, v.data(), n, 0.0f, c.ptr(), c.ld);
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) EXPECT_EQ(c.at(i, j), u[i] * v[j]) << i << "," << j;
  EXPECT_TRUE(c.padding_untouched());
}

// Small integers make fp32 GEMM exact while sums stay under 2^24 (CUTLASS's trick):
// the reference must agree bit for bit with an int64 triple loop, in every transpose.
TEST(GemmReference, MatchesExactIntegerProductsInAllTransposes) {
  TG_TEST_RNG(rng);
  for (Trans ta : {Trans::N, Trans::T})
    for (Trans tb : {Trans::N, Trans::T})
      for (int rep = 0; rep < 4; ++rep) {
        const index_t M = rng.integer(1, 40), N = rng.integer(1, 40), K = rng.integer(1, 300);
        Mat<float> a = stored(rng, ta, M, K), b = stored(rng, tb, K, N);
        for (float& x : a.data) x = std::isnan(x) ? x : std::round(4 * x);
        for (float& x : b.data) x = std::isnan(x) ? x : std::round(4 * x);
        Mat<float> c = poisoned_mat<float>(M, N, random_ld(rng, N));
        gemm_ref<float>(ta, tb, M, N, K, 1.0f, a.ptr(), a.ld, b.ptr(), b.ld, 0.0f, c.ptr(), c.ld);
        for (index_t i = 0; i < M; ++i)
          for (index_t j = 0; j < N; ++j) {
            std::int64_t exact = 0;
            for (index_t p = 0; p < K; ++p)
              exact += std::int64_t(op_at(a, ta, i, p)) * std::int64_t(op_at(b, tb, p, j));
            ASSERT_EQ(c.at(i, j), float(exact)) << "ta=" << int(ta) << " tb=" << int(tb) << " at " << i << "," << j;
          }
        EXPECT_TRUE(c.padding_untouched());
      }
}

TEST(GemmReference, BetaZeroNeverReadsC) {
  TG_TEST_RNG(rng);
  Mat<float> a = random_mat<float>(rng, 5, 4, 4), b = random_mat<float>(rng, 4, 6, 6);
  Mat<float> c = poisoned_mat<float>(5, 6, 6);  // all NaN
  gemm_ref<float>(Trans::N, Trans::N, 5, 6, 4, 1.0f, a.ptr(), 4, b.ptr(), 6, 0.0f, c.ptr(), 6);
  for (index_t i = 0; i < 5; ++i)
    for (index_t j = 0; j < 6; ++j) EXPECT_FALSE(std::isnan(c.at(i, j)));
}

TEST(GemmReference, AlphaZeroSkipsTheProductAndScalesC) {
  TG_TEST_RNG(rng);
  Mat<float> a = poisoned_mat<float>(3, 4, 4), b = poisoned_mat<float>(4, 5, 5);  // NaN: unread
  Mat<float> c = random_mat<float>(rng, 3, 5, 5);
  Mat<float> expected = c;
  for (index_t i = 0; i < 3; ++i)
    for (index_t j = 0; j < 5; ++j) expected.at(i, j) = -0.5f * c.at(i, j);
  gemm_ref<float>(Trans::N, Trans::N, 3, 5, 4, 0.0f, a.ptr(), 4, b.ptr(), 5, -0.5f, c.ptr(), 5);
  EXPECT_TRUE(rel_close(c, expected, 0.0));
}

TEST(GemmReference, KZeroGivesBetaCAndEmptyShapesTouchNothing) {
  TG_TEST_RNG(rng);
  Mat<float> c = random_mat<float>(rng, 4, 3, 5);
  Mat<float> expected = c;
  for (index_t i = 0; i < 4; ++i)
    for (index_t j = 0; j < 3; ++j) expected.at(i, j) = 2.0f * c.at(i, j);
  gemm_ref<float>(Trans::N, Trans::N, 4, 3, 0, 1.0f, nullptr, 1, nullptr, 3, 2.0f, c.ptr(), c.ld);
  EXPECT_TRUE(rel_close(c, expected, 0.0));
  EXPECT_TRUE(c.padding_untouched());

  Mat<float> untouched = poisoned_mat<float>(3, 3, 3);
  gemm_ref<float>(Trans::N, Trans::N, 0, 3, 4, 1.0f, nullptr, 4, nullptr, 3, 0.0f, untouched.ptr(), 3);
  gemm_ref<float>(Trans::N, Trans::N, 3, 0, 4, 1.0f, nullptr, 4, nullptr, 1, 0.0f, untouched.ptr(), 1);
  for (float x : untouched.data) EXPECT_TRUE(std::isnan(x));
}

TEST(GemmReference, EpilogueAddsBiasPerColumnThenActivates) {
  TG_TEST_RNG(rng);
  const index_t M = 9, N = 11, K = 7;
  Mat<double> a = random_mat<double>(rng, M, K, K), b = random_mat<double>(rng, K, N, N);
  std::vector<double> bias = testing::random_vec<double>(rng, N);
  Mat<double> c0 = random_mat<double>(rng, M, N, N);
  for (Act act : {Act::none, Act::relu, Act::leaky_relu, Act::gelu_erf, Act::gelu_tanh, Act::silu,
                  Act::sigmoid, Act::tanh}) {
    const Activation f{act, 0.1f};
    Mat<double> c = c0;
    gemm_ref<double>(Trans::N, Trans::N, M, N, K, 0.5, a.ptr(), K, b.ptr(), N, 2.0, c.ptr(), N,
                     {bias.data(), f});
    Mat<double> expected = c0;
    for (index_t i = 0; i < M; ++i)
      for (index_t j = 0; j < N; ++j) {
        double s = 0;
        for (index_t p = 0; p < K; ++p) s += a.at(i, p) * b.at(p, j);
        expected.at(i, j) = act_value(f, 0.5 * s + 2.0 * c0.at(i, j) + bias[j]);
      }
    EXPECT_TRUE(rel_close(c, expected, 1e-15)) << act_name(act);
  }
}

// OpenBLAS, where found, as a second oracle: random shapes with primes, 1 and 0, every
// transpose, leading dimensions larger than a row, alpha/beta combinations.
// Tolerance: both sides are fp32 sums of K products of values in [-1, 1]; OpenBLAS
// accumulates in fp32, so its error grows like sqrt(K) * 2^-24 relative to the norm:
// 1e-5 * sqrt(K / 16) + 1e-6 leaves a margin of about 10x over that model at K = 300.
TEST(GemmReference, AgreesWithOpenBlas) {
  const peers::SgemmPeer* openblas = peers::find_sgemm_peer("openblas");
  if (!openblas) GTEST_SKIP() << "OpenBLAS was not found at configure time";
  EXPECT_NE(openblas->describe().find("openblas"), std::string::npos)
      << "cblas_sgemm was not served by OpenBLAS: " << openblas->describe();
  openblas->set_threads(1);
  TG_TEST_RNG(rng);
  const float scalars[][2] = {{1, 0}, {1, 1}, {-1, 0.5f}, {0.5f, -1}, {0, 1}};
  std::vector<index_t> sizes = testing::mixed_sizes(rng, 14, 300);
  for (int rep = 0; rep < 24; ++rep) {
    const index_t M = sizes[rng.integer(0, 13)], N = sizes[rng.integer(0, 13)], K = rng.integer(0, 300);
    const Trans ta = rng.coin() ? Trans::T : Trans::N, tb = rng.coin() ? Trans::T : Trans::N;
    const auto [alpha, beta] = std::pair(scalars[rep % 5][0], scalars[rep % 5][1]);
    Mat<float> a = stored(rng, ta, M, K), b = stored(rng, tb, K, N);
    Mat<float> c_init = beta == 0 ? poisoned_mat<float>(M, N, random_ld(rng, N))
                                  : random_mat<float>(rng, M, N, random_ld(rng, N));
    Mat<float> ours = c_init, theirs = c_init;
    gemm_ref<float>(ta, tb, M, N, K, alpha, a.ptr(), std::max<index_t>(a.ld, 1), b.ptr(),
                    std::max<index_t>(b.ld, 1), beta, ours.ptr(), std::max<index_t>(ours.ld, 1));
    if (M > 0 && N > 0)
      openblas->sgemm(ta, tb, M, N, K, alpha, a.ptr(), std::max<index_t>(a.ld, 1), b.ptr(),
                      std::max<index_t>(b.ld, 1), beta, theirs.ptr(), std::max<index_t>(theirs.ld, 1));
    const double tol = 1e-5 * std::sqrt(double(K) / 16) + 1e-6;
    EXPECT_TRUE(rel_close(ours, theirs, tol))
        << M << "x" << N << "x" << K << " ta=" << int(ta) << " tb=" << int(tb) << " alpha=" << alpha << " beta=" << beta;
  }
}

}  // namespace
}  // namespace tg
