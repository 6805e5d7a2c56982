// The GEMM kernels (cuda/gemm.cuh), their own source, run on the CPU by the SIMT
// emulator (tests/simt): the FP32 SGEMM in its four configurations and four transposes,
// split-K with its reduction, the TF32 tensor-core kernel, and the 16-bit tensor-core
// kernels (two-stage and the ldmatrix ring) against the double reference, with the
// bounds of the GPU tests (test_cuda_gemm): FP32 1e-5 sqrt(K + 1) + 1e-5, TF32 3e-3,
// bf16/f16 the FP32 bound on the rounded inputs. Outputs are NaN-poisoned where beta is
// 0, and C's padding must come back untouched. What a GPU would add is speed, and the
// hardware's own semantics, which the emulator takes from the PTX ISA.
#include "tests/simt/simt.hpp"
// The kernels, compiled for the host against the emulator.
#include "tilegrad/cuda/gemm.cuh"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "tilegrad/kernels/gemm.hpp"
#include "tilegrad/kernels/half.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

namespace gk = cuda::gemmk;

simt::Dim3 tiles(int M, int N, unsigned slices = 1, int tile = gk::kBM) {
  return {unsigned((N + tile - 1) / tile), unsigned((M + tile - 1) / tile), slices};
}

// One FP32 SGEMM launch: configuration 0 tile128, 1 warp-tiled, 2 warp-tiled + cp.async,
// 3 tile64 (cuda::GemmKernel's numbers).
template <bool kTA, bool kTB>
void sgemm_launch(int config, const gk::Args& a, bool vec, unsigned slices) {
  const bool small = config == 3;
  const simt::Dim3 grid = tiles(a.M, a.N, slices, small ? gk::kBS : gk::kBM);
  const simt::Dim3 block{unsigned(small ? gk::kThreadsSmall : gk::kThreads), 1, 1};
  std::function<void()> k;
  if (config == 0) k = [&] { gk::sgemm_tiled<gk::kBM, kTA, kTB, false, false>(a, vec); };
  else if (config == 1) k = [&] { gk::sgemm_tiled<gk::kBM, kTA, kTB, true, false>(a, vec); };
  else if (config == 2) k = [&] { gk::sgemm_tiled<gk::kBM, kTA, kTB, true, true>(a, vec); };
  else k = [&] { gk::sgemm_tiled<gk::kBS, kTA, kTB, false, false>(a, vec); };
  simt::launch(grid, block, 0, k);
}
void sgemm(bool ta, bool tb, int config, const gk::Args& a, bool vec, unsigned slices) {
  if (!ta) tb ? sgemm_launch<false, true>(config, a, vec, slices) : sgemm_launch<false, false>(config, a, vec, slices);
  else tb ? sgemm_launch<true, true>(config, a, vec, slices) : sgemm_launch<true, false>(config, a, vec, slices);
}

