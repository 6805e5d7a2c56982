// Scaled dot-product attention: the reference against closed forms (one key returns its
// value; the first causal row sees one key), against the unfused composition of the
// reference GEMM and softmax, under layout, broadcast and GQA rewrites that must not
// change the result, on fully masked rows, and its backward against central differences.
// The CPU fused kernels (cpu/attention_impl.hpp) on every path and 1 and 2 threads
// against the reference on random problems (sequence lengths 1 to 500, head dims 16 to
// 256, causal or not, additive masks broadcast over batch and heads with fully masked
// rows, GQA, three layouts), outputs poisoned with NaN; the backward also against
// central differences in float; the same bits on 1 and 2 threads.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <string>
#include <limits>
#include <vector>

#include "tilegrad/cpu/attention.hpp"
#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/kernels/attention.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/gemm.hpp"
#include "tilegrad/kernels/softmax.hpp"
#include "tests/support/guards.hpp"
#include "tests/support/testing.hpp"
#include "tests/support/wide16_ops.hpp"

namespace tg {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// A dense (n0, n1, n2, n3) tensor in one of two layouts: (b, h, s, d) or (b, s, h, d).
struct T4 {
  index_t n0, n1, n2, n3;
  bool bshd;
  std::vector<double> data;
  T4(index_t a, index_t b, index_t c, index_t d, bool seq_major = false)
      : n0(a), n1(b), n2(c), n3(d), bshd(seq_major), data(std::size_t(a * b * c * d) + 1, testing::kPoison<double>) {}
  View4<double> view() {
    if (!bshd) return {data.data(), n1 * n2 * n3, n2 * n3, n3, 1};
    return {data.data(), n1 * n2 * n3, n3, n1 * n3, 1};
  }
  View4<const double> cview() {
    View4<double> v = view();
    return {v.data, v.sb, v.sh, v.ss, v.sd};
  }
  double& at(index_t a, index_t b, index_t c, index_t d) { return view().at(a, b, c, d); }
  void randomize(testing::Rng& rng, double lo = -1, double hi = 1) {
    for (index_t a = 0; a < n0; ++a)
      for (index_t b = 0; b < n1; ++b)
        for (index_t c = 0; c < n2; ++c)
          for (index_t d = 0; d < n3; ++d) at(a, b, c, d) = rng.uniform(lo, hi);
  }
};

struct Problem {
  AttentionDims dims;
  T4 q, k, v, o;
  std::vector<double> lse;
  Problem(AttentionDims d, testing::Rng& rng, bool bshd = false)
      : dims(d),
        q(d.batch, d.heads, d.seq_q, d.head_dim, bshd),
        k(d.batch, d.kv_heads, d.seq_k, d.head_dim, bshd),
        v(d.batch, d.kv_heads, d.seq_k, d.head_dim, bshd),
        o(d.batch, d.heads, d.seq_q, d.head_dim, bshd),
        lse(std::size_t(d.batch * d.heads * d.seq_q), testing::kPoison<double>) {
    q.randomize(rng);
    k.randomize(rng);
    v.randomize(rng);
  }
  AttentionForwardArgs<double> args(bool causal, const View4<const double>& mask = {}) {
    AttentionForwardArgs<double> a;
    a.dims = dims;
    a.scale = float(1 / std::sqrt(double(dims.head_dim)));
    a.causal = causal;
    a.q = q.cview();
    a.k = k.cview();
    a.v = v.cview();
    a.mask = mask;
    a.o = o.view();
    a.lse = lse.data();
    return a;
  }
  double& lse_at(index_t b, index_t h, index_t i) { return lse[std::size_t((b * dims.heads + h) * dims.seq_q + i)]; }
};

TEST(AttentionReference, ASingleKeyReturnsItsValue) {
  TG_TEST_RNG(rng);
  Problem p({2, 3, 3, 5, 1, 16}, rng);
  auto a = p.args(false);
  attention_forward_ref(a);
  for (index_t b = 0; b < 2; ++b)
    for (index_t h = 0; h < 3; ++h)
      for (index_t i = 0; i < 5; ++i) {
        double dot = 0;
        for (index_t c = 0; c < 16; ++c) {
          EXPECT_NEAR(p.o.at(b, h, i, c), p.v.at(b, h, 0, c), 1e-15);
          dot += p.q.at(b, h, i, c) * p.k.at(b, h, 0, c);
        }
        EXPECT_NEAR(p.lse_at(b, h, i), double(a.scale) * dot, 1e-14);
      }
}

TEST(AttentionReference, FirstCausalRowSeesOnlyTheFirstKey) {
  TG_TEST_RNG(rng);
  Problem p({1, 2, 2, 6, 6, 8}, rng);
  attention_forward_ref(p.args(true));
  for (index_t h = 0; h < 2; ++h)
    for (index_t c = 0; c < 8; ++c) EXPECT_NEAR(p.o.at(0, h, 0, c), p.v.at(0, h, 0, c), 1e-15);
}

// The same attention written as S = scale Q K^T + mask (causal entries -inf), P =
// softmax(S), O = P V with the reference GEMM and softmax, head by head.
TEST(AttentionReference, MatchesTheUnfusedComposition) {
  TG_TEST_RNG(rng);
  for (int rep = 0; rep < 8; ++rep) {
    const index_t sq = rng.integer(1, 40), sk = rng.integer(1, 40), D = rng.integer(1, 70);
    const bool causal = rep % 2 == 1, with_mask = rep % 4 >= 2;
    Problem p({2, 2, 1, sq, sk, D}, rng);
    std::vector<double> mask(std::size_t(sq * sk));
    for (double& m : mask) m = rng.coin() ? rng.uniform(-2, 2) : (rng.integer(0, 9) == 0 ? -kInf : 0.0);
    const View4<const double> mview = with_mask ? View4<const double>{mask.data(), 0, 0, sk, 1} : View4<const double>{};
    auto a = p.args(causal, mview);
    attention_forward_ref(a);
    for (index_t b = 0; b < 2; ++b)
      for (index_t h = 0; h < 2; ++h) {
        std::vector<double> s(std::size_t(sq * sk)), pr(s.size()), out(std::size_t(sq * D));
        gemm_ref<double>(Trans::N, Trans::T, sq, sk, D, double(a.scale), &p.q.at(b, h, 0, 0), D, &p.k.at(b, 0, 0, 0), D, 0.0, s.data(), sk);
        for (index_t i = 0; i < sq; ++i)
          for (index_t j = 0; j < sk; ++j) {
            if (with_mask) s[i * sk + j] += mask[i * sk + j];
            if (causal && j > i + sk - sq) s[i * sk + j] = -kInf;
          }
        softmax_forward_ref<double>(sq, sk, s.data(), sk, pr.data(), sk);
        gemm_ref<double>(Trans::N, Trans::N, sq, D, sk, 1.0, pr.data(), sk, &p.v.at(b, 0, 0, 0), D, 0.0, out.data(), D);
        EXPECT_TRUE(testing::rel_close(&p.o.at(b, h, 0, 0), D, out.data(), D, sq, D, 1e-13))
            << sq << "x" << sk << "x" << D << (causal ? " causal" : "") << (with_mask ? " mask" : "");
      }
  }
}

TEST(AttentionReference, FullyMaskedRowsGiveZerosMinusInfAndZeroGradient) {
  TG_TEST_RNG(rng);
  // Causal with Sq > Sk: the first Sq - Sk rows see no key. Row 5 is masked by the mask.
  Problem p({1, 1, 1, 7, 4, 8}, rng);
  std::vector<double> mask(7 * 4, 0.0);
  for (int j = 0; j < 4; ++j) mask[5 * 4 + j] = -kInf;
  const View4<const double> mview{mask.data(), 0, 0, 4, 1};
  attention_forward_ref(p.args(true, mview));
  for (index_t i : {0, 1, 2, 5}) {
    EXPECT_EQ(p.lse_at(0, 0, i), -kInf) << i;
    for (index_t c = 0; c < 8; ++c) EXPECT_EQ(p.o.at(0, 0, i, c), 0.0) << i;
  }
  EXPECT_TRUE(std::isfinite(p.lse_at(0, 0, 3)));

  T4 d_o(1, 1, 7, 8), dq(1, 1, 7, 8), dk(1, 1, 4, 8), dv(1, 1, 4, 8);
  d_o.randomize(rng);
  AttentionBackwardArgs<double> g;
  g.dims = p.dims;
  g.scale = 0.5f;
  g.causal = true;
  g.q = p.q.cview();
  g.k = p.k.cview();
  g.v = p.v.cview();
  g.o = p.o.cview();
  g.d_o = d_o.cview();
  g.mask = mview;
  g.lse = p.lse.data();
  g.dq = dq.view();
  g.dk = dk.view();
  g.dv = dv.view();
  attention_backward_ref(g);
  for (index_t i : {0, 1, 2, 5})
    for (index_t c = 0; c < 8; ++c) EXPECT_EQ(dq.at(0, 0, i, c), 0.0);
  for (double x : dk.data) EXPECT_FALSE(std::isinf(x));
}

TEST(AttentionReference, GroupedQueryEqualsRepeatedKeysAndValues) {
  TG_TEST_RNG(rng);
  Problem gqa({2, 6, 2, 9, 11, 12}, rng);
  Problem mha({2, 6, 6, 9, 11, 12}, rng);
  for (index_t b = 0; b < 2; ++b)
    for (index_t h = 0; h < 6; ++h)
      for (index_t c = 0; c < 12; ++c) {
        for (index_t i = 0; i < 9; ++i) mha.q.at(b, h, i, c) = gqa.q.at(b, h, i, c);
        for (index_t j = 0; j < 11; ++j) {
          mha.k.at(b, h, j, c) = gqa.k.at(b, h / 3, j, c);
          mha.v.at(b, h, j, c) = gqa.v.at(b, h / 3, j, c);
        }
      }
  attention_forward_ref(gqa.args(true));
  attention_forward_ref(mha.args(true));
  const index_t n = index_t(gqa.o.data.size()) - 1;  // the last element is the canary
  EXPECT_TRUE(testing::rel_close(gqa.o.data.data(), n, mha.o.data.data(), n, 1, n, 0.0));
  EXPECT_TRUE(std::isnan(gqa.o.data.back()));
}

TEST(AttentionReference, LayoutAndMaskBroadcastDoNotChangeTheResult) {
  TG_TEST_RNG(rng);
  const AttentionDims d{2, 3, 3, 10, 13, 8};
  Problem bhsd(d, rng), bshd(d, rng, true);
  std::vector<double> row_mask(std::size_t(10 * 13)), full_mask(std::size_t(2 * 3 * 10 * 13));
  for (double& m : row_mask) m = rng.uniform(-3, 1);
  for (std::size_t i = 0; i < full_mask.size(); ++i) full_mask[i] = row_mask[i % row_mask.size()];
  for (index_t b = 0; b < 2; ++b)
    for (index_t h = 0; h < 3; ++h)
      for (index_t c = 0; c < 8; ++c) {
        for (index_t i = 0; i < 10; ++i) bshd.q.at(b, h, i, c) = bhsd.q.at(b, h, i, c);
        for (index_t j = 0; j < 13; ++j) {
          bshd.k.at(b, h, j, c) = bhsd.k.at(b, h, j, c);
          bshd.v.at(b, h, j, c) = bhsd.v.at(b, h, j, c);
        }
      }
  attention_forward_ref(bhsd.args(false, {row_mask.data(), 0, 0, 13, 1}));
  attention_forward_ref(bshd.args(false, {full_mask.data(), 3 * 10 * 13, 10 * 13, 13, 1}));
  for (index_t b = 0; b < 2; ++b)
    for (index_t h = 0; h < 3; ++h)
      for (index_t i = 0; i < 10; ++i)
        for (index_t c = 0; c < 8; ++c) EXPECT_EQ(bshd.o.at(b, h, i, c), bhsd.o.at(b, h, i, c));
  EXPECT_TRUE(testing::rel_close(bshd.lse, bhsd.lse, 0.0));
}

// L = sum W * O: dQ, dK, dV against central differences in double, for plain, causal,
// masked and grouped-query problems (with Sq != Sk).
TEST(AttentionReference, BackwardMatchesCentralDifferences) {
  TG_TEST_RNG(rng);
  struct Case { AttentionDims d; bool causal, mask; };
  const Case cases[] = {{{1, 2, 2, 3, 4, 5}, false, false},
                        {{1, 2, 2, 5, 3, 4}, true, false},
                        {{2, 2, 1, 4, 4, 3}, true, true},
                        {{1, 4, 2, 3, 5, 2}, false, true}};
  for (const Case& cs : cases) {
    const AttentionDims& d = cs.d;
    Problem p(d, rng);
    std::vector<double> mask(std::size_t(d.seq_q * d.seq_k));
    for (double& m : mask) m = rng.uniform(-1, 1);
    const View4<const double> mview = cs.mask ? View4<const double>{mask.data(), 0, 0, d.seq_k, 1} : View4<const double>{};
    T4 w(d.batch, d.heads, d.seq_q, d.head_dim);
    w.randomize(rng);
    attention_forward_ref(p.args(cs.causal, mview));
    T4 dq(d.batch, d.heads, d.seq_q, d.head_dim), dk(d.batch, d.kv_heads, d.seq_k, d.head_dim), dv = dk;
    AttentionBackwardArgs<double> g;
    g.dims = d;
    g.scale = p.args(cs.causal).scale;
    g.causal = cs.causal;
    g.q = p.q.cview();
    g.k = p.k.cview();
    g.v = p.v.cview();
    g.o = p.o.cview();
    g.d_o = w.cview();
    g.mask = mview;
    g.lse = p.lse.data();
    g.dq = dq.view();
    g.dk = dk.view();
    g.dv = dv.view();
    attention_backward_ref(g);

    for (T4* input : {&p.q, &p.k, &p.v}) {
      T4* grad = input == &p.q ? &dq : (input == &p.k ? &dk : &dv);
      const std::size_t n = input->data.size() - 1;  // the last element is the canary
      auto loss = [&](const std::vector<double>& x) {
        std::copy(x.begin(), x.end(), input->data.begin());
        attention_forward_ref(p.args(cs.causal, mview));
        double s = 0;
        for (std::size_t i = 0; i + 1 < w.data.size(); ++i) s += w.data[i] * p.o.data[i];
        return s;
      };
      const std::vector<double> x0(input->data.begin(), input->data.begin() + std::ptrdiff_t(n));
      const std::vector<double> fd = testing::central_diff(loss, x0, 1e-6);
      std::copy(x0.begin(), x0.end(), input->data.begin());
      for (std::size_t i = 0; i < n; ++i)
        EXPECT_NEAR(grad->data[i], fd[i], 1e-7) << (input == &p.q ? "dq" : input == &p.k ? "dk" : "dv") << "[" << i << "]"
                                                << (cs.causal ? " causal" : "") << (cs.mask ? " mask" : "");
    }
  }
}

// ---- CPU fused kernels ----

using testing::ThreadsGuard;

// A float (n0, n1, n2, n3) tensor in layout 0 (b, h, s, d), 1 (b, s, h, d) or 2 (b, h, s,
// d) with every other element of d (sd = 2: a head dim that is not contiguous), NaN in the
// gaps; and the same numbers as doubles at the same offsets, for the reference.
struct F4 {
  index_t n0, n1, n2, n3;
  int layout;
  std::vector<float> data;
  std::vector<double> as_double;
  F4(index_t a, index_t b, index_t c, index_t d, int lay)
      : n0(a), n1(b), n2(c), n3(d), layout(lay),
        data(std::size_t(a * b * c * d * (lay == 2 ? 2 : 1)) + 1, testing::kPoison<float>) {}
  std::array<index_t, 4> strides() const {
    if (layout == 1) return {n1 * n2 * n3, n3, n1 * n3, 1};
    const index_t w = layout == 2 ? 2 : 1;
    return {n1 * n2 * n3 * w, n2 * n3 * w, n3 * w, w};
  }
  template <class T>
  View4<T> view_of(T* p) const {
    const auto st = strides();
    return {p, st[0], st[1], st[2], st[3]};
  }
  View4<float> view() { return view_of(data.data()); }
  View4<const float> cview() { return view_of<const float>(data.data()); }
  View4<const double> dview() {
    as_double.assign(data.begin(), data.end());
    return view_of<const double>(as_double.data());
  }
  void randomize(testing::Rng& rng) {
    View4<float> v = view();
    for (index_t a = 0; a < n0; ++a)
      for (index_t b = 0; b < n1; ++b)
        for (index_t c = 0; c < n2; ++c)
          for (index_t d = 0; d < n3; ++d) v.at(a, b, c, d) = float(rng.uniform(-1, 1));
  }
  // ||this - ref|| / ||ref|| over the view, ref read at the same offsets (a double F4's).
  double rel_error(const std::vector<double>& ref) const {
    const auto st = strides();
    double num = 0, den = 0;
    for (index_t a = 0; a < n0; ++a)
      for (index_t b = 0; b < n1; ++b)
        for (index_t c = 0; c < n2; ++c)
          for (index_t d = 0; d < n3; ++d) {
            const std::size_t o = std::size_t(a * st[0] + b * st[1] + c * st[2] + d * st[3]);
            num += (double(data[o]) - ref[o]) * (double(data[o]) - ref[o]);
            den += ref[o] * ref[o];
          }
    return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
  }
  // Every element the view does not reach is still NaN.
  bool gaps_untouched() const {
    if (layout != 2) return std::isnan(data.back());
    for (std::size_t i = 1; i < data.size(); i += 2)
      if (!std::isnan(data[i])) return false;
    return true;
  }
};

struct CpuProblem {
  AttentionDims dims;
  bool causal;
  F4 q, k, v, o, d_o, dq, dk, dv;
  std::vector<float> mask, lse;
  std::array<index_t, 4> mask_strides{};
  CpuProblem(AttentionDims d, bool c, int layout, testing::Rng& rng, int mask_kind)
      : dims(d), causal(c),
        q(d.batch, d.heads, d.seq_q, d.head_dim, layout), k(d.batch, d.kv_heads, d.seq_k, d.head_dim, layout),
        v(d.batch, d.kv_heads, d.seq_k, d.head_dim, layout), o(d.batch, d.heads, d.seq_q, d.head_dim, layout),
        d_o(d.batch, d.heads, d.seq_q, d.head_dim, layout), dq(d.batch, d.heads, d.seq_q, d.head_dim, layout),
        dk(d.batch, d.kv_heads, d.seq_k, d.head_dim, layout), dv(d.batch, d.kv_heads, d.seq_k, d.head_dim, layout),
        lse(std::size_t(d.batch * d.heads * d.seq_q), testing::kPoison<float>) {
    q.randomize(rng);
    k.randomize(rng);
    v.randomize(rng);
    d_o.randomize(rng);
    if (mask_kind > 0) {
      // 1: one (Sq, Sk) mask for every batch and head; 2: per batch, broadcast over heads;
      // 3: per batch and head. A few rows fully masked, a few single -inf entries.
      const index_t nb = mask_kind >= 2 ? d.batch : 1, nh = mask_kind == 3 ? d.heads : 1;
      mask.assign(std::size_t(nb * nh * d.seq_q * d.seq_k) + 1, 0.0f);
      for (float& x : mask) x = float(rng.uniform(-2, 2));
      const index_t rows = nb * nh * d.seq_q;
      for (index_t r = 0; r < rows; ++r) {
        float* row = mask.data() + r * d.seq_k;
        if (rng.integer(0, 9) == 0)
          std::fill(row, row + d.seq_k, -std::numeric_limits<float>::infinity());
        else if (d.seq_k > 0 && rng.coin())
          row[rng.integer(0, d.seq_k - 1)] = -std::numeric_limits<float>::infinity();
      }
      mask_strides = {nb > 1 ? nh * d.seq_q * d.seq_k : 0, nh > 1 ? d.seq_q * d.seq_k : 0, d.seq_k, 1};
    }
  }
  template <class T>
  View4<const T> mask_view(const T* p) const {
    return {mask.empty() ? nullptr : p, mask_strides[0], mask_strides[1], mask_strides[2], mask_strides[3]};
  }
  float scale() const { return float(1 / std::sqrt(double(dims.head_dim))); }
  AttentionForwardArgs<float> fwd() {
    AttentionForwardArgs<float> a;
    a.dims = dims, a.scale = scale(), a.causal = causal;
    a.q = q.cview(), a.k = k.cview(), a.v = v.cview(), a.mask = mask_view(mask.data());
    a.o = o.view(), a.lse = lse.data();
    return a;
  }
  AttentionBackwardArgs<float> bwd() {
    AttentionBackwardArgs<float> a;
    a.dims = dims, a.scale = scale(), a.causal = causal;
    a.q = q.cview(), a.k = k.cview(), a.v = v.cview(), a.o = o.cview(), a.d_o = d_o.cview();
    a.mask = mask_view(mask.data());
    a.lse = lse.data();
    a.dq = dq.view(), a.dk = dk.view(), a.dv = dv.view();
    return a;
  }
};

struct Path {
  std::string name;
  const TypedOps<float>* ops;
  int threads;
};

std::vector<Path> cpu_paths() {
  std::vector<Path> v;
  for (const OpTable* ops : testing::cpu_tables())
    for (int t : testing::thread_counts()) v.push_back({ops->name, &ops->f32, t});
  return v;
}

// The double reference on the same numbers: o, lse, and dq, dk, dv (at the F4 offsets).
struct Reference {
  std::vector<double> o, lse, dq, dk, dv;
};

Reference reference(CpuProblem& p) {
  Reference r;
  r.o.assign(p.o.data.size(), 0.0);
  r.lse.assign(p.lse.size(), 0.0);
  std::vector<double> mask(p.mask.begin(), p.mask.end());
  AttentionForwardArgs<double> f;
  f.dims = p.dims, f.scale = p.scale(), f.causal = p.causal;
  f.q = p.q.dview(), f.k = p.k.dview(), f.v = p.v.dview(), f.mask = p.mask_view(mask.data());
  f.o = p.o.view_of(r.o.data()), f.lse = r.lse.data();
  attention_forward_ref(f);
  r.dq.assign(p.dq.data.size(), 0.0);
  r.dk.assign(p.dk.data.size(), 0.0);
  r.dv.assign(p.dv.data.size(), 0.0);
  AttentionBackwardArgs<double> b;
  b.dims = p.dims, b.scale = p.scale(), b.causal = p.causal;
  b.q = f.q, b.k = f.k, b.v = f.v, b.mask = f.mask;
  b.o = p.o.view_of<const double>(r.o.data()), b.d_o = p.d_o.dview(), b.lse = r.lse.data();
  b.dq = p.dq.view_of(r.dq.data()), b.dk = p.dk.view_of(r.dk.data()), b.dv = p.dv.view_of(r.dv.data());
  attention_backward_ref(b);
  return r;
}

// lse within an absolute 1e-5 (|lse| ~ log Sk); -inf exactly where the reference has it.
::testing::AssertionResult lse_close(const std::vector<float>& got, const std::vector<double>& want) {
  for (std::size_t i = 0; i < want.size(); ++i) {
    const bool ok = std::isinf(want[i]) ? got[i] == float(want[i]) : std::fabs(double(got[i]) - want[i]) <= 1e-5 * (1 + std::fabs(want[i]));
    if (!ok) return ::testing::AssertionFailure() << "lse[" << i << "] = " << got[i] << ", want " << want[i];
  }
  return ::testing::AssertionSuccess();
}

// Float sums of Sk products of D-long float dots: relative norm error ~ sqrt(D + Sk) u.
double attention_tol(const AttentionDims& d) { return 2e-6 * std::sqrt(double(d.head_dim + d.seq_k)) + 1e-6; }

// Each random problem and its double-precision reference are made once and every path
// (each ISA's and the portable 16-lane one, on 1 and 2 threads) runs on a copy of it.
TEST(AttentionCpu, EveryPathMatchesTheReferenceForwardAndBackward) {
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  const index_t seqs[] = {1, 7, 33, 129, 500};
  const index_t dims[] = {16, 24, 64, 80, 128, 256};
  const std::vector<Path> paths = cpu_paths();
  for (int rep = 0; rep < 16; ++rep) {
    AttentionDims d;
    d.batch = rng.integer(1, 2);
    d.kv_heads = rng.integer(1, 2);
    d.heads = d.kv_heads * rng.integer(1, 3);  // GQA when the factor is > 1
    d.seq_q = seqs[rng.integer(0, 4)];
    d.seq_k = rep == 0 ? d.seq_q : seqs[rng.integer(0, 4)];
    d.head_dim = dims[rng.integer(0, 5)];
    if (d.seq_q * d.seq_k * d.head_dim > 500 * 129 * 64) d.head_dim = 16;  // keep the reference quick
    const bool causal = rng.coin();
    const int layout = int(rng.integer(0, 2)), mask_kind = int(rng.integer(0, 3));
    CpuProblem problem(d, causal, layout, rng, mask_kind);
    const Reference ref = reference(problem);
    const double tol = attention_tol(d);
    for (const Path& path : paths) {
      cpu::set_num_threads(path.threads);
      CpuProblem p = problem;  // outputs poisoned, as made
      const std::string what = path.name + " threads " + std::to_string(path.threads) + " B" + std::to_string(d.batch) +
                               " H" + std::to_string(d.heads) + "/" + std::to_string(d.kv_heads) + " Sq" +
                               std::to_string(d.seq_q) + " Sk" + std::to_string(d.seq_k) + " D" +
                               std::to_string(d.head_dim) + (causal ? " causal" : "") + " layout " +
                               std::to_string(layout) + " mask " + std::to_string(mask_kind);
      path.ops->attention_forward(p.fwd());
      EXPECT_LT(p.o.rel_error(ref.o), tol) << what << " O";
      EXPECT_TRUE(lse_close(p.lse, ref.lse)) << what;
      EXPECT_TRUE(p.o.gaps_untouched()) << what;
      // The backward from the kernel's own O and lse.
      path.ops->attention_backward(p.bwd());
      EXPECT_LT(p.dq.rel_error(ref.dq), 10 * tol) << what << " dQ";
      EXPECT_LT(p.dk.rel_error(ref.dk), 10 * tol) << what << " dK";
      EXPECT_LT(p.dv.rel_error(ref.dv), 10 * tol) << what << " dV";
      EXPECT_TRUE(p.dq.gaps_untouched() && p.dk.gaps_untouched() && p.dv.gaps_untouched()) << what;
    }
  }
}

TEST(AttentionCpu, FullyMaskedRowsGiveZerosAndZeroGradients) {
  TG_TEST_RNG(rng);
  for (const Path& path : cpu_paths()) {
    // Causal with Sq > Sk: the first Sq - Sk rows see nothing; and a row masked by -inf.
    AttentionDims d{1, 2, 2, 9, 4, 32};
    CpuProblem p(d, true, 0, rng, 3);
    std::fill(p.mask.begin(), p.mask.end(), 0.0f);
    for (index_t j = 0; j < d.seq_k; ++j) p.mask[std::size_t(8 * d.seq_k + j)] = -std::numeric_limits<float>::infinity();
    path.ops->attention_forward(p.fwd());
    path.ops->attention_backward(p.bwd());
    const View4<float> o = p.o.view(), dq = p.dq.view();
    for (index_t i : {0, 1, 2, 3, 4, 8}) {  // rows 0-4: causal offset -5; row 8 of head 0: the mask
      for (index_t c = 0; c < d.head_dim; ++c) {
        EXPECT_EQ(o.at(0, 0, i, c), 0.0f) << path.name << " row " << i;
        EXPECT_EQ(dq.at(0, 0, i, c), 0.0f) << path.name << " row " << i;
      }
      EXPECT_EQ(p.lse[std::size_t(i)], -std::numeric_limits<float>::infinity());
    }
    for (std::size_t i = 0; i + 1 < p.dk.data.size(); ++i) EXPECT_FALSE(std::isnan(p.dk.data[i])) << path.name;
    const Reference ref = reference(p);
    EXPECT_LT(p.dk.rel_error(ref.dk), 1e-4) << path.name;
  }
}

TEST(AttentionCpu, ThreadCountDoesNotChangeAnyBit) {
  if (testing::emulated()) GTEST_SKIP() << testing::kNoThreadsUnderEmulation;
  ThreadsGuard guard;
  TG_TEST_RNG(rng);
  for (cpu::Isa isa : cpu::supported_isas()) {
    const auto& ops = cpu::ops(isa).f32;
    AttentionDims d{2, 4, 2, 150, 300, 64};
    CpuProblem p(d, true, 1, rng, 2);
    cpu::set_num_threads(1);
    ops.attention_forward(p.fwd());
    ops.attention_backward(p.bwd());
    const std::vector<float> o1 = p.o.data, dq1 = p.dq.data, dk1 = p.dk.data, lse1 = p.lse;
    cpu::set_num_threads(2);
    for (int run = 0; run < 2; ++run) {
      ops.attention_forward(p.fwd());
      ops.attention_backward(p.bwd());
      EXPECT_EQ(0, std::memcmp(o1.data(), p.o.data.data(), o1.size() * sizeof(float))) << cpu::ops(isa).name;
      EXPECT_EQ(0, std::memcmp(lse1.data(), p.lse.data(), lse1.size() * sizeof(float))) << cpu::ops(isa).name;
      EXPECT_EQ(0, std::memcmp(dq1.data(), p.dq.data.data(), dq1.size() * sizeof(float))) << cpu::ops(isa).name;
      EXPECT_EQ(0, std::memcmp(dk1.data(), p.dk.data.data(), dk1.size() * sizeof(float))) << cpu::ops(isa).name;
    }
  }
}

// The float backward against central differences of L = sum(O * dO) in float, on a
// small problem (the reference's own check is in double above).
TEST(AttentionCpu, BackwardMatchesFloatCentralDifferences) {
  TG_TEST_RNG(rng);
  AttentionDims d{1, 2, 1, 5, 7, 16};
  CpuProblem p(d, true, 0, rng, 1);
  const auto& ops = cpu::ops().f32;
  ops.attention_forward(p.fwd());
  ops.attention_backward(p.bwd());
  auto loss = [&] {
    ops.attention_forward(p.fwd());
    double s = 0;
    const View4<float> o = p.o.view(), g = p.d_o.view();
    for (index_t h = 0; h < d.heads; ++h)
      for (index_t i = 0; i < d.seq_q; ++i)
        for (index_t c = 0; c < d.head_dim; ++c) s += double(o.at(0, h, i, c)) * double(g.at(0, h, i, c));
    return s;
  };
  const float eps = 1e-2f;
  for (F4* t : {&p.q, &p.k, &p.v}) {
    F4& grad = t == &p.q ? p.dq : t == &p.k ? p.dk : p.dv;
    const std::vector<float> analytic = grad.data;
    for (int trial = 0; trial < 12; ++trial) {
      const index_t h = rng.integer(0, t->n1 - 1), i = rng.integer(0, t->n2 - 1), c = rng.integer(0, t->n3 - 1);
      float& x = t->view().at(0, h, i, c);
      const float x0 = x;
      x = x0 + eps;
      const double up = loss();
      x = x0 - eps;
      const double down = loss();
      x = x0;
      const double numeric = (up - down) / (2 * double(eps));
      const double got = double(grad.view_of(const_cast<float*>(analytic.data())).at(0, h, i, c));
      EXPECT_NEAR(got, numeric, 2e-3 + 1e-2 * std::fabs(numeric)) << (t == &p.q ? "q" : t == &p.k ? "k" : "v")
                                                                   << " (" << h << ", " << i << ", " << c << ")";
    }
  }
}

TEST(AttentionCpu, WorkspaceDependsOnHeadDimAndThreadsOnly) {
  // 8 heads of seq 16384 at d 64 would need 8 GiB for materialized scores; the fused
  // kernel's workspace is a few hundred KiB per thread whatever the length.
  const std::size_t w = cpu::attention_workspace_bytes(64, 2);
  EXPECT_LT(w, std::size_t(16) << 20);
  EXPECT_GT(cpu::attention_workspace_bytes(256, 2), w);
  EXPECT_EQ(cpu::attention_workspace_bytes(64, 4), 2 * w);
}

TEST(AttentionCpu, CheckedEntryNamesTheBadArgument) {
  TG_TEST_RNG(rng);
  AttentionDims d{1, 2, 2, 3, 3, 300};
  CpuProblem p(d, false, 0, rng, 0);
  try {
    cpu::attention_forward(p.fwd());
    ADD_FAILURE() << "head_dim 300 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head_dim"), std::string::npos) << e.what();
  }
  AttentionDims g{1, 3, 2, 3, 3, 16};  // 3 heads over 2 key/value heads
  CpuProblem p2(AttentionDims{1, 3, 1, 3, 3, 16}, false, 0, rng, 0);
  auto a = p2.fwd();
  a.dims = g;
  try {
    cpu::attention_forward(a);
    ADD_FAILURE() << "heads 3 over kv_heads 2 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("kv_heads"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tg
