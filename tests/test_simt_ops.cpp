// The small ops' kernels (cuda/elementwise.cuh, reduce.cuh, random.cuh, optimizer.cuh,
// convert.cuh), their own source, run on the CPU by the SIMT emulator (tests/simt),
// launched by the same host-side plans as on the GPU (collapse, plan_reduce,
// multi_tensor), against the references of kernels/ with the GPU test's bounds
// (test_cuda_ops): elementwise ops on random strided and broadcast N-D views in the flat
// (16-byte and scalar) and N-D kernels; sum / mean / max over (outer, n, inner) views in
// the row, column and chunked kernels; Philox draws and
// dropout (the CPU's bits); SGD and Adam over more slots than one launch takes, also with
// live scalars; dtype conversions (cuda/convert.cuh) between f32, bf16 and f16 against
// kernels/half.hpp's scalar functions bit for bit, dense and strided. Grids smaller than
// the work, so that the grid-stride loops go round. Outputs NaN-poisoned.
#include "tests/simt/simt.hpp"
// The kernels, compiled for the host against the emulator.
#include "tilegrad/cuda/convert.cuh"
#include "tilegrad/cuda/elementwise.cuh"
#include "tilegrad/cuda/optimizer.cuh"
#include "tilegrad/cuda/random.cuh"
#include "tilegrad/cuda/reduce.cuh"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "tilegrad/kernels/elementwise.hpp"
#include "tilegrad/kernels/half.hpp"
#include "tilegrad/kernels/optimizer.hpp"
#include "tilegrad/kernels/random.hpp"
#include "tilegrad/kernels/reduce.hpp"
#include "tests/support/nd.hpp"
#include "tests/support/op_cases.hpp"
#include "tests/support/simt_launch.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using testing::launch;
using testing::small_grid;

// The small ops' kernel namespaces, under one name.
namespace ok {
using namespace cuda::elementwise_kernels;
using namespace cuda::optimizer_kernels;
using namespace cuda::random_kernels;
using namespace cuda::reduce_kernels;
}  // namespace ok
using i64 = std::int64_t;
using testing::all_near;
constexpr float kNaN = testing::kPoison<float>;


// ---- elementwise ----

// cuda::unary / binary / where's choice of kernel, with the flat kernels' 16-byte path
// taken whenever the pointers allow (vec) or never.
template <int N>
bool flat_vec(const ok::Collapsed<N>& c, i64 n, std::initializer_list<const float*> ptrs, bool vec) {
  if (!vec || !c.flat() || n < 4) return false;
  for (const float* p : ptrs)
    if (p != nullptr && (reinterpret_cast<std::uintptr_t>(p) & 15) != 0) return false;
  return true;
}

