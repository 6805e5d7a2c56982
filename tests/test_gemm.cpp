// GEMM: the reference against closed forms and exact integer products, its BLAS
// semantics (beta = 0, alpha = 0, K = 0, empty shapes, padding), and OpenBLAS as a
// second oracle where it was found; then one test body over every implementation (each
// CPU path, on 1 and 2 threads) against the reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <tuple>
#include <vector>

#include "bench/peers/peers.hpp"
#include "tilegrad/cpu/gemm.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/gemm.hpp"
#include "tests/support/guards.hpp"
#include "tests/support/testing.hpp"
#include "tests/support/wide16_ops.hpp"

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

// ---------------------------------------------------------------------------------
// Every implementation against the reference.
// ---------------------------------------------------------------------------------

// Each CPU path this machine can run, on 1 and 2 threads (the 16-lane table's GEMM is
// the portable one).
using Impl = testing::CpuImpl;
std::vector<Impl> implementations() { return testing::cpu_implementations(false); }

using testing::ThreadsGuard;

// The tolerance model: each element is an fp32 sum of K products accumulated in fp32
// (the reference rounds the exact sum once). The relative norm error of such sums grows
// like sqrt(K) * u (u = 2^-24 ~ 6e-8) for random data; 5x that plus two roundings (the
// epilogue's) leaves room without hiding an error: a wrong element or a lost block is
// off by O(1), a lost product by about 1 / sqrt(K) relative.
double gemm_tolerance(index_t K) { return 5 * 6e-8 * std::sqrt(double(K) + 1) + 2 * 6e-8; }

const Act kActs[] = {Act::none, Act::relu, Act::leaky_relu, Act::gelu_erf, Act::gelu_tanh,
                     Act::silu, Act::sigmoid, Act::tanh};

TEST(Gemm, MatchesReferenceOnRandomShapesTransposesAndEpilogues) {
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  const float scalars[][2] = {{1, 0}, {1, 1}, {-1, 0.5f}, {0.5f, -1}, {0, 1}, {2, 0}};
  std::vector<index_t> sizes = testing::mixed_sizes(rng, 24, testing::budget<index_t>(300, 80));
  sizes.insert(sizes.end(), {5, 6, 11, 12, 15, 18, 31, 47, 96, 97, 191, 193});
  for (const Impl& impl : implementations()) {
    cpu::set_num_threads(impl.threads);
    for (int rep = 0; rep < testing::budget(60, 16); ++rep) {
      const index_t M = sizes[rng.integer(0, index_t(sizes.size()) - 1)];
      const index_t N = sizes[rng.integer(0, index_t(sizes.size()) - 1)];
      const index_t K = rep % 7 == 0 ? rng.integer(257, 700) : sizes[rng.integer(0, index_t(sizes.size()) - 1)];
      const Trans ta = rng.coin() ? Trans::T : Trans::N, tb = rng.coin() ? Trans::T : Trans::N;
      const float alpha = scalars[rep % 6][0], beta = scalars[rep % 6][1];
      const Activation act{kActs[rng.integer(0, 7)], 0.1f};
      Mat<float> a = stored(rng, ta, M, K), b = stored(rng, tb, K, N);
      std::vector<float> bias = testing::random_vec<float>(rng, N);
      const bool with_bias = rng.coin();
      const GemmEpilogue<float> ep{with_bias ? bias.data() : nullptr, act};
      const index_t ldc = random_ld(rng, N);
      Mat<float> c0 = beta == 0 ? poisoned_mat<float>(M, N, ldc) : random_mat<float>(rng, M, N, ldc);
      Mat<float> ours = c0, ref = c0;
      const index_t lda = std::max<index_t>(a.ld, 1), ldb = std::max<index_t>(b.ld, 1), ldcc = std::max<index_t>(ldc, 1);
      gemm_ref<float>(ta, tb, M, N, K, alpha, a.ptr(), lda, b.ptr(), ldb, beta, ref.ptr(), ldcc, ep);
      impl.ops->gemm(ta, tb, M, N, K, alpha, a.ptr(), lda, b.ptr(), ldb, beta, ours.ptr(), ldcc, ep);
      const std::string what = impl.name + " threads " + std::to_string(impl.threads) + ": " + std::to_string(M) + "x" +
                               std::to_string(N) + "x" + std::to_string(K) + (ta == Trans::T ? " T" : " N") +
                               (tb == Trans::T ? "T" : "N") + " alpha " + std::to_string(alpha) + " beta " +
                               std::to_string(beta) + " " + act_name(act.kind) + (with_bias ? " +bias" : "");
      ASSERT_TRUE(rel_close(ours, ref, gemm_tolerance(K))) << what;
      ASSERT_TRUE(ours.padding_untouched()) << what;
    }
  }
}

