// CUDA cross-entropy: the CPU kernels' contract (kernels/cross_entropy.hpp) on device
// pointers, asynchronous on the current device's default stream, checked like the CPU
// entries. Plain C++: callers need no nvcc. Without CUDA in the build they throw
// tg::Error.
#pragma once

#include "tilegrad/kernels/types.hpp"

namespace tg::cuda {

// The targets live on the device and are not read by the host: a target outside
// [0, classes) that is not ignore_index gives a NaN loss for its row (and no gradient
// from the target term) instead of a tg::Error.
void cross_entropy_forward(index_t rows, index_t classes, const float* logits, index_t ld, const index_t* target,
                           index_t ignore_index, double smoothing, float* loss, float* lse);
void cross_entropy_backward(index_t rows, index_t classes, const float* logits, index_t ld, const index_t* target,
                            index_t ignore_index, double smoothing, const float* lse, const float* dloss,
                            float* dlogits, index_t ldd);
// out[0] = the number of targets != ignore_index, as a float (the mean's divisor).
void count_targets(index_t n, const index_t* target, index_t ignore_index, float* out);

}  // namespace tg::cuda
