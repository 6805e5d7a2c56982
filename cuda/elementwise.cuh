// CUDA elementwise kernels: unary, binary and where over strided N-D views. The host
// first drops size-1 dimensions and merges those that are contiguous in every operand
// (collapse), so that a contiguous (or same-layout) call becomes one flat grid-stride
// loop (16-byte loads and stores where aligned); otherwise each element's offsets come
// from its row-major index.
//
// The kernels live here, apart from their launches (cuda/elementwise.cu), with the host-side
// plans the launches and the SIMT emulator's tests (tests/test_simt_*.cpp) both follow,
// so that the emulator runs the same source on the CPU.
#pragma once

#ifndef TG_SIMT_HOST  // the host SIMT emulator (tests/simt) stands in for CUDA
#include <cuda_runtime.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>

#include "tilegrad/kernels/elementwise.hpp"
#include "tilegrad/kernels/shape.hpp"

namespace tg::cuda::elementwise_kernels {

using i64 = std::int64_t;
constexpr int kRank = Shape::kMaxRank;

struct Dims {
  int rank = 0;
  i64 size[kRank] = {};
};
struct Strides {
  i64 s[kRank] = {};
};

// The operands' views with size-1 dimensions dropped and dimensions merged where every
// operand is contiguous across them: (4, 5):(5, 1) and (4, 5):(0, 0) stay one dimension
// of 20 elements each.
template <int N>
struct Collapsed {
  Dims dims;
  Strides st[N];
  bool flat() const {  // one dimension of unit stride in every operand (or a scalar)
    if (dims.rank == 0) return true;
    if (dims.rank != 1) return false;
    for (int k = 0; k < N; ++k)
      if (st[k].s[0] != 1) return false;
    return true;
  }
};

template <int N>
Collapsed<N> collapse(const Shape& ys, const Shape* const (&shapes)[N]) {
  Collapsed<N> c;
  int r = 0;
  for (int d = 0; d < ys.rank(); ++d) {
    const i64 n = ys.sizes()[std::size_t(d)];
    if (n == 1) continue;
    bool merge = r > 0;
    for (int k = 0; merge && k < N; ++k)
      merge = c.st[k].s[r - 1] == shapes[k]->strides()[std::size_t(d)] * n;
    if (merge) {
      c.dims.size[r - 1] *= n;
      for (int k = 0; k < N; ++k) c.st[k].s[r - 1] = shapes[k]->strides()[std::size_t(d)];
    } else {
      c.dims.size[r] = n;
      for (int k = 0; k < N; ++k) c.st[k].s[r] = shapes[k]->strides()[std::size_t(d)];
      ++r;
    }
  }
  c.dims.rank = r;
  return c;
}

// The operands' offsets of element i (row-major over d). Unrolled over every possible
// dimension so that all indices are constants: the strides stay in registers and
// parameter space, never in local memory.
template <int N>
__device__ __forceinline__ void offsets_of(const Dims& d, const Strides* const (&st)[N], i64 i, i64 (&off)[N]) {
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] = 0;
#pragma unroll
  for (int j = kRank - 1; j >= 0; --j) {
    if (j >= d.rank) continue;
    const i64 q = i / d.size[j], c = i - q * d.size[j];
    i = q;
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] += c * st[k]->s[j];
  }
}

__device__ __forceinline__ float unary_value(Unary op, float x, float p0, float p1) {
  switch (op) {
    case Unary::copy: return x;
    case Unary::fill: return p0;
    case Unary::neg: return -x;
    case Unary::exp: return expf(x);
    case Unary::log: return logf(x);
    case Unary::sqrt: return sqrtf(x);
    case Unary::rsqrt: return 1.0f / sqrtf(x);
    case Unary::abs: return fabsf(x);
    case Unary::sign: return x != x ? x : float((x > 0.0f) - (x < 0.0f));
    case Unary::square: return x * x;
    case Unary::reciprocal: return 1.0f / x;
    case Unary::add_scalar: return x + p0;
    case Unary::mul_scalar: return x * p0;
    case Unary::pow_scalar: return powf(x, p0);
    case Unary::clamp: return x != x ? x : fminf(fmaxf(x, p0), p1);
    case Unary::in_range: return p0 <= x && x <= p1 ? 1.0f : 0.0f;
    case Unary::gt_scalar: return x > p0 ? 1.0f : 0.0f;
  }
  return __int_as_float(0x7fc00000);
}

