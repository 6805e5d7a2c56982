// The CUDA SGEMM (cuda/gemm.cu), every kernel configuration, against the double-precision reference on random shapes
// (sizes 1 to 600, odd ones among them; small C with K up to 5000 for split-K), all four transposes, alpha and beta, the bias +
// activation epilogue, leading dimensions that keep the 128-bit path or force the
// scalar one, C poisoned with NaN when beta == 0. Runs where a GPU exists; skips
// elsewhere with the reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/peers/peers.hpp"
#include "tilegrad/cuda/gemm.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/half.hpp"
#include "tilegrad/kernels/gemm.hpp"
#include "tests/support/device_vec.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using testing::DeviceVec;

TEST(CudaGemm, MatchesTheReferenceOnRandomShapesTransposesAndEpilogues) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  const index_t sizes[] = {1, 2, 7, 33, 64, 127, 128, 129, 200, 256, 300, 517};
  const Act acts[] = {Act::none, Act::relu, Act::leaky_relu, Act::gelu_erf, Act::gelu_tanh, Act::silu, Act::sigmoid,
                      Act::tanh};
  for (int rep = 0; rep < 72; ++rep) {
    index_t M = sizes[rng.integer(0, 11)], N = sizes[rng.integer(0, 11)];
    index_t K = rep % 10 == 0 ? rng.integer(500, 600) : sizes[rng.integer(0, 11)];
    if (rep >= 60) {  // few tiles of C, a long K: the split-K path (a weight gradient's shape)
      M = rng.integer(1, 200), N = rng.integer(1, 300), K = rng.integer(1024, 5000);
    }
    const Trans ta = rng.coin() ? Trans::T : Trans::N, tb = rng.coin() ? Trans::T : Trans::N;
    // Padding by a multiple of 4 keeps rows 16-byte aligned (the vector path); by 1-3 forces scalar loads.
    auto ld_for = [&](index_t cols) { return cols + (rng.coin() ? 4 * rng.integer(0, 2) : rng.integer(1, 3)); };
    const index_t lda = ld_for(ta == Trans::N ? K : M), ldb = ld_for(tb == Trans::N ? N : K), ldc = ld_for(N);
    const std::vector<float> a = testing::random_vec<float>(rng, (ta == Trans::N ? M : K) * lda);
    const std::vector<float> b = testing::random_vec<float>(rng, (tb == Trans::N ? K : N) * ldb);
    const std::vector<float> bias = testing::random_vec<float>(rng, N);
    const float alpha = rep % 3 == 0 ? 1.0f : float(rng.uniform(-2, 2));
    const float beta = rep % 4 == 0 ? float(rng.uniform(-1, 1)) : 0.0f;
    std::vector<float> c = beta == 0 ? std::vector<float>(std::size_t(M * ldc), testing::kPoison<float>)
                                     : testing::random_vec<float>(rng, M * ldc);
    const bool with_bias = rng.coin();
    const Activation act{acts[rng.integer(0, 7)], 0.1f};
    // Reference in double, on the same numbers.
    std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end()), want(c.begin(), c.end()), biasd(bias.begin(), bias.end());
    gemm_ref<double>(ta, tb, M, N, K, alpha, ad.data(), lda, bd.data(), ldb, beta, want.data(), ldc,
                     GemmEpilogue<double>{with_bias ? biasd.data() : nullptr, act});
    DeviceVec da(a), db(b), dbias(bias);
    for (int kernel = 0; kernel < cuda::kGemmKernels; ++kernel) {  // every configuration
      DeviceVec dc(c);
      cuda::gemm(ta, tb, M, N, K, alpha, da.ptr(), lda, db.ptr(), ldb, beta, dc.ptr(), ldc,
                 GemmEpilogue<float>{with_bias ? dbias.ptr() : nullptr, act}, cuda::GemmKernel(kernel));
      const std::vector<float> got = dc.download(c.size());
      const std::string what = std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) +
                               (ta == Trans::T ? " T" : " N") + (tb == Trans::T ? "T" : "N") + " lda " + std::to_string(lda) +
                               " ldb " + std::to_string(ldb) + " ldc " + std::to_string(ldc) + " alpha " +
                               std::to_string(alpha) + " beta " + std::to_string(beta) + " " + act_name(act.kind) +
                               (with_bias ? " +bias" : "") + " " +
                               cuda::gemm_kernel_name(cuda::GemmKernel(kernel));
      EXPECT_TRUE(testing::rel_close(got.data(), ldc, want.data(), ldc, M, N, 1e-5 * std::sqrt(double(K) + 1) + 1e-5))
          << what;
      EXPECT_TRUE(testing::pads_untouched(got, c, M, N, ldc)) << what;
    }
  }
}

