// Mixed precision: the 16-bit types' conversions (kernels/half.hpp) against a reference
// written here from the formats' definitions (decode every pattern, round to the nearest
// representable value, ties to even); Tensor::to between f32, f64, bf16 and f16 on
// strided views, with gradients through the casts; 16-bit matmul and linear (f32
// accumulation, f32 output) and their gradients against double references on the
// rounded operands; autocast; the f16 loss scaler; and an MLP trained under bf16 and
// f16 autocast landing where f32 training lands.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>
#include <vector>

#include "tilegrad/autograd/autograd.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/half.hpp"
#include "tilegrad/nn/nn.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

// ---- the reference: the formats from their definitions ----

// The value of a 16-bit pattern: bf16 (1-8-7, bias 127) or f16 (1-5-10, bias 15).
double decode(std::uint16_t h, bool f16) {
  const int ebits = f16 ? 5 : 8, mbits = f16 ? 10 : 7, bias = f16 ? 15 : 127;
  const int e = (h >> mbits) & ((1 << ebits) - 1), m = h & ((1 << mbits) - 1);
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (e == (1 << ebits) - 1) return m ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(double(m), 1 - bias - mbits);
  return sign * std::ldexp(1.0 + std::ldexp(double(m), -mbits), e - bias);
}

// The non-negative finite values in increasing order (their patterns are 0, 1, 2, ...),
// then the first power of two past the largest, standing for infinity (even: a tie with
// the largest finite value rounds to it).
struct Table {
  std::vector<double> values;
  std::uint16_t inf_bits;
  explicit Table(bool f16) : inf_bits(f16 ? 0x7c00 : 0x7f80) {
    for (std::uint32_t h = 0; h < inf_bits; ++h) values.push_back(decode(std::uint16_t(h), f16));
    values.push_back(std::ldexp(1.0, f16 ? 16 : 128));
  }
};
const Table& table(bool f16) {
  static const Table bf(false), h(true);
  return f16 ? h : bf;
}

// x rounded to the nearest 16-bit value, ties to the even pattern; NaN -> any NaN.
std::uint16_t encode(double x, bool f16) {
  const Table& t = table(f16);
  const std::uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  const double a = std::fabs(x);
  if (std::isnan(x)) return std::uint16_t(t.inf_bits | 0x40);
  if (a >= t.values.back()) return std::uint16_t(sign | t.inf_bits);
  const std::size_t hi = std::size_t(std::upper_bound(t.values.begin(), t.values.end(), a) - t.values.begin());
  if (hi > 0 && t.values[hi - 1] == a) return std::uint16_t(sign | (hi - 1));
  const std::size_t lo = hi - 1;
  const double dlo = a - t.values[lo], dhi = t.values[hi] - a;
  std::size_t pick = dlo < dhi ? lo : dhi < dlo ? hi : (lo % 2 == 0 ? lo : hi);
  return std::uint16_t(sign | (pick == t.values.size() - 1 ? t.inf_bits : pick));
}

std::uint16_t to_bits(float f, bool f16) { return f16 ? f16_bits_from_float(f) : bf16_bits_from_float(f); }
float from_bits(std::uint16_t h, bool f16) { return f16 ? float_from_f16_bits(h) : float_from_bf16_bits(h); }
double round16(double x, bool f16) { return decode(encode(x, f16), f16); }

bool same_or_both_nan(double a, double b) { return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b)); }

TEST(Half, EveryPatternDecodesAsItsDefinitionSaysAndRoundTrips) {
  for (bool f16 : {false, true})
    for (std::uint32_t h = 0; h < 65536; ++h) {
      const float f = from_bits(std::uint16_t(h), f16);
      const double want = decode(std::uint16_t(h), f16);
      ASSERT_TRUE(same_or_both_nan(f, want)) << (f16 ? "f16 " : "bf16 ") << std::hex << h << ": " << f << " vs " << want;
      if (!std::isnan(f)) ASSERT_EQ(to_bits(f, f16), h) << (f16 ? "f16 " : "bf16 ") << std::hex << h;
      else ASSERT_TRUE(std::isnan(from_bits(to_bits(f, f16), f16))) << "a NaN stays NaN";
    }
}

