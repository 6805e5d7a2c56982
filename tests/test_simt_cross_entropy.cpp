// The cross-entropy kernels (cuda/cross_entropy.cuh), their own source, run on the CPU
// by the SIMT emulator (tests/simt), against the double reference with the GPU test's
// bounds (test_cuda_cross_entropy): the warp and block forward kernels with ignored rows,
// smoothing and a bad target, the backward, the count of kept targets. Grids smaller
// than the work, so that the grid-stride loops go round. Outputs NaN-poisoned.
#include "tests/simt/simt.hpp"
// The kernels, compiled for the host against the emulator.
#include "tilegrad/cuda/cross_entropy.cuh"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "tests/support/op_cases.hpp"
#include "tests/support/simt_launch.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using testing::launch;
using testing::small_grid;

namespace ck = cuda::cross_entropy_kernels;
using ck::i64;
constexpr float kNaN = testing::kPoison<float>;

TEST(SimtCrossEntropy, CrossEntropyMatchesTheReferenceWithIgnoredRowsSmoothingAndABadTarget) {
  TG_TEST_RNG(rng);
  const index_t class_counts[] = {1, 2, 10, 33, 1000, 1024, 1025, 3000};
  for (index_t classes : class_counts)
    for (double smoothing : {0.0, 0.1}) {
      const testing::CrossEntropyCase t(rng, classes, smoothing, 2, 20);
      const index_t rows = t.rows, ld = t.ld, ignore = t.kIgnore;
      SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(classes) + " smoothing " + std::to_string(smoothing));
      // A bad target: NaN for its row's loss only (its lse stays; the kernel cannot throw).
      std::vector<index_t> target = t.target;
      const index_t bad_row = rng.integer(0, rows - 1);
      target[std::size_t(bad_row)] = classes + 3;
      std::vector<float> loss(std::size_t(rows), kNaN), lse(2 * std::size_t(rows), kNaN);  // (max, log sum) pairs
      const int r = int(rows), c = int(classes);
      const float sm = float(smoothing);
      if (classes <= 1024)
        launch({unsigned((rows + 7) / 8), 1, 1}, 256, 1,
               [&] { ck::ce_fwd<32>(r, c, t.z.ptr(), ld, target.data(), ignore, sm, loss.data(), lse.data()); });
      else
        launch({unsigned(rows), 1, 1}, 256, 1,
               [&] { ck::ce_fwd<256>(r, c, t.z.ptr(), ld, target.data(), ignore, sm, loss.data(), lse.data()); });
      EXPECT_TRUE(std::isnan(loss[std::size_t(bad_row)]));
      loss[std::size_t(bad_row)] = t.loss_ref[std::size_t(bad_row)];  // the rest against the reference
      t.check_forward(loss, lse);

      auto dz = testing::poisoned_mat<float>(rows, classes, ld);
      launch(small_grid(rows * classes), 64, 1, [&] {
        ck::ce_bwd(r, c, t.z.ptr(), ld, t.target.data(), ignore, sm, lse.data(), t.up.data(), dz.ptr(), ld);
      });
      t.check_backward(dz);

      float count = kNaN;
      launch({1, 1, 1}, 1024, 1, [&] { ck::count_kernel(rows, t.target.data(), ignore, &count); });
      EXPECT_EQ(count, float(t.kept));
    }
}

}  // namespace
}  // namespace tg
