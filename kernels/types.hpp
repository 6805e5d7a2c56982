// Core value types shared by every layer: index_t, Device, DType.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tilegrad/kernels/half.hpp"

namespace tg {

// Sizes, strides and leading dimensions are in elements and signed 64-bit, as in
// BLAS-like APIs; negative values are rejected at the API boundary.
using index_t = std::int64_t;

enum class DeviceType : std::uint8_t { cpu, cuda };

// Where a buffer lives: the host (cpu) or the N-th CUDA device (cuda:N).
struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static constexpr Device cpu() { return {DeviceType::cpu, 0}; }
  static constexpr Device cuda(int i = 0) { return {DeviceType::cuda, i}; }
  // "cpu", "cuda", "cuda:1"; throws tg::Error on anything else.
  static Device parse(std::string_view text);

  constexpr bool is_cpu() const { return type == DeviceType::cpu; }
  constexpr bool is_cuda() const { return type == DeviceType::cuda; }
  std::string str() const;  // "cpu", "cuda:0"
  friend constexpr bool operator==(Device, Device) = default;
};

// i64: integer data (class indices for cross_entropy); the arithmetic kernels take the
// floating types only, f32 and f64; bf16 and f16 (kernels/half.hpp) are storage types
// that the 16-bit GEMMs read and autograd widens to f32.
enum class DType : std::uint8_t { f32, f64, bf16, f16, i64 };

constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::bf16: return 2;
    case DType::f16: return 2;
    case DType::i64: return 8;
  }
  return 0;
}

const char* dtype_name(DType t);  // "f32", "f64", "bf16", "f16", "i64"

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<bfloat16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<float16> { static constexpr DType value = DType::f16; };
template <class T> inline constexpr DType dtype_v = dtype_of<T>::value;

}  // namespace tg
