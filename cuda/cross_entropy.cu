// CUDA cross-entropy: the launches and the checked entries; the kernels, and how they
// work, are in cuda/cross_entropy.cuh.
#include <cuda_runtime.h>

#include <cstdint>

#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/cross_entropy.cuh"
#include "tilegrad/cuda/cross_entropy.hpp"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/kernels/cross_entropy.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::cuda {

using namespace cross_entropy_kernels;

void cross_entropy_forward(index_t rows, index_t classes, const float* logits, index_t ld, const index_t* target,
                           index_t ignore_index, double smoothing, float* loss, float* lse) {
  check_cross_entropy("cuda::cross_entropy_forward", rows, classes, logits, ld, target, ignore_index, smoothing, loss,
                      lse, sizeof(float), /*targets_on_host=*/false);
  if (rows == 0) return;
  TG_CHECK(rows < (index_t(1) << 31) && classes < (index_t(1) << 31), "cuda::cross_entropy_forward", "rows",
           "expected rows and classes below 2^31");
  const cudaStream_t s = detail::stream();
  if (classes <= 1024)
    ce_fwd<32><<<unsigned((rows + 7) / 8), 256, 0, s>>>(int(rows), int(classes), logits, ld, target, ignore_index,
                                                         float(smoothing), loss, lse);
  else
    ce_fwd<256><<<unsigned(rows), 256, 0, s>>>(int(rows), int(classes), logits, ld, target, ignore_index,
                                               float(smoothing), loss, lse);
  TG_CUDA_LAUNCHED();
}

void cross_entropy_backward(index_t rows, index_t classes, const float* logits, index_t ld, const index_t* target,
                            index_t ignore_index, double smoothing, const float* lse, const float* dloss,
                            float* dlogits, index_t ldd) {
  check_cross_entropy("cuda::cross_entropy_backward", rows, classes, logits, ld, target, ignore_index, smoothing, lse,
                      dloss, sizeof(float), /*targets_on_host=*/false);
  TG_CHECK(rows == 0 || (dlogits != nullptr && ldd >= classes), "cuda::cross_entropy_backward", "dlogits",
           "expected a (rows, classes) output with ldd >= ", classes, ", got ldd ", ldd);
  if (rows == 0) return;
  TG_CHECK(rows < (index_t(1) << 31) && classes < (index_t(1) << 31), "cuda::cross_entropy_backward", "rows",
           "expected rows and classes below 2^31");
  ce_bwd<<<detail::grid_for(rows * classes, 256), 256, 0, detail::stream()>>>(int(rows), int(classes), logits, ld, target,
                                                                       ignore_index, float(smoothing), lse, dloss,
                                                                       dlogits, ldd);
  TG_CUDA_LAUNCHED();
}

void count_targets(index_t n, const index_t* target, index_t ignore_index, float* out) {
  TG_CHECK(n >= 0 && (n == 0 || target != nullptr) && out != nullptr, "cuda::count_targets", "target",
           "expected n >= 0 targets and an output");
  count_kernel<<<1, 1024, 0, detail::stream()>>>(n, target, ignore_index, out);
  TG_CUDA_LAUNCHED();
}

}  // namespace tg::cuda
