// The layer norm kernels (cuda/layer_norm.cuh), their own source, run on the CPU by the
// SIMT emulator (tests/simt), launched by the same host-side plan as on the GPU (ln_plan,
// with_ln_regs), against the double reference with the GPU test's bounds
// (test_cuda_layer_norm): forward and backward at every register width of the warp and
// block kernels and in the three-pass kernels, dgamma and dbeta through the reductions'
// column kernel. Outputs NaN-poisoned.
#include "tests/simt/simt.hpp"
// The kernels, compiled for the host against the emulator.
#include "tilegrad/cuda/layer_norm.cuh"
#include "tilegrad/cuda/reduce.cuh"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tests/support/op_cases.hpp"
#include "tests/support/simt_launch.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using testing::launch;

namespace lk = cuda::layer_norm_kernels;
namespace rk = cuda::reduce_kernels;
constexpr float kNaN = testing::kPoison<float>;

// One case through the kernels as cuda::layer_norm_forward and _backward choose them
// (with_ln_regs, ln_blocks), then dgamma and dbeta through the reductions' column kernel,
// against the case's double reference. Outputs poisoned.
void check_case(testing::Rng& rng, const testing::LayerNormCase& t) {
  const index_t rows = t.rows, cols = t.cols, ldx = t.ldx, ldy = t.ldy;
  SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(cols) + (t.affine ? " affine" : ""));
  const float *x = t.x.ptr(), *dy = t.dy.ptr(), *g = t.g(), *b = t.b();
  auto y = testing::poisoned_mat<float>(rows, cols, ldy);
  std::vector<float> mean(std::size_t(rows), kNaN), rstd(std::size_t(rows), kNaN);
  const int r = int(rows), c = int(cols);
  auto fwd = [&]<int kGroup, int kPer>() {
    launch({lk::ln_blocks(kGroup, rows), 1, 1}, 256, 1,
           [&] { lk::ln_fwd_regs<kGroup, kPer>(r, c, x, ldx, g, b, t.eps, y.ptr(), ldy, mean.data(), rstd.data()); });
  };
  if (!lk::with_ln_regs(c, fwd))
    launch({unsigned(rows), 1, 1}, 256, 1,
           [&] { lk::ln_fwd_block(c, x, ldx, g, b, t.eps, y.ptr(), ldy, mean.data(), rstd.data()); });
  t.check_forward(y, mean, rstd);

  auto dx = testing::poisoned_mat<float>(rows, cols, ldx);
  auto bwd = [&]<int kGroup, int kPer>() {
    launch({lk::ln_blocks(kGroup, rows), 1, 1}, 256, 1,
           [&] { lk::ln_bwd_regs<kGroup, kPer>(r, c, x, ldx, dy, ldy, g, mean.data(), rstd.data(), dx.ptr(), ldx); });
  };
  if (!lk::with_ln_regs(c, bwd))
    launch({unsigned(rows), 1, 1}, 256, 1,
           [&] { lk::ln_bwd_block(c, x, ldx, dy, ldy, g, mean.data(), rstd.data(), dx.ptr(), ldx); });
  std::vector<float> dgamma(std::size_t(cols), kNaN), dbeta(std::size_t(cols), kNaN);
  const int sms = rng.coin() ? 2 : 132;
  testing::emulate_reduce<rk::SumOp>(false, 1, rows, cols, lk::DGammaLoader{x, dy, mean.data(), rstd.data(), ldx, ldy},
                                     dgamma.data(), 0, 1, sms);
  testing::emulate_reduce<rk::SumOp>(false, 1, rows, cols, rk::ViewLoader{dy, 0, ldy, 1}, dbeta.data(), 0, 1, sms);
  t.check_backward(dx, dgamma, dbeta);
}

TEST(SimtLayerNorm, LayerNormForwardAndBackwardMatchTheReference) {
  TG_TEST_RNG(rng);
  // Every register width of the warp kernels, the block-per-row register kernels (1025-8192
  // columns: 8, 16, 32 values per thread) and the three-pass kernels past 8192.
  const index_t widths[] = {1, 7, 32, 33, 64, 100, 128, 257, 512, 1000, 1024, 1025, 2048, 3000, 4097, 8192, 9000};
  for (index_t cols : widths)
    for (bool affine : {true, false}) check_case(rng, testing::LayerNormCase(rng, cols, affine, 20));
}

// Rows of finite values past ~1e19, whose (x - mean)^2 overflows float: the warp, the
// block-register and the three-pass kernels normalize them as the double reference does
// (their float statistics gave an infinite variance, rstd 0 and outputs 0), as the CPU
// kernels do, forward, backward, dgamma and dbeta.
TEST(SimtLayerNorm, RowsOfHugeFiniteValuesNormalize) {
  TG_TEST_RNG(rng);
  for (const index_t cols : {index_t(3), index_t(64), index_t(1000), index_t(3000), index_t(9000)})
    for (bool affine : {true, false}) check_case(rng, testing::LayerNormCase(rng, cols, affine, 6, /*huge=*/true));
}

}  // namespace
}  // namespace tg
