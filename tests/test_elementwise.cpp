// Elementwise kernels (kernels/elementwise.hpp): every op on every CPU path and dtype
// against the element formula in double, on random N-D shapes (rank 0 to 5, sizes 0, 1
// and odd) with random layouts: permuted, padded (the gaps hold NaN), and broadcast
// inputs (stride 0); outputs are poisoned with NaN and their gaps must stay NaN.
//
//   build/tests/test_elementwise
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "tilegrad/cpu/elementwise.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/kernels/elementwise.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/reference/nd.hpp"
#include "tests/support/nd.hpp"
#include "tests/support/testing.hpp"
#include "tests/support/wide16_ops.hpp"

namespace tg {
namespace {

using testing::Rng;

// A strided view over its own storage: NaN everywhere the view does not reach.
template <class T>
struct NdBuf {
  Shape view;
  std::vector<T> data;

  static NdBuf make(Rng& rng, const std::vector<index_t>& sizes, bool input) {
    NdBuf b{testing::random_layout(rng, sizes, input), {}};
    b.data.assign(std::size_t(b.view.extent() + 2), testing::kPoison<T>);
    return b;
  }
  void fill_random(Rng& rng, double lo, double hi) {
    ref::nd_for_each<1>(view.sizes(), {&view}, [&](index_t o) { data[std::size_t(o)] = T(rng.uniform(lo, hi)); });
  }
  // Every element the view does not reach is still NaN.
  bool gaps_untouched() const {
    std::vector<char> hit(data.size(), 0);
    ref::nd_for_each<1>(view.sizes(), {&view}, [&](index_t o) { hit[std::size_t(o)] = 1; });
    for (std::size_t i = 0; i < data.size(); ++i)
      if (!hit[i] && !std::isnan(double(data[i]))) return false;
    return true;
  }
};

std::vector<index_t> random_sizes(Rng& rng) { return testing::random_nd_sizes(rng, 100, 3000, 20000); }

struct Path {
  std::string name;
  const OpTable* table;
};
std::vector<Path> paths() {
  std::vector<Path> v{{"reference", &reference_ops()}};
  for (const OpTable* ops : testing::cpu_tables()) v.push_back({ops->name, ops});
  return v;
}

// ||out - ref|| / ||ref|| with NaN failing on either side; tol 0 means exact.
template <class T>
::testing::AssertionResult matches(const NdBuf<T>& y, const std::vector<double>& want, double tol) {
  double num = 0, den = 0;
  std::size_t k = 0;
  bool nan = false;
  ref::nd_for_each<1>(y.view.sizes(), {&y.view}, [&](index_t o) {
    const double got = double(y.data[std::size_t(o)]), w = want[k++];
    if (std::isnan(w) != std::isnan(got)) nan = true;
    if (std::isnan(w)) return;
    num += (got - w) * (got - w);
    den += w * w;
  });
  if (nan) return ::testing::AssertionFailure() << "NaN where the reference has a number, or the reverse";
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  if (tol == 0 ? num == 0 : rel <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "relative error " << rel << " over tolerance " << tol;
}

// The tolerance of each op in float: exact where the op is one rounding of an exact
// value or no rounding at all; exp and log are ~1-2 ulp (cpu/vmath/NOTES.md), pow goes
// through std::pow; 4e-7 is about 3 ulp in norm. Double: one or two roundings.
template <class T>
double tolerance(Unary op) {
  switch (op) {
    case Unary::exp: case Unary::log: case Unary::pow_scalar: case Unary::rsqrt:
      return std::is_same_v<T, float> ? 4e-7 : 1e-15;
    case Unary::sqrt: case Unary::reciprocal: case Unary::square: case Unary::add_scalar:
    case Unary::mul_scalar:
      return std::is_same_v<T, float> ? 1.2e-7 : 2.3e-16;
    default: return 0;
  }
}

template <class T>
void unary_body(Rng& rng) {
  for (const Path& path : paths()) {
    for (int rep = 0; rep < 6 * kUnaryCount; ++rep) {
      const Unary op = Unary(rep % kUnaryCount);
      const std::vector<index_t> sizes = random_sizes(rng);
      NdBuf<T> x = NdBuf<T>::make(rng, sizes, true);
      const bool positive = op == Unary::log || op == Unary::sqrt || op == Unary::rsqrt || op == Unary::pow_scalar;
      x.fill_random(rng, positive ? 0.05 : -4, 4);
      const double p0 = op == Unary::pow_scalar ? double(rng.integer(-2, 3)) + (rng.coin() ? 0.5 : 0) : rng.uniform(-1, 1);
      const double p1 = p0 + rng.uniform(0, 2);
      const bool in_place = op != Unary::fill && rng.integer(0, 3) == 0 && x.view.numel() > 0 &&
                            std::none_of(x.view.strides().begin(), x.view.strides().end(), [](index_t s) { return s == 0; });
      NdBuf<T> y = in_place ? x : NdBuf<T>::make(rng, sizes, false);
      std::vector<double> want;
      ref::nd_for_each<1>(x.view.sizes(), {&x.view},
                          [&](index_t o) { want.push_back(unary_value(op, double(x.data[std::size_t(o)]), double(T(p0)), double(T(p1)))); });
      if (!in_place) std::fill(y.data.begin(), y.data.end(), testing::kPoison<T>);
      path.table->get<T>().unary(op, p0, p1, x.view, in_place ? y.data.data() : x.data.data(), y.view, y.data.data());
      const std::string what = path.name + " " + unary_name(op) + " " + y.view.str() + " from " + x.view.str() +
                               (in_place ? " in place" : "");
      ASSERT_TRUE(matches(y, want, tolerance<T>(op))) << what;
      ASSERT_TRUE(y.gaps_untouched()) << what;
    }
  }
}

template <class T>
void binary_body(Rng& rng) {
  for (const Path& path : paths()) {
    for (int rep = 0; rep < 8 * kBinaryCount; ++rep) {
      const Binary op = Binary(rep % kBinaryCount);
      const std::vector<index_t> sizes = random_sizes(rng);
      NdBuf<T> a = NdBuf<T>::make(rng, sizes, true), b = NdBuf<T>::make(rng, sizes, true);
      a.fill_random(rng, -3, 3);
      b.fill_random(rng, op == Binary::div ? 0.5 : -3, 3);
      if (op == Binary::eq)  // equal on about half the elements
        ref::nd_for_each<2>(sizes, {&a.view, &b.view}, [&](index_t oa, index_t ob) {
          if (rng.coin()) b.data[std::size_t(ob)] = a.data[std::size_t(oa)];
        });
      NdBuf<T> y = NdBuf<T>::make(rng, sizes, false);
      std::vector<double> want;
      ref::nd_for_each<2>(sizes, {&a.view, &b.view}, [&](index_t oa, index_t ob) {
        want.push_back(binary_value(op, double(a.data[std::size_t(oa)]), double(b.data[std::size_t(ob)])));
      });
      path.table->get<T>().binary(op, a.view, a.data.data(), b.view, b.data.data(), y.view, y.data.data());
      const std::string what = path.name + " " + binary_name(op) + " " + y.view.str() + " from " + a.view.str() +
                               " and " + b.view.str();
      // add/sub/mul/div: one rounding of the exact result, at most 0.5 ulp each.
      const double tol = (op == Binary::eq || op == Binary::gt || op == Binary::max || op == Binary::min)
                             ? 0
                             : (std::is_same_v<T, float> ? 6e-8 : 1.2e-16);
      ASSERT_TRUE(matches(y, want, tol)) << what;
      ASSERT_TRUE(y.gaps_untouched()) << what;
    }
  }
}

TEST(Elementwise, UnaryOpsMatchTheirFormulaOnEveryPathAndLayout) {
  TG_TEST_RNG(rng);
  unary_body<float>(rng);
  unary_body<double>(rng);
}

TEST(Elementwise, BinaryOpsMatchTheirFormulaOnEveryPathAndLayout) {
  TG_TEST_RNG(rng);
  binary_body<float>(rng);
  binary_body<double>(rng);
}

TEST(Elementwise, WhereTakesAWhereTheConditionIsNonzero) {
  TG_TEST_RNG(rng);
  for (const Path& path : paths())
    for (int rep = 0; rep < 40; ++rep) {
      const std::vector<index_t> sizes = random_sizes(rng);
      NdBuf<float> c = NdBuf<float>::make(rng, sizes, true), a = NdBuf<float>::make(rng, sizes, true),
                   b = NdBuf<float>::make(rng, sizes, true), y = NdBuf<float>::make(rng, sizes, false);
      c.fill_random(rng, -1, 1);
      ref::nd_for_each<1>(sizes, {&c.view}, [&](index_t o) { c.data[std::size_t(o)] = c.data[std::size_t(o)] > 0 ? 1.0f : 0.0f; });
      a.fill_random(rng, -1, 1);
      b.fill_random(rng, -1, 1);
      std::vector<double> want;
      ref::nd_for_each<3>(sizes, {&c.view, &a.view, &b.view}, [&](index_t oc, index_t oa, index_t ob) {
        want.push_back(c.data[std::size_t(oc)] != 0 ? a.data[std::size_t(oa)] : b.data[std::size_t(ob)]);
      });
      path.table->f32.where(c.view, c.data.data(), a.view, a.data.data(), b.view, b.data.data(), y.view, y.data.data());
      ASSERT_TRUE(matches(y, want, 0)) << path.name << " " << y.view.str();
      ASSERT_TRUE(y.gaps_untouched()) << path.name;
    }
}

TEST(Elementwise, SpecialValuesFollowIeee) {
  // NaN through sign and clamp; masks of NaN are 0; max/min propagate NaN.
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {nan, -inf, -2.0f, -0.0f, 0.0f, 3.0f, inf};
  const Shape s{index_t(x.size())};
  std::vector<float> y(x.size());
  for (const Path& path : paths()) {
    path.table->f32.unary(Unary::sign, 0, 0, s, x.data(), s, y.data());
    EXPECT_TRUE(std::isnan(y[0])) << path.name;
    EXPECT_EQ(std::vector<float>(y.begin() + 1, y.end()), (std::vector<float>{-1, -1, 0, 0, 1, 1})) << path.name;
    path.table->f32.unary(Unary::clamp, -1, 1, s, x.data(), s, y.data());
    EXPECT_TRUE(std::isnan(y[0])) << path.name;
    EXPECT_EQ(std::vector<float>(y.begin() + 1, y.end()), (std::vector<float>{-1, -1, -0.0f, 0, 1, 1})) << path.name;
    path.table->f32.unary(Unary::gt_scalar, 0, 0, s, x.data(), s, y.data());
    EXPECT_EQ(y, (std::vector<float>{0, 0, 0, 0, 0, 1, 1})) << path.name;
    path.table->f32.unary(Unary::exp, 0, 0, s, x.data(), s, y.data());
    EXPECT_TRUE(std::isnan(y[0]));
    EXPECT_EQ(y[1], 0.0f);
    EXPECT_EQ(y[6], inf);
    const std::vector<float> b(x.size(), 1.0f);
    path.table->f32.binary(Binary::max, s, x.data(), s, b.data(), s, y.data());
    EXPECT_TRUE(std::isnan(y[0])) << path.name;
    EXPECT_EQ(y[1], 1.0f);
    EXPECT_EQ(y[6], inf);
  }
}

TEST(Elementwise, CheckedEntriesNameTheBadArgument) {
  std::vector<float> x(64, 1.0f), y(64);
  const Shape s23{2, 3};
  auto expect_error = [](auto&& f, const std::string& arg) {
    try {
      f();
      ADD_FAILURE() << "no tg::Error for " << arg;
    } catch (const Error& e) {
      EXPECT_EQ(e.arg(), arg) << e.what();
    }
  };
  // An output that broadcasts writes one element from several places.
  const index_t sz[] = {2, 3}, bcast[] = {0, 1};
  expect_error([&] { cpu::unary_checked(Unary::neg, 0, 0, s23, x.data(), Shape(sz, bcast), y.data()); }, "y");
  // Sizes that differ.
  expect_error([&] { cpu::unary_checked(Unary::neg, 0, 0, Shape{3, 2}, x.data(), s23, y.data()); }, "x");
  // Partial overlap: y shifted by one element from x.
  expect_error([&] { cpu::unary_checked(Unary::neg, 0, 0, s23, x.data(), s23, x.data() + 1); }, "y");
  expect_error([&] { cpu::binary_checked(Binary::add, s23, x.data(), s23, nullptr, s23, y.data()); }, "b");
  // In place (the very same view) is fine; fill reads no x.
  EXPECT_NO_THROW(cpu::unary_checked(Unary::neg, 0, 0, s23, x.data(), s23, x.data()));
  EXPECT_NO_THROW(cpu::unary_checked(Unary::fill, 2, 0, s23, nullptr, s23, y.data()));
  EXPECT_EQ(y[5], 2.0f);
  // Empty views need no memory.
  const float* none = nullptr;
  EXPECT_NO_THROW(cpu::binary_checked(Binary::mul, Shape{0, 3}, none, Shape{0, 3}, none, Shape{0, 3}, nullptr));
}

}  // namespace
}  // namespace tg