// The FP32 kernels on random shapes, transposes, paddings and epilogues; every
// configuration the host may pick for the case (cp.async needs 16-byte rows and a
// natural operand), and split-K (partial products to a workspace, then reduce_slices)
// on a long K.
TEST(SimtGemm, Fp32KernelsMatchTheReferenceInEveryConfiguration) {
  TG_TEST_RNG(rng);
  const index_t sizes[] = {1, 7, 33, 128, 129, 200};
  const Act acts[] = {Act::none, Act::relu, Act::gelu_tanh, Act::sigmoid};
  for (int rep = 0; rep < 16; ++rep) {
    const index_t M = sizes[rng.integer(0, 5)], N = sizes[rng.integer(0, 5)];
    const index_t K = rep % 8 == 7 ? rng.integer(300, 400) : sizes[rng.integer(0, 5)];
    const bool ta = rng.coin(), tb = rng.coin(), split = rep % 4 == 3;
    auto ld_for = [&](index_t cols) { return cols + (rng.coin() ? 4 * rng.integer(0, 2) : rng.integer(1, 3)); };
    const index_t lda = ld_for(ta ? M : K), ldb = ld_for(tb ? K : N), ldc = split ? N : ld_for(N);
    const std::vector<float> a = testing::random_vec<float>(rng, (ta ? K : M) * lda);
    const std::vector<float> b = testing::random_vec<float>(rng, (tb ? N : K) * ldb);
    const std::vector<float> bias = testing::random_vec<float>(rng, N);
    const float alpha = rep % 3 == 0 ? 1.0f : float(rng.uniform(-2, 2)), beta = rep % 4 == 1 ? 0.5f : 0.0f;
    const std::vector<float> c0 = beta == 0 ? std::vector<float>(std::size_t(M * ldc), testing::kPoison<float>)
                                            : testing::random_vec<float>(rng, M * ldc);
    const Activation act{acts[rng.integer(0, 3)], 0.1f};
    std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end()), want(c0.begin(), c0.end()),
        biasd(bias.begin(), bias.end());
    gemm_ref<double>(ta ? Trans::T : Trans::N, tb ? Trans::T : Trans::N, M, N, K, alpha, ad.data(), lda, bd.data(), ldb,
                     beta, want.data(), ldc, GemmEpilogue<double>{biasd.data(), act});
    const bool aligned = lda % 4 == 0 && ldb % 4 == 0;  // vectors' data() is 16-byte aligned
    // Configurations 0-3; 4 is 2 again with the cp.async copies landing at issue (a
    // buffer refilled while another warp reads it would show).
    for (int config = 0; config < 5; ++config) {
      const bool vec = aligned && ldc % 4 == 0;
      if ((config == 2 || config == 4) && !(vec && (ta || !tb))) continue;  // the host runs config 1 instead
      simt::set_copy_timing(config == 4 ? simt::CopyTiming::at_issue : simt::CopyTiming::at_wait);
      const int kernel = config == 4 ? 2 : config;
      const std::string what = std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + (ta ? " T" : " N") +
                               (tb ? "T" : "N") + " lda " + std::to_string(lda) + " ldb " + std::to_string(ldb) +
                               " ldc " + std::to_string(ldc) + " config " + std::to_string(config) +
                               (split ? " split-K" : "") + " " + act_name(act.kind);
      SCOPED_TRACE(what);
      std::vector<float> c = c0;
      gk::Args args{int(M), int(N), int(K), alpha, beta, a.data(), int(lda), b.data(), int(ldb), c.data(), int(ldc),
                    bias.data(), act.kind, float(act.slope), 0};
      if (split) {  // as cuda::gemm does it: slices of K rounded to kBK, then the ordered sum
        const int slices_wanted = 3;
        gk::Args part = args;
        part.kslice = int((K + slices_wanted - 1) / slices_wanted + gk::kBK - 1) / gk::kBK * gk::kBK;
        const int slices = int((K + part.kslice - 1) / part.kslice);
        std::vector<float> ws(std::size_t(slices * M * N), testing::kPoison<float>);
        part.C = ws.data(), part.ldc = int(N), part.beta = 0.0f, part.bias = nullptr, part.act = Act::none;
        sgemm(ta, tb, kernel, part, aligned && N % 4 == 0, unsigned(slices));
        const unsigned blocks = unsigned((M * N + 255) / 256);
        simt::launch({blocks, 1, 1}, {256, 1, 1}, 0, [&] { gk::reduce_slices(args, ws.data(), slices); });
      } else {
        sgemm(ta, tb, kernel, args, vec, 1);
      }
      EXPECT_TRUE(testing::rel_close(c.data(), ldc, want.data(), ldc, M, N, 1e-5 * std::sqrt(double(K) + 1) + 1e-5));
      EXPECT_TRUE(testing::pads_untouched(c, c0, M, N, ldc));
    }
    simt::set_copy_timing(simt::CopyTiming::at_wait);
  }
  // K == 0: scale_c gives C = act(beta C + bias).
  const index_t M = 37, N = 19;
  const std::vector<float> c0 = testing::random_vec<float>(rng, M * N), bias = testing::random_vec<float>(rng, N);
  std::vector<float> c = c0;
  const gk::Args args{int(M), int(N), 0, 1.0f, 0.5f, nullptr, 1, nullptr, 1, c.data(), int(N), bias.data(), Act::none, 0, 0};
  simt::launch({unsigned((M * N + 255) / 256), 1, 1}, {256, 1, 1}, 0, [&] { gk::scale_c(args); });
  for (std::size_t i = 0; i < c.size(); ++i) EXPECT_FLOAT_EQ(c[i], 0.5f * c0[i] + bias[i % std::size_t(N)]) << i;
}

