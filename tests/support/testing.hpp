// Helpers every test uses: seeded random data (the seed printed on failure), NaN-poisoned
// outputs, strided matrices with poisoned padding, relative-norm comparison against a
// reference with the tolerance stated at the call site, size and stride generators, and
// central finite differences in double.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tilegrad/kernels/types.hpp"

namespace tg::testing {

// The base seed: TG_TEST_SEED if set (a number, or "random" for a fresh one), else a
// fixed default. Each test mixes in its own name, so tests do not share streams.
std::uint64_t base_seed();

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : seed_(seed), gen_(seed) {}
  // Seeded from base_seed() and the running test's name.
  static Rng for_current_test();

  double uniform(double lo = -1, double hi = 1) { return std::uniform_real_distribution<double>(lo, hi)(gen_); }
  double normal() { return std::normal_distribution<double>(0, 1)(gen_); }
  index_t integer(index_t lo, index_t hi) { return std::uniform_int_distribution<index_t>(lo, hi)(gen_); }
  bool coin() { return integer(0, 1) == 1; }
  std::uint64_t seed() const { return seed_; }
  std::mt19937_64& engine() { return gen_; }

 private:
  std::uint64_t seed_;
  std::mt19937_64 gen_;
};

// Declares `rng` for this test and prints how to reproduce it if the test fails.
#define TG_TEST_RNG(rng)                                                            \
  ::tg::testing::Rng rng = ::tg::testing::Rng::for_current_test();                  \
  SCOPED_TRACE("random stream seed " + std::to_string(rng.seed()) +                 \
               " (rerun with TG_TEST_SEED=" + std::to_string(::tg::testing::base_seed()) + ")")

template <class T>
constexpr T kPoison = std::numeric_limits<T>::quiet_NaN();

// A rows x cols row-major matrix with row stride ld >= cols; the padding between rows
// holds NaN, so a kernel that reads it makes NaN and one that writes it is caught.
template <class T>
struct Mat {
  index_t rows = 0, cols = 0, ld = 0;
  std::vector<T> data;

  Mat() = default;
  Mat(index_t r, index_t c, index_t l)
      : rows(r), cols(c), ld(l), data(std::size_t(r > 0 ? (r - 1) * l + c : 0) + 1, kPoison<T>) {}
  T* ptr() { return data.data(); }
  const T* ptr() const { return data.data(); }
  T& at(index_t i, index_t j) { return data[std::size_t(i * ld + j)]; }
  const T& at(index_t i, index_t j) const { return data[std::size_t(i * ld + j)]; }
  // True when every element outside the rows x cols view is still the NaN poison.
  bool padding_untouched() const;
};

template <class T>
Mat<T> random_mat(Rng& rng, index_t rows, index_t cols, index_t ld, double lo = -1, double hi = 1) {
  Mat<T> m(rows, cols, ld);
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) m.at(i, j) = T(rng.uniform(lo, hi));
  return m;
}

// A matrix of NaN everywhere: the output of a kernel under test before the call.
template <class T>
Mat<T> poisoned_mat(index_t rows, index_t cols, index_t ld) {
  return Mat<T>(rows, cols, ld);
}

template <class T>
std::vector<T> random_vec(Rng& rng, index_t n, double lo = -1, double hi = 1) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (T& x : v) x = T(rng.uniform(lo, hi));
  return v;
}

// Whether the tests run under an emulator (TG_TEST_EMULATED=1: scripts/test --aarch64
// runs the aarch64 build under qemu-user, where floating point is tens to hundreds of
// times slower): the kernel tests then draw fewer and smaller random cases, keeping the
// same kinds (odd sizes, tails, block edges), and run one thread.
inline bool emulated() {
  static const bool on = [] {
    const char* env = std::getenv("TG_TEST_EMULATED");
    return env != nullptr && *env != '\0' && std::string_view(env) != "0";
  }();
  return on;
}
// Why a test that compares thread counts skips under an emulator: Debian's qemu-user
// hangs in libgomp's first two-thread parallel region (a five-line OpenMP program does
// too), so every emulated case runs on one thread; x86-64 runs the threaded paths.
inline constexpr const char* kNoThreadsUnderEmulation =
    "two OpenMP threads hang under qemu-user (libgomp); the threaded paths are tested natively";
