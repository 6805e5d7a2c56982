// The vector math of cpu/vmath on both paths (AVX2, portable): ulp error against the
// correctly rounded result over float inputs (a strided sweep of every bit pattern in
// unit, all 2^32 patterns in slow), and the special values of each function.
//
// The reference is the function in double (std:: or kernels/reference/activation.cpp),
// whose error (~1e-16 relative) is far below a float ulp. The ulp error of a float
// result f against the exact value d is |f - d| / ulp(d), ulp(d) being the spacing of
// floats at |d| (2^-149 for subnormals). Bounds: exp, sigmoid, tanh 2 ulp; log 2 ulp;
// erf and the gelus 4 ulp; silu and the attention's exp2 3 ulp (cpu/vmath/NOTES.md has
// the measured maxima).
#include <gtest/gtest.h>

#include "tilegrad/cpu/omp.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tilegrad/cpu/activation.hpp"
#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/kernels/activation.hpp"
#include "tests/support/testing.hpp"
#include "tests/support/wide16_ops.hpp"

namespace tg {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

double ulp_of(double d) {
  const double a = std::fabs(d);
  if (a < 0x1p-126) return 0x1p-149;
  int e = 0;
  std::frexp(a, &e);  // a = m 2^e, m in [0.5, 1)
  return std::ldexp(1.0, e - 24);
}

// A float result against the exact value: its error in ulps, or infinity when it has
// the wrong class (NaN, infinity) or sign of zero that matters.
double ulp_error(float f, double d) {
  if (std::isnan(d)) return std::isnan(f) ? 0 : INFINITY;
  if (std::isnan(f)) return INFINITY;
  const float rounded = float(d);  // correctly rounded (d is exact to ~1e-16)
  if (std::isinf(rounded) || std::isinf(f)) return f == rounded ? 0 : INFINITY;
  return std::fabs(double(f) - d) / ulp_of(d);
}

struct Fn {
  std::string name;
  double bound;
  std::function<void(index_t, const float*, float*)> f;  // the path under test
  std::function<double(double)> exact;
};

// One implementation of the vector math: a CPU path, or the portable 16-lane table.
struct MathPath {
  std::string name;
  cpu::MathArrayFn math;
  OpSignatures<float>::act_forward act;
};

// Each path this CPU runs (portable first, the best last), then the 16-lane table.
std::vector<MathPath> math_paths() {
  std::vector<MathPath> v;
  for (cpu::Isa isa : cpu::supported_isas()) {
    cpu::MathArrayFn math = cpu::math_array_portable;
#if TG_X86_PATHS
    if (isa == cpu::Isa::avx2) math = cpu::math_array_avx2;
    if (isa == cpu::Isa::avx512) math = cpu::math_array_avx512;
#endif
#if TG_NEON_PATHS
    if (isa == cpu::Isa::neon) math = cpu::math_array_neon;
#endif
    v.push_back({cpu::isa_name(isa), math, cpu::ops(isa).f32.act_forward});
  }
  v.push_back({"wide16", testing::math_array_wide16, testing::wide16_ops().f32.act_forward});
  return v;
}

std::vector<Fn> functions(const MathPath& path) {
  auto math = [&path](cpu::MathFn fn) {
    return [f = path.math, fn](index_t n, const float* x, float* y) { f(fn, n, x, y); };
  };
  auto act = [&path](Act a) {
    return [f = path.act, a](index_t n, const float* x, float* y) { f({a}, 1, n, x, n, nullptr, y, n); };
  };
  auto ref = [](Act a) { return [a](double x) { return act_value({a}, x); }; };
  return {
      {"exp", 2, math(cpu::MathFn::exp), [](double x) { return std::exp(x); }},
      {"log", 2, math(cpu::MathFn::log), [](double x) { return std::log(x); }},
      {"tanh", 2, math(cpu::MathFn::tanh), [](double x) { return std::tanh(x); }},
      {"sigmoid", 2, math(cpu::MathFn::sigmoid), ref(Act::sigmoid)},
      {"erf", 4, math(cpu::MathFn::erf), [](double x) { return std::erf(x); }},
      // 2^t for t = -|x|, 0 below -126 (the attention's probabilities in base 2).
      {"exp2 (x <= 0)", 3, math(cpu::MathFn::exp2_nonpositive),
       [](double x) {
         const double t = -std::fabs(x);
         return t < -126 ? 0.0 : std::exp2(t);
       }},
      {"gelu_erf", 4, act(Act::gelu_erf), ref(Act::gelu_erf)},
      {"gelu_tanh", 4, act(Act::gelu_tanh), ref(Act::gelu_tanh)},
      {"silu", 3, act(Act::silu), ref(Act::silu)},
      {"act sigmoid", 2, act(Act::sigmoid), ref(Act::sigmoid)},
      {"act tanh", 2, act(Act::tanh), ref(Act::tanh)},
  };
}

struct Sweep {
  double max_ulp = 0;
  float worst_x = 0;
  std::uint64_t count = 0;
};

// Every bit pattern b = start + k * step below 2^32, in parallel chunks.
Sweep sweep(const Fn& fn, std::uint64_t step) {
  const std::uint64_t total = (std::uint64_t(1) << 32) / step;
  Sweep result;
  constexpr std::uint64_t kChunk = 1 << 16;
#pragma omp parallel
  {
    std::vector<float> x(kChunk), y(kChunk);
    Sweep local;
#pragma omp for schedule(dynamic)
    for (std::int64_t c = 0; c < std::int64_t((total + kChunk - 1) / kChunk); ++c) {
      const std::uint64_t k0 = std::uint64_t(c) * kChunk;
      const std::uint64_t n = std::min<std::uint64_t>(kChunk, total - k0);
      for (std::uint64_t k = 0; k < n; ++k) x[k] = std::bit_cast<float>(std::uint32_t((k0 + k) * step));
      fn.f(index_t(n), x.data(), y.data());
      for (std::uint64_t k = 0; k < n; ++k) {
        const double e = ulp_error(y[k], fn.exact(double(x[k])));
        if (e > local.max_ulp || std::isnan(e)) {
          local.max_ulp = e;
          local.worst_x = x[k];
        }
      }
      local.count += n;
    }
#pragma omp critical
    {
      if (local.max_ulp > result.max_ulp) {
        result.max_ulp = local.max_ulp;
        result.worst_x = local.worst_x;
      }
      result.count += local.count;
    }
  }
  return result;
}

void check_sweep(std::uint64_t step, bool best_path_only = false) {
  std::vector<MathPath> paths = math_paths();
  if (best_path_only) paths = {paths[paths.size() - 2]};  // the best CPU path
  for (const MathPath& path : paths)
    for (const Fn& fn : functions(path)) {
      const Sweep s = sweep(fn, step);
      ::testing::Test::RecordProperty(fn.name + "_" + path.name + "_max_ulp", std::to_string(s.max_ulp));
      std::printf("%-12s %-6s max %.3f ulp over %llu inputs (worst at x = %.9g)\n", fn.name.c_str(),
                  path.name.c_str(), s.max_ulp, static_cast<unsigned long long>(s.count), double(s.worst_x));
      EXPECT_LE(s.max_ulp, fn.bound) << fn.name << " on " << path.name << ", worst at x = " << s.worst_x;
    }
}

// 2^32 / 4093 ~ 1M patterns per function and path, every sign and exponent visited
// (65521 under an emulator: 65K patterns, still every sign and exponent).
constexpr std::uint64_t kSweepStep = 4093, kEmulatedSweepStep = 65521;
TEST(Vmath, UlpErrorOnAStridedSweepOfEveryFloat) { check_sweep(testing::budget(kSweepStep, kEmulatedSweepStep)); }

// Every float on the best path; the paths agree bit for bit (the next test), so this
// bounds both.
TEST(VmathSlow, UlpErrorOverEveryFloat) { check_sweep(1, true); }

// Every path runs the same algorithms as the portable one, operation for operation (no
// contraction in ISO C++ mode, explicit FMAs), at 1, 8 or 16 lanes: their results must
// be identical.
TEST(Vmath, PathsAgreeBitForBit) {
  const std::vector<MathPath> paths = math_paths();
  const std::vector<Fn> a = functions(paths.front());
  const std::uint64_t step = testing::budget(kSweepStep, kEmulatedSweepStep), n = (std::uint64_t(1) << 32) / step;
  std::vector<float> x(n), ya(n), yb(n);
  for (std::uint64_t k = 0; k < n; ++k) x[k] = std::bit_cast<float>(std::uint32_t(k * step));
  for (std::size_t p = 1; p < paths.size(); ++p) {
    const std::vector<Fn> b = functions(paths[p]);
    for (std::size_t f = 0; f < a.size(); ++f) {
      a[f].f(index_t(n), x.data(), ya.data());
      b[f].f(index_t(n), x.data(), yb.data());
      std::uint64_t differ = 0;
      for (std::uint64_t k = 0; k < n; ++k)
        differ += std::bit_cast<std::uint32_t>(ya[k]) != std::bit_cast<std::uint32_t>(yb[k]) && !(std::isnan(ya[k]) && std::isnan(yb[k]));
      EXPECT_EQ(differ, 0u) << a[f].name << " on " << paths[p].name;
    }
  }
}

TEST(Vmath, SpecialValues) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float sub = std::numeric_limits<float>::denorm_min();
  struct Case {
    cpu::MathFn fn;
    float x, expected;
  };
  const Case cases[] = {
      {cpu::MathFn::exp, kInf, kInf},
      {cpu::MathFn::exp, -kInf, 0},
      {cpu::MathFn::exp, -0.0f, 1},
      {cpu::MathFn::exp, 88.73f, kInf},
      {cpu::MathFn::exp, -104.0f, 0},
      {cpu::MathFn::exp, 1e30f, kInf},
      {cpu::MathFn::log, 0.0f, -kInf},
      {cpu::MathFn::log, -0.0f, -kInf},
      {cpu::MathFn::log, kInf, kInf},
      {cpu::MathFn::log, 1.0f, 0},
      {cpu::MathFn::tanh, kInf, 1},
      {cpu::MathFn::tanh, -kInf, -1},
      {cpu::MathFn::tanh, 30.0f, 1},
      {cpu::MathFn::tanh, -0.0f, -0.0f},
      {cpu::MathFn::sigmoid, kInf, 1},
      {cpu::MathFn::sigmoid, -kInf, 0},
      {cpu::MathFn::sigmoid, 0.0f, 0.5f},
      {cpu::MathFn::erf, kInf, 1},
      {cpu::MathFn::erf, -kInf, -1},
      {cpu::MathFn::erf, -0.0f, -0.0f},
      {cpu::MathFn::exp2_nonpositive, -kInf, 0},
      {cpu::MathFn::exp2_nonpositive, -0.0f, 1},
      {cpu::MathFn::exp2_nonpositive, -1.0f, 0.5f},
      {cpu::MathFn::exp2_nonpositive, -126.0f, 0x1p-126f},
      {cpu::MathFn::exp2_nonpositive, -126.5f, 0},
      {cpu::MathFn::exp2_nonpositive, -1e30f, 0},
  };
  for (const MathPath& path : math_paths()) {
    auto math = path.math;
    const std::string isa_label = path.name;
    for (const Case& c : cases) {
      float y = 123;
      math(c.fn, 1, &c.x, &y);
      EXPECT_EQ(y, c.expected) << "fn " << int(c.fn) << " at " << c.x << " on " << isa_label;
      EXPECT_EQ(std::signbit(y), std::signbit(c.expected)) << "fn " << int(c.fn) << " at " << c.x;
    }
    for (cpu::MathFn fn : {cpu::MathFn::exp, cpu::MathFn::log, cpu::MathFn::tanh, cpu::MathFn::sigmoid,
                           cpu::MathFn::erf, cpu::MathFn::exp2_nonpositive}) {
      float y = 0;
      math(fn, 1, &nan, &y);
      EXPECT_TRUE(std::isnan(y)) << "fn " << int(fn) << " of NaN on " << isa_label;
    }
    const float neg = -1.0f;
    float y = 0;
    math(cpu::MathFn::log, 1, &neg, &y);
    EXPECT_TRUE(std::isnan(y));
    // Underflow is gradual: exp(-100) and sigmoid(-100) are subnormal, not 0.
    const float m100 = -100.0f;
    math(cpu::MathFn::exp, 1, &m100, &y);
    EXPECT_GT(y, 0.0f);
    EXPECT_LT(y, std::numeric_limits<float>::min());
    math(cpu::MathFn::sigmoid, 1, &m100, &y);
    EXPECT_GT(y, 0.0f);
    math(cpu::MathFn::log, 1, &sub, &y);
    EXPECT_NEAR(y, std::log(double(sub)), 1e-4);
  }
}

}  // namespace
}  // namespace tg