// auto's table: tile64 where 128 x 128 tiles, split-K's slices counted, cover fewer than
// half the SMs; tile128 where they cover more (an H100 / H200: 132 SMs).
TEST(CudaGemm, AutoTakesTheSmallTilesWhereBigOnesLeaveSmsIdle) {
  TG_REQUIRE_GPU();
  if (std::getenv("TG_CUDA_GEMM_KERNEL")) GTEST_SKIP() << "TG_CUDA_GEMM_KERNEL forces one configuration";
  if (cuda::device_info(0).sm_count < 100) GTEST_SKIP() << "the shapes below are chosen for 132 SMs";
  EXPECT_EQ(cuda::gemm_kernel_for(1024, 256, 784), cuda::GemmKernel::tile64);    // 16 tiles of 128
  EXPECT_EQ(cuda::gemm_kernel_for(256, 784, 1024), cuda::GemmKernel::tile64);    // 14 tiles x 2 slices
  EXPECT_EQ(cuda::gemm_kernel_for(1024, 256, 4096), cuda::GemmKernel::tile128);  // 16 x 8 slices
  EXPECT_EQ(cuda::gemm_kernel_for(8192, 256, 784), cuda::GemmKernel::tile128);   // 128 tiles
  EXPECT_EQ(cuda::gemm_kernel_for(8192, 8192, 64), cuda::GemmKernel::tile128);   // 4096 tiles
}

TEST(CudaGemm, KZeroAndAlphaZeroGiveBetaCPlusBias) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  const index_t M = 37, N = 19;
  const std::vector<float> c0 = testing::random_vec<float>(rng, M * N), bias = testing::random_vec<float>(rng, N);
  DeviceVec dc(c0), dbias(bias), dummy(std::vector<float>(4, 1.0f));
  cuda::gemm(Trans::N, Trans::N, M, N, 0, 1.0f, dummy.ptr(), 1, dummy.ptr(), N, 0.5f, dc.ptr(), N,
             GemmEpilogue<float>{dbias.ptr(), {}});
  const std::vector<float> got = dc.download(c0.size());
  for (index_t i = 0; i < M; ++i)
    for (index_t j = 0; j < N; ++j)
      EXPECT_FLOAT_EQ(got[std::size_t(i * N + j)], 0.5f * c0[std::size_t(i * N + j)] + bias[std::size_t(j)]);
}

// TF32 tensor cores: the same contract with inputs rounded to 10-bit mantissas. Each
// rounding errs by at most 2^-11 relative, so a product by ~2^-10 and, with random signs,
// C by about 2^-11 sqrt(2) ~ 7e-4 relative norm whatever K: the bound is 3e-3 (docs/design.md:
// tensor-core paths between 1e-3 and 1e-2). The largest error seen is recorded.
TEST(CudaGemm, Tf32MatchesTheReferenceWithinItsRounding) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  double worst = 0;
  const index_t sizes[] = {1, 7, 33, 128, 129, 300, 517};
  for (int rep = 0; rep < 24; ++rep) {
    const index_t M = sizes[rng.integer(0, 6)], N = sizes[rng.integer(0, 6)], K = rep % 4 == 0 ? 2048 : sizes[rng.integer(0, 6)];
    const Trans ta = rng.coin() ? Trans::T : Trans::N, tb = rng.coin() ? Trans::T : Trans::N;
    const index_t lda = (ta == Trans::N ? K : M) + (rng.coin() ? 0 : 3), ldb = (tb == Trans::N ? N : K) + (rng.coin() ? 0 : 4);
    const std::vector<float> a = testing::random_vec<float>(rng, (ta == Trans::N ? M : K) * lda);
    const std::vector<float> b = testing::random_vec<float>(rng, (tb == Trans::N ? K : N) * ldb);
    const std::vector<float> bias = testing::random_vec<float>(rng, N);
    const Activation act{rep % 3 == 0 ? Act::relu : Act::none};
    std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end()), biasd(bias.begin(), bias.end()),
        want(std::size_t(M * N));
    gemm_ref<double>(ta, tb, M, N, K, 1.0, ad.data(), lda, bd.data(), ldb, 0.0, want.data(), N,
                     GemmEpilogue<double>{biasd.data(), act});
    DeviceVec da(a), db(b), dbias(bias), dc(std::vector<float>(std::size_t(M * N), testing::kPoison<float>));
    cuda::gemm_tf32(ta, tb, M, N, K, 1.0f, da.ptr(), lda, db.ptr(), ldb, 0.0f, dc.ptr(), N,
                    GemmEpilogue<float>{dbias.ptr(), act});
    const std::vector<float> got = dc.download(std::size_t(M * N));
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_FALSE(std::isnan(got[i])) << "NaN at " << i;
    const double err = testing::relative_error(got, want);
    worst = std::max(worst, err);
    EXPECT_LT(err, 3e-3) << M << "x" << N << "x" << K << (ta == Trans::T ? " T" : " N") << (tb == Trans::T ? "T" : "N");
  }
  RecordProperty("tf32_worst_relative_error", std::to_string(worst));
  std::printf("TF32 GEMM: worst relative norm error %.2e over 24 shapes (FP32: ~1e-7)\n", worst);
}