// ||C x - A (B x)|| / ||A (B x)|| in double: checks a big product without a big reference.
double probe_error(const Mat<float>& a, const Mat<float>& b, const Mat<float>& c, testing::Rng& rng) {
  std::vector<double> x(c.cols), bx(b.rows, 0.0);
  for (double& v : x) v = rng.uniform();
  for (index_t k = 0; k < b.rows; ++k)
    for (index_t j = 0; j < b.cols; ++j) bx[k] += double(b.at(k, j)) * x[j];
  double num = 0, den = 0;
  for (index_t i = 0; i < c.rows; ++i) {
    double abx = 0, cx = 0;
    for (index_t k = 0; k < a.cols; ++k) abx += double(a.at(i, k)) * bx[k];
    for (index_t j = 0; j < c.cols; ++j) cx += double(c.at(i, j)) * x[j];
    num += (cx - abx) * (cx - abx);
    den += abx * abx;
  }
  return std::sqrt(num / den);
}

TEST(Gemm, LargeSquareProductsPassTheProbeCheck) {
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  for (index_t n : {testing::budget<index_t>(1024, 192), testing::budget<index_t>(1031, 199)}) {
    Mat<float> a = random_mat<float>(rng, n, n, n), b = random_mat<float>(rng, n, n, n);
    for (const Impl& impl : implementations()) {
      // Keep the unit test quick (under an emulator every case is one thread, and small).
      if (impl.threads == 1 && impl.name != "cpu-avx2" && !testing::emulated()) continue;
      cpu::set_num_threads(impl.threads);
      Mat<float> c = poisoned_mat<float>(n, n, n);
      impl.ops->gemm(Trans::N, Trans::N, n, n, n, 1.0f, a.ptr(), n, b.ptr(), n, 0.0f, c.ptr(), n, {});
      EXPECT_LT(probe_error(a, b, c, rng), gemm_tolerance(n)) << impl.name << " " << n;
    }
  }
}

// Label slow: 2048^3 in every transpose and 4096 x 4096 x 64 against OpenBLAS, the
// sizes where blocks, threads and packing all take their large-problem paths.
TEST(GemmSlow, LargeShapesAgreeWithOpenBlasInEveryTranspose) {
  const peers::SgemmPeer* openblas = peers::find_sgemm_peer("openblas");
  if (!openblas) GTEST_SKIP() << "OpenBLAS was not found at configure time";
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  for (auto [M, N, K] : {std::tuple<index_t, index_t, index_t>{2048, 2048, 2048}, {4096, 4096, 64}, {1999, 2053, 1031}})
    for (Trans ta : {Trans::N, Trans::T})
      for (Trans tb : {Trans::N, Trans::T}) {
        Mat<float> a = stored(rng, ta, M, K), b = stored(rng, tb, K, N);
        Mat<float> ours = poisoned_mat<float>(M, N, N), theirs = ours;
        cpu::gemm(ta, tb, M, N, K, 1.0f, a.ptr(), a.ld, b.ptr(), b.ld, 0.0f, ours.ptr(), N);
        openblas->sgemm(ta, tb, M, N, K, 1.0f, a.ptr(), a.ld, b.ptr(), b.ld, 0.0f, theirs.ptr(), N);
        // Two fp32 sums of K products in different orders: each within gemm_tolerance.
        EXPECT_TRUE(rel_close(ours, theirs, 2 * gemm_tolerance(K)))
            << M << "x" << N << "x" << K << " ta=" << int(ta) << " tb=" << int(tb);
      }
}

