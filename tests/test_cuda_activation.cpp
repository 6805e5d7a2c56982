// The CUDA activations (cuda/activation.cu) against the double references: every
// activation forward and backward with and without bias on random strided shapes
// (aligned rows for the 128-bit path, odd ones for the scalar path) and on +-inf and NaN.
// Outputs poisoned with NaN. Runs where a GPU exists; skips elsewhere.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tilegrad/cuda/activation.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/activation.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tests/support/device_vec.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

using Dev = testing::DeviceVec;

TEST(CudaActivation, ActivationsMatchTheReference) {
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

}  // namespace
}  // namespace tg
