// Dense conversions between FP32 and the 16-bit floating types on the CPU (Tensor::to's
// contiguous case, autocast's casts): bit for bit the scalar functions of
// kernels/half.hpp (round to nearest even, NaN kept quiet, f16 subnormals and overflow),
// on AVX-512 or AVX2 (and F16C for f16 encoding) as the selected path is, OpenMP-parallel
// past 64K elements. Other pairs of types: the scalar loop.
#pragma once

#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/kernels/types.hpp"

namespace tg::cpu {

// dst[i] = src[i] converted, for i < n; from / to among f32, bf16, f16 (else tg::Error).
void convert(DType from, DType to, index_t n, const void* src, void* dst);
// The same on a given path (tests reach every path this CPU can run).
void convert(Isa isa, DType from, DType to, index_t n, const void* src, void* dst);

namespace convert_impl {
// One contiguous range on AVX2; false when the pair (or f16 encoding without F16C) is
// not there, so the caller falls back to the scalar loop.
bool convert_avx2(DType from, DType to, index_t n, const void* src, void* dst);
// The same on AVX-512, 16 values a step, tails by masked moves.
bool convert_avx512(DType from, DType to, index_t n, const void* src, void* dst);
// The same with NEON on aarch64, 4 values a step (f16 through FCVT, which rounds as F16C).
bool convert_neon(DType from, DType to, index_t n, const void* src, void* dst);
}  // namespace convert_impl

}  // namespace tg::cpu
