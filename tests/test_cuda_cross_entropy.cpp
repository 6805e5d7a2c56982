// The CUDA cross-entropy (cuda/cross_entropy.cu) against the double reference of
// kernels/: the fused loss and (max, log sum) pairs forward, the gradient backward and the
// count of kept targets, with ignored rows, label smoothing, 1 to 5000 classes (the warp
// and block kernels); a bad target NaN for its row only. Outputs poisoned with NaN. Runs
// where a GPU exists; skips elsewhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tilegrad/cuda/cross_entropy.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tests/support/device_vec.hpp"
#include "tests/support/op_cases.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using Dev = testing::DeviceVec;
constexpr float kNaN = testing::kPoison<float>;

using DevIdx = testing::DeviceIdx;

TEST(CudaCrossEntropy, CrossEntropyMatchesTheReferenceWithIgnoredRowsAndSmoothing) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  const index_t class_counts[] = {1, 2, 10, 33, 1000, 1024, 1025, 5000};
  for (index_t classes : class_counts)
    for (double smoothing : {0.0, 0.1}) {
      const testing::CrossEntropyCase t(rng, classes, smoothing, 1, 60);
      const index_t rows = t.rows, ignore = t.kIgnore;
      SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(classes) + " smoothing " + std::to_string(smoothing));
      Dev dz(t.z.data), dloss(std::vector<float>(std::size_t(rows), kNaN)), dlse(std::vector<float>(2 * std::size_t(rows), kNaN));
      DevIdx dt(t.target);
      cuda::cross_entropy_forward(rows, classes, dz.ptr(), t.ld, dt.ptr(), ignore, smoothing, dloss.ptr(), dlse.ptr());
      t.check_forward(dloss.download(std::size_t(rows)), dlse.download(2 * std::size_t(rows)));

      Dev dup(t.up), dgrad(std::vector<float>(t.dz_ref.data.size(), kNaN));
      cuda::cross_entropy_backward(rows, classes, dz.ptr(), t.ld, dt.ptr(), ignore, smoothing, dlse.ptr(), dup.ptr(),
                                   dgrad.ptr(), t.ld);
      testing::Mat<float> g(rows, classes, t.ld);
      g.data = dgrad.download(g.data.size());
      t.check_backward(g);

      Dev count(std::vector<float>(1, kNaN));
      cuda::count_targets(rows, dt.ptr(), ignore, count.ptr());
      EXPECT_EQ(count.download(1)[0], float(t.kept));
    }
}

TEST(CudaCrossEntropy, CrossEntropyTurnsABadTargetIntoNaNForItsRowOnly) {
  TG_REQUIRE_GPU();
  const std::vector<float> z = {1, 2, 3, 4, 5, 6};
  Dev dz(z), loss(std::vector<float>(2, 0)), lse(std::vector<float>(4, 0));
  DevIdx t(std::vector<index_t>{1, 7});
  cuda::cross_entropy_forward(2, 3, dz.ptr(), 3, t.ptr(), -100, 0.0, loss.ptr(), lse.ptr());
  const std::vector<float> l = loss.download(2);
  EXPECT_TRUE(std::isfinite(l[0]));
  EXPECT_TRUE(std::isnan(l[1]));
}

}  // namespace
}  // namespace tg