// Thread counts for a test's cases: 1 and 2 natively, 1 under an emulator.
inline std::vector<int> thread_counts() { return emulated() ? std::vector<int>{1} : std::vector<int>{1, 2}; }
// `native` natively, `under_emulation` under an emulator: counts of random cases and the
// largest random sizes.
template <class T>
T budget(T native, T under_emulation) {
  return emulated() ? under_emulation : native;
}

// Sizes that find bugs: 0 and 1, odd primes around SIMD widths and tiles, one larger.
std::vector<index_t> interesting_sizes();
// `count` sizes: the interesting ones first, then random ones in [0, max].
std::vector<index_t> mixed_sizes(Rng& rng, int count, index_t max);
// A row stride for a row of `cols`: cols itself half the time, else cols + 1..17.
index_t random_ld(Rng& rng, index_t cols);

// The comparison of docs/design.md: ||out - ref|| / ||ref|| over the finite entries of ref.
// Fails on NaN on either side, and on an infinity of ref not matched exactly by out.
// tol is stated by the caller, with its reason. `floor`: the size of the values the
// result is computed from, for references that may cancel to (near) zero: the error is
// then measured against max(||ref||, floor), not against the rounding noise of a zero.
template <class T, class U>
::testing::AssertionResult rel_close(const T* out, index_t out_ld, const U* ref, index_t ref_ld,
                                     index_t rows, index_t cols, double tol, double floor = 0);

template <class T, class U>
::testing::AssertionResult rel_close(const Mat<T>& out, const Mat<U>& ref, double tol, double floor = 0) {
  return rel_close(out.ptr(), out.ld, ref.ptr(), ref.ld, out.rows, out.cols, tol, floor);
}
template <class T, class U>
::testing::AssertionResult rel_close(const std::vector<T>& out, const std::vector<U>& ref, double tol,
                                     double floor = 0) {
  return rel_close(out.data(), index_t(out.size()), ref.data(), index_t(ref.size()), 1,
                   index_t(out.size()), tol, floor);
}

// The Euclidean norm of v.
template <class T>
double norm(const std::vector<T>& v) {
  double s = 0;
  for (const T& x : v) s += double(x) * double(x);
  return std::sqrt(s);
}

// ||out - ref|| / ||ref|| (||out - ref|| when ref is all zeros): the number rel_close
// bounds, for the tests that also record the worst error they see.
template <class T, class U>
double relative_error(const std::vector<T>& out, const std::vector<U>& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < out.size() && i < ref.size(); ++i) {
    const double d = double(out[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// One entry's agreement: both NaN, the same infinity, or |got - want| <= tol (1 + |want|).
bool near(double got, double want, double tol);
// near() entry by entry over two vectors of the same size.
::testing::AssertionResult all_near(const std::vector<float>& got, const std::vector<float>& want, double tol);

// Elementwise agreement of a rows x ld output with the reference over its rows x cols:
// both NaN, equal infinities, or |got - want| <= tol (1 + |want|); the padding columns
// must still be NaN (outputs are poisoned before the call). For kernels whose special
// values (inf, NaN) matter entry by entry, where a norm would blur them.
::testing::AssertionResult elementwise_close(const std::vector<float>& got, const std::vector<double>& want,
                                             index_t rows, index_t cols, index_t ld, double tol);

// Values rounded to bf16 (f16 when f16): their bits, which a 16-bit kernel reads, and
// their exact values, which the double reference reads.
struct Rounded16 {
  std::vector<std::uint16_t> bits;
  std::vector<double> values;
};
Rounded16 round16(const std::vector<float>& v, bool f16);

// Whether the padding columns [cols, ld) of a rows x ld output kept their values (NaN
// stays NaN): a kernel must not write outside its matrix.
::testing::AssertionResult pads_untouched(const std::vector<float>& out, const std::vector<float>& before,
                                          index_t rows, index_t cols, index_t ld);

// Central differences of a scalar function of a vector, in double:
// g_i = (f(x + h e_i) - f(x - h e_i)) / 2h.
std::vector<double> central_diff(const std::function<double(const std::vector<double>&)>& f,
                                 std::vector<double> x, double h = 1e-6);

}  // namespace tg::testing