TEST(Half, FloatsRoundToNearestTiesToEven) {
  TG_TEST_RNG(rng);
  for (bool f16 : {false, true}) {
    std::vector<float> xs;
    const std::vector<double>& v = table(f16).values;
    // Every midpoint of two neighbours (exact in f32) and the floats either side of it.
    for (std::size_t i = 0; i + 1 < v.size(); ++i) {
      const float mid = float((v[i] + v[i + 1]) / 2);
      xs.insert(xs.end(), {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY), -mid});
    }
    // Random bit patterns over every exponent, and the edges.
    for (int i = 0; i < 200000; ++i) {
      const std::uint32_t u = std::uint32_t(rng.integer(0, 0xffffffffLL));
      float f;
      std::memcpy(&f, &u, 4);
      xs.push_back(f);
    }
    xs.insert(xs.end(), {0.0f, -0.0f, INFINITY, -INFINITY, std::numeric_limits<float>::max(),
                         std::numeric_limits<float>::denorm_min(), 65504.0f, 65519.996f, 65520.0f, -65520.0f});
    for (float x : xs) {
      const std::uint16_t got = to_bits(x, f16), want = encode(x, f16);
      if (std::isnan(x)) {
        ASSERT_TRUE(std::isnan(from_bits(got, f16))) << x;
        ASSERT_EQ(got & 0x8000, std::signbit(x) ? 0x8000 : 0) << "NaN keeps its sign";
      } else {
        ASSERT_EQ(got, want) << (f16 ? "f16 " : "bf16 ") << "of " << std::hexfloat << x;
      }
    }
  }
}

// ---- Tensor::to ----

TEST(HalfTensor, ConvertsStridedViewsBothWaysAndPrints) {
  TG_TEST_RNG(rng);
  for (DType dt : {DType::bf16, DType::f16}) {
    const bool f16 = dt == DType::f16;
    const index_t rows = rng.integer(1, 70), cols = rng.integer(1, 70);  // one 32 x 32 tile or several
    std::vector<float> v = testing::random_vec<float>(rng, rows * cols, -70000, 70000);  // past f16's range too
    v[0] = 1e-7f;  // an f16 subnormal
    const index_t sz[] = {rows, cols};
    const Tensor x = Tensor::from_vector(v, sz).transpose(0, 1);  // strided
    const Tensor h = x.to(dt);
    EXPECT_EQ(h.dtype(), dt);
    EXPECT_TRUE(h.is_contiguous());
    const std::vector<float> xv = x.to_vector<float>();
    const std::vector<double> hv = h.to_vector<double>();
    for (std::size_t i = 0; i < xv.size(); ++i) ASSERT_TRUE(same_or_both_nan(hv[i], round16(xv[i], f16))) << i;
    // Back to f32 and f64: exact; a strided 16-bit view copies as itself.
    EXPECT_EQ(h.to(DType::f32).to_vector<double>(), hv);
    EXPECT_EQ(h.to(DType::f64).to_vector<double>(), hv);
    const Tensor ht = h.transpose(0, 1);
    EXPECT_EQ(ht.contiguous().to_vector<double>(), ht.to_vector<double>());
    EXPECT_EQ(ht.contiguous().dtype(), dt);
    // A 16-bit copy into a strided 16-bit view moves the words unchanged.
    Tensor into = Tensor::zeros({rows, cols}).to(dt);
    into.transpose(0, 1).copy_(h);
    EXPECT_EQ(into.to_vector<double>(), ht.to_vector<double>());
    EXPECT_NE(h.str().find(f16 ? "dtype=f16" : "dtype=bf16"), std::string::npos) << h.str();
    // A batch of transposed matrices both ways (the tiled path), against element by element.
    const Tensor x3 = Tensor::randn({3, rows, cols}).transpose(1, 2);
    const std::vector<float> x3v = x3.to_vector<float>();
    const std::vector<double> h3 = x3.to(dt).to_vector<double>();
    for (std::size_t i = 0; i < x3v.size(); ++i) ASSERT_TRUE(same_or_both_nan(h3[i], round16(x3v[i], f16))) << i;
    const Tensor h3t = x3.to(dt).transpose(1, 2).contiguous().transpose(1, 2);  // 16-bit, transposed
    EXPECT_EQ(h3t.to(DType::f32).to_vector<double>(), h3);
    // Elementwise ops compute in f32 and round once.
    const Tensor s = h + h;
    EXPECT_EQ(s.dtype(), dt);
    const std::vector<double> sv = s.to_vector<double>();
    for (std::size_t i = 0; i < sv.size(); ++i) ASSERT_TRUE(same_or_both_nan(sv[i], round16(float(hv[i] + hv[i]), f16)));
  }
}