// TF32 tensor cores (mma m16n8k8, inputs rounded by cvt.rna): within 3e-3.
TEST(SimtGemm, Tf32KernelMatchesTheReferenceWithinItsRounding) {
  TG_TEST_RNG(rng);
  const index_t sizes[] = {1, 7, 33, 128, 129, 200};
  double worst = 0;
  for (int rep = 0; rep < 8; ++rep) {
    const index_t M = sizes[rng.integer(0, 5)], N = sizes[rng.integer(0, 5)], K = sizes[rng.integer(0, 5)];
    const bool ta = rng.coin(), tb = rng.coin();
    const index_t lda = (ta ? M : K) + (rng.coin() ? 0 : 3), ldb = (tb ? K : N) + (rng.coin() ? 0 : 4);
    const std::vector<float> a = testing::random_vec<float>(rng, (ta ? K : M) * lda);
    const std::vector<float> b = testing::random_vec<float>(rng, (tb ? N : K) * ldb);
    const std::vector<float> bias = testing::random_vec<float>(rng, N);
    std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end()), biasd(bias.begin(), bias.end()),
        want(std::size_t(M * N));
    const Activation act{rep % 3 == 0 ? Act::relu : Act::none};
    gemm_ref<double>(ta ? Trans::T : Trans::N, tb ? Trans::T : Trans::N, M, N, K, 1.0, ad.data(), lda, bd.data(), ldb,
                     0.0, want.data(), N, GemmEpilogue<double>{biasd.data(), act});
    std::vector<float> c(std::size_t(M * N), testing::kPoison<float>);
    const gk::Args args{int(M), int(N), int(K), 1.0f, 0.0f, a.data(), int(lda), b.data(), int(ldb), c.data(), int(N),
                        bias.data(), act.kind, 0, 0};
    const bool vec = lda % 4 == 0 && ldb % 4 == 0;
    std::function<void()> k;
    if (!ta) k = tb ? std::function<void()>([&] { gk::sgemm_tf32_128x128<false, true>(args, vec); })
                    : std::function<void()>([&] { gk::sgemm_tf32_128x128<false, false>(args, vec); });
    else k = tb ? std::function<void()>([&] { gk::sgemm_tf32_128x128<true, true>(args, vec); })
                : std::function<void()>([&] { gk::sgemm_tf32_128x128<true, false>(args, vec); });
    simt::launch(tiles(int(M), int(N)), {gk::kThreads, 1, 1}, 0, k);
    const double err = testing::relative_error(c, want);
    worst = std::max(worst, err);
    EXPECT_LT(err, 3e-3) << M << "x" << N << "x" << K << (ta ? " T" : " N") << (tb ? "T" : "N");
  }
  std::printf("emulated TF32 GEMM: worst relative norm error %.2e (bound 3e-3)\n", worst);
}

