// The CUDA op table and the small ops (cuda/elementwise.cu, reduce.cu, random.cu,
// optimizer.cu) against the double references of kernels/: elementwise ops on random strided, permuted, padded
// and broadcast N-D views (the gaps hold NaN and must stay NaN); reductions over every
// kind of (outer, n, inner) view, long ones included (the chunked path); Philox random
// draws and dropout (the CPU's bits); multi-tensor SGD and Adam over more slots than one
// launch takes. Outputs poisoned with NaN. Runs where a GPU exists (the first test runs
// everywhere: the table itself needs no device).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "tilegrad/cuda/cross_entropy.hpp"
#include "tilegrad/cuda/gemm.hpp"
#include "tilegrad/cuda/ops.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/attention.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/half.hpp"
#include "tilegrad/kernels/ops.hpp"
#include "tilegrad/kernels/reference/nd.hpp"
#include "tests/support/device_vec.hpp"
#include "tests/support/guards.hpp"
#include "tests/support/nd.hpp"
#include "tests/support/op_cases.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using testing::all_near;
using testing::near;
using testing::Rng;
using Dev = testing::DeviceVec;
constexpr float kNaN = testing::kPoison<float>;

using DevIdx = testing::DeviceIdx;

TEST(CudaOps, TheTableIsCompleteAndF64IsAClearError) {
  const OpTable& t = cuda::ops();
  EXPECT_TRUE(t.complete());
  if (!cuda::built()) GTEST_SKIP() << "built without CUDA: every entry says so";
  EXPECT_STREQ(t.name, "cuda");
  double x = 0;
  const std::string msg = testing::error_of([&] { t.f64.random(Random::uniform, 1, &x, 0, 1, 1, 0); });
  EXPECT_NE(msg.find("f32 only"), std::string::npos) << msg;
  EXPECT_EQ(t.f32.attention_backward, &cuda::attention_backward);
}

// The 16-bit GEMM and attention go through the table too: the CUDA table serves every
// entry where CUDA is built, the reference none (the CPU paths' tables: test_isa.cpp).
TEST(CudaOps, OnlyTheCudaTableServesTheSixteenBitEntries) {
  int set = 0, total = 0;
#define TG_COUNT_HALF(name) set += cuda::ops().half.name != nullptr ? 1 : 0, ++total;
  TG_HALF_OPS(TG_COUNT_HALF)
#undef TG_COUNT_HALF
  EXPECT_EQ(set, cuda::built() ? total : 0);
  int reference_set = 0;
#define TG_COUNT_REF_HALF(name) reference_set += reference_ops().half.name != nullptr ? 1 : 0;
  TG_HALF_OPS(TG_COUNT_REF_HALF)
#undef TG_COUNT_REF_HALF
  EXPECT_EQ(reference_set, 0);
}

// ---- elementwise ----

std::vector<index_t> random_sizes(Rng& rng) { return testing::random_nd_sizes(rng, 100, 5000, 200000); }

