// Sum, mean and max over one axis. The reference: closed forms (arange sums), every axis
// of a strided 3-D tensor, empty reductions, and Kokkos's parallel_reduce as a second
// oracle where found. The CPU kernels (cpu/reduce_impl.hpp): every path, dtype and
// thread count against the reference on random (outer, n, inner) views in the layouts
// the kernels specialize (contiguous runs, unit-stride columns) and in any other,
// outputs poisoned with NaN; long runs give the same bits on 1 and 2 threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/cpu/reduce.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/reduce.hpp"
#include "tests/support/guards.hpp"
#include "tests/support/testing.hpp"

namespace tg {

#ifdef TG_PEER_KOKKOS
// tests/peers/kokkos_reduce.cpp (C++17): row sums of a (rows, cols) row-major matrix.
std::vector<double> kokkos_row_sums(const std::vector<double>& x, long rows, long cols, std::string* devices);
#endif

namespace {

TEST(ReduceReference, SumsAndMeansOfArangeAreClosedForms) {
  const index_t n = 1001;
  std::vector<double> x(n);
  for (index_t i = 0; i < n; ++i) x[i] = double(i);
  double s = -1, m = -1;
  reduce_ref<double>(Reduce::sum, 1, n, 1, x.data(), 0, 1, 0, &s, 0, 0);
  reduce_ref<double>(Reduce::mean, 1, n, 1, x.data(), 0, 1, 0, &m, 0, 0);
  EXPECT_EQ(s, double(n * (n - 1) / 2));
  EXPECT_EQ(m, double(n - 1) / 2);
}

// A (4, 5, 6) tensor with padded strides, reduced over each axis by the (outer, n,
// inner) view that the Tensor layer would build; small integers keep every sum exact.
TEST(ReduceReference, EveryAxisOfAStridedTensor) {
  TG_TEST_RNG(rng);
  const index_t size[3] = {4, 5, 6};
  const index_t stride[3] = {5 * 15 + 1, 15, 2};  // rows padded, every other element used
  std::vector<float> x(std::size_t(size[0] * stride[0]), testing::kPoison<float>);
  auto at = [&](index_t a, index_t b, index_t c) -> float& {
    return x[std::size_t(a * stride[0] + b * stride[1] + c * stride[2])];
  };
  for (index_t a = 0; a < size[0]; ++a)
    for (index_t b = 0; b < size[1]; ++b)
      for (index_t c = 0; c < size[2]; ++c) at(a, b, c) = float(rng.integer(-9, 9));
  for (int axis = 0; axis < 3; ++axis) {
    // The two kept axes, in order: outer is the first, inner the second.
    const int keep0 = axis == 0 ? 1 : 0, keep1 = axis == 2 ? 1 : 2;
    std::vector<float> y(std::size_t(size[keep0] * size[keep1]), testing::kPoison<float>);
    reduce_ref<float>(Reduce::sum, size[keep0], size[axis], size[keep1], x.data(), stride[keep0],
                      stride[axis], stride[keep1], y.data(), size[keep1], 1);
    for (index_t o = 0; o < size[keep0]; ++o)
      for (index_t i = 0; i < size[keep1]; ++i) {
        index_t idx[3];
        idx[keep0] = o;
        idx[keep1] = i;
        double expected = 0;
        for (idx[axis] = 0; idx[axis] < size[axis]; ++idx[axis]) expected += at(idx[0], idx[1], idx[2]);
        EXPECT_EQ(y[std::size_t(o * size[keep1] + i)], float(expected)) << "axis " << axis;
      }
  }
}

TEST(ReduceReference, EmptyReductionGivesZeroSumAndNaNMean) {
  float s = 5, m = 5;
  reduce_ref<float>(Reduce::sum, 1, 0, 1, nullptr, 0, 1, 0, &s, 0, 0);
  reduce_ref<float>(Reduce::mean, 1, 0, 1, nullptr, 0, 1, 0, &m, 0, 0);
  EXPECT_EQ(s, 0.0f);
  EXPECT_TRUE(std::isnan(m));
}

TEST(ReduceReference, MaxIsTheLargestElementNaNWinsAndEmptyIsMinusInfinity) {
  TG_TEST_RNG(rng);
  std::vector<float> x(37);
  for (float& v : x) v = float(rng.uniform(-5, 5));
  float y = 0;
  reduce_ref<float>(Reduce::max, 1, 37, 1, x.data(), 0, 1, 0, &y, 0, 0);
  EXPECT_EQ(y, *std::max_element(x.begin(), x.end()));
  // Strided: the max of every third element.
  reduce_ref<float>(Reduce::max, 1, 12, 1, x.data(), 0, 3, 0, &y, 0, 0);
  float want = x[0];
  for (int r = 0; r < 12; ++r) want = std::max(want, x[std::size_t(3 * r)]);
  EXPECT_EQ(y, want);
  x[20] = std::numeric_limits<float>::quiet_NaN();
  reduce_ref<float>(Reduce::max, 1, 37, 1, x.data(), 0, 1, 0, &y, 0, 0);
  EXPECT_TRUE(std::isnan(y));
  reduce_ref<float>(Reduce::max, 1, 0, 1, nullptr, 0, 1, 0, &y, 0, 0);
  EXPECT_EQ(y, -std::numeric_limits<float>::infinity());
}

TEST(ReduceReference, AgreesWithKokkos) {
#ifndef TG_PEER_KOKKOS
  GTEST_SKIP() << "Kokkos was not found at configure time";
#else
  TG_TEST_RNG(rng);
  const index_t rows = 37, cols = 1013;
  std::vector<double> x = testing::random_vec<double>(rng, rows * cols);
  std::vector<double> ours(rows);
  reduce_ref<double>(Reduce::sum, rows, cols, 1, x.data(), cols, 1, 0, ours.data(), 1, 0);
  std::string devices;
  const std::vector<double> theirs = kokkos_row_sums(x, rows, cols, &devices);
  RecordProperty("kokkos_devices", devices);
  // Both sum 1013 values in [-1, 1] in double; orders differ: 1e-13 relative is ample.
  EXPECT_TRUE(testing::rel_close(ours, theirs, 1e-13)) << "Kokkos devices: " << devices;
#endif
}

// ---- CPU kernels ----

using testing::ThreadsGuard;

// A random (outer, n, inner) view in one of three layouts, NaN in every gap.
template <class T>
struct View {
  index_t outer, n, inner, so, sn, si;
  std::vector<T> data;
  std::string layout;
};

template <class T>
View<T> random_view(testing::Rng& rng, index_t outer, index_t n, index_t inner) {
  View<T> v{outer, n, inner, 0, 0, 0, {}, ""};
  const index_t pad = rng.coin() ? rng.integer(1, 5) : 0;
  switch (rng.integer(0, 2)) {
    case 0:  // runs: n contiguous
      v.layout = "runs", v.sn = 1, v.si = n + pad, v.so = inner * v.si + pad;
      break;
    case 1:  // columns: inner contiguous
      v.layout = "columns", v.si = 1, v.sn = inner + pad, v.so = n * v.sn + pad;
      break;
    default:  // strided: everything apart
      v.layout = "strided", v.si = 2, v.sn = 2 * inner + pad + 1, v.so = n * v.sn + pad;
      break;
  }
  const index_t extent = (outer - 1) * v.so + (n - 1) * v.sn + (inner - 1) * v.si + 1;
  v.data.assign(std::size_t(std::max<index_t>(extent, 0) + 1), testing::kPoison<T>);
  for (index_t o = 0; o < outer; ++o)
    for (index_t r = 0; r < n; ++r)
      for (index_t i = 0; i < inner; ++i) v.data[std::size_t(o * v.so + r * v.sn + i * v.si)] = T(rng.uniform(-1, 1));
  return v;
}

// For each output: |out - ref| within tol * sum |x| (a sum's own error scale); max exact.
template <class T>
::testing::AssertionResult reduce_close(Reduce kind, const View<T>& v, const std::vector<T>& out,
                                        const std::vector<double>& want, index_t ys_outer, index_t ys_inner,
                                        double tol) {
  for (index_t o = 0; o < v.outer; ++o)
    for (index_t i = 0; i < v.inner; ++i) {
      const double got = double(out[std::size_t(o * ys_outer + i * ys_inner)]), ref = want[std::size_t(o * v.inner + i)];
      double scale = 0;
      for (index_t r = 0; r < v.n; ++r) scale += std::fabs(double(v.data[std::size_t(o * v.so + r * v.sn + i * v.si)]));
      if (kind == Reduce::mean && v.n > 0) scale /= double(v.n);
      const bool ok = std::isnan(ref) ? std::isnan(got) : kind == Reduce::max ? got == ref
                                                                               : std::fabs(got - ref) <= tol * scale + 1e-30;
      if (!ok)
        return ::testing::AssertionFailure() << "output (" << o << ", " << i << "): got " << got << ", want " << ref
                                             << " (tolerance " << tol * scale << ")";
    }
  // Outputs' gaps untouched.
  std::vector<char> hit(out.size(), 0);
  for (index_t o = 0; o < v.outer; ++o)
    for (index_t i = 0; i < v.inner; ++i) hit[std::size_t(o * ys_outer + i * ys_inner)] = 1;
  for (std::size_t k = 0; k < out.size(); ++k)
    if (!hit[k] && !std::isnan(out[k])) return ::testing::AssertionFailure() << "wrote outside the output at " << k;
  return ::testing::AssertionSuccess();
}

template <class T>
void check_every_path(testing::Rng& rng, double tol) {
  ThreadsGuard guard;
  const index_t ns[] = {0, 1, 2, 15, 16, 17, 100, 257, 1000, 4099};
  const index_t sides[] = {0, 1, 2, 3, 7, 16, 63, 64, 65, 130};
  for (cpu::Isa isa : cpu::supported_isas())
    for (int threads : testing::thread_counts()) {
      cpu::set_num_threads(threads);
      const auto& table = cpu::ops(isa).get<T>();
      for (int rep = 0; rep < testing::budget(40, 16); ++rep) {
        const Reduce kind = Reduce(rng.integer(0, 2));
        index_t outer = sides[rng.integer(1, 5)], n = ns[rng.integer(0, 9)];
        index_t inner = sides[rng.integer(1, testing::budget(9, 7))];
        if (rep == 0) outer = 1, n = 100003, inner = 1;  // one long run: chunked over threads
        if (rep == 1) outer = 2, n = 3000, inner = 200;   // a tall slab: column groups over threads
        if (rep == 2) outer = 0;
        if (rep == 3) inner = 0;
        const View<T> v = random_view<T>(rng, outer, n, inner);
        std::vector<double> want(std::size_t(outer * inner));
        std::vector<double> xd(v.data.begin(), v.data.end());
        reduce_ref<double>(kind, outer, n, inner, xd.data(), v.so, v.sn, v.si, want.data(), inner, 1);
        const index_t ys_inner = rng.coin() ? 1 : 2, ys_outer = inner * ys_inner + (rng.coin() ? 3 : 0);
        std::vector<T> y(std::size_t(std::max<index_t>(outer * ys_outer, 0) + 2), testing::kPoison<T>);
        table.reduce(kind, outer, n, inner, v.data.data(), v.so, v.sn, v.si, y.data(), ys_outer, ys_inner);
        EXPECT_TRUE(reduce_close(kind, v, y, want, ys_outer, ys_inner, tol))
            << cpu::ops(isa).name << " threads " << threads << " " << reduce_name(kind) << " " << v.layout << " ("
            << outer << ", " << n << ", " << inner << ")";
      }
    }
}

// Float lanes add at most 64 terms (columns; 16 for runs) before double takes over, and
// the result is rounded to float once: relative to sum |x| the error is at most
// 65 u = 3.9e-6 (u = 2^-24), a bound, not an estimate, so 4e-6 is the tolerance. It
// catches a lost element whenever that element is above 4e-6 of the row's sum |x|
// (every short row here, and most elements of the 100 003-element one).
TEST(ReduceCpu, EveryPathMatchesTheReferenceF32) {
  TG_TEST_RNG(rng);
  check_every_path<float>(rng, 4e-6);
}

TEST(ReduceCpu, EveryPathMatchesTheReferenceF64) {
  TG_TEST_RNG(rng);
  check_every_path<double>(rng, 1e-13);
}

TEST(ReduceCpu, NaNPropagatesThroughSumAndMax) {
  ThreadsGuard guard;
  for (cpu::Isa isa : cpu::supported_isas())
    for (index_t n : {5, 16, 40, 100000})
      for (int layout : {0, 1}) {
        std::vector<float> x(std::size_t(n * 3), 0.5f);
        x[std::size_t(n * 3 / 2)] = std::numeric_limits<float>::quiet_NaN();
        float y[3] = {0, 0, 0};
        const auto& t = cpu::ops(isa).f32;
        for (Reduce kind : {Reduce::sum, Reduce::max}) {
          if (layout == 0) t.reduce(kind, 1, n * 3, 1, x.data(), 0, 1, 0, y, 0, 0);  // one run
          else t.reduce(kind, 1, n, 3, x.data(), 0, 3, 1, y, 0, 1);                 // three columns
          const bool any = std::isnan(y[0]) || std::isnan(y[1]) || std::isnan(y[2]);
          EXPECT_TRUE(any) << cpu::ops(isa).name << " " << reduce_name(kind) << " n " << n << " layout " << layout;
        }
      }
}

TEST(ReduceCpu, LongRunsGiveTheSameBitsOnOneAndTwoThreads) {
  if (testing::emulated()) GTEST_SKIP() << testing::kNoThreadsUnderEmulation;
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  const index_t n = 1000003;
  const std::vector<float> x = testing::random_vec<float>(rng, n);
  float y1 = 0, y2 = 1;
  cpu::set_num_threads(1);
  cpu::reduce_checked(Reduce::sum, 1, n, 1, x.data(), n, 1, 1, &y1, 1, 1);
  cpu::set_num_threads(2);
  cpu::reduce_checked(Reduce::sum, 1, n, 1, x.data(), n, 1, 1, &y2, 1, 1);
  EXPECT_EQ(y1, y2);
}

TEST(ReduceCpu, CheckedEntryNamesTheBadArgument) {
  std::vector<float> x(20), y(4);
  try {
    cpu::reduce_checked(Reduce::mean, 1, 5, 4, x.data(), 20, -4, 1, y.data(), 4, 1);
    ADD_FAILURE() << "a negative stride was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mean"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tg
