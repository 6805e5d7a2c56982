// The CPU layer_norm kernels' public entries: the contract of kernels/layer_norm.hpp,
// float and double.
//
// Checked entries validate with check_layer_norm_* and throw tg::Error, then run the
// path cpu::selected_isa() chose; double runs the reference. The float forward makes
// one pass over memory for the statistics (blocks of 256 merged in double) and one for
// the output; the backward one for sum(g), sum(g xhat) and one for dx, dgamma, dbeta.
// Rows go to threads whole, above 32K elements.
#pragma once

#include "tilegrad/kernels/layer_norm.hpp"

namespace tg::cpu {

void layer_norm_forward(index_t rows, index_t cols, const float* x, index_t ldx, const float* gamma,
                        const float* beta, double eps, float* y, index_t ldy, float* mean, float* rstd);
void layer_norm_forward(index_t rows, index_t cols, const double* x, index_t ldx, const double* gamma,
                        const double* beta, double eps, double* y, index_t ldy, double* mean, double* rstd);
void layer_norm_backward(index_t rows, index_t cols, const float* x, index_t ldx, const float* dy,
                         index_t lddy, const float* gamma, const float* mean, const float* rstd,
                         double eps, float* dx, index_t lddx, float* dgamma, float* dbeta);
void layer_norm_backward(index_t rows, index_t cols, const double* x, index_t ldx, const double* dy,
                         index_t lddy, const double* gamma, const double* mean, const double* rstd,
                         double eps, double* dx, index_t lddx, double* dgamma, double* dbeta);

// Unchecked entries of the op tables, per path.
#define TG_LAYER_NORM_ENTRIES(suffix)                                                           \
  void layer_norm_forward_##suffix(index_t rows, index_t cols, const float* x, index_t ldx,    \
                                   const float* gamma, const float* beta, double eps, float* y, \
                                   index_t ldy, float* mean, float* rstd);                     \
  void layer_norm_backward_##suffix(index_t rows, index_t cols, const float* x, index_t ldx,   \
                                    const float* dy, index_t lddy, const float* gamma,         \
                                    const float* mean, const float* rstd, double eps,           \
                                    float* dx, index_t lddx, float* dgamma, float* dbeta);
TG_LAYER_NORM_ENTRIES(avx2)
TG_LAYER_NORM_ENTRIES(avx512)
TG_LAYER_NORM_ENTRIES(neon)
TG_LAYER_NORM_ENTRIES(portable)
#undef TG_LAYER_NORM_ENTRIES

}  // namespace tg::cpu
