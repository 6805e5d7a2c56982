// The Hopper GEMM kernels (cuda/gemm_wgmma.cuh: TMA copies into a 4-stage ring with
// mbarriers, wgmma from swizzled shared memory through matrix descriptors; step 1 with
// 128 x 128 tiles, step 2 with 128 x 256 tiles and a producer warpgroup feeding two
// consumers through full and empty barriers; step 3 in clusters of two sharing B by TMA
// multicast; step 4 on a persistent grid), their own source, run on the CPU by the SIMT emulator (tests/simt), with the tensor maps the host
// encodes (map_shape): bf16, f16 and TF32 against the double reference on the values the
// tensor cores read (16-bit roundings; TF32 truncated to its top 19 bits), with the FP32
// bound of the other GEMM tests, on shapes with edge tiles (the TMA's zero fill), k tails,
// and more k tiles than stages (the ring wraps, the barriers change parity), with alpha,
// beta, bias and activations, copies landing at the wait and at issue. What it cannot
// say: whether the hardware reads descriptors and swizzles as the emulator does (from
// the PTX ISA), and the speed; scripts/gpu-check settles both.
#include "tests/simt/simt.hpp"
// The kernel, compiled for the host against the emulator.
#include "tilegrad/cuda/gemm_wgmma.cuh"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tilegrad/kernels/gemm.hpp"
#include "tilegrad/kernels/half.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

namespace wd = cuda::detail;

// A rows x K operand as the kernel's TMA map describes it (cuda/gemm_wgmma.cu's make_map).
simt::TensorMap tensor_map(int kind, const void* m, int rows, int K, int ld, int box_rows) {
  const wd::MapShape shape = wd::map_shape(kind, rows, K, ld, box_rows);
  simt::TensorMap t;
  t.base = m, t.elem_bytes = shape.elem_bytes;
  t.dims[0] = (long long)shape.dims[0], t.dims[1] = (long long)shape.dims[1];
  t.row_bytes = (long long)shape.row_bytes;
  t.box[0] = int(shape.box[0]), t.box[1] = int(shape.box[1]);
  t.swizzle128 = true;
  return t;
}

// An operand of rows x K in rows of ld, with the values the tensor cores read: 16-bit
// roundings (bits), or floats whose low 13 mantissa bits TF32 ignores.
struct Operand {
  std::vector<std::uint16_t> bits;
  std::vector<float> floats;
  std::vector<double> values;
  const void* data() const { return bits.empty() ? static_cast<const void*>(floats.data()) : bits.data(); }
};
Operand make_operand(testing::Rng& rng, int kind, index_t rows, index_t ld) {
  const std::vector<float> v = testing::random_vec<float>(rng, rows * ld);
  Operand o;
  if (kind == wd::kTf32) {
    o.floats = v;
    for (float f : v) o.values.push_back(double(std::bit_cast<float>(std::bit_cast<std::uint32_t>(f) & ~0x1fffu)));
  } else {
    const testing::Rounded16 r = testing::round16(v, kind == wd::kF16);
    o.bits = r.bits, o.values = r.values;
  }
  return o;
}