TEST(HalfTensor, DoublesRoundOnceNotTwice) {
  TG_TEST_RNG(rng);
  // Just above a tie of the 16-bit type, by less than f32 can hold: f64 -> f32 -> 16 bits
  // would land on the tie and round to even, the wrong way; one rounding does not.
  std::vector<double> v;
  for (bool f16 : {false, true}) {
    const std::vector<double>& t = table(f16).values;
    for (int i = 0; i < 200; ++i) {
      const std::size_t k = std::size_t(rng.integer(1, index_t(t.size()) - 3));
      const double mid = (t[k] + t[k + 1]) / 2;
      v.insert(v.end(), {mid + mid * 0x1p-40, mid - mid * 0x1p-40, mid});
    }
  }
  for (int i = 0; i < 2000; ++i) v.push_back(rng.normal() * std::ldexp(1.0, int(rng.integer(-30, 30))));
  const index_t n[] = {index_t(v.size())};
  const Tensor x = Tensor::from_vector(v, n);
  for (DType dt : {DType::bf16, DType::f16}) {
    const std::vector<double> got = x.to(dt).to_vector<double>();
    for (std::size_t i = 0; i < v.size(); ++i)
      ASSERT_TRUE(same_or_both_nan(got[i], round16(v[i], dt == DType::f16))) << std::hexfloat << v[i];
  }
}

TEST(HalfTensor, GradientsFlowThroughCastsInTheSourceDtype) {
  TG_TEST_RNG(rng);
  const std::vector<float> xv = testing::random_vec<float>(rng, 12), cv = testing::random_vec<float>(rng, 12);
  const index_t n[] = {12};
  for (DType dt : {DType::bf16, DType::f16}) {
    const Tensor x = Tensor::from_vector(xv, n).requires_grad_();
    const Tensor c = Tensor::from_vector(cv, n);
    // x -> 16 bits -> f32, times c: dx = c rounded to 16 bits (the cast's backward).
    sum(x.to(dt).to(DType::f32) * c).backward();
    ASSERT_TRUE(x.grad().defined());
    EXPECT_EQ(x.grad().dtype(), DType::f32);
    const std::vector<double> g = x.grad().to_vector<double>();
    for (std::size_t i = 0; i < g.size(); ++i) EXPECT_EQ(g[i], round16(cv[i], dt == DType::f16)) << i;
  }
}

// ---- matmul and linear on 16-bit operands ----

// (M x K) @ (K x N) in double from the given values.
std::vector<double> product(const std::vector<double>& a, const std::vector<double>& b, index_t M, index_t K, index_t N) {
  std::vector<double> y(std::size_t(M * N), 0.0);
  for (index_t i = 0; i < M; ++i)
    for (index_t k = 0; k < K; ++k)
      for (index_t j = 0; j < N; ++j) y[std::size_t(i * N + j)] += a[std::size_t(i * K + k)] * b[std::size_t(k * N + j)];
  return y;
}
std::vector<double> transpose(const std::vector<double>& a, index_t rows, index_t cols) {
  std::vector<double> t(a.size());
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) t[std::size_t(j * rows + i)] = a[std::size_t(i * cols + j)];
  return t;
}

