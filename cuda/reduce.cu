// CUDA reductions: the launches and the checked entries; the kernels, and how they work,
// are in cuda/reduce.cuh.
#include <cuda_runtime.h>

#include <cstdint>

#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/cuda/reduce.cuh"
#include "tilegrad/cuda/reduce.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/reduce.hpp"

namespace tg::cuda {

using namespace reduce_kernels;

void reduce(Reduce kind, index_t outer, index_t n, index_t inner, const float* x, index_t xs_outer, index_t xs_n,
            index_t xs_inner, float* y, index_t ys_outer, index_t ys_inner) {
  check_reduce("cuda::reduce", outer, n, inner, x, xs_outer, xs_n, xs_inner, y, ys_outer, ys_inner, sizeof(float));
  const ViewLoader load{x, xs_outer, xs_n, xs_inner};
  if (kind == Reduce::max) launch_reduce<MaxOp>(false, outer, n, inner, load, y, ys_outer, ys_inner);
  else launch_reduce<SumOp>(kind == Reduce::mean, outer, n, inner, load, y, ys_outer, ys_inner);
}

}  // namespace tg::cuda