// TF32 on the Hopper kernel (A and B along k: ta N, tb T), where the device has it. The
// tensor cores truncate the inputs to TF32 (2^-10 relative at worst, twice the rounding's
// error): the same 3e-3 bound. Alpha, beta and the bias on some shapes.
TEST(CudaGemm, Tf32OnTheHopperPathMatchesTheReference) {
  TG_REQUIRE_GPU();
  if (!cuda::half_gemm_wgmma_available()) GTEST_SKIP() << "no compute capability 9.0 device with the sm_90a kernel";
  TG_TEST_RNG(rng);
  double worst = 0;
  const index_t sizes[] = {1, 7, 33, 128, 129, 300, 517};
  for (int rep = 0; rep < 16; ++rep) {
    // Each of the Hopper kernel's steps in turn: 1 (128 x 128), 2 (128 x 256,
    // warp-specialized), 3 (clusters of two sharing B by multicast), 4 (persistent).
    const cuda::HalfGemmPath path = rep % 4 == 0   ? cuda::HalfGemmPath::wgmma_128x128
                                    : rep % 4 == 1 ? cuda::HalfGemmPath::wgmma_128x256
                                    : rep % 4 == 2 ? cuda::HalfGemmPath::wgmma_cluster
                                                   : cuda::HalfGemmPath::wgmma;
    const index_t M = sizes[rng.integer(0, 6)], N = sizes[rng.integer(0, 6)], K = rep % 4 == 0 ? 2048 : sizes[rng.integer(0, 6)];
    const index_t lda = (K + 3) / 4 * 4 + 4 * rng.integer(0, 1), ldb = (K + 3) / 4 * 4;
    const std::vector<float> a = testing::random_vec<float>(rng, M * lda), b = testing::random_vec<float>(rng, N * ldb);
    const std::vector<float> bias = testing::random_vec<float>(rng, N);
    const bool acc = rep % 3 == 1;
    const std::vector<float> c0 = acc ? testing::random_vec<float>(rng, M * N)
                                      : std::vector<float>(std::size_t(M * N), testing::kPoison<float>);
    const Activation act{rep % 3 == 0 ? Act::relu : Act::none};
    std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end()), biasd(bias.begin(), bias.end()), want(c0.size());
    for (std::size_t i = 0; i < want.size(); ++i) want[i] = acc ? double(c0[i]) : 0.0;
    const float alpha = acc ? 0.5f : 1.0f, beta = acc ? 2.0f : 0.0f;
    gemm_ref<double>(Trans::N, Trans::T, M, N, K, alpha, ad.data(), lda, bd.data(), ldb, beta, want.data(), N,
                     GemmEpilogue<double>{biasd.data(), act});
    DeviceVec da(a), db(b), dbias(bias), dc(c0);
    cuda::gemm_tf32(Trans::N, Trans::T, M, N, K, alpha, da.ptr(), lda, db.ptr(), ldb, beta, dc.ptr(), N,
                    GemmEpilogue<float>{dbias.ptr(), act}, path);
    const std::vector<float> got = dc.download(std::size_t(M * N));
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_FALSE(std::isnan(got[i])) << "NaN at " << i;
    const double err = testing::relative_error(got, want);
    worst = std::max(worst, err);
    EXPECT_LT(err, 3e-3) << M << "x" << N << "x" << K;
  }
  RecordProperty("tf32_wgmma_worst_relative_error", std::to_string(worst));
  std::printf("TF32 GEMM (wgmma): worst relative norm error %.2e over 16 shapes\n", worst);
}

