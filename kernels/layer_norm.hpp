// layer_norm over the last dimension of a strided 2-D view (rows, cols), unit stride
// inside a row (Ba, Kiros & Hinton 2016).
//
// Forward, per row i, with the biased variance (divide by cols), as PyTorch:
//   mean_i = sum_j x_ij / cols,  var_i = sum_j (x_ij - mean_i)^2 / cols
//   rstd_i = 1 / sqrt(var_i + eps),  xhat_ij = (x_ij - mean_i) * rstd_i
//   y_ij   = xhat_ij * gamma_j + beta_j      (gamma, beta: cols elements or nullptr,
//                                              meaning 1 and 0)
//   mean and rstd (rows elements each) are written when not null: the backward needs them.
// Backward, with g_ij = dy_ij * gamma_j:
//   dx_ij    = rstd_i * (g_ij - mean_j(g_i.) - xhat_ij * mean_j(g_i. * xhat_i.))
//   dgamma_j = sum_i dy_ij * xhat_ij,  dbeta_j = sum_i dy_ij   (each written when not null)
// A row of zero length cannot be normalized: the API rejects cols == 0 when rows > 0.
// eps must be > 0 (the backward takes it too, for the reference's recomputation).
#pragma once

#include <cstddef>

#include "tilegrad/kernels/types.hpp"

namespace tg {

void check_layer_norm_forward(const char* op, index_t rows, index_t cols, const void* x,
                              index_t ldx, const void* y, index_t ldy, double eps,
                              std::size_t elem);
void check_layer_norm_backward(const char* op, index_t rows, index_t cols, const void* x,
                               index_t ldx, const void* dy, index_t lddy, const void* mean,
                               const void* rstd, const void* dx, index_t lddx,
                               std::size_t elem);

template <class T>
void layer_norm_forward_ref(index_t rows, index_t cols, const T* x, index_t ldx, const T* gamma,
                            const T* beta, double eps, T* y, index_t ldy, T* mean, T* rstd);

// The reference recomputes mean and rstd from x in double and does not read the saved
// ones; faster backends use the saved values.
template <class T>
void layer_norm_backward_ref(index_t rows, index_t cols, const T* x, index_t ldx, const T* dy,
                             index_t lddy, const T* gamma, const T* mean, const T* rstd,
                             double eps, T* dx, index_t lddx, T* dgamma, T* dbeta);

}  // namespace tg
