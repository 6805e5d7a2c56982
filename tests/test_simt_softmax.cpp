// The softmax kernels (cuda/softmax.cuh), their own source, run on the CPU by the SIMT
// emulator (tests/simt), against the double references with the GPU test's bounds
// (test_cuda_softmax): softmax and log_softmax forward and backward in the warp-per-row
// kernel (both widths), the block-per-row kernel and the cluster kernel (clusters of 1-8
// blocks as plan_row cuts rows of up to 40003 columns), with a fully masked row, +inf, a
// NaN row and a masked entry. Outputs and padding NaN-poisoned.
#include "tests/simt/simt.hpp"
// The kernels, compiled for the host against the emulator.
#include "tilegrad/cuda/softmax.cuh"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tilegrad/kernels/softmax.hpp"
#include "tests/support/simt_launch.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using testing::launch;

namespace rk = cuda::softmax_kernels;
constexpr float kInf = std::numeric_limits<float>::infinity();


// One softmax kernel family: fwd(log, x, y) and bwd(log, y, dy, dx) over rows x cols, ld.
struct SoftmaxKernels {
  std::string name;
  std::function<void(bool, index_t, index_t, index_t, const float*, float*)> fwd;
  std::function<void(bool, index_t, index_t, index_t, const float*, const float*, float*)> bwd;
  bool needs_vec;  // 16-byte rows only (cols and ld multiples of 4)
  index_t max_cols;
};