__device__ __forceinline__ float binary_value(Binary op, float a, float b) {
  switch (op) {
    case Binary::add: return a + b;
    case Binary::sub: return a - b;
    case Binary::mul: return a * b;
    case Binary::div: return a / b;
    case Binary::eq: return a == b ? 1.0f : 0.0f;
    case Binary::gt: return a > b ? 1.0f : 0.0f;
    case Binary::max: return a != a || b != b ? a + b : fmaxf(a, b);
    case Binary::min: return a != a || b != b ? a + b : fminf(a, b);
  }
  return __int_as_float(0x7fc00000);
}

// Flat operands (or the single element of a scalar view): 16 bytes per access when every
// pointer is 16-byte aligned (kVec), then the n % 4 tail one float at a time.
template <bool kVec>
__global__ void unary_flat(Unary op, float p0, float p1, i64 n, const float* x, float* y) {
  const i64 start = blockIdx.x * i64(blockDim.x) + threadIdx.x, stride = i64(gridDim.x) * blockDim.x;
  const bool fill = op == Unary::fill;
  i64 done = 0;
  if constexpr (kVec) {
    const i64 n4 = n / 4;
    for (i64 i = start; i < n4; i += stride) {
      const float4 v = fill ? make_float4(0, 0, 0, 0) : reinterpret_cast<const float4*>(x)[i];
      reinterpret_cast<float4*>(y)[i] = make_float4(unary_value(op, v.x, p0, p1), unary_value(op, v.y, p0, p1),
                                                    unary_value(op, v.z, p0, p1), unary_value(op, v.w, p0, p1));
    }
    done = 4 * n4;
  }
  for (i64 i = done + start; i < n; i += stride) y[i] = unary_value(op, fill ? 0.0f : x[i], p0, p1);
}

__global__ void unary_nd(Unary op, float p0, float p1, i64 n, Dims d, Strides sx, Strides sy, const float* x, float* y) {
  const Strides* const st[2] = {&sx, &sy};
  for (i64 i = blockIdx.x * i64(blockDim.x) + threadIdx.x; i < n; i += i64(gridDim.x) * blockDim.x) {
    i64 off[2];
    offsets_of<2>(d, st, i, off);
    y[off[1]] = unary_value(op, op == Unary::fill ? 0.0f : x[off[0]], p0, p1);
  }
}

template <bool kVec>
__global__ void binary_flat(Binary op, i64 n, const float* a, const float* b, float* y) {
  const i64 start = blockIdx.x * i64(blockDim.x) + threadIdx.x, stride = i64(gridDim.x) * blockDim.x;
  i64 done = 0;
  if constexpr (kVec) {
    const i64 n4 = n / 4;
    for (i64 i = start; i < n4; i += stride) {
      const float4 u = reinterpret_cast<const float4*>(a)[i], v = reinterpret_cast<const float4*>(b)[i];
      reinterpret_cast<float4*>(y)[i] = make_float4(binary_value(op, u.x, v.x), binary_value(op, u.y, v.y),
                                                    binary_value(op, u.z, v.z), binary_value(op, u.w, v.w));
    }
    done = 4 * n4;
  }
  for (i64 i = done + start; i < n; i += stride) y[i] = binary_value(op, a[i], b[i]);
}


__global__ void binary_nd(Binary op, i64 n, Dims d, Strides sa, Strides sb, Strides sy, const float* a, const float* b,
                          float* y) {
  const Strides* const st[3] = {&sa, &sb, &sy};
  for (i64 i = blockIdx.x * i64(blockDim.x) + threadIdx.x; i < n; i += i64(gridDim.x) * blockDim.x) {
    i64 off[3];
    offsets_of<3>(d, st, i, off);
    y[off[2]] = binary_value(op, a[off[0]], b[off[1]]);
  }
}

__global__ void where_nd(i64 n, Dims d, Strides sc, Strides sa, Strides sb, Strides sy, const float* c, const float* a,
                         const float* b, float* y) {
  const Strides* const st[4] = {&sc, &sa, &sb, &sy};
  for (i64 i = blockIdx.x * i64(blockDim.x) + threadIdx.x; i < n; i += i64(gridDim.x) * blockDim.x) {
    i64 off[4];
    offsets_of<4>(d, st, i, off);
    y[off[3]] = c[off[0]] != 0.0f ? a[off[1]] : b[off[2]];
  }
}

}  // namespace tg::cuda::elementwise_kernels
