// The CUDA softmax and log_softmax (cuda/softmax.cu) against the double references:
// forward and backward on rows of 1 to 50001 columns (the register, cluster and
// block-per-row kernels) with the special rows of kernels/softmax.hpp. Outputs poisoned
// with NaN. Runs where a GPU exists; skips elsewhere.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/cuda/softmax.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tilegrad/kernels/softmax.hpp"
#include "tests/support/device_vec.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

using Dev = testing::DeviceVec;

void check_softmax(testing::Rng& rng, std::span<const index_t> col_sizes, index_t min_rows, index_t max_rows) {
  for (bool log : {false, true})
    for (index_t cols : col_sizes) {
      const index_t rows = rng.integer(min_rows, max_rows), ld = cols + rng.integer(0, 3);
      std::vector<float> x = testing::random_vec<float>(rng, rows * ld, -8, 8), dy = testing::random_vec<float>(rng, rows * ld);
      for (index_t j = 0; j < cols; ++j) x[std::size_t(0 * ld + j)] = -kInf;  // a fully masked row
      x[std::size_t(1 * ld)] = kInf;                                          // +inf takes the mass
      if (cols > 2) x[std::size_t(1 * ld + cols - 1)] = kInf;
      x[std::size_t(2 * ld + cols / 2)] = std::numeric_limits<float>::quiet_NaN();  // a NaN row
      x[std::size_t(3 * ld + cols / 3)] = -kInf;                                    // one masked entry
      std::vector<double> xd(x.begin(), x.end()), dyd(dy.begin(), dy.end());
      std::vector<double> want(x.size(), testing::kPoison<double>), dwant(x.size(), testing::kPoison<double>);
      if (log) log_softmax_forward_ref<double>(rows, cols, xd.data(), ld, want.data(), ld);
      else softmax_forward_ref<double>(rows, cols, xd.data(), ld, want.data(), ld);
      Dev dx(x), dout(std::vector<float>(x.size(), testing::kPoison<float>));
      cuda::softmax_forward(log, rows, cols, dx.ptr(), ld, dout.ptr(), ld);
      const std::vector<float> y = dout.download(x.size());
      const std::string what = std::string(log ? "log_softmax " : "softmax ") + std::to_string(rows) + "x" + std::to_string(cols);
      EXPECT_TRUE(testing::elementwise_close(y, want, rows, cols, ld, 1e-5)) << what << " forward";
      // Backward from the kernel's own y, against the reference on the same y (rows 3..: ordinary).
      std::vector<double> yd(y.begin(), y.end());
      if (log) log_softmax_backward_ref<double>(rows, cols, yd.data(), ld, dyd.data(), ld, dwant.data(), ld);
      else softmax_backward_ref<double>(rows, cols, yd.data(), ld, dyd.data(), ld, dwant.data(), ld);
      Dev dyv(y), dgv(dy), dgrad(std::vector<float>(x.size(), testing::kPoison<float>));
      cuda::softmax_backward(log, rows, cols, dyv.ptr(), ld, dgv.ptr(), ld, dgrad.ptr(), ld);
      std::vector<float> g = dgrad.download(x.size());
      EXPECT_TRUE(testing::elementwise_close(g, dwant, rows, cols, ld, 1e-4)) << what << " backward";
    }
}

// Warp rows (<= 1024) and clusters of 1, 2, 4 and 8 blocks (the forward and the
// backward cut rows differently). compute-sanitizer runs this one.
TEST(CudaSoftmax, SoftmaxMatchesTheReferenceIncludingSpecialRows) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  const index_t col_sizes[] = {1, 7, 33, 1000, 1024, 1025, 5000, 9000, 20000, 40000, 50001};
  check_softmax(rng, col_sizes, 5, 20);
}

// Rows past the clusters' shared memory (the two-pass fallback: backward from ~232K
// columns, forward from ~464K), and more rows than the grid has clusters (each loops).
TEST(CudaSoftmax, SoftmaxLongRowsAndManyRows) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  const index_t long_rows[] = {240000, 500000};
  check_softmax(rng, long_rows, 5, 8);
  const index_t many_rows[] = {1500};
  check_softmax(rng, many_rows, 6000, 7000);
}

}  // namespace
}  // namespace tg