TEST(HalfMatmul, MatchesTheDoubleProductOfTheRoundedOperandsWithGradients) {
  TG_TEST_RNG(rng);
  for (int rep = 0; rep < 24; ++rep) {
    const DType dt = rep % 2 ? DType::f16 : DType::bf16;
    const bool f16 = dt == DType::f16;
    const index_t M = rng.integer(rep < 4 ? 0 : 1, 40), K = rng.integer(rep == 5 ? 0 : 1, 70), N = rng.integer(1, 33);
    // Operands made in f32, rounded, possibly as transposed views.
    const Tensor a32 = rng.coin() ? Tensor::randn({K, M}).transpose(0, 1) : Tensor::randn({M, K});
    const Tensor b32 = rng.coin() ? Tensor::randn({N, K}).transpose(0, 1) : Tensor::randn({K, N});
    Tensor a = a32.to(dt).detach().requires_grad_(), b = b32.to(dt).detach().requires_grad_();
    if (rng.coin()) a = a.detach().transpose(0, 1).contiguous().transpose(0, 1).requires_grad_();  // a strided leaf
    const Tensor y = matmul(a, b);
    EXPECT_EQ(y.dtype(), DType::f32);
    const std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
    const std::vector<double> want = product(av, bv, M, K, N);
    // f32 accumulation of exact products: ~K ulps of f32 at worst, far less in norm.
    EXPECT_TRUE(testing::rel_close(y.to_vector<double>(), want, 1e-6)) << M << "x" << K << "x" << N;
    // Gradients: g rounded to the operands' dtype (as a 16-bit output's gradient), its
    // f32 products with the other operand, rounded to the operand's dtype.
    const std::vector<float> gv = testing::random_vec<float>(rng, M * N);
    const index_t ys[] = {M, N};
    y.backward(Tensor::from_vector(gv, ys));
    std::vector<double> g(gv.begin(), gv.end());
    for (double& x : g) x = round16(x, f16);
    const std::vector<double> da = product(g, transpose(bv, K, N), M, N, K), db = product(transpose(av, M, K), g, K, M, N);
    for (const auto& [got_t, want_v] : {std::pair{a.grad(), da}, std::pair{b.grad(), db}}) {
      ASSERT_TRUE(got_t.defined());
      EXPECT_EQ(got_t.dtype(), dt);
      const std::vector<double> got = got_t.to_vector<double>();
      // One rounding to 16 bits of an f32 sum: within one 16-bit ulp of the rounded exact value.
      for (std::size_t i = 0; i < got.size(); ++i) {
        const double r = round16(want_v[i], f16), ulp = std::ldexp(std::fabs(r) + 1e-30, f16 ? -10 : -7);
        ASSERT_LE(std::fabs(got[i] - r), ulp + (f16 ? 6e-8 : 0.0)) << "gradient " << i << " of " << M << "x" << K << "x" << N;
      }
    }
  }
}

// ---- attention on 16-bit tensors ----

// Off the GPU's bf16 tensor-core path (here: on the CPU, and for f16), attention on 16-bit
// tensors computes in f32 from the rounded inputs and rounds the output once; gradients
// come back in the inputs' dtype, the f32 gradients rounded once. Both compared bit for
// bit with the f32 computation on the same values.
TEST(HalfAttention, ComputesInF32FromTheRoundedValuesAndRoundsOnce) {
  TG_TEST_RNG(rng);
  for (int rep = 0; rep < 8; ++rep) {
    const DType dt = rep % 2 ? DType::f16 : DType::bf16;
    const bool causal = rep % 4 >= 2, masked = rng.coin();
    const index_t H = 2 * rng.integer(1, 2), Hkv = H / 2, Sq = rng.integer(1, 20), Sk = rng.integer(1, 20);
    const index_t D = rng.integer(1, 24);
    std::ostringstream what;
    what << dtype_name(dt) << " H" << H << "/" << Hkv << " Sq" << Sq << " Sk" << Sk << " D" << D
         << (causal ? " causal" : "") << (masked ? " mask" : "");
    SCOPED_TRACE(what.str());
    const Tensor q = Tensor::randn({2, H, Sq, D}).to(dt).detach().requires_grad_();
    const Tensor k = Tensor::randn({2, Hkv, Sk, D}).to(dt).detach().requires_grad_();
    const Tensor v = Tensor::randn({2, Hkv, Sk, D}).to(dt).detach().requires_grad_();
    const Tensor mask = masked ? Tensor::randn({Sq, Sk}).to(dt) : Tensor();
    const Tensor y = scaled_dot_product_attention(q, k, v, mask, causal);
    EXPECT_EQ(y.dtype(), dt);
    // The same values in f32.
    const Tensor q32 = q.detach().to(DType::f32).requires_grad_(), k32 = k.detach().to(DType::f32).requires_grad_();
    const Tensor v32 = v.detach().to(DType::f32).requires_grad_();
    const Tensor y32 = scaled_dot_product_attention(q32, k32, v32, masked ? mask.to(DType::f32) : Tensor(), causal);
    EXPECT_EQ(y.to_vector<double>(), y32.to(dt).to_vector<double>());
    // The loss's weights rounded to 16 bits are y's gradient either way.
    const Tensor w = Tensor::randn({2, H, Sq, D}).to(dt).to(DType::f32);
    sum(y.to(DType::f32) * w).backward();
    sum(y32 * w).backward();
    for (const auto& [got, want] : {std::pair{q.grad(), q32.grad()}, {k.grad(), k32.grad()}, {v.grad(), v32.grad()}}) {
      ASSERT_TRUE(got.defined());
      EXPECT_EQ(got.dtype(), dt);
      EXPECT_EQ(got.to_vector<double>(), want.to(dt).to_vector<double>());
    }
  }
}