TEST(SimtOps, ElementwiseMatchesTheReferenceOnStridedAndBroadcastViews) {
  TG_TEST_RNG(rng);
  const double tol = 2e-6;  // test_cuda_ops: a few roundings of the result (pow and exp: 2 ulp)
  int flat = 0, nd = 0;
  for (int rep = 0; rep < 40; ++rep) {
    // Every fourth case one contiguous run (the flat kernels), the others random layouts.
    std::vector<index_t> sizes = testing::random_nd_sizes(rng, 100, 3000, 20000);
    const bool dense = rep % 4 == 0;
    if (dense) sizes = {rng.integer(0, 3000)};
    auto view = [&](bool input) {
      if (!dense) return testing::random_stored_view(rng, sizes, input);
      testing::StoredView v{Shape(sizes), std::vector<float>(std::size_t(sizes[0]) + 1, kNaN)};
      if (input)
        for (index_t i = 0; i < sizes[0]; ++i) v.data[std::size_t(i)] = float(rng.uniform(-3, 3));
      return v;
    };
    testing::StoredView a = view(true), b = view(true), c = view(true), y0 = view(false);
    for (float& v : c.data)
      if (!std::isnan(v)) v = v > 0 ? 1.0f : 0.0f;
    const i64 n = y0.shape.numel();
    const bool vec = rep % 2 == 0;
    SCOPED_TRACE("shape " + y0.shape.str() + " a " + a.shape.str() + " b " + b.shape.str() + (vec ? " vec" : ""));
    const simt::Dim3 grid = small_grid(n);
    for (int op = 0; op < kUnaryCount; ++op) {
      const Unary u = Unary(op);
      const float p0 = u == Unary::pow_scalar ? float(rng.integer(-2, 3)) : float(rng.uniform(-1, 1)), p1 = p0 + 1;
      std::vector<float> got = y0.data, want = y0.data;
      const Shape* const shapes[2] = {&a.shape, &y0.shape};
      const ok::Collapsed<2> k = ok::collapse<2>(y0.shape, shapes);
      const float* x = u == Unary::fill ? nullptr : a.data.data();
      if (n > 0) {
        if (flat_vec(k, n, {x, got.data()}, vec)) launch(grid, 64, 1, [&] { ok::unary_flat<true>(u, p0, p1, n, x, got.data()); });
        else if (k.flat()) launch(grid, 64, 1, [&] { ok::unary_flat<false>(u, p0, p1, n, x, got.data()); });
        else launch(grid, 64, 1, [&] { ok::unary_nd(u, p0, p1, n, k.dims, k.st[0], k.st[1], x, got.data()); });
        (k.flat() ? flat : nd)++;
      }
      unary_ref<float>(u, p0, p1, a.shape, a.data.data(), y0.shape, want.data());
      ASSERT_TRUE(all_near(got, want, tol)) << unary_name(u);
    }
    for (int op = 0; op < kBinaryCount; ++op) {
      const Binary g = Binary(op);
      std::vector<float> got = y0.data, want = y0.data;
      const Shape* const shapes[3] = {&a.shape, &b.shape, &y0.shape};
      const ok::Collapsed<3> k = ok::collapse<3>(y0.shape, shapes);
      const float *pa = a.data.data(), *pb = b.data.data();
      if (n > 0) {
        if (flat_vec(k, n, {pa, pb, got.data()}, vec)) launch(grid, 64, 1, [&] { ok::binary_flat<true>(g, n, pa, pb, got.data()); });
        else if (k.flat()) launch(grid, 64, 1, [&] { ok::binary_flat<false>(g, n, pa, pb, got.data()); });
        else launch(grid, 64, 1, [&] { ok::binary_nd(g, n, k.dims, k.st[0], k.st[1], k.st[2], pa, pb, got.data()); });
      }
      binary_ref<float>(g, a.shape, pa, b.shape, pb, y0.shape, want.data());
      ASSERT_TRUE(all_near(got, want, tol)) << binary_name(g);
    }
    std::vector<float> got = y0.data, want = y0.data;
    const Shape* const shapes[4] = {&c.shape, &a.shape, &b.shape, &y0.shape};
    const ok::Collapsed<4> k = ok::collapse<4>(y0.shape, shapes);
    if (n > 0)
      launch(grid, 64, 1, [&] {
        ok::where_nd(n, k.dims, k.st[0], k.st[1], k.st[2], k.st[3], c.data.data(), a.data.data(), b.data.data(), got.data());
      });
    where_ref<float>(c.shape, c.data.data(), a.shape, a.data.data(), b.shape, b.data.data(), y0.shape, want.data());
    ASSERT_TRUE(all_near(got, want, 0.0)) << "where";
  }
  EXPECT_GT(flat, 0);  // both kernel families ran
  EXPECT_GT(nd, 0);
}

// Merging dimensions is what makes a view flat: a padded matrix is not, a transposed
// one is not, a broadcast row is not, a dense (2, 3, 4) is.
TEST(SimtOps, CollapseMergesOnlyWhatEveryOperandHasContiguous) {
  const index_t sz[] = {4, 5};
  const index_t dense_s[] = {5, 1}, pad_s[] = {6, 1}, bcast_s[] = {0, 1};
  const Shape dense(sz, dense_s), padded(sz, pad_s), bcast(sz, bcast_s);
  auto flat2 = [](const Shape& x, const Shape& y) {
    const Shape* const s[2] = {&x, &y};
    return ok::collapse<2>(y, s);
  };
  EXPECT_TRUE(flat2(dense, dense).flat());
  EXPECT_EQ(flat2(dense, dense).dims.size[0], 20);
  EXPECT_FALSE(flat2(padded, dense).flat());
  EXPECT_FALSE(flat2(bcast, dense).flat());
  EXPECT_EQ(flat2(bcast, dense).dims.rank, 2);
  const index_t sz3[] = {2, 1, 3, 4};
  const Shape d3(sz3);
  EXPECT_TRUE(flat2(d3, d3).flat());
  EXPECT_EQ(flat2(d3, d3).dims.size[0], 24);
}

// ---- reductions ----

