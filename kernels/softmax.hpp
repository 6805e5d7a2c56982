// softmax and log_softmax over the last dimension of a strided 2-D view (rows, cols),
// unit stride inside a row, row strides ld >= cols (any value when rows <= 1).
//
// Forward, per row with m = max_j x_j:
//   softmax:     y_j = exp(x_j - m) / sum_k exp(x_k - m)
//   log_softmax: y_j = x_j - m - log(sum_k exp(x_k - m))
// Backward, from the forward's output y:
//   softmax:     dx_j = y_j * (dy_j - sum_k dy_k y_k)
//   log_softmax: dx_j = dy_j - exp(y_j) * sum_k dy_k
//
// Rows that are not ordinary numbers, defined so that masked attention is safe:
//   - all -inf (a fully masked row; also cols == 0): softmax gives 0 everywhere,
//     log_softmax -inf everywhere, and both backward passes give dx = 0;
//   - some -inf: those entries get softmax 0 and log_softmax -inf, as the limit says;
//   - one or more +inf: the limit splits the mass evenly over the c entries that are
//     +inf: softmax 1/c there and 0 elsewhere, log_softmax -log(c) and -inf;
//   - any NaN: the whole row is NaN.
// In place is allowed (y == x with ldy == ldx; dx == dy with lddx == lddy).
#pragma once

#include <cstddef>

#include "tilegrad/kernels/types.hpp"

namespace tg {

void check_softmax_forward(const char* op, index_t rows, index_t cols, const void* x,
                           index_t ldx, const void* y, index_t ldy, std::size_t elem);
void check_softmax_backward(const char* op, index_t rows, index_t cols, const void* y,
                            index_t ldy, const void* dy, index_t lddy, const void* dx,
                            index_t lddx, std::size_t elem);

template <class T>
void softmax_forward_ref(index_t rows, index_t cols, const T* x, index_t ldx, T* y, index_t ldy);
template <class T>
void log_softmax_forward_ref(index_t rows, index_t cols, const T* x, index_t ldx, T* y,
                             index_t ldy);
template <class T>
void softmax_backward_ref(index_t rows, index_t cols, const T* y, index_t ldy, const T* dy,
                          index_t lddy, T* dx, index_t lddx);
template <class T>
void log_softmax_backward_ref(index_t rows, index_t cols, const T* y, index_t ldy, const T* dy,
                              index_t lddy, T* dx, index_t lddx);

}  // namespace tg
