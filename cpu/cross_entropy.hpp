// The CPU fused cross-entropy's kernels: the contract of kernels/cross_entropy.hpp,
// float (double runs the reference). Per row:
//   forward:  the maximum m and s = sum e^(z - m) in one pass (softmax_impl's pass 1:
//             online in blocks of 256, each block summed in float lanes, the blocks in
//             double); then lse = m + log s and
//               loss = log s + (1 - eps)(m - z_t) + (eps / C) sum (m - z_j)
//             in double, so that large logits cancel exactly (m - z_t is formed from two
//             floats) instead of after rounding m + log s;
//   backward: dz = dloss (e^(z - lse) - eps / C) in one vector pass, then the target's
//             element corrected by - dloss (1 - eps).
// Rows go to threads whole. The unchecked entries of the op tables, per path; autograd
// checks with check_cross_entropy first.
#pragma once

#include "tilegrad/kernels/cross_entropy.hpp"

namespace tg::cpu {

#define TG_CROSS_ENTROPY_ENTRIES(suffix)                                                                     \
  void cross_entropy_forward_##suffix(index_t rows, index_t classes, const float* logits, index_t ld,       \
                                      const index_t* target, index_t ignore_index, double smoothing,         \
                                      float* loss, float* lse);                                              \
  void cross_entropy_backward_##suffix(index_t rows, index_t classes, const float* logits, index_t ld,      \
                                       const index_t* target, index_t ignore_index, double smoothing,        \
                                       const float* lse, const float* dloss, float* dlogits, index_t ldd);
TG_CROSS_ENTROPY_ENTRIES(avx2)
TG_CROSS_ENTROPY_ENTRIES(avx512)
TG_CROSS_ENTROPY_ENTRIES(neon)
TG_CROSS_ENTROPY_ENTRIES(portable)
#undef TG_CROSS_ENTROPY_ENTRIES

}  // namespace tg::cpu