TEST(SimtOps, ReduceMatchesTheReferenceInEveryKernelAndChunking) {
  TG_TEST_RNG(rng);
  struct Case {
    index_t outer, n, inner;
  };
  // With 2 SMs (want 4 blocks) chunking starts at small sizes; with an H200's 132 only on
  // long runs. (3, 9000, 1) takes the block-per-output kernel in 2 chunks.
  std::vector<Case> cases = {{1, 0, 1},   {3, 0, 5},    {0, 7, 3},   {1, 1, 1},  {1, 5000, 1}, {2, 3000, 1},
                             {1, 20000, 3}, {3, 9000, 1}, {100, 10, 1}, {7, 33, 77}, {1, 1024, 70}, {2, 2, 300}};
  for (int i = 0; i < 8; ++i) cases.push_back({rng.integer(1, 20), rng.integer(0, 2000), rng.integer(1, 40)});
  int chunked = 0;
  for (const Case& c : cases)
    for (int kind = 0; kind < 3; ++kind) {
      const Reduce r = Reduce(kind);
      const int sms = rng.coin() ? 2 : 132;
      const bool n_inner = rng.coin();
      const index_t pad = rng.integer(0, 2);
      index_t xs_i, xs_n, xs_o;
      if (n_inner) xs_n = 1, xs_i = c.n + pad, xs_o = xs_i * std::max<index_t>(c.inner, 1) + pad;
      else xs_i = 1, xs_n = c.inner + pad, xs_o = xs_n * std::max<index_t>(c.n, 1) + pad;
      std::vector<float> x(std::size_t(c.outer * xs_o + 1), kNaN);
      for (index_t o = 0; o < c.outer; ++o)
        for (index_t k = 0; k < c.n; ++k)
          for (index_t i = 0; i < c.inner; ++i) x[std::size_t(o * xs_o + k * xs_n + i * xs_i)] = float(rng.uniform(-1, 2));
      const index_t ys_i = rng.coin() ? 1 : c.outer, ys_o = ys_i == 1 ? c.inner : 1;
      const std::size_t ny = std::size_t(c.outer * c.inner) + 1;
      std::vector<float> want(ny, kNaN), got(ny, kNaN);
      reduce_ref<float>(r, c.outer, c.n, c.inner, x.data(), xs_o, xs_n, xs_i, want.data(), ys_o, ys_i);
      const ok::ViewLoader load{x.data(), xs_o, xs_n, xs_i};
      if (r == Reduce::max) testing::emulate_reduce<ok::MaxOp>(false, c.outer, c.n, c.inner, load, got.data(), ys_o, ys_i, sms);
      else testing::emulate_reduce<ok::SumOp>(r == Reduce::mean, c.outer, c.n, c.inner, load, got.data(), ys_o, ys_i, sms);
      chunked += c.outer > 0 && c.inner > 0 && ok::plan_reduce(c.outer, c.n, c.inner, sms).chunks > 1;
      // test_cuda_ops's bound: max exact; sums accumulate in double (one float rounding),
      // plus 2e-7 n absolute for sums that cancel.
      for (std::size_t k = 0; k < ny; ++k) {
        const double scale = r == Reduce::max ? 0.0 : (r == Reduce::sum ? double(c.n) * 2 : 2.0);
        const bool good = std::isnan(want[k]) ? std::isnan(got[k])
                          : std::isinf(want[k]) || r == Reduce::max
                              ? got[k] == want[k]
                              : std::fabs(double(got[k]) - want[k]) <= 1e-6 * (std::fabs(want[k]) + scale * 1e-1);
        ASSERT_TRUE(good) << reduce_name(r) << " (" << c.outer << ", " << c.n << ", " << c.inner << ") n_inner "
                          << n_inner << " sms " << sms << " at " << k << ": got " << got[k] << ", want " << want[k];
      }
    }
  EXPECT_GT(chunked, 3);
}

TEST(SimtOps, ReduceMaxAndSumPropagateNaNAcrossChunks) {
  std::vector<float> x(20000, 1.0f);
  x[12345] = kNaN;
  const ok::ViewLoader load{x.data(), 0, 1, 1};
  for (Reduce r : {Reduce::sum, Reduce::max}) {
    float y = 0.0f;
    ASSERT_GT(ok::plan_reduce(1, 20000, 1, 132).chunks, 1);
    if (r == Reduce::max) testing::emulate_reduce<ok::MaxOp>(false, 1, 20000, 1, load, &y, 1, 1, 132);
    else testing::emulate_reduce<ok::SumOp>(false, 1, 20000, 1, load, &y, 1, 1, 132);
    EXPECT_TRUE(std::isnan(y)) << reduce_name(r);
  }
}


