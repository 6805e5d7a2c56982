// CUDA layer norm: the launches and the checked entries; the kernels, and how they work,
// are in cuda/layer_norm.cuh.
#include <cuda_runtime.h>

#include <cstdint>

#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/cuda/layer_norm.cuh"
#include "tilegrad/cuda/layer_norm.hpp"
#include "tilegrad/cuda/reduce.cuh"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/layer_norm.hpp"

namespace tg::cuda {

using namespace layer_norm_kernels;
using reduce_kernels::launch_reduce;
using reduce_kernels::SumOp;
using reduce_kernels::ViewLoader;

void layer_norm_forward(index_t rows, index_t cols, const float* x, index_t ldx, const float* gamma, const float* beta,
                        double eps, float* y, index_t ldy, float* mean, float* rstd) {
  check_layer_norm_forward("cuda::layer_norm_forward", rows, cols, x, ldx, y, ldy, eps, sizeof(float));
  if (rows == 0) return;
  TG_CHECK(rows < (index_t(1) << 31) && cols < (index_t(1) << 31), "cuda::layer_norm_forward", "rows",
           "expected rows and cols below 2^31");
  const cudaStream_t s = detail::stream();
  if (!with_ln_regs(int(cols), [&]<int kGroup, int kPer>() {
        ln_fwd_regs<kGroup, kPer><<<ln_blocks(kGroup, rows), 256, 0, s>>>(int(rows), int(cols), x, i64(ldx), gamma,
                                                                          beta, float(eps), y, i64(ldy), mean, rstd);
      }))
    ln_fwd_block<<<unsigned(rows), 256, 0, s>>>(int(cols), x, ldx, gamma, beta, float(eps), y, ldy, mean, rstd);
  TG_CUDA_LAUNCHED();
}

void layer_norm_backward(index_t rows, index_t cols, const float* x, index_t ldx, const float* dy, index_t lddy,
                         const float* gamma, const float* mean, const float* rstd, double /*eps*/, float* dx,
                         index_t lddx, float* dgamma, float* dbeta) {
  check_layer_norm_backward("cuda::layer_norm_backward", rows, cols, x, ldx, dy, lddy, mean, rstd, dx, lddx,
                            sizeof(float));
  TG_CHECK(rows == 0 || (mean != nullptr && rstd != nullptr), "cuda::layer_norm_backward", "mean",
           "expected the mean and rstd the forward saved (the CUDA backward does not recompute them)");
  TG_CHECK(rows < (index_t(1) << 31) && cols < (index_t(1) << 31), "cuda::layer_norm_backward", "rows",
           "expected rows and cols below 2^31");
  if (rows > 0) {
    const cudaStream_t s = detail::stream();
    if (!with_ln_regs(int(cols), [&]<int kGroup, int kPer>() {
          ln_bwd_regs<kGroup, kPer><<<ln_blocks(kGroup, rows), 256, 0, s>>>(int(rows), int(cols), x, i64(ldx), dy,
                                                                            i64(lddy), gamma, mean, rstd, dx, i64(lddx));
        }))
      ln_bwd_block<<<unsigned(rows), 256, 0, s>>>(int(cols), x, ldx, dy, lddy, gamma, mean, rstd, dx, lddx);
    TG_CUDA_LAUNCHED();
  }
  // Column sums over the rows (zeros when rows == 0).
  if (dgamma) launch_reduce<SumOp>(false, 1, rows, cols, DGammaLoader{x, dy, mean, rstd, ldx, lddy}, dgamma, 0, 1);
  if (dbeta) launch_reduce<SumOp>(false, 1, rows, cols, ViewLoader{dy, 0, lddy, 1}, dbeta, 0, 1);
}

}  // namespace tg::cuda