TEST(Gemm, ThreadCountDoesNotChangeAnyBit) {
  if (testing::emulated()) GTEST_SKIP() << testing::kNoThreadsUnderEmulation;
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  for (cpu::Isa isa : cpu::supported_isas()) {
    for (auto [M, N, K] : {std::tuple<index_t, index_t, index_t>{300, 97, 513}, {61, 700, 200}, {2048, 64, 64}}) {
      Mat<float> a = random_mat<float>(rng, M, K, K), b = random_mat<float>(rng, K, N, N);
      Mat<float> c1 = poisoned_mat<float>(M, N, N), c2 = c1;
      cpu::set_num_threads(1);
      cpu::ops(isa).f32.gemm(Trans::N, Trans::N, M, N, K, 1.0f, a.ptr(), K, b.ptr(), N, 0.0f, c1.ptr(), N, {});
      cpu::set_num_threads(2);
      cpu::ops(isa).f32.gemm(Trans::N, Trans::N, M, N, K, 1.0f, a.ptr(), K, b.ptr(), N, 0.0f, c2.ptr(), N, {});
      EXPECT_TRUE(rel_close(c1, c2, 0.0)) << cpu::isa_name(isa) << " " << M << "x" << N << "x" << K;
    }
  }
}

// A row-major B read in place (a part of C with few rows, on paths with kernel_b_rows)
// gives the bits of the packed panel: the first M rows computed alone against the same
// rows of a product too tall to read B in place, one thread, B with a partial last panel
// and a leading dimension past N, several K blocks, the general epilogue.
TEST(Gemm, BReadInPlaceHasTheBitsOfPackedB) {
  ThreadsGuard guard;
  cpu::set_num_threads(1);
  TG_TEST_RNG(rng);
  for (cpu::Isa isa : cpu::supported_isas()) {
    for (Trans ta : {Trans::N, Trans::T}) {
      const index_t M = rng.integer(1, 256), tall = 600, N = rng.integer(65, 300), K = rng.integer(300, 900);
      const index_t lda = ta == Trans::N ? K : tall, ldb = N + rng.integer(1, 9);
      Mat<float> a = ta == Trans::N ? random_mat<float>(rng, tall, K, lda) : random_mat<float>(rng, K, tall, lda);
      Mat<float> b = random_mat<float>(rng, K, N, ldb);
      Mat<float> c_short = random_mat<float>(rng, tall, N, N), c_tall = c_short;
      std::vector<float> bias(static_cast<std::size_t>(N));
      for (float& v : bias) v = float(rng.uniform(-1, 1));
      const GemmEpilogue<float> ep{bias.data(), {Act::relu, 0.0f}};
      const auto& f = cpu::ops(isa).f32;
      f.gemm(ta, Trans::N, M, N, K, 0.5f, a.ptr(), lda, b.ptr(), ldb, 0.25f, c_short.ptr(), N, ep);
      f.gemm(ta, Trans::N, tall, N, K, 0.5f, a.ptr(), lda, b.ptr(), ldb, 0.25f, c_tall.ptr(), N, ep);
      for (index_t i = 0; i < M; ++i)
        for (index_t j = 0; j < N; ++j)
          ASSERT_EQ(c_short.at(i, j), c_tall.at(i, j))
              << cpu::isa_name(isa) << (ta == Trans::N ? " nn" : " tn") << " M " << M << " N " << N << " K " << K
              << " at " << i << "," << j;
    }
  }
}