// ---- random, dropout ----

TEST(SimtOps, RandomAndDropoutGiveTheCpuBits) {
  const index_t n = 10003;
  for (Random kind : {Random::uniform, Random::normal}) {
    std::vector<float> want(static_cast<std::size_t>(n)), got(std::size_t(n), kNaN);
    random_ref<float>(kind, n, want.data(), -1.5, 2.0, 1234, 77);
    launch(small_grid(n), 64, 1, [&] { ok::random_kernel(kind, n, got.data(), -1.5, 2.0, 1234, 77); });
    EXPECT_TRUE(all_near(got, want, kind == Random::uniform ? 0.0 : 1e-6));
  }
  TG_TEST_RNG(rng);
  const std::vector<float> x = testing::random_vec<float>(rng, n);
  std::vector<float> want(static_cast<std::size_t>(n)), got(std::size_t(n), kNaN);
  dropout_ref<float>(n, x.data(), want.data(), 0.3, 99, 5);
  launch(small_grid(n), 64, 1, [&] { ok::dropout_kernel(n, x.data(), got.data(), 0.3, 1.0 / 0.7, 99, 5); });
  EXPECT_TRUE(all_near(got, want, 0.0));
}

// ---- optimizers ----

// Also with live scalars (a replayed graph's step): the rate and Adam's count read from
// memory, the host's values poisoned, the bias corrections worked out in the kernel.
TEST(SimtOps, SgdAndAdamMatchTheReferenceOverManySlots) {
  TG_TEST_RNG(rng);
  for (int which = 0; which < 10; ++which) {
    const bool live = which >= 5;
    const testing::OptimizerCase t(rng, which % 5, 9000);
    std::vector<std::vector<float>> p = t.p, g = t.g, m = t.m, v = t.v;
    const std::vector<ParamSlot<float>> emu = t.slots(p.data(), g.data(), m.data(), v.data());
    const std::vector<float> scalars = {float(t.is_sgd() ? t.sgd.lr : t.adam.lr), float(t.adam.step)};
    const float* at = live ? scalars.data() : nullptr;
    ok::SgdParams sp = ok::sgd_params(t.sgd);
    ok::AdamParams ap = ok::adam_params(t.adam);
    if (live) sp.lr = ap.lr = ap.inv_bc1 = ap.inv_bc2 = kNaN;
    int packs = 0;
    ok::multi_tensor(emu, [&](const ok::Pack& pk, int blocks) {
      ++packs;
      launch({unsigned(blocks), 1, 1}, 64, 1, [&] {
        if (t.is_sgd()) ok::sgd_kernel(pk, sp, at);
        else ok::adam_kernel(pk, ap, at);
      });
    });
    EXPECT_EQ(packs, 2) << t.name;  // 29 non-empty slots: 24 + 5
    for (std::size_t k = 0; k < t.sizes.size(); ++k) t.check(k, p[k], m[k], v[k]);
  }
}

// ---- dtype conversion ----

// A value's bits, widened (float: 32, the 16-bit types: 16).
template <class T>
std::uint32_t bits_of(T v) {
  if constexpr (std::is_same_v<T, float>) {
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    return u;
  } else {
    return v.bits;
  }
}
template <class T>
T from_bits(std::uint32_t u) {
  if constexpr (std::is_same_v<T, float>) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  } else {
    T t;
    t.bits = std::uint16_t(u);
    return t;
  }
}
// What the CPU makes of x: kernels/half.hpp's scalar functions (checked against the
// formats in test_amp); the same type: the same bits.
template <class From, class To>
std::uint32_t expected_bits(From x) {
  if constexpr (std::is_same_v<From, To>) return bits_of(x);
  else if constexpr (std::is_same_v<From, float>) return bits_of(To(x));
  else if constexpr (std::is_same_v<To, float>) return bits_of(float(x));
  else return bits_of(To(float(x)));
}