// BF16 and F16 tensor cores, C = act(alpha A B^T + beta C + bias). The 16-bit inputs are
// exact in the reference (decoded to double: kernels/half.hpp, checked against the
// formats' definitions in test_amp), and a product of two is exact in FP32, so the only
// error is FP32 accumulation: the SGEMM's bound. Against the float inputs before
// rounding (2^-9 relative each for bf16, 2^-12 for f16) the error is ~3e-3 / ~4e-4:
// bound 1e-2 (docs/design.md).
// `path`: the kernel (cuda/gemm.hpp); the wgmma path needs rows padded to 8 elements.
void check_half_gemm(testing::Rng& rng, bool f16, cuda::HalfGemmPath path) {
  const bool hopper = path == cuda::HalfGemmPath::wgmma || path == cuda::HalfGemmPath::wgmma_128x128 ||
                      path == cuda::HalfGemmPath::wgmma_128x256 || path == cuda::HalfGemmPath::wgmma_cluster;
  double worst_vs_float = 0;
  const index_t sizes[] = {1, 7, 33, 128, 129, 300, 517};
  for (int rep = 0; rep < 24; ++rep) {
    const index_t M = sizes[rng.integer(0, 6)], N = sizes[rng.integer(0, 6)];
    const index_t K = rep % 4 == 0 ? 2048 : rep % 4 == 1 ? rng.integer(1, 70) : sizes[rng.integer(0, 6)];
    // Rows padded to a multiple of 8 keep the cp.async path; an odd padding forces 2-byte loads.
    const index_t lda = K + (hopper || rng.coin() ? (8 - K % 8) % 8 + 8 * rng.integer(0, 1) : 3);
    const index_t ldb = K + (hopper || rng.coin() ? (8 - K % 8) % 8 : 1);
    const std::vector<float> af = testing::random_vec<float>(rng, M * lda), bf = testing::random_vec<float>(rng, N * ldb);
    const testing::Rounded16 ar = testing::round16(af, f16), br = testing::round16(bf, f16);
    const std::vector<std::uint16_t>&a = ar.bits, &b = br.bits;
    const std::vector<double>&ad = ar.values, &bd = br.values;
    const std::vector<double> af64(af.begin(), af.end()), bf64(bf.begin(), bf.end());
    const std::vector<float> bias = testing::random_vec<float>(rng, N);
    std::vector<double> biasd(bias.begin(), bias.end()), want(std::size_t(M * N)), want_float(std::size_t(M * N));
    const Activation act{rep % 3 == 0 ? Act::relu : Act::none};
    // Every fifth shape accumulates into C (alpha 0.75, beta 0.5); the others overwrite a
    // NaN-poisoned C, which beta == 0 must never read.
    const bool acc = rep % 5 == 2;
    const float alpha = acc ? 0.75f : 1.0f, beta = acc ? 0.5f : 0.0f;
    const std::vector<float> c0 = acc ? testing::random_vec<float>(rng, M * N)
                                      : std::vector<float>(std::size_t(M * N), testing::kPoison<float>);
    for (std::size_t i = 0; i < want.size(); ++i) want[i] = want_float[i] = acc ? double(c0[i]) : 0.0;
    gemm_ref<double>(Trans::N, Trans::T, M, N, K, alpha, ad.data(), lda, bd.data(), ldb, beta, want.data(), N,
                     GemmEpilogue<double>{biasd.data(), act});
    gemm_ref<double>(Trans::N, Trans::T, M, N, K, alpha, af64.data(), lda, bf64.data(), ldb, beta, want_float.data(), N,
                     GemmEpilogue<double>{biasd.data(), act});
    Buffer da(a.size() * 2, Device::cuda(0)), db(b.size() * 2, Device::cuda(0));
    cuda::copy_bytes(da.data(), true, a.data(), false, a.size() * 2);
    cuda::copy_bytes(db.data(), true, b.data(), false, b.size() * 2);
    DeviceVec dbias(bias), dc(c0);
    using Gemm16 = void (*)(index_t, index_t, index_t, float, const std::uint16_t*, index_t, const std::uint16_t*,
                            index_t, float, float*, index_t, const GemmEpilogue<float>&, cuda::HalfGemmPath);
    const Gemm16 gemm16 = f16 ? Gemm16(&cuda::gemm_f16) : Gemm16(&cuda::gemm_bf16);
    gemm16(M, N, K, alpha, da.as<std::uint16_t>(), lda, db.as<std::uint16_t>(), ldb, beta, dc.ptr(), N,
           GemmEpilogue<float>{dbias.ptr(), act}, path);
    const std::vector<float> got = dc.download(std::size_t(M * N));
    const std::string what = std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + " lda " +
                             std::to_string(lda) + " ldb " + std::to_string(ldb);
    EXPECT_TRUE(testing::rel_close(got, want, 1e-5 * std::sqrt(double(K) + 1) + 1e-5)) << what;
    const double err = testing::relative_error(got, want_float);
    worst_vs_float = std::max(worst_vs_float, err);
    EXPECT_LT(err, 1e-2) << what << " against the unrounded inputs";
  }
  ::testing::Test::RecordProperty(f16 ? "f16_worst_relative_error_vs_fp32_inputs" : "bf16_worst_relative_error_vs_fp32_inputs",
                                  std::to_string(worst_vs_float));
  std::printf("%s GEMM (%s): worst relative norm error against the FP32 inputs %.2e\n", f16 ? "F16" : "BF16",
              path == cuda::HalfGemmPath::wgmma_128x128   ? "wgmma 128x128"
              : path == cuda::HalfGemmPath::wgmma_128x256 ? "wgmma 128x256"
              : path == cuda::HalfGemmPath::wgmma_cluster ? "wgmma cluster"
              : hopper                                   ? "wgmma"
              : path == cuda::HalfGemmPath::mma_sync_ring ? "mma.sync ring"
                                                         : "mma.sync",
              worst_vs_float);
}

