// CUDA softmax and log_softmax: the launches and the checked entries; the kernels, and
// how they work, are in cuda/softmax.cuh.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/cuda/softmax.cuh"
#include "tilegrad/cuda/softmax.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/softmax.hpp"

namespace tg::cuda {

namespace {

using namespace softmax_kernels;

// The largest cluster plan_row may use for `kernel`: 8 blocks where clusters exist, else 1.
template <class... Args>
int max_cluster(void (*kernel)(Args...)) {
  return detail::can_cluster(reinterpret_cast<const void*>(kernel)) ? 8 : 1;
}

template <class... Args>
void launch_rows(void (*kernel)(Args...), const RowPlan& p, index_t rows, auto... args) {
  detail::allow_shared(reinterpret_cast<const void*>(kernel), p.bytes);
  // At most 32 blocks per SM in all; each cluster loops over its rows.
  const index_t clusters = std::min<index_t>(rows, std::max<index_t>(1, index_t(detail::sm_count()) * 32 / p.size));
  if (p.size == 1) {
    kernel<<<unsigned(clusters), p.threads, p.bytes, detail::stream()>>>(args...);
    return;
  }
  const detail::ClusterLaunch launch(unsigned(clusters * p.size), unsigned(p.threads), p.bytes, unsigned(p.size));
  TG_CUDA_CHECK(cudaLaunchKernelEx(&launch.config, kernel, Args(args)...));
}

}  // namespace

void softmax_forward(bool log, index_t rows, index_t cols, const float* x, index_t ldx, float* y, index_t ldy) {
  check_softmax_forward(log ? "cuda::log_softmax_forward" : "cuda::softmax_forward", rows, cols, x, ldx, y, ldy,
                        sizeof(float));
  if (rows == 0 || cols == 0) return;
  const bool vec = cols % 4 == 0 && (rows == 1 || (ldx % 4 == 0 && ldy % 4 == 0)) && detail::aligned16(x) && detail::aligned16(y);
  if (cols <= kRowMax) {
    if (vec) softmax_fwd_regs<4><<<unsigned((rows + 7) / 8), 256, 0, detail::stream()>>>(log, int(rows), int(cols), x, ldx, y, ldy);
    else softmax_fwd_regs<1><<<unsigned((rows + 7) / 8), 256, 0, detail::stream()>>>(log, int(rows), int(cols), x, ldx, y, ldy);
  } else if (const RowPlan p = plan_row(cols, 1, max_cluster(vec ? &softmax_fwd_cluster<true> : &softmax_fwd_cluster<false>),
                                      detail::shared_optin());
             p.size > 0) {
    launch_rows(vec ? &softmax_fwd_cluster<true> : &softmax_fwd_cluster<false>, p, rows, log, int(rows), int(cols),
                p.chunk, x, std::int64_t(ldx), y, std::int64_t(ldy));
  } else {
    softmax_fwd_block<<<unsigned(rows), 256, 0, detail::stream()>>>(log, int(cols), x, ldx, y, ldy);
  }
  TG_CUDA_LAUNCHED();
}

void softmax_backward(bool log, index_t rows, index_t cols, const float* y, index_t ldy, const float* dy,
                      index_t lddy, float* dx, index_t lddx) {
  check_softmax_backward(log ? "cuda::log_softmax_backward" : "cuda::softmax_backward", rows, cols, y, ldy, dy, lddy,
                         dx, lddx, sizeof(float));
  if (rows == 0 || cols == 0) return;
  const bool vec = cols % 4 == 0 && (rows == 1 || (ldy % 4 == 0 && lddy % 4 == 0 && lddx % 4 == 0)) && detail::aligned16(y) &&
                   detail::aligned16(dy) && detail::aligned16(dx);
  if (cols <= kRowMax) {
    if (vec) softmax_bwd_regs<4><<<unsigned((rows + 7) / 8), 256, 0, detail::stream()>>>(log, int(rows), int(cols), y, ldy, dy, lddy, dx, lddx);
    else softmax_bwd_regs<1><<<unsigned((rows + 7) / 8), 256, 0, detail::stream()>>>(log, int(rows), int(cols), y, ldy, dy, lddy, dx, lddx);
  } else if (const RowPlan p = plan_row(cols, 2, max_cluster(vec ? &softmax_bwd_cluster<true> : &softmax_bwd_cluster<false>),
                                      detail::shared_optin());
             p.size > 0) {
    launch_rows(vec ? &softmax_bwd_cluster<true> : &softmax_bwd_cluster<false>, p, rows, log, int(rows), int(cols), p.chunk, y, std::int64_t(ldy), dy, std::int64_t(lddy), dx,
                std::int64_t(lddx));
  } else {
    softmax_bwd_block<<<unsigned(rows), 256, 0, detail::stream()>>>(log, int(cols), y, ldy, dy, lddy, dx, lddx);
  }
  TG_CUDA_LAUNCHED();
}

}  // namespace tg::cuda
