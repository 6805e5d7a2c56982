// Dense FP32 <-> bf16/f16 conversions (cpu/convert.hpp): the scalar loop, the path
// dispatch and the OpenMP split; the SIMD ranges are in convert_avx2.cpp, convert_avx512.cpp
// and convert_neon.cpp.
#include "tilegrad/cpu/convert.hpp"

#include <cstdint>

#include "tilegrad/cpu/parallel.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/half.hpp"

namespace tg::cpu {
namespace {

bool supported(DType t) { return t == DType::f32 || t == DType::bf16 || t == DType::f16; }

void convert_scalar(DType from, DType to, index_t n, const void* src, void* dst) {
  auto load = [&](index_t i) -> float {
    switch (from) {
      case DType::bf16: return float_from_bf16_bits(static_cast<const std::uint16_t*>(src)[i]);
      case DType::f16: return float_from_f16_bits(static_cast<const std::uint16_t*>(src)[i]);
      default: return static_cast<const float*>(src)[i];
    }
  };
  for (index_t i = 0; i < n; ++i) {
    const float v = load(i);
    switch (to) {
      case DType::bf16: static_cast<std::uint16_t*>(dst)[i] = bf16_bits_from_float(v); break;
      case DType::f16: static_cast<std::uint16_t*>(dst)[i] = f16_bits_from_float(v); break;
      default: static_cast<float*>(dst)[i] = v; break;
    }
  }
}

}  // namespace

void convert(Isa isa, DType from, DType to, index_t n, const void* src, void* dst) {
  TG_CHECK(supported(from) && supported(to), "cpu::convert", "dtype", "expected f32, bf16 or f16, got ",
           dtype_name(from), " -> ", dtype_name(to));
  TG_CHECK(n >= 0, "cpu::convert", "n", "expected n >= 0, got ", n);
  TG_CHECK(isa_supported(isa), "cpu::convert", "isa", "this CPU cannot run the ", isa_name(isa), " path");
  const std::size_t in = dtype_size(from), out = dtype_size(to);
  // Ranges of 64K elements or more per thread (a conversion is a copy: below that the
  // fork costs more than it saves).
  for_each_range(1, n, index_t(1) << 16, [&](index_t, index_t j0, index_t j1) {
    const void* s = static_cast<const char*>(src) + std::size_t(j0) * in;
    void* d = static_cast<char*>(dst) + std::size_t(j0) * out;
#if TG_X86_PATHS
    if (isa == Isa::avx512 && convert_impl::convert_avx512(from, to, j1 - j0, s, d)) return;
    if (isa == Isa::avx2 && convert_impl::convert_avx2(from, to, j1 - j0, s, d)) return;
#endif
#if TG_NEON_PATHS
    if (isa == Isa::neon && convert_impl::convert_neon(from, to, j1 - j0, s, d)) return;
#endif
    convert_scalar(from, to, j1 - j0, s, d);
  });
}

void convert(DType from, DType to, index_t n, const void* src, void* dst) {
  convert(selected_isa(), from, to, n, src, dst);
}

}  // namespace tg::cpu
