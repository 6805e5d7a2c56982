// The CUDA activations and softmax (cuda/kernels.cu) against the double references:
// every activation forward and backward with and without bias on random strided shapes
// (aligned rows for the 128-bit path, odd ones for the scalar path) and on +-inf and NaN;
// softmax and log_softmax forward and backward on rows of 1 to 50001 columns (the
// register, shared-memory and two-pass kernels) with the special rows of kernels/softmax.hpp.
// Outputs poisoned with NaN. Runs where a GPU exists; skips elsewhere.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "tilegrad/cuda/kernels.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/activation.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tilegrad/kernels/softmax.hpp"
#include "tests/support/device_vec.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

#define TG_REQUIRE_GPU()                                                             \
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device: " << cuda::unavailable_reason()

constexpr float kInf = std::numeric_limits<float>::infinity();

using Dev = testing::DeviceVec;


TEST(CudaKernels, ActivationsMatchTheReference) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  const Act acts[] = {Act::none, Act::relu, Act::leaky_relu, Act::gelu_erf, Act::gelu_tanh, Act::silu, Act::sigmoid, Act::tanh};
  for (Act a : acts)
    for (int rep = 0; rep < 6; ++rep) {
      const index_t rows = rng.integer(1, 40), cols = rep % 2 ? 4 * rng.integer(1, 100) : rng.integer(1, 333);
      const index_t ld = cols + (rep % 3 == 0 ? 0 : rep % 3 == 1 ? 4 : rng.integer(1, 3));
      std::vector<float> x = testing::random_vec<float>(rng, rows * ld, -6, 6), dy = testing::random_vec<float>(rng, rows * ld);
      const std::vector<float> bias = testing::random_vec<float>(rng, cols);
      if (rep == 0) {  // special values in the first row
        const float special[] = {kInf, -kInf, std::numeric_limits<float>::quiet_NaN(), 0.0f, -0.0f, 30.0f, -30.0f};
        for (index_t j = 0; j < std::min<index_t>(cols, 7); ++j) x[std::size_t(j)] = special[j];
      }
      const bool with_bias = rep >= 3;
      const Activation act{a, 0.1f};
      std::vector<double> xd(x.begin(), x.end()), dyd(dy.begin(), dy.end()), bd(bias.begin(), bias.end());
      std::vector<double> want(x.size(), testing::kPoison<double>), dwant(x.size(), testing::kPoison<double>);
      act_forward_ref<double>(act, rows, cols, xd.data(), ld, with_bias ? bd.data() : nullptr, want.data(), ld);
      act_backward_ref<double>(act, rows, cols, xd.data(), ld, with_bias ? bd.data() : nullptr, dyd.data(), ld,
                               dwant.data(), ld);
      Dev dx(x), dg(dy), db(bias), dout(std::vector<float>(x.size(), testing::kPoison<float>)),
          dgrad(std::vector<float>(x.size(), testing::kPoison<float>));
      cuda::act_forward(act, rows, cols, dx.ptr(), ld, with_bias ? db.ptr() : nullptr, dout.ptr(), ld);
      cuda::act_backward(act, rows, cols, dx.ptr(), ld, with_bias ? db.ptr() : nullptr, dg.ptr(), ld, dgrad.ptr(), ld);
      const std::string what = std::string(act_name(a)) + " " + std::to_string(rows) + "x" + std::to_string(cols) +
                               " ld " + std::to_string(ld) + (with_bias ? " +bias" : "");
      EXPECT_TRUE(testing::elementwise_close(dout.download(x.size()), want, rows, cols, ld, 2e-6)) << what << " forward";
      EXPECT_TRUE(testing::elementwise_close(dgrad.download(x.size()), dwant, rows, cols, ld, 1e-5)) << what << " backward";
    }
}

// Softmax and log_softmax, forward and backward, on `rows` x cols for each of `col_sizes`,
// with a fully masked row, a row with +inf, a NaN row and one masked entry.
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
TEST(CudaKernels, SoftmaxMatchesTheReferenceIncludingSpecialRows) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  const index_t col_sizes[] = {1, 7, 33, 1000, 1024, 1025, 5000, 9000, 20000, 40000, 50001};
  check_softmax(rng, col_sizes, 5, 20);
}

// Rows past the clusters' shared memory (the two-pass fallback: backward from ~232K
// columns, forward from ~464K), and more rows than the grid has clusters (each loops).
TEST(CudaKernels, SoftmaxLongRowsAndManyRows) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  const index_t long_rows[] = {240000, 500000};
  check_softmax(rng, long_rows, 5, 8);
  const index_t many_rows[] = {1500};
  check_softmax(rng, many_rows, 6000, 7000);
}

}  // namespace
}  // namespace tg
