// The argument checks of the public API: each bad input throws tg::Error naming the op
// and the argument; good input (including empty shapes and in-place views) passes.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/ops.hpp"

namespace tg {
namespace {

// Runs f, expects a tg::Error whose argument is `arg` and whose message names `op`.
template <class F>
::testing::AssertionResult throws_for(const char* op, const char* arg, F&& f) {
  try {
    f();
  } catch (const Error& e) {
    if (e.op() != op || e.arg() != arg)
      return ::testing::AssertionFailure() << "wrong op/argument in: " << e.what();
    if (std::string(e.what()).find("expected") == std::string::npos &&
        std::string(e.what()).find("must not") == std::string::npos)
      return ::testing::AssertionFailure() << "message says nothing expected: " << e.what();
    return ::testing::AssertionSuccess() << e.what();
  }
  return ::testing::AssertionFailure() << "no tg::Error for " << op << " / " << arg;
}

constexpr std::size_t kF = sizeof(float);

TEST(CheckGemm, AcceptsValidAndEmptyProblems) {
  std::vector<float> a(12), b(20), c(15), bias(5);
  EXPECT_NO_THROW(check_gemm("gemm", Trans::N, Trans::N, 3, 5, 4, 1, a.data(), 4, b.data(), 5, c.data(), 5, bias.data(), kF));
  EXPECT_NO_THROW(check_gemm("gemm", Trans::T, Trans::T, 3, 5, 4, 1, a.data(), 3, b.data(), 4, c.data(), 5, nullptr, kF));
  EXPECT_NO_THROW(check_gemm("gemm", Trans::N, Trans::N, 0, 5, 4, 1, nullptr, 4, nullptr, 5, nullptr, 5, nullptr, kF));
  // alpha == 0 and K == 0 read neither A nor B.
  EXPECT_NO_THROW(check_gemm("gemm", Trans::N, Trans::N, 3, 5, 4, 0, nullptr, 4, nullptr, 5, c.data(), 5, nullptr, kF));
  EXPECT_NO_THROW(check_gemm("gemm", Trans::N, Trans::N, 3, 5, 0, 1, nullptr, 1, nullptr, 5, c.data(), 5, nullptr, kF));
}

TEST(CheckGemm, RejectsBadSizesStridesPointersAndOverlap) {
  std::vector<float> a(12), b(20), c(15);
  auto gemm = [&](index_t M, index_t N, index_t K, const float* A, index_t lda, const float* B, index_t ldb,
                  const float* C, index_t ldc, Trans ta = Trans::N) {
    return [=] { check_gemm("gemm", ta, Trans::N, M, N, K, 1, A, lda, B, ldb, C, ldc, nullptr, kF); };
  };
  EXPECT_TRUE(throws_for("gemm", "M", gemm(-1, 5, 4, a.data(), 4, b.data(), 5, c.data(), 5)));
  EXPECT_TRUE(throws_for("gemm", "K", gemm(3, 5, -4, a.data(), 4, b.data(), 5, c.data(), 5)));
  EXPECT_TRUE(throws_for("gemm", "lda", gemm(3, 5, 4, a.data(), 3, b.data(), 5, c.data(), 5)));
  EXPECT_TRUE(throws_for("gemm", "lda", gemm(3, 5, 4, a.data(), 2, b.data(), 5, c.data(), 5, Trans::T)));
  EXPECT_TRUE(throws_for("gemm", "ldb", gemm(3, 5, 4, a.data(), 4, b.data(), 4, c.data(), 5)));
  EXPECT_TRUE(throws_for("gemm", "ldc", gemm(3, 5, 4, a.data(), 4, b.data(), 5, c.data(), 4)));
  EXPECT_TRUE(throws_for("gemm", "A", gemm(3, 5, 4, nullptr, 4, b.data(), 5, c.data(), 5)));
  EXPECT_TRUE(throws_for("gemm", "C", gemm(3, 5, 4, a.data(), 4, b.data(), 5, nullptr, 5)));
  std::vector<float> shared(64);
  EXPECT_TRUE(throws_for("gemm", "C", gemm(3, 5, 4, shared.data(), 4, b.data(), 5, shared.data() + 8, 5)));
  EXPECT_TRUE(throws_for("gemm", "C", gemm(3, 5, 4, a.data(), 4, shared.data() + 10, 5, shared.data(), 5)));
  const index_t huge = std::numeric_limits<index_t>::max() / 2;
  EXPECT_TRUE(throws_for("gemm", "lda", gemm(4, 5, 4, a.data(), huge, b.data(), 5, c.data(), 5)));
}

TEST(CheckEltwise, InPlaceIsFinePartialOverlapIsNot) {
  std::vector<float> x(40), y(40);
  EXPECT_NO_THROW(check_act_forward("relu", 4, 8, x.data(), 10, nullptr, x.data(), 10, kF));
  EXPECT_NO_THROW(check_act_forward("relu", 1, 8, x.data(), 0, nullptr, y.data(), 0, kF));
  EXPECT_TRUE(throws_for("relu", "y", [&] { check_act_forward("relu", 4, 8, x.data(), 10, nullptr, x.data() + 1, 10, kF); }));
  EXPECT_TRUE(throws_for("relu", "ldx", [&] { check_act_forward("relu", 4, 8, x.data(), 7, nullptr, y.data(), 8, kF); }));
  EXPECT_TRUE(throws_for("relu", "y", [&] { check_act_forward("relu", 4, 8, x.data(), 8, y.data() + 4, y.data(), 8, kF); }));
  EXPECT_TRUE(throws_for("relu", "y", [&] { check_act_forward("relu", 2, 8, x.data(), 8, y.data(), y.data(), 8, kF); }));
  EXPECT_TRUE(throws_for("relu_backward", "dx", [&] {
    check_act_backward("relu_backward", 2, 8, x.data(), 8, nullptr, y.data(), 8, x.data(), 8, kF);
  }));
  EXPECT_NO_THROW(check_act_backward("relu_backward", 2, 8, x.data(), 8, nullptr, y.data(), 8, y.data(), 8, kF));
  EXPECT_TRUE(throws_for("softmax", "rows", [&] { check_softmax_forward("softmax", -2, 8, x.data(), 8, y.data(), 8, kF); }));
  EXPECT_TRUE(throws_for("softmax", "x", [&] { check_softmax_forward("softmax", 2, 8, nullptr, 8, y.data(), 8, kF); }));
  EXPECT_TRUE(throws_for("softmax_backward", "dx", [&] {
    check_softmax_backward("softmax_backward", 2, 8, y.data(), 8, x.data(), 8, y.data(), 8, kF);
  }));
}

TEST(CheckLayerNorm, RejectsEmptyRowsAndBadEps) {
  std::vector<float> x(16), y(16), mean(2), rstd(2);
  EXPECT_NO_THROW(check_layer_norm_forward("layer_norm", 2, 8, x.data(), 8, y.data(), 8, 1e-5f, kF));
  EXPECT_NO_THROW(check_layer_norm_forward("layer_norm", 0, 0, nullptr, 0, nullptr, 0, 1e-5f, kF));
  EXPECT_TRUE(throws_for("layer_norm", "cols", [&] { check_layer_norm_forward("layer_norm", 2, 0, x.data(), 8, y.data(), 8, 1e-5f, kF); }));
  EXPECT_TRUE(throws_for("layer_norm", "eps", [&] { check_layer_norm_forward("layer_norm", 2, 8, x.data(), 8, y.data(), 8, 0.0f, kF); }));
  EXPECT_TRUE(throws_for("layer_norm_backward", "rstd", [&] {
    check_layer_norm_backward("layer_norm_backward", 2, 8, x.data(), 8, y.data(), 8, mean.data(), nullptr, y.data(), 8, kF);
  }));
}

TEST(CheckReduce, StridesAndOverlap) {
  std::vector<float> x(60), y(12);
  EXPECT_NO_THROW(check_reduce("sum", 3, 5, 4, x.data(), 20, 4, 1, y.data(), 4, 1, kF));
  EXPECT_NO_THROW(check_reduce("sum", 3, 0, 4, nullptr, 20, 4, 1, y.data(), 4, 1, kF));
  EXPECT_TRUE(throws_for("sum", "x", [&] { check_reduce("sum", 3, 5, 4, x.data(), 20, -4, 1, y.data(), 4, 1, kF); }));
  EXPECT_TRUE(throws_for("sum", "y", [&] { check_reduce("sum", 3, 5, 4, x.data(), 20, 4, 1, x.data() + 2, 4, 1, kF); }));
}

TEST(CheckAttention, HeadsStridesAndOutputs) {
  const AttentionDims d{2, 4, 2, 5, 6, 8};
  std::vector<float> q(2 * 4 * 5 * 8), k(2 * 2 * 6 * 8), v(k.size()), o(q.size()), lse(2 * 4 * 5);
  auto view = [](float* p, index_t H, index_t S, index_t D) { return View4<float>{p, H * S * D, S * D, D, 1}; };
  auto cview = [&](float* p, index_t H, index_t S, index_t D) {
    View4<float> w = view(p, H, S, D);
    return View4<const float>{w.data, w.sb, w.sh, w.ss, w.sd};
  };
  AttentionForwardArgs<float> a;
  a.dims = d;
  a.scale = 0.35f;
  a.q = cview(q.data(), 4, 5, 8);
  a.k = cview(k.data(), 2, 6, 8);
  a.v = cview(v.data(), 2, 6, 8);
  a.o = view(o.data(), 4, 5, 8);
  a.lse = lse.data();
  EXPECT_NO_THROW(check_attention_forward("attention", a));

  AttentionForwardArgs<float> bad = a;
  bad.dims.kv_heads = 3;
  EXPECT_TRUE(throws_for("attention", "kv_heads", [&] { check_attention_forward("attention", bad); }));
  bad = a;
  bad.dims.head_dim = 0;
  EXPECT_TRUE(throws_for("attention", "head_dim", [&] { check_attention_forward("attention", bad); }));
  bad = a;
  bad.o = view(q.data(), 4, 5, 8);  // writes over Q
  EXPECT_TRUE(throws_for("attention", "o", [&] { check_attention_forward("attention", bad); }));
  bad = a;
  bad.k.ss = -8;
  EXPECT_TRUE(throws_for("attention", "k", [&] { check_attention_forward("attention", bad); }));
  bad = a;
  bad.mask = {nullptr, 0, 0, 0, 0};
  EXPECT_NO_THROW(check_attention_forward("attention", bad));
  std::vector<float> mask(5 * 6);
  bad.mask = {mask.data(), 0, 0, 6, 1};  // broadcast over batch and heads
  EXPECT_NO_THROW(check_attention_forward("attention", bad));
}

}  // namespace
}  // namespace tg