// A row's bits do not depend on the tile it falls in: the last rows of M = 6q + r (a
// short last tile, which the AVX-512 path runs as an r x 64 block for r <= 3) against
// the same rows inside whole tiles of a taller product, with the general epilogue.
TEST(Gemm, RowsOfAShortLastTileHaveTheBitsOfWholeTiles) {
  TG_TEST_RNG(rng);
  for (cpu::Isa isa : cpu::supported_isas()) {
    for (index_t M : {1, 2, 3, 7, 8, 9, 128, 129}) {
      const index_t N = rng.integer(1, 200), K = rng.integer(1, 700), tall = M + 24;
      Mat<float> a = random_mat<float>(rng, tall, K, K), b = random_mat<float>(rng, K, N, N);
      Mat<float> c_short = random_mat<float>(rng, tall, N, N), c_tall = c_short;
      std::vector<float> bias(static_cast<std::size_t>(N));
      for (float& v : bias) v = float(rng.uniform(-1, 1));
      const GemmEpilogue<float> ep{bias.data(), {Act::gelu_tanh, 0.0f}};
      cpu::ops(isa).f32.gemm(Trans::N, Trans::N, M, N, K, 0.5f, a.ptr(), K, b.ptr(), N, 0.25f, c_short.ptr(), N, ep);
      cpu::ops(isa).f32.gemm(Trans::N, Trans::N, tall, N, K, 0.5f, a.ptr(), K, b.ptr(), N, 0.25f, c_tall.ptr(), N, ep);
      for (index_t i = 0; i < M; ++i)
        for (index_t j = 0; j < N; ++j)
          ASSERT_EQ(c_short.at(i, j), c_tall.at(i, j))
              << cpu::isa_name(isa) << " M " << M << " N " << N << " K " << K << " at " << i << "," << j;
    }
  }
}

TEST(Gemm, BlasSemanticsOfAlphaAndBetaOnEveryPath) {
  TG_TEST_RNG(rng);
  for (const Impl& impl : implementations()) {
    for (index_t n : {3, 40, 130}) {
      Mat<float> a = random_mat<float>(rng, n, n, n), b = random_mat<float>(rng, n, n, n);
      Mat<float> c = poisoned_mat<float>(n, n, n);  // beta = 0: NaN in C must not leak
      impl.ops->gemm(Trans::N, Trans::N, n, n, n, 1.0f, a.ptr(), n, b.ptr(), n, 0.0f, c.ptr(), n, {});
      for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < n; ++j) ASSERT_FALSE(std::isnan(c.at(i, j))) << impl.name;
      Mat<float> nan_a = poisoned_mat<float>(n, n, n);  // alpha = 0: A is not read
      Mat<float> c2 = random_mat<float>(rng, n, n, n), expected = c2;
      for (float& v : expected.data) v *= 0.5f;
      impl.ops->gemm(Trans::N, Trans::N, n, n, n, 0.0f, nan_a.ptr(), n, b.ptr(), n, 0.5f, c2.ptr(), n, {});
      for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < n; ++j) ASSERT_EQ(c2.at(i, j), expected.at(i, j)) << impl.name;
    }
  }
}

// The tiny path's special cases (one column, one input, transposed A) in every
// transpose, with and without reading C, with the Linear layer's epilogue.
// The norm of the terms' scale: per element sqrt(sum_k (alpha a_ik b_kj)^2 + (beta c_ij)^2
// + bias_j^2), what |C_ij| is without cancellation. The rounding error of the sum is
// relative to this, not to |C_ij|: a 1x1x5000 product whose random terms happen to
// cancel to 1.1 (typical size 20) carries the error of the terms, 7e-5 relative to the
// result, which failed the plain ||ref|| bound on about one seed in ten.
double term_scale(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const Mat<float>& a,
                  const Mat<float>& b, float beta, const Mat<float>& c, const std::vector<float>& bias) {
  double total = 0;
  for (index_t i = 0; i < M; ++i)
    for (index_t j = 0; j < N; ++j) {
      double s = 0;
      for (index_t k = 0; k < K; ++k) {
        const double t = double(alpha) * op_at(a, ta, i, k) * op_at(b, tb, k, j);
        s += t * t;
      }
      const double cb = beta == 0 ? 0.0 : double(beta) * c.at(i, j);
      total += s + cb * cb + double(bias[std::size_t(j)]) * bias[std::size_t(j)];
    }
  return std::sqrt(total);
}

