// Scaled dot-product attention: the reference against closed forms (one key returns its
// value; the first causal row sees one key), against the unfused composition of the
// reference GEMM and softmax, under layout, broadcast and GQA rewrites that must not
// change the result, on fully masked rows, and its backward against central differences.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/gemm.hpp"
#include "kernels/softmax.hpp"
#include "tests/support/testing.hpp"

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

}  // namespace
}  // namespace tg
