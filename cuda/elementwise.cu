// CUDA unary, binary and where: the launches and the checked entries; the kernels, and how they work,
// are in cuda/elementwise.cuh.
#include <cuda_runtime.h>

#include <cstdint>

#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/elementwise.cuh"
#include "tilegrad/cuda/elementwise.hpp"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/kernels/elementwise.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::cuda {

using namespace elementwise_kernels;

void unary(Unary op, double p0, double p1, const Shape& xs, const float* x, const Shape& ys, float* y) {
  check_unary("cuda::unary", xs, x, ys, y, sizeof(float), op != Unary::fill);
  const i64 n = ys.numel();
  if (n == 0) return;
  const Shape* const shapes[2] = {&xs, &ys};
  const Collapsed<2> c = collapse<2>(ys, shapes);
  const cudaStream_t s = detail::stream();
  if (c.flat()) {
    const float* xin = op == Unary::fill ? nullptr : x;
    if ((xin == nullptr || detail::aligned16(xin)) && detail::aligned16(y) && n >= 4)
      unary_flat<true><<<detail::grid_for(n / 4, 256), 256, 0, s>>>(op, float(p0), float(p1), n, xin, y);
    else
      unary_flat<false><<<detail::grid_for(n, 256), 256, 0, s>>>(op, float(p0), float(p1), n, xin, y);
  } else
    unary_nd<<<detail::grid_for(n, 256), 256, 0, s>>>(op, float(p0), float(p1), n, c.dims, c.st[0], c.st[1], x, y);
  TG_CUDA_LAUNCHED();
}

void binary(Binary op, const Shape& as, const float* a, const Shape& bs, const float* b, const Shape& ys, float* y) {
  check_binary("cuda::binary", as, a, bs, b, ys, y, sizeof(float));
  const i64 n = ys.numel();
  if (n == 0) return;
  const Shape* const shapes[3] = {&as, &bs, &ys};
  const Collapsed<3> c = collapse<3>(ys, shapes);
  const cudaStream_t s = detail::stream();
  if (c.flat() && detail::aligned16(a) && detail::aligned16(b) && detail::aligned16(y) && n >= 4)
    binary_flat<true><<<detail::grid_for(n / 4, 256), 256, 0, s>>>(op, n, a, b, y);
  else if (c.flat())
    binary_flat<false><<<detail::grid_for(n, 256), 256, 0, s>>>(op, n, a, b, y);
  else binary_nd<<<detail::grid_for(n, 256), 256, 0, s>>>(op, n, c.dims, c.st[0], c.st[1], c.st[2], a, b, y);
  TG_CUDA_LAUNCHED();
}

void where(const Shape& cs, const float* c, const Shape& as, const float* a, const Shape& bs, const float* b,
           const Shape& ys, float* y) {
  check_where("cuda::where", cs, c, as, a, bs, b, ys, y, sizeof(float));
  const i64 n = ys.numel();
  if (n == 0) return;
  const Shape* const shapes[4] = {&cs, &as, &bs, &ys};
  const Collapsed<4> k = collapse<4>(ys, shapes);
  where_nd<<<detail::grid_for(n, 256), 256, 0, detail::stream()>>>(n, k.dims, k.st[0], k.st[1], k.st[2], k.st[3], c, a, b, y);
  TG_CUDA_LAUNCHED();
}

}  // namespace tg::cuda
