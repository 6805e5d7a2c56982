// Elementwise ops over strided N-D views (rank <= Shape::kMaxRank): what a Tensor layer
// needs between the big kernels (copies, fills, arithmetic with NumPy broadcasting,
// the masks of backward formulas).
//
// Every operand is a Shape (sizes and strides in elements) and a pointer; all operands
// of one call have the same sizes. Broadcasting is the caller's: an input dimension of
// size 1 stretched to n is given stride 0. For each index i of the common sizes:
//
//   unary:   y[i] = f(x[i]; p0, p1)                 (fill reads no x)
//   binary:  y[i] = g(a[i], b[i])
//   where:   y[i] = c[i] != 0 ? a[i] : b[i]
//
// Outputs never broadcast (an output stride 0 on a size > 1 is rejected: several
// results would race into one element). An output may be exactly an input's view (same
// pointer and strides: in place) and must not otherwise overlap it. Masks (eq, gt,
// in_range, sign) are 0 or 1 (sign -1, 0, 1) of the operands' type, NaN where an input
// is NaN for sign, 0 for the comparisons (IEEE: NaN compares false).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tilegrad/kernels/shape.hpp"
#include "tilegrad/kernels/types.hpp"

namespace tg {

enum class Unary : std::uint8_t {
  copy,        // x
  fill,        // p0 (x is not read and may be null)
  neg,         // -x
  exp,         // e^x
  log,         // ln x
  sqrt,        // sqrt x
  rsqrt,       // 1 / sqrt x
  abs,         // |x|
  sign,        // -1, 0, 1 (NaN for NaN)
  square,      // x^2
  reciprocal,  // 1 / x
  add_scalar,  // x + p0
  mul_scalar,  // x p0
  pow_scalar,  // x^p0 (std::pow)
  clamp,       // min(max(x, p0), p1); NaN stays NaN
  in_range,    // 1 if p0 <= x <= p1, else 0
  gt_scalar,   // 1 if x > p0, else 0
};
inline constexpr int kUnaryCount = 17;
const char* unary_name(Unary op);  // "copy", "fill", ...

enum class Binary : std::uint8_t {
  add,  // a + b
  sub,  // a - b
  mul,  // a b
  div,  // a / b
  eq,   // 1 if a == b, else 0
  gt,   // 1 if a > b, else 0
  max,  // max(a, b), NaN if either is NaN
  min,  // min(a, b), NaN if either is NaN
};
inline constexpr int kBinaryCount = 8;
const char* binary_name(Binary op);

// The value of one element, in double: the reference kernels and the tests use it.
double unary_value(Unary op, double x, double p0, double p1);
double binary_value(Binary op, double a, double b);

void check_unary(const char* op, const Shape& xs, const void* x, const Shape& ys, const void* y,
                 std::size_t elem, bool reads_x = true);
void check_binary(const char* op, const Shape& as, const void* a, const Shape& bs, const void* b,
                  const Shape& ys, const void* y, std::size_t elem);
void check_where(const char* op, const Shape& cs, const void* c, const Shape& as, const void* a,
                 const Shape& bs, const void* b, const Shape& ys, const void* y, std::size_t elem);

template <class T>
void unary_ref(Unary op, double p0, double p1, const Shape& xs, const T* x, const Shape& ys, T* y);
template <class T>
void binary_ref(Binary op, const Shape& as, const T* a, const Shape& bs, const T* b, const Shape& ys,
                T* y);
template <class T>
void where_ref(const Shape& cs, const T* c, const Shape& as, const T* a, const Shape& bs, const T* b,
               const Shape& ys, T* y);

}  // namespace tg