// The 16-bit tensor-core kernels, bf16 and f16, two-stage and ring: the FP32 bound on the
// rounded inputs, alpha/beta accumulation, bias and ReLU; rows padded to 8 (cp.async) or
// not (2-byte loads). The ring kernel also in the other three transposes (operands
// stored k-major, read by ldmatrix.trans).
TEST(SimtGemm, HalfKernelsMatchTheReferenceOnTheirRoundedInputs) {
  TG_TEST_RNG(rng);
  const index_t sizes[] = {1, 7, 33, 128, 129, 200};
  for (int rep = 0; rep < 24; ++rep) {
    // Reps 0-7: both kernels in (N, T) (A M x K, B N x K: the two-stage kernel's only
    // layout); 8-23: the ring kernel in each of the four layouts, both dtypes, twice.
    const bool f16 = rep % 2 == 1, ring = rep % 4 >= 2 || rep >= 8;
    const int layout = rep >= 8 ? rep / 2 % 4 : 2;
    const bool ta = layout & 1, tb = !(layout & 2) || rep < 8;
    const index_t M = sizes[rng.integer(0, 5)], N = sizes[rng.integer(0, 5)];
    const index_t K = rep % 8 == 7 ? 300 : rep % 8 == 1 ? rng.integer(1, 70) : sizes[rng.integer(0, 5)];
    auto ld_for = [&](index_t cols) { return cols + (rng.coin() ? (8 - cols % 8) % 8 + 8 * rng.integer(0, 1) : 3); };
    const index_t lda = ld_for(ta ? M : K), ldb = ld_for(tb ? K : N);
    const testing::Rounded16 a = testing::round16(testing::random_vec<float>(rng, (ta ? K : M) * lda), f16);
    const testing::Rounded16 b = testing::round16(testing::random_vec<float>(rng, (tb ? N : K) * ldb), f16);
    const std::vector<float> bias = testing::random_vec<float>(rng, N);
    const bool acc = rep % 5 == 2;
    const float alpha = acc ? 0.75f : 1.0f, beta = acc ? 0.5f : 0.0f;
    const std::vector<float> c0 = acc ? testing::random_vec<float>(rng, M * N)
                                      : std::vector<float>(std::size_t(M * N), testing::kPoison<float>);
    std::vector<double> biasd(bias.begin(), bias.end()), want(std::size_t(M * N));
    for (std::size_t i = 0; i < want.size(); ++i) want[i] = acc ? double(c0[i]) : 0.0;
    const Activation act{rep % 3 == 0 ? Act::relu : Act::none};
    gemm_ref<double>(ta ? Trans::T : Trans::N, tb ? Trans::T : Trans::N, M, N, K, alpha, a.values.data(), lda,
                     b.values.data(), ldb, beta, want.data(), N, GemmEpilogue<double>{biasd.data(), act});
    std::vector<float> c = c0;
    const gk::ArgsBf16 args{int(M), int(N), int(K), alpha, beta, a.bits.data(), int(lda), b.bits.data(), int(ldb), c.data(), int(N),
                            bias.data(), act.kind, 0, 0};
    const bool vec = lda % 8 == 0 && ldb % 8 == 0;
    std::function<void()> k;
    auto ring_kernel = [&]<bool kF16>() -> std::function<void()> {
      if (!ta) return tb ? std::function<void()>([&] { gk::gemm_half_ring_128x128<kF16, false, false>(args, vec); })
                         : std::function<void()>([&] { gk::gemm_half_ring_128x128<kF16, false, true>(args, vec); });
      return tb ? std::function<void()>([&] { gk::gemm_half_ring_128x128<kF16, true, false>(args, vec); })
                : std::function<void()>([&] { gk::gemm_half_ring_128x128<kF16, true, true>(args, vec); });
    };
    if (ring) k = f16 ? ring_kernel.operator()<true>() : ring_kernel.operator()<false>();
    else k = f16 ? std::function<void()>([&] { gk::gemm_half_128x128<true>(args, vec); })
                 : std::function<void()>([&] { gk::gemm_half_128x128<false>(args, vec); });
    const simt::Stats before = simt::stats();
    simt::launch(tiles(int(M), int(N)), {gk::kThreads, 1, 1}, ring ? gk::kRingBytes : 0, k);
    // The ring kernel's ldmatrix reads are free of bank conflicts (padded rows), in every
    // layout; the two-stage kernel reads 32-bit words and has none.
    const long long ldm = simt::stats().ldmatrix_instructions - before.ldmatrix_instructions;
    EXPECT_EQ(simt::stats().ldmatrix_phases - before.ldmatrix_phases, 4 * ldm) << "ldmatrix bank conflicts";
    if (ring && K > 0) {
      EXPECT_GT(ldm, 0);
    }
    EXPECT_TRUE(testing::rel_close(c, want, 1e-5 * std::sqrt(double(K) + 1) + 1e-5))
        << (f16 ? "f16 " : "bf16 ") << (ring ? "ring " : "") << M << "x" << N << "x" << K << (ta ? " T" : " N")
        << (tb ? "T" : "N") << " lda " << lda << " ldb " << ldb;
  }
}

}  // namespace
}  // namespace tg
