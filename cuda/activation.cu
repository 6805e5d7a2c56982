// CUDA activations: the launches and the checked entries; the kernels, and how they
// work, are in cuda/activation.cuh.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "tilegrad/cuda/activation.cuh"
#include "tilegrad/cuda/activation.hpp"
#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/kernels/error.hpp"

namespace tg::cuda {

namespace {

using namespace activation_kernels;

template <bool kBackward>
void act_launch(Activation act, index_t rows, index_t cols, const float* x, index_t ldx, const float* bias,
                const float* dy, index_t lddy, float* y, index_t ldy) {
  if (rows == 0 || cols == 0) return;
  // Dense rows without a bias are one long row.
  if (rows > 1 && !bias && ldx == cols && ldy == cols && (!kBackward || lddy == cols)) {
    cols *= rows;
    rows = 1;
  }
  const bool vec = cols % 4 == 0 && (rows == 1 || (ldx % 4 == 0 && ldy % 4 == 0 && (!kBackward || lddy % 4 == 0))) &&
                   detail::aligned16(x) && detail::aligned16(y) && (!bias || detail::aligned16(bias)) &&
                   (!kBackward || detail::aligned16(dy));
  const int threads = 256;
  const index_t per_row = vec ? cols / 4 : cols;
  // grid_for's budget of blocks (at most 32 per SM), spent first along the row.
  const index_t budget = detail::grid_for(rows * per_row, threads);
  const index_t gx = std::min<index_t>((per_row + threads - 1) / threads, budget);
  const index_t gy = std::min<index_t>({rows, std::max<index_t>(1, budget / gx), 65535});
  const dim3 grid{unsigned(gx), unsigned(gy)};
  if (vec)
    act_vec4<kBackward><<<grid, threads, 0, detail::stream()>>>(act.kind, float(act.slope), int(rows), cols, x, ldx, bias, dy,
                                                                lddy, y, ldy);
  else
    act_scalar<kBackward><<<grid, threads, 0, detail::stream()>>>(act.kind, float(act.slope), int(rows), cols, x, ldx, bias,
                                                                  dy, lddy, y, ldy);
  TG_CUDA_LAUNCHED();
}

}  // namespace

void act_forward(Activation act, index_t rows, index_t cols, const float* x, index_t ldx, const float* bias, float* y,
                 index_t ldy) {
  check_act_forward("cuda::act_forward", rows, cols, x, ldx, bias, y, ldy, sizeof(float));
  act_launch<false>(act, rows, cols, x, ldx, bias, nullptr, 0, y, ldy);
}

void act_backward(Activation act, index_t rows, index_t cols, const float* x, index_t ldx, const float* bias,
                  const float* dy, index_t lddy, float* dx, index_t lddx) {
  check_act_backward("cuda::act_backward", rows, cols, x, ldx, bias, dy, lddy, dx, lddx, sizeof(float));
  act_launch<true>(act, rows, cols, x, ldx, bias, dy, lddy, dx, lddx);
}

}  // namespace tg::cuda