TEST(SimtSoftmax, SoftmaxMatchesTheReferenceInEveryKernel) {
  TG_TEST_RNG(rng);
  std::vector<SoftmaxKernels> kernels;
  for (bool vec : {false, true})
    kernels.push_back({std::string("regs<") + (vec ? "4>" : "1>"),
                       [vec](bool log, index_t rows, index_t cols, index_t ld, const float* x, float* y) {
                         launch(unsigned((rows + 7) / 8), 1, 256, 0, [&] {
                           if (vec) rk::softmax_fwd_regs<4>(log, int(rows), int(cols), x, ld, y, ld);
                           else rk::softmax_fwd_regs<1>(log, int(rows), int(cols), x, ld, y, ld);
                         });
                       },
                       [vec](bool log, index_t rows, index_t cols, index_t ld, const float* y, const float* dy, float* dx) {
                         launch(unsigned((rows + 7) / 8), 1, 256, 0, [&] {
                           if (vec) rk::softmax_bwd_regs<4>(log, int(rows), int(cols), y, ld, dy, ld, dx, ld);
                           else rk::softmax_bwd_regs<1>(log, int(rows), int(cols), y, ld, dy, ld, dx, ld);
                         });
                       },
                       vec, rk::kRowMax});
  kernels.push_back({"block",
                     [](bool log, index_t rows, index_t cols, index_t ld, const float* x, float* y) {
                       launch(unsigned(rows), 1, 256, 0, [&] { rk::softmax_fwd_block(log, int(cols), x, ld, y, ld); });
                     },
                     [](bool log, index_t rows, index_t cols, index_t ld, const float* y, const float* dy, float* dx) {
                       launch(unsigned(rows), 1, 256, 0,
                              [&] { rk::softmax_bwd_block(log, int(cols), y, ld, dy, ld, dx, ld); });
                     },
                     false, 1 << 20});
  // The cluster kernels as cuda/softmax.cu launches them: plan_row's cluster size (up to
  // 8 blocks), piece and threads for the row, fewer clusters than rows (each loops).
  for (bool vec : {false, true})
    kernels.push_back({std::string("cluster<") + (vec ? "true>" : "false>"),
                       [vec](bool log, index_t rows, index_t cols, index_t ld, const float* x, float* y) {
                         const rk::RowPlan p = rk::plan_row(cols, 1, 8, simt::kMaxDynamicShared);
                         ASSERT_GT(p.size, 0);
                         const unsigned clusters = unsigned(std::min<index_t>(rows, 3)), size = unsigned(p.size);
                         simt::launch_clusters({clusters * size, 1, 1}, size, {unsigned(p.threads), 1, 1}, p.bytes, [&] {
                           if (vec) rk::softmax_fwd_cluster<true>(log, int(rows), int(cols), p.chunk, x, ld, y, ld);
                           else rk::softmax_fwd_cluster<false>(log, int(rows), int(cols), p.chunk, x, ld, y, ld);
                         });
                       },
                       [vec](bool log, index_t rows, index_t cols, index_t ld, const float* y, const float* dy, float* dx) {
                         const rk::RowPlan p = rk::plan_row(cols, 2, 8, simt::kMaxDynamicShared);
                         ASSERT_GT(p.size, 0);
                         const unsigned clusters = unsigned(std::min<index_t>(rows, 3)), size = unsigned(p.size);
                         simt::launch_clusters({clusters * size, 1, 1}, size, {unsigned(p.threads), 1, 1}, p.bytes, [&] {
                           if (vec) rk::softmax_bwd_cluster<true>(log, int(rows), int(cols), p.chunk, y, ld, dy, ld, dx, ld);
                           else rk::softmax_bwd_cluster<false>(log, int(rows), int(cols), p.chunk, y, ld, dy, ld, dx, ld);
                         });
                       },
                       vec, 1 << 20});
  for (const SoftmaxKernels& k : kernels)
    for (bool log : {false, true})
      for (index_t cols : {index_t(1), index_t(7), index_t(33), index_t(1000), index_t(1024), index_t(1500), index_t(5000),
                           index_t(9001), index_t(20000), index_t(40003)}) {
        if (cols > k.max_cols) continue;
        if (cols > 5000 && k.name.rfind("cluster", 0) != 0) continue;  // long rows: the clusters of 2-8 blocks
        const index_t c = k.needs_vec ? (cols + 3) / 4 * 4 : cols;
        const index_t rows = rng.integer(5, 11), ld = k.needs_vec ? c + 4 * rng.integer(0, 1) : c + rng.integer(0, 3);
        SCOPED_TRACE(k.name + (log ? " log_softmax " : " softmax ") + std::to_string(rows) + "x" + std::to_string(c) +
                     " ld " + std::to_string(ld));
        std::vector<float> x = testing::random_vec<float>(rng, rows * ld, -8, 8), dy = testing::random_vec<float>(rng, rows * ld);
        for (index_t j = 0; j < c; ++j) x[std::size_t(j)] = -kInf;  // a fully masked row
        x[std::size_t(ld)] = kInf;                                  // +inf takes the mass
        if (c > 2) x[std::size_t(ld + c - 1)] = kInf;
        x[std::size_t(2 * ld + c / 2)] = std::numeric_limits<float>::quiet_NaN();  // a NaN row
        x[std::size_t(3 * ld + c / 3)] = -kInf;                                    // one masked entry
        std::vector<double> xd(x.begin(), x.end()), dyd(dy.begin(), dy.end()), want(x.size()), dwant(x.size());
        if (log) log_softmax_forward_ref<double>(rows, c, xd.data(), ld, want.data(), ld);
        else softmax_forward_ref<double>(rows, c, xd.data(), ld, want.data(), ld);
        std::vector<float> y(x.size(), std::nanf(""));
        k.fwd(log, rows, c, ld, x.data(), y.data());
        EXPECT_TRUE(testing::elementwise_close(y, want, rows, c, ld, 1e-5)) << "forward";
        std::vector<double> yd(y.begin(), y.end());  // the backward from the kernel's own y
        if (log) log_softmax_backward_ref<double>(rows, c, yd.data(), ld, dyd.data(), ld, dwant.data(), ld);
        else softmax_backward_ref<double>(rows, c, yd.data(), ld, dyd.data(), ld, dwant.data(), ld);
        std::vector<float> dx(x.size(), std::nanf(""));
        k.bwd(log, rows, c, ld, y.data(), dy.data(), dx.data());
        EXPECT_TRUE(testing::elementwise_close(dx, dwant, rows, c, ld, 1e-4)) << "backward";
      }
}

}  // namespace
}  // namespace tg