TEST(SimtWgmma, HopperKernelMatchesTheReferenceOnWhatTheTensorCoresRead) {
  TG_TEST_RNG(rng);
  struct Case {
    int M, N, K;
  };
  // Edge tiles in M and N, k tails (the TMA zero-fills past K), one k tile, and 9-12 k
  // tiles (the 4-stage ring goes round: every barrier waits on both parities).
  // 1157 x 300: 10 x 2 tiles of 128 x 256, a partial group of step 2's rasterization.
  const Case cases[] = {{128, 128, 64}, {200, 130, 40}, {64, 300, 576}, {1, 1, 8},
                        {129, 7, 700},  {33, 257, 130}, {1157, 300, 64}};
  const Act acts[] = {Act::none, Act::relu, Act::gelu_tanh, Act::sigmoid};
  int rep = 0;
  for (int kind : {wd::kBf16, wd::kF16, wd::kTf32})
    for (const Case& c : cases) {
      ++rep;
      const int align = kind == wd::kTf32 ? 4 : 8;  // rows a multiple of 16 bytes (the TMA's strides)
      const int lda = (c.K + align - 1) / align * align + align * int(rng.integer(0, 1));
      const int ldb = (c.K + align - 1) / align * align + align * int(rng.integer(0, 1));
      const Operand a = make_operand(rng, kind, c.M, lda), b = make_operand(rng, kind, c.N, ldb);
      const int ldc = c.N + int(rng.integer(0, 3));
      const bool acc = rep % 3 == 1;
      const float alpha = acc ? 0.75f : 1.0f, beta = acc ? 0.5f : 0.0f;
      const std::vector<float> bias = testing::random_vec<float>(rng, c.N);
      const bool with_bias = rep % 2 == 0;
      const Activation act{acts[rep % 4]};
      std::vector<float> c0(std::size_t(c.M) * std::size_t(ldc), testing::kPoison<float>);
      if (acc)
        for (int i = 0; i < c.M; ++i)
          for (int j = 0; j < c.N; ++j) c0[std::size_t(i) * std::size_t(ldc) + std::size_t(j)] = float(rng.uniform(-1, 1));
      std::vector<double> want(c0.begin(), c0.end()), biasd(bias.begin(), bias.end());
      gemm_ref<double>(Trans::N, Trans::T, c.M, c.N, c.K, alpha, a.values.data(), lda, b.values.data(), ldb, beta,
                       want.data(), ldc, GemmEpilogue<double>{with_bias ? biasd.data() : nullptr, act});
      const simt::TensorMap map_a = tensor_map(kind, a.data(), c.M, c.K, lda, wd::kBM);
      // Step 1, step 2, step 3 (clusters of two sharing B by multicast), as
      // cuda/gemm_wgmma.cu launches them.
      for (int step : {1, 2, 3, 4})
      for (simt::CopyTiming timing : {simt::CopyTiming::at_wait, simt::CopyTiming::at_issue}) {
        const bool ws = step > 1;
        const int cluster = step >= 3 ? 2 : 1;
        const simt::TensorMap map_b = tensor_map(kind, b.data(), c.N, c.K, ldb, ws ? wd::kWsBN / cluster : wd::kBN);
        std::vector<float> out = c0;
        const wd::Epilogue e{out.data(), ldc, c.M, c.N, alpha, beta, with_bias ? bias.data() : nullptr, act.kind, 0.0f};
        std::function<void()> k;
        auto ws_kernel = [&]<int kCluster>() -> std::function<void()> {
          if (kind == wd::kBf16) return [&] { wd::gemm_wgmma_ws_128x256<wd::kBf16, kCluster>(map_a, map_b, c.K, e); };
          if (kind == wd::kF16) return [&] { wd::gemm_wgmma_ws_128x256<wd::kF16, kCluster>(map_a, map_b, c.K, e); };
          return [&] { wd::gemm_wgmma_ws_128x256<wd::kTf32, kCluster>(map_a, map_b, c.K, e); };
        };
        if (ws) k = cluster == 2 ? ws_kernel.operator()<2>() : ws_kernel.operator()<1>();
        else if (kind == wd::kBf16) k = [&] { wd::gemm_wgmma_128x128<wd::kBf16>(map_a, map_b, c.K, e); };
        else if (kind == wd::kF16) k = [&] { wd::gemm_wgmma_128x128<wd::kF16>(map_a, map_b, c.K, e); };
        else k = [&] { wd::gemm_wgmma_128x128<wd::kTf32>(map_a, map_b, c.K, e); };
        simt::set_copy_timing(timing);
        const unsigned tiles_m = unsigned((c.M + wd::kBM - 1) / wd::kBM);
        // Steps 2 and 3: a 1-D grid of a cluster per unit (grouped_tile places them); step
        // 4: persistent, 3 clusters (as if 6 SMs) looping over the units.
        const unsigned units = (tiles_m + cluster - 1) / cluster * unsigned((c.N + wd::kWsBN - 1) / wd::kWsBN);
        if (ws)
          simt::launch_clusters({(step == 4 ? std::min(units, 3u) : units) * unsigned(cluster), 1, 1}, unsigned(cluster),
                                {wd::kWsThreads, 1, 1}, wd::kWsSmemBytes, k);
        else
          simt::launch({unsigned((c.N + wd::kBN - 1) / wd::kBN), tiles_m, 1}, {wd::kThreads, 1, 1}, wd::kSmemBytes, k);
        simt::set_copy_timing(simt::CopyTiming::at_wait);
        const std::string what = std::string(kind == wd::kTf32 ? "tf32 " : kind == wd::kF16 ? "f16 " : "bf16 ") +
                                 "step " + std::to_string(step) + " " + std::to_string(c.M) + "x" +
                                 std::to_string(c.N) + "x" + std::to_string(c.K) +
                                 (timing == simt::CopyTiming::at_issue ? " copies at issue" : " copies at the wait");
        // The FP32 bound of the GEMM tests on the values the tensor cores read.
        EXPECT_TRUE(testing::rel_close(out.data(), ldc, want.data(), ldc, c.M, c.N, 1e-5 * std::sqrt(double(c.K) + 1) + 1e-5))
            << what;
        EXPECT_TRUE(testing::pads_untouched(out, c0, c.M, c.N, ldc)) << what;
      }
    }
}

// Step 2's rasterization visits every tile once, in range, whatever the grid's shape.
TEST(SimtWgmma, GroupedTilesCoverTheGridOnce) {
  for (int tiles_m : {1, 3, 8, 9, 17, 64})
    for (int tiles_n : {1, 2, 5, 32}) {
      std::vector<int> seen(std::size_t(tiles_m * tiles_n), 0);
      for (int id = 0; id < tiles_m * tiles_n; ++id) {
        const wd::TileIndex t = wd::grouped_tile(id, tiles_m, tiles_n);
        ASSERT_TRUE(t.m >= 0 && t.m < tiles_m && t.n >= 0 && t.n < tiles_n) << id;
        ++seen[std::size_t(t.m * tiles_n + t.n)];
      }
      for (int v : seen) ASSERT_EQ(v, 1) << tiles_m << " x " << tiles_n;
    }
}

}  // namespace
}  // namespace tg
