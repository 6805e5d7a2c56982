// Every peer compiled in (OpenBLAS, BLIS, Eigen, oneDNN, Kokkos team-policy and
// KokkosBlas SGEMM; Eigen, libm and Kokkos activations, softmax and layer norm) against
// the double-precision references on random shapes with fresh data, outputs poisoned
// with NaN: a peer that computes something else would make every ratio in the
// benchmark tables meaningless.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "bench/peers/peers.hpp"
#include "tilegrad/kernels/activation.hpp"
#include "tilegrad/kernels/gemm.hpp"
#include "tilegrad/kernels/layer_norm.hpp"
#include "tilegrad/kernels/softmax.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using testing::Rng;

std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

TEST(Peers, EverySgemmPeerMatchesTheReference) {
  TG_TEST_RNG(rng);
  const std::vector<peers::SgemmPeer> all = peers::sgemm_peers();
#ifdef TG_PEERS_OFF
  if (all.empty()) GTEST_SKIP() << "built with TG_PEERS=OFF";
#endif
  ASSERT_FALSE(all.empty());
  for (const peers::SgemmPeer& p : all) {
    for (int rep = 0; rep < 12; ++rep) {
      const index_t M = rng.integer(1, 150), N = rng.integer(1, 150), K = rng.integer(1, 200);
      const Trans ta = rng.coin() ? Trans::T : Trans::N, tb = rng.coin() ? Trans::T : Trans::N;
      const index_t lda = (ta == Trans::N ? K : M) + rng.integer(0, 3), ldb = (tb == Trans::N ? N : K) + rng.integer(0, 3);
      const index_t ldc = N + rng.integer(0, 3);
      const std::vector<float> a = testing::random_vec<float>(rng, (ta == Trans::N ? M : K) * lda);
      const std::vector<float> b = testing::random_vec<float>(rng, (tb == Trans::N ? K : N) * ldb);
      const float beta = rep % 3 == 0 ? 0.5f : 0.0f;
      std::vector<float> c = beta == 0 ? std::vector<float>(std::size_t(M * ldc), testing::kPoison<float>)
                                       : testing::random_vec<float>(rng, M * ldc);
      std::vector<double> want(c.begin(), c.end());
      const std::vector<double> ad = widen(a), bd = widen(b);
      gemm_ref<double>(ta, tb, M, N, K, 1.5, ad.data(), lda, bd.data(), ldb, beta, want.data(), ldc);
      p.sgemm(ta, tb, M, N, K, 1.5f, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
      // The M x N view only (the padding columns are not C's).
      EXPECT_TRUE(testing::rel_close(c.data(), ldc, want.data(), ldc, M, N, 1e-5 * std::sqrt(double(K))))
          << p.name << " " << M << "x" << N << "x" << K
                                                                << " ta " << int(ta) << " tb " << int(tb);
    }
  }
}

TEST(Peers, EveryNormPeerMatchesTheReferences) {
  TG_TEST_RNG(rng);
  const Act acts[] = {Act::relu, Act::leaky_relu, Act::gelu_erf, Act::gelu_tanh, Act::silu, Act::sigmoid, Act::tanh};
  for (const peers::NormPeer& p : peers::norm_peers()) {
    const index_t rows = rng.integer(1, 40), cols = rng.integer(1, 300), n = rows * cols;
    const std::vector<float> x = testing::random_vec<float>(rng, n, -4, 4), dy = testing::random_vec<float>(rng, n);
    const std::vector<double> xd = widen(x), dyd = widen(dy);
    for (Act a : acts) {
      const Activation act{a, 0.1f};
      std::vector<float> y(std::size_t(n), testing::kPoison<float>), dx = y;
      std::vector<double> want(static_cast<std::size_t>(n)), dwant(static_cast<std::size_t>(n));
      act_forward_ref<double>(act, 1, n, xd.data(), n, nullptr, want.data(), n);
      act_backward_ref<double>(act, 1, n, xd.data(), n, nullptr, dyd.data(), n, dwant.data(), n);
      p.act_fwd(act, n, x.data(), y.data());
      p.act_bwd(act, n, x.data(), dy.data(), dx.data());
      EXPECT_TRUE(testing::rel_close(y, want, 1e-5)) << p.name << " " << act_name(a) << " forward";
      EXPECT_TRUE(testing::rel_close(dx, dwant, 1e-4)) << p.name << " " << act_name(a) << " backward";
    }
    for (bool log : {false, true}) {
      std::vector<float> y(std::size_t(n), testing::kPoison<float>), dx = y;
      std::vector<double> want(static_cast<std::size_t>(n)), dwant(static_cast<std::size_t>(n));
      if (log) log_softmax_forward_ref<double>(rows, cols, xd.data(), cols, want.data(), cols);
      else softmax_forward_ref<double>(rows, cols, xd.data(), cols, want.data(), cols);
      p.softmax_fwd(log, rows, cols, x.data(), y.data());
      EXPECT_TRUE(testing::rel_close(y, want, 1e-5)) << p.name << (log ? " log_softmax" : " softmax");
      if (log) log_softmax_backward_ref<double>(rows, cols, want.data(), cols, dyd.data(), cols, dwant.data(), cols);
      else softmax_backward_ref<double>(rows, cols, want.data(), cols, dyd.data(), cols, dwant.data(), cols);
      std::vector<float> yf(want.begin(), want.end());
      p.softmax_bwd(log, rows, cols, yf.data(), dy.data(), dx.data());
      EXPECT_TRUE(testing::rel_close(dx, dwant, 1e-4)) << p.name << (log ? " log_softmax" : " softmax") << " backward";
    }
    std::vector<float> y(static_cast<std::size_t>(n), testing::kPoison<float>), dx = y, mean(static_cast<std::size_t>(rows)), rstd = mean;
    std::vector<double> want(static_cast<std::size_t>(n)), dwant(static_cast<std::size_t>(n)), md(static_cast<std::size_t>(rows)), rd = md;
    std::vector<double> dg(static_cast<std::size_t>(cols)), db(static_cast<std::size_t>(cols));
    layer_norm_forward_ref<double>(rows, cols, xd.data(), cols, nullptr, nullptr, 1e-5f, want.data(), cols, md.data(),
                                   rd.data());
    p.layer_norm_fwd(rows, cols, x.data(), 1e-5f, y.data(), mean.data(), rstd.data());
    EXPECT_TRUE(testing::rel_close(y, want, 1e-5)) << p.name << " layer_norm";
    layer_norm_backward_ref<double>(rows, cols, xd.data(), cols, dyd.data(), cols, nullptr, md.data(), rd.data(),
                                    1e-5f, dwant.data(), cols, dg.data(), db.data());
    p.layer_norm_bwd(rows, cols, x.data(), dy.data(), mean.data(), rstd.data(), dx.data());
    EXPECT_TRUE(testing::rel_close(dx, dwant, 1e-4)) << p.name << " layer_norm backward";
  }
}

}  // namespace
}  // namespace tg