TEST(CudaGemm, Bf16MatchesTheReferenceOnItsRoundedInputs) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  check_half_gemm(rng, false, cuda::HalfGemmPath::mma_sync);
}

TEST(CudaGemm, F16MatchesTheReferenceOnItsRoundedInputs) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  check_half_gemm(rng, true, cuda::HalfGemmPath::mma_sync);
}

// The ring configuration (3 cp.async stages, ldmatrix) on the same shapes, both dtypes.
TEST(CudaGemm, TheRingConfigurationMatchesTheReference) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  check_half_gemm(rng, false, cuda::HalfGemmPath::mma_sync_ring);
  check_half_gemm(rng, true, cuda::HalfGemmPath::mma_sync_ring);
}

// The 16-bit GEMMs in every transpose (the ring kernel reads k-major operands by
// ldmatrix.trans; (N, T) goes the usual way): against the double reference on the
// rounded inputs, the FP32 bound, NaN-poisoned C with beta 0.
TEST(CudaGemm, HalfGemmsTakeEveryTranspose) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  const index_t sizes[] = {1, 7, 33, 128, 129, 300};
  for (int rep = 0; rep < 32; ++rep) {
    const bool f16 = rep % 2 == 1, ta = rep / 2 % 2 == 1, tb = rep / 4 % 2 == 1;
    const index_t M = sizes[rng.integer(0, 5)], N = sizes[rng.integer(0, 5)], K = rep >= 24 ? 1000 : sizes[rng.integer(0, 5)];
    auto ld_for = [&](index_t cols) { return cols + (rng.coin() ? (8 - cols % 8) % 8 : 3); };
    const index_t lda = ld_for(ta ? M : K), ldb = ld_for(tb ? K : N);
    const testing::Rounded16 a = testing::round16(testing::random_vec<float>(rng, (ta ? K : M) * lda), f16);
    const testing::Rounded16 b = testing::round16(testing::random_vec<float>(rng, (tb ? N : K) * ldb), f16);
    std::vector<double> want(std::size_t(M * N), 0.0);
    gemm_ref<double>(ta ? Trans::T : Trans::N, tb ? Trans::T : Trans::N, M, N, K, 1.0, a.values.data(), lda,
                     b.values.data(), ldb, 0.0, want.data(), N);
    Buffer da(a.bits.size() * 2, Device::cuda(0)), db(b.bits.size() * 2, Device::cuda(0));
    cuda::copy_bytes(da.data(), true, a.bits.data(), false, a.bits.size() * 2);
    cuda::copy_bytes(db.data(), true, b.bits.data(), false, b.bits.size() * 2);
    DeviceVec dc(std::vector<float>(std::size_t(M * N), testing::kPoison<float>));
    const Trans opa = ta ? Trans::T : Trans::N, opb = tb ? Trans::T : Trans::N;
    if (f16) cuda::gemm_f16(opa, opb, M, N, K, 1.0f, da.as<std::uint16_t>(), lda, db.as<std::uint16_t>(), ldb, 0.0f, dc.ptr(), N);
    else cuda::gemm_bf16(opa, opb, M, N, K, 1.0f, da.as<std::uint16_t>(), lda, db.as<std::uint16_t>(), ldb, 0.0f, dc.ptr(), N);
    EXPECT_TRUE(testing::rel_close(dc.download(std::size_t(M * N)), want, 1e-5 * std::sqrt(double(K) + 1) + 1e-5))
        << (f16 ? "f16 " : "bf16 ") << M << "x" << N << "x" << K << (ta ? " T" : " N") << (tb ? "T" : "N");
  }
}

