// The activation kernels (cuda/activation.cuh), their own source, run on the CPU by the
// SIMT emulator (tests/simt), against the double references with the GPU test's bounds
// (test_cuda_activation): forward and backward in both kernels (16-byte and scalar), with
// and without a bias, special values. Outputs and padding NaN-poisoned.
#include "tests/simt/simt.hpp"
// The kernels, compiled for the host against the emulator.
#include "tilegrad/cuda/activation.cuh"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tilegrad/kernels/activation.hpp"
#include "tests/support/simt_launch.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using testing::launch;

namespace ak = cuda::activation_kernels;
constexpr float kInf = std::numeric_limits<float>::infinity();


TEST(SimtActivation, ActivationsMatchTheReferenceInBothKernels) {
  TG_TEST_RNG(rng);
  const Act acts[] = {Act::none, Act::relu, Act::leaky_relu, Act::gelu_erf, Act::gelu_tanh, Act::silu, Act::sigmoid, Act::tanh};
  for (Act a : acts)
    for (int rep = 0; rep < 4; ++rep) {
      const bool vec = rep % 2 == 1, with_bias = rep >= 2;
      const index_t rows = rng.integer(1, 9), cols = vec ? 4 * rng.integer(1, 40) : rng.integer(1, 150);
      const index_t ld = vec ? cols + 4 * rng.integer(0, 1) : cols + rng.integer(0, 3);
      std::vector<float> x = testing::random_vec<float>(rng, rows * ld, -6, 6), dy = testing::random_vec<float>(rng, rows * ld);
      const std::vector<float> bias = testing::random_vec<float>(rng, cols);
      const float special[] = {kInf, -kInf, std::numeric_limits<float>::quiet_NaN(), 0.0f, -0.0f, 30.0f, -30.0f};
      for (index_t j = 0; j < std::min<index_t>(cols, 7); ++j) x[std::size_t(j)] = special[j];
      const Activation act{a, 0.1f};
      std::vector<double> xd(x.begin(), x.end()), dyd(dy.begin(), dy.end()), bd(bias.begin(), bias.end());
      std::vector<double> want(x.size()), dwant(x.size());
      act_forward_ref<double>(act, rows, cols, xd.data(), ld, with_bias ? bd.data() : nullptr, want.data(), ld);
      act_backward_ref<double>(act, rows, cols, xd.data(), ld, with_bias ? bd.data() : nullptr, dyd.data(), ld,
                               dwant.data(), ld);
      std::vector<float> y(x.size(), std::nanf("")), dx(x.size(), std::nanf(""));
      const float* b = with_bias ? bias.data() : nullptr;
      // A grid smaller than the work in both directions: the grid-stride loops go round.
      const unsigned gx = 2, gy = unsigned(std::min<index_t>(rows, 3));
      for (bool backward : {false, true}) {
        float* out = backward ? dx.data() : y.data();
        std::function<void()> k;
        if (vec && backward) k = [&] { ak::act_vec4<true>(a, 0.1f, int(rows), cols, x.data(), ld, b, dy.data(), ld, out, ld); };
        else if (vec) k = [&] { ak::act_vec4<false>(a, 0.1f, int(rows), cols, x.data(), ld, b, nullptr, 0, out, ld); };
        else if (backward) k = [&] { ak::act_scalar<true>(a, 0.1f, int(rows), cols, x.data(), ld, b, dy.data(), ld, out, ld); };
        else k = [&] { ak::act_scalar<false>(a, 0.1f, int(rows), cols, x.data(), ld, b, nullptr, 0, out, ld); };
        launch(gx, gy, 64, 0, k);
      }
      const std::string what = std::string(act_name(a)) + " " + std::to_string(rows) + "x" + std::to_string(cols) +
                               " ld " + std::to_string(ld) + (vec ? " vec4" : " scalar") + (with_bias ? " +bias" : "");
      EXPECT_TRUE(testing::elementwise_close(y, want, rows, cols, ld, 2e-6)) << what << " forward";
      EXPECT_TRUE(testing::elementwise_close(dx, dwant, rows, cols, ld, 1e-5)) << what << " backward";
    }
}

}  // namespace
}  // namespace tg