TEST(HalfMatmul, MixedDtypesAreAClearError) {
  const Tensor a = Tensor::randn({3, 4}), b = Tensor::randn({4, 2}).to(DType::bf16);
  try {
    (void)matmul(a, b);
    FAIL() << "expected tg::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("matmul"), std::string::npos) << e.what();
  }
}

TEST(Autocast, LinearRoundsItsOperandsAndKeepsF32MasterGradients) {
  TG_TEST_RNG(rng);
  for (DType dt : {DType::bf16, DType::f16}) {
    const bool f16 = dt == DType::f16;
    const index_t rows = rng.integer(1, 30), in = rng.integer(1, 50), out = rng.integer(1, 20);
    const Tensor x = Tensor::randn({rows, in}).requires_grad_();
    const Tensor w = Tensor::randn({out, in}).requires_grad_(), b = Tensor::randn({out}).requires_grad_();
    Tensor y;
    {
      AutocastGuard amp(dt);
      EXPECT_EQ(autocast_dtype(), dt);
      y = linear(x, w, b, Activation{Act::relu});
    }
    EXPECT_EQ(autocast_dtype(), DType::f32);
    EXPECT_EQ(y.dtype(), DType::f32);
    std::vector<double> xr = x.to_vector<double>(), wr = w.to_vector<double>();
    for (double& v : xr) v = round16(v, f16);
    for (double& v : wr) v = round16(v, f16);
    std::vector<double> z = product(xr, transpose(wr, out, in), rows, in, out);
    const std::vector<double> bv = b.to_vector<double>();
    std::vector<double> want(z.size());
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < out; ++j) {
        const std::size_t k = std::size_t(i * out + j);
        z[k] += bv[std::size_t(j)];
        want[k] = std::max(0.0, z[k]);
      }
    EXPECT_TRUE(testing::rel_close(y.to_vector<double>(), want, 1e-6));
    // Gradients reach the f32 leaves as f32: dW = round16(round16(dz)^T x16), db = sum dz.
    const std::vector<float> gv = testing::random_vec<float>(rng, rows * out);
    const index_t ys[] = {rows, out};
    y.backward(Tensor::from_vector(gv, ys));
    for (const Tensor& t : {x, w, b}) {
      ASSERT_TRUE(t.grad().defined());
      EXPECT_EQ(t.grad().dtype(), DType::f32);
    }
    std::vector<double> dz(gv.begin(), gv.end());
    for (std::size_t k = 0; k < dz.size(); ++k) dz[k] = z[k] > 0 ? round16(dz[k], f16) : 0.0;
    const std::vector<double> dw = product(transpose(dz, rows, out), xr, out, rows, in);
    const std::vector<double> got = w.grad().to_vector<double>();
    for (std::size_t i = 0; i < got.size(); ++i) {
      const double r = round16(dw[i], f16), ulp = std::ldexp(std::fabs(r) + 1e-30, f16 ? -10 : -7);
      ASSERT_LE(std::fabs(got[i] - r), ulp + (f16 ? 6e-8 : 0.0)) << i;
    }
  }
}