// The Hopper kernel (wgmma, TMA) on the same shapes, where the device has it; elsewhere,
// and for layouts it does not take, asking for it is a tg::Error naming the path.
TEST(CudaGemm, TheHopperPathMatchesTheReferenceOrSaysWhyNot) {
  TG_REQUIRE_GPU();
  Buffer a(64 * 2, Device::cuda(0)), b(64 * 2, Device::cuda(0)), c(16 * 4, Device::cuda(0));
  auto odd_lda = [&] {
    cuda::gemm_bf16(4, 4, 7, 1.0f, a.as<std::uint16_t>(), 7, b.as<std::uint16_t>(), 8, 0.0f, c.as<float>(), 4, {},
                    cuda::HalfGemmPath::wgmma);
  };
  try {
    odd_lda();
    FAIL() << "expected tg::Error for lda 7 on the wgmma path";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("path"), std::string::npos) << e.what();
  }
  if (!cuda::half_gemm_wgmma_available()) GTEST_SKIP() << "no compute capability 9.0 device with the sm_90a kernel";
  TG_TEST_RNG(rng);
  for (cuda::HalfGemmPath path : {cuda::HalfGemmPath::wgmma, cuda::HalfGemmPath::wgmma_cluster,
                                  cuda::HalfGemmPath::wgmma_128x256, cuda::HalfGemmPath::wgmma_128x128}) {
    check_half_gemm(rng, false, path);
    check_half_gemm(rng, true, path);
  }
}

// The benchmarks' fused peer (cublasLt RELU_BIAS) computes what our epilogue does:
// checked here so that its rows compare like with like.
TEST(CudaGemm, TheCublasLtLinearPeerMatchesTheReference) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  for (int rep = 0; rep < 4; ++rep) {
    const index_t M = rng.integer(1, 300), N = rng.integer(1, 200), K = rng.integer(1, 400);
    const std::vector<float> a = testing::random_vec<float>(rng, M * K), b = testing::random_vec<float>(rng, N * K);
    const std::vector<float> bias = testing::random_vec<float>(rng, N);
    std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end()), biasd(bias.begin(), bias.end()),
        want(std::size_t(M * N));
    gemm_ref<double>(Trans::N, Trans::T, M, N, K, 1.0, ad.data(), K, bd.data(), K, 0.0, want.data(), N,
                     GemmEpilogue<double>{biasd.data(), Activation{Act::relu}});
    DeviceVec da(a), db(b), dbias(bias), dc(std::vector<float>(std::size_t(M * N), testing::kPoison<float>));
    if (!peers::cublaslt_linear_relu(M, N, K, da.ptr(), db.ptr(), dbias.ptr(), dc.ptr()))
      GTEST_SKIP() << "cublasLt is not in this build or rejected the problem";
    // FP32 accumulation over K terms: the GEMM bound of the reference tests.
    EXPECT_TRUE(testing::rel_close(dc.download(std::size_t(M * N)), want, 1e-5 * std::sqrt(double(K) + 1) + 1e-5));
  }
}

TEST(CudaGemm, BadArgumentsAreAClearError) {
  // Checked before any device is touched: runs everywhere.
  std::vector<float> a(16), b(16), c(16);
  try {
    cuda::gemm(Trans::N, Trans::N, 4, 4, 4, 1.0f, a.data(), 2, b.data(), 4, 0.0f, c.data(), 4);
    ADD_FAILURE() << "lda 2 < K 4 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lda"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tg
