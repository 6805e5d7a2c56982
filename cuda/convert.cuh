// The dtype conversion kernel of cuda/convert.cu (f32, bf16 and f16 in any direction, a
// strided source of rank <= 8 into a contiguous destination, rounding by kernels/half.hpp:
// the CPU's bits), apart from its launch, so that the SIMT emulator's test
// (tests/test_simt_ops.cpp) runs this source too.
#pragma once

#ifndef TG_SIMT_HOST  // the host SIMT emulator (tests/simt) stands in for CUDA
#include <cuda_runtime.h>
#endif

#include <cstdint>
#include <type_traits>

#include "tilegrad/kernels/half.hpp"
#include "tilegrad/kernels/shape.hpp"

namespace tg::cuda::cvt {

// The source's sizes and strides by value; offset(i) of the i-th element in row-major order.
struct Layout {
  int rank = 0;
  std::int64_t sizes[Shape::kMaxRank] = {}, strides[Shape::kMaxRank] = {};
  __device__ std::int64_t offset(std::int64_t i) const {
    std::int64_t o = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const std::int64_t n = sizes[d];
      o += (i % n) * strides[d];
      i /= n;
    }
    return o;
  }
};

inline Layout layout_of(const Shape& s) {
  Layout l;
  l.rank = s.rank();
  for (int d = 0; d < s.rank(); ++d) l.sizes[d] = s.sizes()[std::size_t(d)], l.strides[d] = s.strides()[std::size_t(d)];
  return l;
}

template <class T> __device__ __forceinline__ float load(const T* p) { return float(*p); }
template <> __device__ __forceinline__ float load(const float* p) { return *p; }
template <class T> __device__ __forceinline__ void store(T* p, float v) { *p = T(v); }
template <> __device__ __forceinline__ void store(float* p, float v) { *p = v; }

// Grid-stride over the n destination elements; `dense`: the source is contiguous too.
// From == To is a copy (contiguous() of a strided 16-bit tensor): the bits as they are,
// NaN payloads included, as the CPU's copy moves them (through float a signalling NaN
// would come back quiet).
template <class From, class To>
__global__ void convert_kernel(std::int64_t n, Layout src, bool dense, const From* x, To* y) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const From* at = x + (dense ? i : src.offset(i));
    if constexpr (std::is_same_v<From, To>) y[i] = *at;
    else store(y + i, load(at));
  }
}

}  // namespace tg::cuda::cvt