TEST(Autocast, BackwardInsideTheScopeEqualsBackwardOutsideAndGuardsNest) {
  const Tensor x = Tensor::randn({5, 7}).requires_grad_(), w = Tensor::randn({3, 7}).requires_grad_();
  Tensor y1, y2;
  {
    AutocastGuard amp(DType::bf16);
    y1 = sum(linear(x, w, Tensor()));
    {
      AutocastGuard off(DType::f32);
      EXPECT_EQ(autocast_dtype(), DType::f32);
      EXPECT_EQ(matmul(x, w.t()).to_vector<double>(), linear(x, w, Tensor()).to_vector<double>());
    }
    EXPECT_EQ(autocast_dtype(), DType::bf16);
    y1.backward();
  }
  const std::vector<double> g1 = w.grad().to_vector<double>();
  w.grad().zero_();
  {
    AutocastGuard amp(DType::bf16);
    y2 = sum(linear(x, w, Tensor()));
  }
  y2.backward();
  EXPECT_EQ(w.grad().to_vector<double>(), g1);
  try {
    AutocastGuard bad(DType::i64);
    FAIL() << "expected tg::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("AutocastGuard"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("dtype"), std::string::npos) << e.what();
  }
}

// ---- loss scaling ----

TEST(GradScaler, UnscalesStepsSkipsOnInfAndAdjustsTheScale) {
  Tensor p = Tensor::ones({4}).requires_grad_();
  nn::SGD opt({p}, 0.5);
  nn::GradScalerOptions o;
  o.init_scale = 1024;
  o.growth_interval = 2;
  nn::GradScaler scaler(o);
  auto run = [&](double bump) {
    opt.zero_grad();
    Tensor loss = sum(p * p) + sum(p) * bump;  // dL/dp = 2p + bump
    scaler.scale(loss).backward();
    return scaler.step(opt);
  };
  // Finite: grads are 1024 (2p + 0) before unscaling, 2 after; p -= 0.5 * 2.
  EXPECT_TRUE(run(0.0));
  EXPECT_EQ(p.to_vector<double>(), std::vector<double>(4, 0.0));
  EXPECT_EQ(scaler.scale_value(), 1024);
  EXPECT_TRUE(run(1.0));  // second finite step in a row: the scale doubles
  EXPECT_EQ(p.to_vector<double>(), std::vector<double>(4, -0.5));
  EXPECT_EQ(scaler.scale_value(), 2048);
  // An infinite gradient: no update, the scale halves.
  EXPECT_FALSE(run(INFINITY));
  EXPECT_EQ(p.to_vector<double>(), std::vector<double>(4, -0.5));
  EXPECT_EQ(scaler.scale_value(), 1024);
  EXPECT_EQ(scaler.skipped_steps(), 1);
  // NaN likewise.
  EXPECT_FALSE(run(std::numeric_limits<double>::quiet_NaN()));
  EXPECT_EQ(scaler.scale_value(), 512);
  // unscale() before clipping, then step() does not unscale again.
  opt.zero_grad();
  scaler.scale(sum(p * p)).backward();
  scaler.unscale(opt);
  EXPECT_EQ(p.grad().to_vector<double>(), std::vector<double>(4, -1.0));
  EXPECT_THROW(scaler.unscale(opt), Error);
  EXPECT_TRUE(scaler.step(opt));
  EXPECT_EQ(p.to_vector<double>(), std::vector<double>(4, 0.0));
}

TEST(GradScaler, BadOptionsAreClearErrorsAndDisabledPassesThrough) {
  auto fails = [](nn::GradScalerOptions o, const char* arg) {
    try {
      nn::GradScaler s(o);
      ADD_FAILURE() << "expected tg::Error for " << arg;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(arg), std::string::npos) << e.what();
    }
  };
  nn::GradScalerOptions o;
  o.init_scale = 0;
  fails(o, "init_scale");
  o = {};
  o.growth_factor = 1;
  fails(o, "growth_factor");
  o = {};
  o.backoff_factor = 1;
  fails(o, "backoff_factor");
  o = {};
  o.growth_interval = 0;
  fails(o, "growth_interval");
  o = {};
  o.enabled = false;
  nn::GradScaler off(o);
  Tensor p = Tensor::ones({2}).requires_grad_();
  nn::SGD opt({p}, 1.0);
  const Tensor loss = sum(p * 3.0);
  EXPECT_EQ(off.scale(loss).item(), loss.item());
  off.scale(loss).backward();
  EXPECT_TRUE(off.step(opt));
  EXPECT_EQ(p.to_vector<double>(), std::vector<double>(2, -2.0));
}

