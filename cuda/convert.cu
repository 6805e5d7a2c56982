// dtype conversion on the device (Tensor::to(DType) and contiguous() of 16-bit tensors):
// f32, bf16 and f16 in any direction, a strided source of rank <= 8 into a contiguous
// destination, rounding by kernels/half.hpp (the same bits as the CPU's conversion). The
// kernel is in convert.cuh.
#include <cuda_runtime.h>

#include <cstdint>

#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/convert.cuh"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/cuda/ops.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/half.hpp"

namespace tg::cuda {

namespace {

template <class From, class To>
void launch(const Shape& s, const void* x, void* y) {
  const std::int64_t n = s.numel();
  if (n == 0) return;
  cvt::convert_kernel<From, To><<<detail::grid_for(n, 256), 256, 0, detail::stream()>>>(
      n, cvt::layout_of(s), s.is_contiguous(), static_cast<const From*>(x), static_cast<To*>(y));
  TG_CUDA_LAUNCHED();
}

template <class From>
void launch_to(DType to, const Shape& s, const void* x, void* y) {
  switch (to) {
    case DType::f32: return launch<From, float>(s, x, y);
    case DType::bf16: return launch<From, bfloat16>(s, x, y);
    case DType::f16: return launch<From, float16>(s, x, y);
    default: tg::detail::throw_error("cuda::convert", "to", "expected f32, bf16 or f16 on cuda, got ", dtype_name(to));
  }
}

}  // namespace

void convert(DType from, DType to, const Shape& src, const void* x, void* y) {
  TG_CHECK(src.numel() == 0 || (x && y), "cuda::convert", x ? "y" : "x", "expected a device pointer, got null");
  switch (from) {
    case DType::f32: return launch_to<float>(to, src, x, y);
    case DType::bf16: return launch_to<bfloat16>(to, src, x, y);
    case DType::f16: return launch_to<float16>(to, src, x, y);
    default: tg::detail::throw_error("cuda::convert", "from", "expected f32, bf16 or f16 on cuda, got ", dtype_name(from));
  }
}

}  // namespace tg::cuda
