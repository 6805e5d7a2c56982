// Helpers shared by the autograd sources: the op table of a device, dtype dispatch,
// argument checks, broadcasting. Not a public header.
#pragma once

#include <initializer_list>
#include <span>
#include <vector>

#include "tilegrad/autograd/node.hpp"
#include "tilegrad/autograd/profiler.hpp"
#include "tilegrad/autograd/tensor.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/cuda/ops.hpp"
#include "tilegrad/kernels/ops.hpp"

namespace tg::detail {

// The kernels serving `device`: the CPU's selected path, or CUDA's table once it exists;
// while a Profiler records, a table that records each call (op names the caller, and
// is kept by pointer: a literal, as every op name is). Inline: with no Profiler, a
// dispatch costs one more test than before there was one (a flag's load and a branch).
const OpTable& profiled_table_for(const char* op, Device device);  // autograd/profiler.cpp
[[noreturn, gnu::cold]] void no_kernels_for(const char* op, Device device);
inline const OpTable& table_for(const char* op, Device device) {
  if (profiling()) [[unlikely]] return profiled_table_for(op, device);
  if (device.is_cpu()) return cpu::ops();
  if (device.is_cuda()) return cuda::ops();
  no_kernels_for(op, device);
}

// Calls f(T{}) with T = float or double for dtype; other dtypes are an error naming op.
template <class F>
decltype(auto) with_float_type(const char* op, DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    default: break;
  }
  throw_error(op, "dtype", "expected f32 or f64, got ", dtype_name(dtype));
}

// The 16-bit floating types: storage only; the ops compute in f32 (detail.cpp,
// ops/linalg.cpp).
constexpr bool is_half(DType d) { return d == DType::bf16 || d == DType::f16; }

// Every tensor defined, and all on one device with one dtype.
void check_same(const char* op, std::initializer_list<const Tensor*> tensors);
// A dimension index, negative from the end, checked against rank.
int wrap_dim(const char* op, int d, int rank);
// NumPy broadcast of two size lists.
std::vector<index_t> broadcast_sizes(const char* op, std::span<const index_t> a, std::span<const index_t> b);
// t seen with `sizes` (t's sizes broadcast to them): stride 0 where t stretches.
Shape broadcast_view(const Tensor& t, std::span<const index_t> sizes);
// The shape of a contiguous output, as a vector.
std::vector<index_t> to_vector(std::span<const index_t> s);

// y = op(x) elementwise into a new contiguous tensor (no autograd); 16-bit tensors are
// computed in f32 and rounded once (unary_kernel and binary_kernel).
Tensor unary_kernel(const char* name, Unary op, const Tensor& x, double p0 = 0, double p1 = 0);
// y = op(a, b) with broadcasting into a new contiguous tensor (no autograd).
Tensor binary_kernel(const char* name, Binary op, const Tensor& a, const Tensor& b);
// Copies src (any layout, broadcast to dst's sizes) into dst's view.
void copy_into(const char* name, const Tensor& dst, const Tensor& src);

}  // namespace tg::detail