TEST(CudaOps, ElementwiseMatchesTheReferenceOnStridedAndBroadcastViews) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  // Elementwise float against double: a few roundings of the result (pow and exp: 2 ulp).
  const double tol = 2e-6;
  for (int rep = 0; rep < 60; ++rep) {
    const std::vector<index_t> sizes = random_sizes(rng);
    testing::StoredView a = testing::random_stored_view(rng, sizes, true), b = testing::random_stored_view(rng, sizes, true),
                        c = testing::random_stored_view(rng, sizes, true);
    for (std::size_t i = 0; i < c.data.size(); ++i)
      if (!std::isnan(c.data[i])) c.data[i] = c.data[i] > 0 ? 1.0f : 0.0f;
    testing::StoredView y = testing::random_stored_view(rng, sizes, false);
    Dev da(a.data), db(b.data), dc(c.data);
    SCOPED_TRACE("shape " + y.shape.str() + " a " + a.shape.str() + " b " + b.shape.str());
    for (int op = 0; op < kUnaryCount; ++op) {
      const Unary u = Unary(op);
      const double p0 = u == Unary::pow_scalar ? double(rng.integer(-2, 3)) : rng.uniform(-1, 1), p1 = p0 + 1;
      Dev dy(y.data);
      cuda::unary(u, p0, p1, a.shape, da.ptr(), y.shape, dy.ptr());
      const std::vector<float> got = dy.download(y.data.size());
      std::vector<float> want(y.data.size(), kNaN);
      unary_ref<float>(u, p0, p1, a.shape, a.data.data(), y.shape, want.data());
      ASSERT_TRUE(all_near(got, want, tol)) << unary_name(u);
    }
    for (int op = 0; op < kBinaryCount; ++op) {
      const Binary g = Binary(op);
      Dev dy(y.data);
      cuda::binary(g, a.shape, da.ptr(), b.shape, db.ptr(), y.shape, dy.ptr());
      std::vector<float> want(y.data.size(), kNaN);
      binary_ref<float>(g, a.shape, a.data.data(), b.shape, b.data.data(), y.shape, want.data());
      ASSERT_TRUE(all_near(dy.download(y.data.size()), want, tol)) << binary_name(g);
    }
    Dev dy(y.data);
    cuda::where(c.shape, dc.ptr(), a.shape, da.ptr(), b.shape, db.ptr(), y.shape, dy.ptr());
    std::vector<float> want(y.data.size(), kNaN);
    where_ref<float>(c.shape, c.data.data(), a.shape, a.data.data(), b.shape, b.data.data(), y.shape, want.data());
    ASSERT_TRUE(all_near(dy.download(y.data.size()), want, 0.0)) << "where";
  }
}

TEST(CudaOps, ElementwiseInPlaceAndFill) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  std::vector<float> x = testing::random_vec<float>(rng, 1001);
  const Shape s({1001});
  Dev d(x);
  cuda::unary(Unary::mul_scalar, 3.0, 0, s, d.ptr(), s, d.ptr());  // in place
  std::vector<float> got = d.download(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], x[i] * 3.0f);
  cuda::unary(Unary::fill, 2.5, 0, s, nullptr, s, d.ptr());
  got = d.download(x.size());
  for (float v : got) ASSERT_EQ(v, 2.5f);
}

// ---- reductions ----

TEST(CudaOps, ReduceMatchesTheReferenceOnEveryShapeIncludingLongRuns) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  struct Case {
    index_t outer, n, inner;
  };
  std::vector<Case> cases = {{1, 0, 1},     {3, 0, 5},      {0, 7, 3},      {1, 1, 1},     {1, 100000, 1},
                             {1, 300000, 3}, {2, 5000, 1},   {1000, 10, 1},  {7, 33, 257},  {1, 1024, 256},
                             {1, 65536, 40}, {3, 9000, 1},   {40000, 3, 1},  {2, 2, 70000}, {1, 5, 1}};
  for (int i = 0; i < 12; ++i) cases.push_back({rng.integer(1, 40), rng.integer(0, 3000), rng.integer(1, 70)});
  for (const Case& c : cases)
    for (int kind = 0; kind < 3; ++kind) {
      const Reduce r = Reduce(kind);
      // A random layout of (outer, n, inner) with padding: inner innermost or n innermost.
      const bool n_inner = rng.coin();
      const index_t pad = rng.integer(0, 2);
      index_t xs_i, xs_n, xs_o;
      if (n_inner) {
        xs_n = 1, xs_i = c.n + pad, xs_o = xs_i * std::max<index_t>(c.inner, 1) + pad;
      } else {
        xs_i = 1, xs_n = c.inner + pad, xs_o = xs_n * std::max<index_t>(c.n, 1) + pad;
      }
      const index_t extent = c.outer * xs_o + 1;
      std::vector<float> x(std::size_t(extent), kNaN);
      for (index_t o = 0; o < c.outer; ++o)
        for (index_t k = 0; k < c.n; ++k)
          for (index_t i = 0; i < c.inner; ++i) x[std::size_t(o * xs_o + k * xs_n + i * xs_i)] = float(rng.uniform(-1, 2));
      const index_t ys_i = rng.coin() ? 1 : c.outer, ys_o = ys_i == 1 ? c.inner : 1;
      const std::size_t ny = std::size_t(c.outer * c.inner) + 1;
      std::vector<float> want(ny, kNaN);
      reduce_ref<float>(r, c.outer, c.n, c.inner, x.data(), xs_o, xs_n, xs_i, want.data(), ys_o, ys_i);
      Dev dx(x), dy(std::vector<float>(ny, kNaN));
      cuda::reduce(r, c.outer, c.n, c.inner, dx.ptr(), xs_o, xs_n, xs_i, dy.ptr(), ys_o, ys_i);
      const std::vector<float> got = dy.download(ny);
      // Max is one of the inputs: exact. Sums accumulate in double: the exact value rounded
      // once to float (the double sum's own error, n 2^-53 sum |x|, is far below): 1e-6
      // relative, plus 2e-7 n absolute for sums that cancel (|x| <= 2).
      for (std::size_t k = 0; k < ny; ++k) {
        const double scale = r == Reduce::max ? 0.0 : (r == Reduce::sum ? double(c.n) * 2 : 2.0);
        const bool ok = std::isnan(want[k]) ? std::isnan(got[k])
                        : std::isinf(want[k]) || r == Reduce::max ? got[k] == want[k]
                                              : std::fabs(double(got[k]) - want[k]) <= 1e-6 * (std::fabs(want[k]) + scale * 1e-1);
        ASSERT_TRUE(ok) << reduce_name(r) << " (" << c.outer << ", " << c.n << ", " << c.inner << ") n_inner "
                        << n_inner << " at " << k << ": got " << got[k] << ", want " << want[k];
      }
    }
}

