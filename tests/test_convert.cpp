// cpu::convert (cpu/convert.hpp): on every path this CPU can run, bit for bit the scalar
// functions of kernels/half.hpp (themselves checked against the formats' definitions in
// test_amp): every 16-bit pattern decoded, and ~1M float patterns spread over the whole
// 32-bit range plus the edge cases (NaN payloads signalling and quiet, ties, f16
// subnormals, the overflow boundary) encoded; odd lengths reach the scalar tails, long
// ones the OpenMP split.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "tilegrad/cpu/convert.hpp"
#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/half.hpp"

namespace tg {
namespace {

std::uint32_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ~1M float patterns: a stride through all 2^32, and the cases that matter most.
std::vector<float> patterns() {
  std::vector<float> v;
  for (std::uint64_t u = 0; u < (std::uint64_t(1) << 32); u += 4099) v.push_back(from_bits(std::uint32_t(u)));
  const std::uint32_t special[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00000u,
                                   0x7f800001u, 0x7fa00000u, 0xff812345u, 0x7fffffffu, 0x477fe000u, 0x477fefffu,
                                   0x477ff000u, 0x477fffffu, 0x38800000u, 0x387fffffu, 0x33800000u, 0x33000000u,
                                   0x33000001u, 0x32ffffffu, 0x00000001u, 0x007fffffu, 0x3f808000u, 0x3f818000u,
                                   0x3f800fffu, 0x3f801000u, 0x3f803000u, 0x7f7fffffu, 0xff7fffffu};
  for (std::uint32_t u : special) v.push_back(from_bits(u));
  // Every f16 value and the midpoints around it, both signs (ties to even).
  for (std::uint32_t h = 0; h < 0x7c00u; ++h) {
    const float x = float_from_f16_bits(std::uint16_t(h));
    for (std::uint32_t d : {0u, 0xfffu, 0x1000u, 0x1001u}) v.push_back(from_bits(bits(x) + d)), v.push_back(-from_bits(bits(x) + d));
  }
  while (v.size() % 8 != 5) v.push_back(1.0f);  // a tail of 5 past the 8-wide steps
  return v;
}

TEST(Convert, EveryPathMatchesTheScalarFunctionsBitForBit) {
  const std::vector<float> in = patterns();
  ASSERT_EQ(in.size() % 8, 5u) << "keep a tail";
  std::vector<std::uint16_t> all16(65536 + 3);
  for (std::size_t i = 0; i < all16.size(); ++i) all16[i] = std::uint16_t(i * 40503u);  // every pattern (odd factor)
  for (cpu::Isa isa : cpu::supported_isas()) {
    SCOPED_TRACE(cpu::isa_name(isa));
    for (DType t : {DType::bf16, DType::f16}) {
      SCOPED_TRACE(dtype_name(t));
      const bool f16 = t == DType::f16;
      std::vector<std::uint16_t> h(in.size(), 0xdead);
      cpu::convert(isa, DType::f32, t, index_t(in.size()), in.data(), h.data());
      for (std::size_t i = 0; i < in.size(); ++i) {
        const std::uint16_t want = f16 ? f16_bits_from_float(in[i]) : bf16_bits_from_float(in[i]);
        ASSERT_EQ(h[i], want) << "encode 0x" << std::hex << bits(in[i]);
      }
      std::vector<float> back(all16.size(), std::numeric_limits<float>::quiet_NaN());
      cpu::convert(isa, t, DType::f32, index_t(all16.size()), all16.data(), back.data());
      for (std::size_t i = 0; i < all16.size(); ++i) {
        const float want = f16 ? float_from_f16_bits(all16[i]) : float_from_bf16_bits(all16[i]);
        ASSERT_EQ(bits(back[i]), bits(want)) << "decode 0x" << std::hex << all16[i];
      }
    }
    // f32 -> f32 and 16 -> 16 copies, and n == 0.
    std::vector<float> copy(in.size());
    cpu::convert(isa, DType::f32, DType::f32, index_t(in.size()), in.data(), copy.data());
    EXPECT_EQ(std::memcmp(copy.data(), in.data(), in.size() * 4), 0);
    cpu::convert(isa, DType::f32, DType::bf16, 0, nullptr, nullptr);
  }
  try {
    cpu::convert(DType::f64, DType::bf16, 1, in.data(), all16.data());
    ADD_FAILURE() << "expected tg::Error for f64";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dtype"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tg