// One shape in every transpose, with each of `betas` (0: C poisoned, never read), a
// padded ldc and `alpha`, on every path of `impls` (each at its thread count) against the
// reference within the term-scale bound; each case's data and reference are made once for
// all the paths. epilogue(bias) picks each case's bias and activation.
template <class MakeEpilogue>
void check_every_layout(const std::vector<Impl>& impls, testing::Rng& rng, index_t M, index_t N, index_t K, float alpha,
                        std::initializer_list<float> betas, MakeEpilogue&& epilogue) {
  for (Trans ta : {Trans::N, Trans::T})
    for (Trans tb : {Trans::N, Trans::T})
      for (float beta : betas) {
        Mat<float> a = stored(rng, ta, M, K), b = stored(rng, tb, K, N);
        std::vector<float> bias = testing::random_vec<float>(rng, N);
        const index_t ldc = random_ld(rng, N);
        const Mat<float> c0 = beta == 0 ? poisoned_mat<float>(M, N, ldc) : random_mat<float>(rng, M, N, ldc);
        Mat<float> ref = c0;
        const double floor = term_scale(ta, tb, M, N, K, alpha, a, b, beta, c0, bias);
        const GemmEpilogue<float> ep = epilogue(bias);
        gemm_ref<float>(ta, tb, M, N, K, alpha, a.ptr(), a.ld, b.ptr(), b.ld, beta, ref.ptr(), ldc, ep);
        for (const Impl& impl : impls) {
          cpu::set_num_threads(impl.threads);
          Mat<float> ours = c0;
          impl.ops->gemm(ta, tb, M, N, K, alpha, a.ptr(), a.ld, b.ptr(), b.ld, beta, ours.ptr(), ldc, ep);
          EXPECT_TRUE(rel_close(ours, ref, gemm_tolerance(K), floor))
              << impl.name << " threads " << impl.threads << " " << M << "x" << N << "x" << K << " ta=" << int(ta)
              << " tb=" << int(tb) << " beta=" << beta << " " << act_name(ep.act.kind) << (ep.bias ? " +bias" : "");
          EXPECT_TRUE(ours.padding_untouched()) << impl.name << " " << M << "x" << N << "x" << K;
        }
      }
}

TEST(Gemm, TinyMlpShapesInEveryLayout) {
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  for (auto [M, N, K] : {std::tuple<index_t, index_t, index_t>{10, 10, 1},
                         {10, 1, 10},
                         {128, 10, 1},
                         {1, 1, 1},
                         {1, 257, 3},
                         {33, 1, 7},
                         {17, 9, 2},
                         // GEMV shapes over kSmallMacs that the unpacked loops serve too
                         {1024, 1, 10},
                         {1, 10, 1024},
                         {1, 300, 200},
                         {4000, 1, 16},
                         {1, 1, 5000},
                         // and just past kSkinnyMacs, back on the packed path
                         {1, 257, 256}})
    check_every_layout(implementations(), rng, M, N, K, 1.5f, {0.0f, 0.5f}, [](const std::vector<float>& bias) {
      return GemmEpilogue<float>{bias.data(), {Act::relu}};
    });
}

// A narrow, tall C (N at most 4 on the AVX2 and AVX-512 paths) is computed as
// C^T = op(B)^T op(A)^T and written back transposed, with beta, bias and the activation
// applied there; and a panel of at most 32 live columns (N up to 32, or N = 784: twelve
// 64-wide panels and 16) runs the AVX-512 path's narrow blocks. Every transpose, beta
// zero (C poisoned) or not, padded ldc, 1 and 2 threads, random activations with and
// without bias. Two random shapes for each N.
TEST(Gemm, NarrowTallProductsAndNarrowLastPanelsInEveryLayout) {
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  for (int draw = 0; draw < 2; ++draw)
    for (index_t N : {1, 2, 3, 4, 7, 10, 16, 80, 96, 784}) {
      const index_t M = std::vector<index_t>{32, 97, 128, 301, 1024}[std::size_t(rng.integer(0, 4))];
      const index_t K = rng.integer(1, 300);
      check_every_layout(
          implementations(), rng, N >= 80 ? rng.integer(7, 40) : M, N, K, 1.5f, {0.0f, 0.5f},
          [&rng](const std::vector<float>& bias) {
            return GemmEpilogue<float>{rng.coin() ? bias.data() : nullptr, {kActs[rng.integer(0, 7)], 0.1f}};
          });
    }
}