TEST(CudaOps, ReduceMaxAndSumPropagateNaN) {
  TG_REQUIRE_GPU();
  std::vector<float> x(20000, 1.0f);
  x[12345] = kNaN;
  Dev dx(x), dy(std::vector<float>(2, 0.0f));
  for (Reduce r : {Reduce::sum, Reduce::max}) {
    cuda::reduce(r, 1, 20000, 1, dx.ptr(), 0, 1, 1, dy.ptr(), 1, 1);
    EXPECT_TRUE(std::isnan(dy.download(1)[0])) << reduce_name(r);
  }
}

// ---- random, dropout ----

TEST(CudaOps, RandomAndDropoutGiveTheCpuBits) {
  TG_REQUIRE_GPU();
  const index_t n = 100003;
  for (Random kind : {Random::uniform, Random::normal}) {
    std::vector<float> want(static_cast<std::size_t>(n));
    random_ref<float>(kind, n, want.data(), -1.5, 2.0, 1234, 77);
    Dev d(std::vector<float>(std::size_t(n), kNaN));
    cuda::random(kind, n, d.ptr(), -1.5, 2.0, 1234, 77);
    // uniform: exact (the same double expression); normal: the device's log and cos in
    // double differ from glibc's by an ulp of double at most, far below float rounding.
    EXPECT_TRUE(all_near(d.download(std::size_t(n)), want, kind == Random::uniform ? 0.0 : 1e-6));
  }
  TG_TEST_RNG(rng);
  const std::vector<float> x = testing::random_vec<float>(rng, n);
  std::vector<float> want(static_cast<std::size_t>(n));
  dropout_ref<float>(n, x.data(), want.data(), 0.3, 99, 5);
  Dev dx(x), dy(std::vector<float>(std::size_t(n), kNaN));
  cuda::dropout(n, dx.ptr(), dy.ptr(), 0.3, 99, 5);
  EXPECT_TRUE(all_near(dy.download(std::size_t(n)), want, 0.0));
}

// ---- optimizers ----

// Also with live scalars (the rate and Adam's count read from device memory, the host's
// values poisoned): a replayed graph's step.
TEST(CudaOps, SgdAndAdamMatchTheReferenceOverManySlots) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  for (int which = 0; which < 10; ++which) {
    const bool live = which >= 5;
    const testing::OptimizerCase t(rng, which % 5, 20000);
    std::vector<Dev> dp, dg, dm, dv;
    for (std::size_t k = 0; k < t.sizes.size(); ++k)
      dp.emplace_back(t.p[k]), dg.emplace_back(t.g[k]), dm.emplace_back(t.m[k]), dv.emplace_back(t.v[k]);
    const std::vector<ParamSlot<float>> dev = t.slots(dp.data(), dg.data(), dm.data(), dv.data());
    Dev scalars(std::vector<float>{float(t.is_sgd() ? t.sgd.lr : t.adam.lr), float(t.adam.step)});
    SgdConfig sc = t.sgd;
    AdamConfig ac = t.adam;
    if (live) sc.lr = ac.lr = std::nan(""), ac.step = 0, sc.live = ac.live = scalars.ptr();
    if (t.is_sgd()) cuda::sgd_step(sc, dev);
    else cuda::adam_step(ac, dev);
    for (std::size_t k = 0; k < t.sizes.size(); ++k) {
      const std::size_t n = std::size_t(t.sizes[k]);
      t.check(k, dp[k].download(n), dm[k].download(n), dv[k].download(n));
    }
  }
}

