// The CPU softmax and log_softmax kernels' public entries: the contract of
// kernels/softmax.hpp (last dimension of a strided 2-D view; defined results for rows
// with -inf, +inf or NaN), float and double.
//
// Checked entries validate with check_softmax_* and throw tg::Error, then run the path
// cpu::selected_isa() chose; double runs the reference. The float kernels make two
// passes per row, the second over a row the first left in cache:
//   forward:  online max and sum in blocks of 256 (Milakov & Gimelshein 2018), the
//             exponentials written as they are made (softmax) and rescaled by a
//             per-block factor in the second pass: one exp per element;
//   backward: the row's dot(dy, y) or sum(dy), then dx.
// Rows go to threads whole; a long row (>= 64K elements) with fewer rows than threads
// is itself split across the threads, their partial maxima and sums combined.
#pragma once

#include "tilegrad/kernels/softmax.hpp"

namespace tg::cpu {

void softmax_forward(index_t rows, index_t cols, const float* x, index_t ldx, float* y, index_t ldy);
void softmax_forward(index_t rows, index_t cols, const double* x, index_t ldx, double* y, index_t ldy);
void log_softmax_forward(index_t rows, index_t cols, const float* x, index_t ldx, float* y, index_t ldy);
void log_softmax_forward(index_t rows, index_t cols, const double* x, index_t ldx, double* y, index_t ldy);
void softmax_backward(index_t rows, index_t cols, const float* y, index_t ldy, const float* dy,
                      index_t lddy, float* dx, index_t lddx);
void softmax_backward(index_t rows, index_t cols, const double* y, index_t ldy, const double* dy,
                      index_t lddy, double* dx, index_t lddx);
void log_softmax_backward(index_t rows, index_t cols, const float* y, index_t ldy, const float* dy,
                          index_t lddy, float* dx, index_t lddx);
void log_softmax_backward(index_t rows, index_t cols, const double* y, index_t ldy, const double* dy,
                          index_t lddy, double* dx, index_t lddx);

// Unchecked entries of the op tables, per path.
#define TG_SOFTMAX_ENTRIES(suffix)                                                              \
  void softmax_forward_##suffix(index_t rows, index_t cols, const float* x, index_t ldx,       \
                                float* y, index_t ldy);                                         \
  void log_softmax_forward_##suffix(index_t rows, index_t cols, const float* x, index_t ldx,   \
                                    float* y, index_t ldy);                                     \
  void softmax_backward_##suffix(index_t rows, index_t cols, const float* y, index_t ldy,      \
                                 const float* dy, index_t lddy, float* dx, index_t lddx);       \
  void log_softmax_backward_##suffix(index_t rows, index_t cols, const float* y, index_t ldy,  \
                                     const float* dy, index_t lddy, float* dx, index_t lddx);
TG_SOFTMAX_ENTRIES(avx2)
TG_SOFTMAX_ENTRIES(avx512)
TG_SOFTMAX_ENTRIES(neon)
TG_SOFTMAX_ENTRIES(portable)
#undef TG_SOFTMAX_ENTRIES

}  // namespace tg::cpu
