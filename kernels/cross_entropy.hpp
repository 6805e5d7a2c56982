// Cross-entropy over class logits, fused: log-softmax and the negative log-likelihood of
// the target class in one pass per row, never materializing the probabilities.
//
// logits: rows x C, row stride ld; target[i] in [0, C) or == ignore_index. With label
// smoothing s in [0, 1) the target distribution is (1 - s) onehot(t) + s / C:
//
//   lse_i  = log sum_j e^(z_ij) = m_i + log s_i,  m_i = max_j z_ij, s_i = sum_j e^(z_ij - m_i)
//   loss_i = lse_i - (1 - s) z_it - (s / C) sum_j z_ij        (0 for an ignored row)
//
// forward writes loss[i] and the pair lse[2i] = m_i, lse[2i + 1] = log s_i (2 rows
// elements, kept for the backward; written for ignored rows too). The pair, not their
// sum: rounded to the element type, m_i + log s_i loses half an ulp of m_i (3e-5 for
// logits near 1000), which e^(z - lse) would turn into a relative error of every
// probability; (z - m_i) - log s_i keeps the digits. Backward, given dloss[i] (the
// upstream gradient of each row's loss):
//
//   dz_ij = dloss_i (e^((z_ij - m_i) - log s_i) - (1 - s) [j == t_i] - s / C),  0 for an ignored row
//
// The mean over non-ignored rows is the caller's (autograd divides by the count).
// A target outside [0, C) that is not ignore_index is rejected by the checked entry.
// A -inf logit is a masked class: probability 0, gradient 0; the loss is finite unless
// it is the target's (+inf) or smoothing puts weight on it (+inf). A row with a NaN or
// a +inf logit, or all -inf, gives NaN loss and gradients.
#pragma once

#include <cstddef>

#include "tilegrad/kernels/types.hpp"

namespace tg {

// With targets_on_host == false the target values are not read (they live on a device;
// the CUDA kernels turn a bad target into a NaN loss instead).
void check_cross_entropy(const char* op, index_t rows, index_t classes, const void* logits, index_t ld,
                         const index_t* target, index_t ignore_index, double smoothing,
                         const void* out0, const void* out1, std::size_t elem, bool targets_on_host = true);

template <class T>
void cross_entropy_forward_ref(index_t rows, index_t classes, const T* logits, index_t ld,
                               const index_t* target, index_t ignore_index, double smoothing, T* loss,
                               T* lse);
template <class T>
void cross_entropy_backward_ref(index_t rows, index_t classes, const T* logits, index_t ld,
                                const index_t* target, index_t ignore_index, double smoothing, const T* lse,
                                const T* dloss, T* dlogits, index_t ldd);

}  // namespace tg