// Sources: every 16-bit pattern, or for f32 a stride through the 32-bit patterns plus
// the cases rounding gets wrong most easily (ties, the f16 overflow and subnormal edges,
// signalling NaNs). Each conversion dense and through random strided views of rank 1-4
// (gaps, transposes, a broadcast dimension), twice with different poisons in the output.
template <class From, class To>
void check_conversion(testing::Rng& rng) {
  std::vector<From> pool;
  if constexpr (std::is_same_v<From, float>) {
    for (std::uint64_t u = 0; u < (std::uint64_t(1) << 32); u += 65521) pool.push_back(from_bits<float>(std::uint32_t(u)));
    for (std::uint32_t u : {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7f800001u, 0x7fa00000u, 0xffc00001u,
                            0x477fefffu, 0x477ff000u, 0x477fffffu, 0x33000000u, 0x33000001u, 0x3f808000u, 0x3f818000u,
                            0x3f801000u, 0x3f803000u, 0x7f7fffffu, 0x00000001u})
      pool.push_back(from_bits<float>(u));
  } else {
    for (std::uint32_t u = 0; u < 65536; ++u) pool.push_back(from_bits<From>(u));
  }
  const std::string name = std::to_string(sizeof(From)) + "->" + std::to_string(sizeof(To)) + " bytes";
  for (int rep = 0; rep < 5; ++rep) {
    const bool dense = rep == 0;
    const int rank = dense ? 1 : int(rng.integer(1, 4));
    std::vector<index_t> sizes(static_cast<std::size_t>(rank)), strides(static_cast<std::size_t>(rank));
    if (dense) {
      sizes[0] = index_t(pool.size()), strides[0] = 1;
    } else {
      index_t stride = rng.integer(1, 3);
      for (int d = rank - 1; d >= 0; --d) {
        sizes[std::size_t(d)] = rng.integer(1, rank == 1 ? 3000 : 40);
        strides[std::size_t(d)] = stride;
        stride *= sizes[std::size_t(d)] + rng.integer(0, 2);
      }
      if (rank > 1) {
        const std::size_t a = std::size_t(rng.integer(0, rank - 1)), b = std::size_t(rng.integer(0, rank - 1));
        std::swap(sizes[a], sizes[b]), std::swap(strides[a], strides[b]);
        if (rep == 4) strides[a] = 0;  // broadcast
      }
    }
    const Shape shape(sizes, strides);
    const index_t n = shape.numel();
    index_t extent = 1;
    for (int d = 0; d < rank; ++d) extent += (sizes[std::size_t(d)] - 1) * strides[std::size_t(d)];
    std::vector<From> x(static_cast<std::size_t>(extent));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = pool[(i * 7919 + std::size_t(rep)) % pool.size()];
    // The expected values from the view's own row-major walk.
    std::vector<std::uint32_t> want;
    std::vector<index_t> at(static_cast<std::size_t>(rank), 0);
    for (index_t i = 0; i < n; ++i) {
      index_t off = 0;
      for (int d = 0; d < rank; ++d) off += at[std::size_t(d)] * strides[std::size_t(d)];
      want.push_back(expected_bits<From, To>(x[std::size_t(off)]));
      for (int d = rank - 1; d >= 0 && ++at[std::size_t(d)] == sizes[std::size_t(d)]; --d) at[std::size_t(d)] = 0;
    }
    for (std::uint32_t poison : {0x7fc0deadu, 0xffb01234u}) {
      std::vector<To> y(std::size_t(n), from_bits<To>(std::is_same_v<To, float> ? poison : poison >> 16));
      launch(small_grid(n), 64, 1, [&] {
        cuda::cvt::convert_kernel<From, To>(n, cuda::cvt::layout_of(shape), shape.is_contiguous(), x.data(), y.data());
      });
      index_t wrong = 0, first = -1;
      for (index_t i = 0; i < n; ++i)
        if (bits_of(y[std::size_t(i)]) != want[std::size_t(i)]) wrong += 1, first = first < 0 ? i : first;
      EXPECT_EQ(wrong, 0) << name << " on " << shape.str() << ", first at " << first;
    }
  }
}

TEST(SimtOps, ConversionsGiveTheCpusBitsOnDenseAndStridedSources) {
  TG_TEST_RNG(rng);
  check_conversion<float, bfloat16>(rng);
  check_conversion<float, float16>(rng);
  check_conversion<bfloat16, float>(rng);
  check_conversion<float16, float>(rng);
  check_conversion<bfloat16, float16>(rng);
  check_conversion<float16, bfloat16>(rng);
  check_conversion<bfloat16, bfloat16>(rng);
  check_conversion<float16, float16>(rng);
  check_conversion<float, float>(rng);
}

}  // namespace
}  // namespace tg