TEST(CudaOps, SmallShapesOfEveryOpForTheSanitizer) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  // One call of each kernel on odd tiny shapes: compute-sanitizer (scripts/gpu-check)
  // runs this test under memcheck and racecheck.
  const std::vector<float> x = testing::random_vec<float>(rng, 7 * 13);
  Dev dx(x), dy(std::vector<float>(7 * 13, kNaN)), small(std::vector<float>(13, kNaN)), stats(std::vector<float>(14, kNaN));
  const index_t sizes[] = {7, 13}, transposed[] = {1, 7}, row_broadcast[] = {0, 1};
  const Shape s(sizes), t(sizes, transposed), b(sizes, row_broadcast);
  cuda::unary(Unary::exp, 0, 0, t, dx.ptr(), s, dy.ptr());
  cuda::binary(Binary::add, s, dx.ptr(), b, dx.ptr(), s, dy.ptr());
  cuda::reduce(Reduce::sum, 1, 7, 13, dx.ptr(), 0, 13, 1, small.ptr(), 0, 1);
  cuda::reduce(Reduce::max, 7, 13, 1, dx.ptr(), 13, 1, 1, small.ptr(), 1, 1);
  cuda::layer_norm_forward(7, 13, dx.ptr(), 13, nullptr, nullptr, 1e-5f, dy.ptr(), 13, stats.ptr(), stats.ptr() + 7);
  cuda::layer_norm_backward(7, 13, dx.ptr(), 13, dx.ptr(), 13, nullptr, stats.ptr(), stats.ptr() + 7, 1e-5f, dy.ptr(), 13,
                            small.ptr(), nullptr);
  DevIdx target(std::vector<index_t>{0, 3, 12, -100, 5, 6, 1});
  cuda::cross_entropy_forward(7, 13, dx.ptr(), 13, target.ptr(), -100, 0.1, small.ptr(), small.ptr() + 7);
  cuda::cross_entropy_backward(7, 13, dx.ptr(), 13, target.ptr(), -100, 0.1, small.ptr() + 7, small.ptr(), dy.ptr(), 13);
  cuda::synchronize();
  for (float v : dy.download(7 * 13)) EXPECT_TRUE(std::isfinite(v));

  // Fused attention forward and backward (B 1, 2 query heads over 1 kv head, 33 queries,
  // 65 keys, head dim 64, causal: partial tiles, skipped tiles, grouped heads).
  AttentionDims d;
  d.batch = 1, d.heads = 2, d.kv_heads = 1, d.seq_q = 33, d.seq_k = 65, d.head_dim = 64;
  const index_t nq = 2 * 33 * 64, nk = 65 * 64;
  Dev q(testing::random_vec<float>(rng, nq)), k(testing::random_vec<float>(rng, nk)), v(testing::random_vec<float>(rng, nk));
  Dev o(std::vector<float>(std::size_t(nq), kNaN)), lse(std::vector<float>(66, kNaN));
  Dev d_o(testing::random_vec<float>(rng, nq)), dq(std::vector<float>(std::size_t(nq), kNaN));
  Dev dk(std::vector<float>(std::size_t(nk), kNaN)), dv(std::vector<float>(std::size_t(nk), kNaN));
  AttentionForwardArgs<float> fa;
  fa.dims = d, fa.scale = 0.125f, fa.causal = true;
  fa.q = {q.ptr(), 2 * 33 * 64, 33 * 64, 64, 1}, fa.k = {k.ptr(), nk, nk, 64, 1}, fa.v = {v.ptr(), nk, nk, 64, 1};
  fa.o = {o.ptr(), 2 * 33 * 64, 33 * 64, 64, 1}, fa.lse = lse.ptr();
  cuda::attention_forward(fa);
  AttentionBackwardArgs<float> ba;
  ba.dims = d, ba.scale = fa.scale, ba.causal = true, ba.q = fa.q, ba.k = fa.k, ba.v = fa.v;
  ba.o = {o.ptr(), 2 * 33 * 64, 33 * 64, 64, 1}, ba.lse = lse.ptr();
  ba.d_o = {d_o.ptr(), 2 * 33 * 64, 33 * 64, 64, 1}, ba.dq = {dq.ptr(), 2 * 33 * 64, 33 * 64, 64, 1};
  ba.dk = {dk.ptr(), nk, nk, 64, 1}, ba.dv = {dv.ptr(), nk, nk, 64, 1};
  cuda::attention_backward(ba);
  // The bf16 tensor-core forward and backward on the same shape (their own bf16 copies).
  Buffer q16(std::size_t(nq) * 2, Device::cuda(0)), k16(std::size_t(nk) * 2, Device::cuda(0));
  Buffer v16(std::size_t(nk) * 2, Device::cuda(0)), o16(std::size_t(nq) * 2, Device::cuda(0));
  const index_t dense[] = {nq}, dense_k[] = {nk};
  cuda::convert(DType::f32, DType::bf16, Shape(dense), q.ptr(), q16.data());
  cuda::convert(DType::f32, DType::bf16, Shape(dense_k), k.ptr(), k16.data());
  cuda::convert(DType::f32, DType::bf16, Shape(dense_k), v.ptr(), v16.data());
  AttentionForwardArgs<bfloat16> fb;
  fb.dims = d, fb.scale = 0.125f, fb.causal = true;
  fb.q = {q16.as<bfloat16>(), 2 * 33 * 64, 33 * 64, 64, 1}, fb.k = {k16.as<bfloat16>(), nk, nk, 64, 1};
  fb.v = {v16.as<bfloat16>(), nk, nk, 64, 1}, fb.o = {o16.as<bfloat16>(), 2 * 33 * 64, 33 * 64, 64, 1};
  cuda::attention_forward_bf16(fb, lse.ptr());
  if (cuda::half_gemm_wgmma_available()) cuda::attention_forward_bf16(fb, lse.ptr(), cuda::AttentionForwardPath::wgmma);
  Buffer g16(std::size_t(nq) * 2, Device::cuda(0)), dq16(std::size_t(nq) * 2, Device::cuda(0));
  Buffer dk16(std::size_t(nk) * 2, Device::cuda(0)), dv16(std::size_t(nk) * 2, Device::cuda(0));
  cuda::convert(DType::f32, DType::bf16, Shape(dense), d_o.ptr(), g16.data());
  AttentionBackwardArgs<bfloat16> bb;
  bb.dims = d, bb.scale = fb.scale, bb.causal = true, bb.q = fb.q, bb.k = fb.k, bb.v = fb.v;
  bb.o = {o16.as<bfloat16>(), 2 * 33 * 64, 33 * 64, 64, 1}, bb.d_o = {g16.as<bfloat16>(), 2 * 33 * 64, 33 * 64, 64, 1};
  bb.dq = {dq16.as<bfloat16>(), 2 * 33 * 64, 33 * 64, 64, 1}, bb.dk = {dk16.as<bfloat16>(), nk, nk, 64, 1};
  bb.dv = {dv16.as<bfloat16>(), nk, nk, 64, 1};
  cuda::attention_backward_bf16(bb, lse.ptr());
  cuda::attention_backward_bf16(bb, lse.ptr(), cuda::AttentionBackwardPath::atomic_dq);
  // A strided f32 -> bf16 conversion and a 16-bit copy (Tensor::to, contiguous()).
  Buffer h16(7 * 13 * 2, Device::cuda(0)), c16(7 * 13 * 2, Device::cuda(0));
  cuda::convert(DType::f32, DType::bf16, t, dx.ptr(), h16.data());
  cuda::convert(DType::bf16, DType::bf16, Shape(sizes, transposed), h16.data(), c16.data());
  cuda::synchronize();
  for (Dev* out : {&o, &dq}) {
    for (float f : out->download(std::size_t(nq))) EXPECT_TRUE(std::isfinite(f));
  }
  for (Dev* out : {&dk, &dv}) {
    for (float f : out->download(std::size_t(nk))) EXPECT_TRUE(std::isfinite(f));
  }
}

}  // namespace
}  // namespace tg