// Scaled products with C = alpha AB or C += alpha AB and no bias or activation (the
// attention's scaled score tiles and its dQ += scale dS K) take the micro-kernels'
// plain-store epilogue on whole tiles: M and N multiples of every path's tile (6 x 64
// and 6 x 16), K past one K block, alpha not 1, in every layout and on 1 and 2 threads.
TEST(Gemm, ScaledProductsWithoutEpilogueOnWholeTiles) {
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  for (auto [M, N, K] : {std::tuple<index_t, index_t, index_t>{12, 64, 64}, {48, 128, 129}, {54, 192, 700}})
    for (float alpha : {2.5f, -0.75f})
      check_every_layout(implementations(), rng, M, N, K, alpha, {0.0f, 1.0f},
                         [](const std::vector<float>&) { return GemmEpilogue<float>{}; });
}

// Regression: the per-thread packing buffer was sized by balanced(rows), which is not
// monotonic (516 rows -> blocks of 258, 510 rows -> one block of 510); after a 256^3
// call on one thread, a 1024-row call on two threads packed 510 rows into a buffer for
// 258 and overran it (caught by ASan in the benchmark; heap corruption in Release).
TEST(Gemm, PackingBuffersGrowWithTheProblem) {
  if (testing::emulated()) GTEST_SKIP() << testing::kNoThreadsUnderEmulation;
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  // Best path first: the buffers are per thread and only grow, so the paths' calls
  // must not pre-grow them for each other (the bug showed on avx2, 6x16, KC = 256).
  std::vector<cpu::Isa> isas = cpu::supported_isas();
  std::reverse(isas.begin(), isas.end());
  for (cpu::Isa isa : isas) {
    cpu::set_num_threads(1);
    Mat<float> a = random_mat<float>(rng, 256, 256, 256), b = random_mat<float>(rng, 256, 256, 256);
    Mat<float> c = poisoned_mat<float>(256, 256, 256);
    cpu::ops(isa).f32.gemm(Trans::N, Trans::N, 256, 256, 256, 1.0f, a.ptr(), 256, b.ptr(), 256, 0.0f, c.ptr(), 256, {});
    cpu::set_num_threads(2);
    Mat<float> a2 = random_mat<float>(rng, 1024, 256, 256), b2 = random_mat<float>(rng, 256, 16, 16);
    Mat<float> c2 = poisoned_mat<float>(1024, 16, 16), ref = c2;
    cpu::ops(isa).f32.gemm(Trans::N, Trans::N, 1024, 16, 256, 1.0f, a2.ptr(), 256, b2.ptr(), 16, 0.0f, c2.ptr(), 16, {});
    gemm_ref<float>(Trans::N, Trans::N, 1024, 16, 256, 1.0f, a2.ptr(), 256, b2.ptr(), 16, 0.0f, ref.ptr(), 16);
    EXPECT_TRUE(rel_close(c2, ref, gemm_tolerance(256))) << cpu::isa_name(isa);
  }
}

TEST(Gemm, PublicEntryChecksItsArguments) {
  std::vector<float> a(64), b(64), c(64);
  EXPECT_NO_THROW(cpu::gemm(Trans::N, Trans::N, 4, 4, 4, 1.0f, a.data(), 4, b.data(), 4, 0.0f, c.data(), 4));
  EXPECT_THROW(cpu::gemm(Trans::N, Trans::N, 4, 4, 4, 1.0f, a.data(), 3, b.data(), 4, 0.0f, c.data(), 4), Error);
  EXPECT_THROW(cpu::gemm(Trans::N, Trans::N, -1, 4, 4, 1.0f, a.data(), 4, b.data(), 4, 0.0f, c.data(), 4), Error);
  EXPECT_THROW(cpu::gemm(Trans::N, Trans::N, 4, 4, 4, 1.0f, nullptr, 4, b.data(), 4, 0.0f, c.data(), 4), Error);
  EXPECT_THROW(cpu::gemm(Trans::N, Trans::N, 4, 4, 4, 1.0f, a.data(), 4, b.data(), 4, 0.0f, a.data() + 2, 4), Error);
  std::vector<double> ad(16), bd(16), cd(16);
  EXPECT_THROW(cpu::gemm(Trans::T, Trans::N, 4, 4, 4, 1.0, ad.data(), 3, bd.data(), 4, 0.0, cd.data(), 4), Error);
}

}  // namespace
}  // namespace tg