// A bf16 checkpoint (safetensors BF16) loads into an f32 model: the parameters become the
// rounded values, widened exactly.
TEST(HalfTensor, Bf16CheckpointsLoadIntoF32Models) {
  Generator g(4), h(5);
  const auto a = nn::mlp({6, 5, 3}, Activation{Act::relu}, &g), b = nn::mlp({6, 5, 3}, Activation{Act::relu}, &h);
  nn::StateDict half;
  for (const auto& [name, t] : a->state_dict()) half[name] = t.to(DType::bf16);
  const std::string path = ::testing::TempDir() + "tg_bf16_checkpoint.safetensors";
  nn::save_safetensors(path, half);
  b->load_state_dict(nn::load_safetensors(path));
  const nn::StateDict got = b->state_dict();
  for (const auto& [name, t] : a->state_dict()) {
    EXPECT_EQ(got.at(name).dtype(), DType::f32) << name;
    const std::vector<double> want = t.to_vector<double>(), have = got.at(name).to_vector<double>();
    for (std::size_t i = 0; i < want.size(); ++i) ASSERT_EQ(have[i], round16(want[i], false)) << name << " " << i;
  }
  std::remove(path.c_str());
}

// ---- training ----

// An MLP 16-32-4 on four Gaussian blobs, Adam, 150 full-batch steps from one init:
// the final cross-entropy in f32, under bf16 autocast, and under f16 autocast with loss
// scaling.
double train(DType amp, bool scaler_on) {
  Generator g(7), gd(8);
  const index_t n = 256, d = 16;
  std::vector<float> xs(std::size_t(n * d));
  std::vector<std::int64_t> ys(static_cast<std::size_t>(n));
  Tensor centers = Tensor::randn({4, d}, {}, &gd) * 2.0;
  const std::vector<float> c = centers.to_vector<float>();
  const std::vector<float> noise = Tensor::randn({n, d}, {}, &gd).to_vector<float>();
  for (index_t i = 0; i < n; ++i) {
    ys[std::size_t(i)] = i % 4;
    for (index_t j = 0; j < d; ++j)
      xs[std::size_t(i * d + j)] = c[std::size_t((i % 4) * d + j)] + 3.0f * noise[std::size_t(i * d + j)];
  }
  const index_t xsz[] = {n, d}, ysz[] = {n};
  const Tensor x = Tensor::from_vector(xs, xsz), y = Tensor::from_vector(ys, ysz);
  const auto model = nn::mlp({d, 32, 4}, Activation{Act::relu}, &g);
  nn::Adam opt(model->parameters(), 1e-2);
  nn::GradScalerOptions so;
  so.enabled = scaler_on;
  nn::GradScaler scaler(so);
  double last = 0;
  for (int step = 0; step < 150; ++step) {
    Tensor loss;
    {
      AutocastGuard guard(amp);
      loss = cross_entropy((*model)(x), y);
    }
    opt.zero_grad();
    scaler.scale(loss).backward();
    scaler.step(opt);
    last = loss.item();
  }
  return last;
}

TEST(Autocast, AnMlpTrainsUnderBf16AndF16WithLossScalingAsInF32) {
  const double f32 = train(DType::f32, false), bf16 = train(DType::bf16, false), f16 = train(DType::f16, true);
  std::printf("final loss: f32 %.8f, bf16 %.8f, f16 + scaler %.8f\n", f32, bf16, f16);
  // Four noisy blobs, which the MLP fits (f32 ends near 0.0036); the 16-bit runs land
  // within 10% of the f32 loss (measured: within 0.5%).
  EXPECT_LT(f32, 0.01);
  EXPECT_NEAR(bf16, f32, 0.1 * f32);
  EXPECT_NEAR(f16, f32, 0.1 * f32);
}

}  // namespace
}  // namespace tg
