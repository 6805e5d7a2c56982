// The CUDA layer norm (cuda/layer_norm.cu) against the double reference of kernels/:
// forward and backward, with and without gamma and beta, on rows of 1 to 9000 columns
// (the warp, block-register and three-pass kernels), dgamma and dbeta. Outputs poisoned
// with NaN. Runs where a GPU exists; skips elsewhere.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tilegrad/cuda/layer_norm.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tests/support/device_vec.hpp"
#include "tests/support/op_cases.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using Dev = testing::DeviceVec;
constexpr float kNaN = testing::kPoison<float>;

TEST(CudaLayerNorm, LayerNormForwardAndBackwardMatchTheReference) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  const index_t widths[] = {1, 7, 32, 33, 100, 257, 512, 1000, 1024, 1025, 2048, 5000, 9000};
  for (index_t cols : widths)
    for (bool affine : {true, false}) {
      const testing::LayerNormCase t(rng, cols, affine, 70);
      const index_t rows = t.rows;
      SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(cols) + (affine ? " affine" : ""));
      Dev dxv(t.x.data), dyv(std::vector<float>(t.y_ref.data.size(), kNaN)), dg(t.gamma), db(t.beta);
      Dev dmean(std::vector<float>(std::size_t(rows), kNaN)), drstd(std::vector<float>(std::size_t(rows), kNaN));
      cuda::layer_norm_forward(rows, cols, dxv.ptr(), t.ldx, affine ? dg.ptr() : nullptr, affine ? db.ptr() : nullptr,
                               t.eps, dyv.ptr(), t.ldy, dmean.ptr(), drstd.ptr());
      testing::Mat<float> y(rows, cols, t.ldy);
      y.data = dyv.download(y.data.size());
      t.check_forward(y, dmean.download(std::size_t(rows)), drstd.download(std::size_t(rows)));

      Dev ddy(t.dy.data), ddx(std::vector<float>(t.dx_ref.data.size(), kNaN));
      Dev ddg(std::vector<float>(std::size_t(cols), kNaN)), ddb(std::vector<float>(std::size_t(cols), kNaN));
      cuda::layer_norm_backward(rows, cols, dxv.ptr(), t.ldx, ddy.ptr(), t.ldy, affine ? dg.ptr() : nullptr, dmean.ptr(),
                                drstd.ptr(), t.eps, ddx.ptr(), t.ldx, ddg.ptr(), ddb.ptr());
      testing::Mat<float> dx(rows, cols, t.ldx);
      dx.data = ddx.download(dx.data.size());
      t.check_backward(dx, ddg.download(std::size_t(cols)), ddb.download(std::size_t(cols)));
    }
}

// Rows of finite values past ~1e19, whose (x - mean)^2 overflows float, normalize as the
// double reference does in the warp, block-register and three-pass kernels (the float
// statistics gave rstd 0 and outputs 0): the emulator's test of the same source, on the GPU.
TEST(CudaLayerNorm, RowsOfHugeFiniteValuesNormalize) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  for (const index_t cols : {index_t(3), index_t(64), index_t(1000), index_t(3000), index_t(9000)}) {
    const testing::LayerNormCase t(rng, cols, false, 6, /*huge=*/true);
    const index_t rows = t.rows;
    SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(cols));
    Dev dxv(t.x.data), dyv(std::vector<float>(t.y_ref.data.size(), kNaN));
    Dev dmean(std::vector<float>(std::size_t(rows), kNaN)), drstd(std::vector<float>(std::size_t(rows), kNaN));
    cuda::layer_norm_forward(rows, cols, dxv.ptr(), t.ldx, nullptr, nullptr, t.eps, dyv.ptr(), t.ldy, dmean.ptr(),
                             drstd.ptr());
    testing::Mat<float> y(rows, cols, t.ldy);
    y.data = dyv.download(y.data.size());
    t.check_forward(y, dmean.download(std::size_t(rows)), drstd.download(std::size_t(rows)));
  }
}

}  // namespace
}  // namespace tg
