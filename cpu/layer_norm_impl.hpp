// layer_norm kernels, written once over a lane type V (simd::Z16 in
// layer_norm_avx512.cpp, simd::F8 in layer_norm_avx2.cpp, simd::F1 in layer_norm.cpp).
// Not a public header.
//
// Forward, per row: the statistics in one pass over memory, in blocks of 2048 that sit
// in L1 (rows up to 256 floats in groups: sixteen at a time with one transposing fold
// for their horizontal sums on AVX-512, else four interleaved): each block's mean and
// centred sum of squares (two passes over the block),
// merged into the row's in double by Chan, Golub & LeVeque's pairwise update (no
// cancellation, unlike E[x^2] - E[x]^2); then y = (x - mean) rstd gamma + beta.
// Backward, per row: sum(g) and sum(g xhat), g = dy gamma, xhat from the saved mean
// and rstd; then dx = rstd (g - mean(g) - xhat mean(g xhat)). dgamma and dbeta sum over
// rows: each thread into its own double accumulators, added in thread order.
#pragma once

#include "tilegrad/cpu/omp.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <vector>

#include "tilegrad/cpu/layer_norm.hpp"
#include "tilegrad/cpu/parallel.hpp"
#include "tilegrad/cpu/scratch.hpp"

namespace tg::cpu {
namespace {  // internal linkage: one copy per path's unit (docs/design.md)
namespace ln_impl {

// Statistics blocks are read twice (sum, then deviations) and must stay in L1: 2048
// floats is 8 KiB. Rows up to kGroupCols go four at a time (16 KiB).
inline constexpr index_t kBlock = 2048;
inline constexpr index_t kGroupCols = 256;
inline constexpr index_t kParallelElems = index_t(1) << 15;

struct Stats {
  double mean = 0, m2 = 0;  // m2 = sum (x - mean)^2
  double n = 0;
};

// Chan et al.: the statistics of a set merged with a block's (nb, mean_b, m2_b).
inline void merge(Stats& a, double nb, double mean_b, double m2_b) {
  const double n = a.n + nb, delta = mean_b - a.mean;
  a.mean += delta * nb / n;
  a.m2 += m2_b + delta * delta * a.n * nb / n;
  a.n = n;
}

// A row length and its reciprocals, worked out once a call: the statistics and rstd
// take products by 1 / n where a short row's four divisions and square root queued on
// the one divider (8192 x 64 in L2: 23.0 -> 20.1 ns a row on Zen 4, avx512;
// cpu/NOTES.md).
struct RowLength {
  index_t n;
  float inv_f;
  double inv;
  explicit RowLength(index_t len) : n(len), inv_f(1.0f / float(len)), inv(1.0 / double(len)) {}
};

template <class V, int kRows>
void short_rows_stats(const RowLength& len, const float* x, index_t ldx, Stats* out);

// A row's statistics in double, two passes: for the rare row whose float sums overflow
// (|x| past ~1e19, where (x - mean)^2 exceeds the float range) though its values are
// finite. A row with an infinity or a NaN keeps its inf or NaN statistics.
inline Stats row_stats_double(index_t n, const float* x) {
  double s = 0, m2 = 0;
  for (index_t j = 0; j < n; ++j) s += double(x[j]);
  const double mean = s / double(n);
  for (index_t j = 0; j < n; ++j) m2 += (double(x[j]) - mean) * (double(x[j]) - mean);
  return {mean, m2, double(n)};
}

// Rows longer than kGroupCols: each block summed in four accumulators (a single one
// made the loop wait on its own adds: 3-4 cycles per vector, ~1 cycle per element).
template <class V>
Stats row_stats(index_t n, const float* x) {
  constexpr int L = V::kLanes;
  Stats st;
  if (n <= kGroupCols) {  // the grouped path's arithmetic, so a row's result never
    short_rows_stats<V, 1>(RowLength(n), x, 0, &st);  // depends on how rows fell into groups
    return st;
  }
  const bool one_block = n <= kBlock;  // the block's statistics are the row's: no merge
  for (index_t b0 = 0; b0 < n; b0 += kBlock) {
    const index_t len = std::min(kBlock, n - b0);
    const float* xb = x + b0;
    V s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
    index_t j = 0;
    for (; j + 4 * L <= len; j += 4 * L) {
      s0 = s0 + V::load(xb + j);
      s1 = s1 + V::load(xb + j + L);
      s2 = s2 + V::load(xb + j + 2 * L);
      s3 = s3 + V::load(xb + j + 3 * L);
    }
    for (; j + L <= len; j += L) s0 = s0 + V::load(xb + j);
    if (j < len) s1 = s1 + V::load_partial(xb + j, int(len - j));
    const float mean_b = simd::reduce_add((s0 + s1) + (s2 + s3)) / float(len);
    // The float mean is off by up to an ulp of the sum; the deviations' own sum c
    // corrects it: mean = mean_b + c / len, m2 = sum d^2 - c^2 / len (the corrected
    // two-pass algorithm). Without it, (4.81372881, 4.81402397) normalized to
    // (-0.04654, 0.04669) instead of +-0.04662 at eps = 1e-5.
    const V mv(mean_b);
    V c0(0.0f), c1(0.0f), q0(0.0f), q1(0.0f);
    for (j = 0; j + 2 * L <= len; j += 2 * L) {
      const V d0 = V::load(xb + j) - mv, d1 = V::load(xb + j + L) - mv;
      c0 = c0 + d0;
      c1 = c1 + d1;
      q0 = fma(d0, d0, q0);
      q1 = fma(d1, d1, q1);
    }
    for (; j + L <= len; j += L) {
      const V d = V::load(xb + j) - mv;
      c0 = c0 + d;
      q0 = fma(d, d, q0);
    }
    if (j < len) {  // lanes past the row read as the mean: they add 0
      const V d = V::load_partial_fill(xb + j, int(len - j), mean_b) - mv;
      c1 = c1 + d;
      q1 = fma(d, d, q1);
    }
    const double cs = double(simd::reduce_add(c0 + c1)), nb = double(len);
    const double mean_c = double(mean_b) + cs / nb, m2 = double(simd::reduce_add(q0 + q1)) - cs * cs / nb;
    if (one_block) return {mean_c, m2, nb};
    merge(st, nb, mean_c, m2);
  }
  return st;
}

// The statistics of kRows rows of n <= kGroupCols each (one block, no merge),
// interleaved: a short row is one chain of dependent latency (sum, reduce, deviations,
// reduce, rsqrt) that a core cannot overlap with the next row's on its own; four at
// once it can. row_stats uses it with kRows = 1 for short rows, so grouped or not a
// row gets the same bits.
template <class V, int kRows>
void short_rows_stats(const RowLength& len, const float* x, index_t ldx, Stats* out) {
  constexpr int L = V::kLanes;
  const index_t n = len.n;
  const index_t full = n / L * L;
  const int r = int(n - full);
  V s[kRows];
  for (int k = 0; k < kRows; ++k) s[k] = V(0.0f);
  for (index_t j = 0; j < full; j += L)
    for (int k = 0; k < kRows; ++k) s[k] = s[k] + V::load(x + k * ldx + j);
  if (r)
    for (int k = 0; k < kRows; ++k) s[k] = s[k] + V::load_partial(x + k * ldx + full, r);
  const float inv_nf = len.inv_f;
  const double nb = double(n), inv_nb = len.inv;
  float mean_b[kRows];
  V mv[kRows], c[kRows], q[kRows];
  for (int k = 0; k < kRows; ++k) {
    mean_b[k] = simd::reduce_add(s[k]) * inv_nf;
    mv[k] = V(mean_b[k]);
    c[k] = V(0.0f);
    q[k] = V(0.0f);
  }
  for (index_t j = 0; j < full; j += L)
    for (int k = 0; k < kRows; ++k) {
      const V d = V::load(x + k * ldx + j) - mv[k];
      c[k] = c[k] + d;
      q[k] = fma(d, d, q[k]);
    }
  if (r)
    for (int k = 0; k < kRows; ++k) {
      const V d = V::load_partial_fill(x + k * ldx + full, r, mean_b[k]) - mv[k];
      c[k] = c[k] + d;
      q[k] = fma(d, d, q[k]);
    }
  for (int k = 0; k < kRows; ++k) {
    const double cs = double(simd::reduce_add(c[k]));
    out[k] = {double(mean_b[k]) + cs * inv_nb, double(simd::reduce_add(q[k])) - cs * cs * inv_nb, nb};
  }
}

// Lane types with reduce_add_each (lane k of the result is simd::reduce_add(v[k]), the
// same bits, for all lanes at once: AVX-512's transposing fold, and the portable 16-lane
// type) take short rows a vector's lanes at a time (wide_rows_stats); the others four.
template <class V>
inline constexpr bool kHasReduceAddEach = requires(const V* v) { reduce_add_each(v); };

// short_rows_stats for as many rows as V has lanes: the same operations on
// each row, in the same order, so the same bits, but the three horizontal sums of every
// row (the sum, the deviations' sum and their squares) formed for all rows at once by
// reduce_add_each. Row by row, those sums took 3 x 8 dependent shuffles and adds of the ~80
// operations a 64-float row costs. Its loops take one row at a time, where
// short_rows_stats interleaves its rows vector by vector: one function for both, with
// either loop order, measured slower (minimum of 9, 65536x64, Zen 4): rows one at a time
// cost AVX2's groups of four 15-20%, sixteen rows interleaved spilled their 48
// accumulators (1.7x slower on AVX-512), and sixteen as four interleaved fours lost too.
template <class V>
void wide_rows_stats(const RowLength& len, const float* x, index_t ldx, Stats* out) {
  constexpr int L = V::kLanes;
  const index_t n = len.n;
  const index_t full = n / L * L;
  const int r = int(n - full);
  V part[L];
  for (int k = 0; k < L; ++k) {
    const float* xk = x + k * ldx;
    V s(0.0f);
    for (index_t j = 0; j < full; j += L) s = s + V::load(xk + j);
    if (r) s = s + V::load_partial(xk + full, r);
    part[k] = s;
  }
  float mean_b[L];
  (reduce_add_each(part) * V(len.inv_f)).store(mean_b);
  V dev[L], sq[L];
  for (int k = 0; k < L; ++k) {
    const float* xk = x + k * ldx;
    const V mv(mean_b[k]);
    V c(0.0f), q(0.0f);
    for (index_t j = 0; j < full; j += L) {
      const V d = V::load(xk + j) - mv;
      c = c + d;
      q = fma(d, d, q);
    }
    if (r) {
      const V d = V::load_partial_fill(xk + full, r, mean_b[k]) - mv;
      c = c + d;
      q = fma(d, d, q);
    }
    dev[k] = c;
    sq[k] = q;
  }
  float cs[L], qs[L];
  reduce_add_each(dev).store(cs);
  reduce_add_each(sq).store(qs);
  const double nb = double(n), inv_nb = len.inv;
  for (int k = 0; k < L; ++k) {
    const double c = double(cs[k]);
    out[k] = {double(mean_b[k]) + c * inv_nb, double(qs[k]) - c * c * inv_nb, nb};
  }
}

// y = ((x - mean_hi) - mean_lo) rstd gamma + beta over one row; the affine parts chosen
// at compile time (a branch per vector doubled the loop's instructions).
template <class V, bool kGamma, bool kBeta>
void normalize_row(index_t n, const float* x, const float* gamma, const float* beta, float* y, V mv,
                   V ml, V rv) {
  constexpr int L = V::kLanes;
  auto out = [&](V v, index_t j, int r) {
    V z = ((v - mv) - ml) * rv;
    if constexpr (kGamma) z = z * (r == L ? V::load(gamma + j) : V::load_partial(gamma + j, r));
    if constexpr (kBeta) z = z + (r == L ? V::load(beta + j) : V::load_partial(beta + j, r));
    return z;
  };
  index_t j = 0;
  for (; j + L <= n; j += L) out(V::load(x + j), j, L).store(y + j);
  if (j < n) {
    const int r = int(n - j);
    simd::store_partial(y + j, out(V::load_partial(x + j, r), j, r), r);
  }
}

template <class V>
void forward(index_t rows, index_t cols, const float* x, index_t ldx, const float* gamma,
             const float* beta, double eps, float* y, index_t ldy, float* mean, float* rstd) {
  // Short rows go in groups: of V's lane count where it has reduce_add_each
  // (wide_rows_stats), of 4, then one at a time; every way gives a row the same bits.
  constexpr int kWide = kHasReduceAddEach<V> ? V::kLanes : 4;
  const RowLength len(cols);
  // Rows a multiple of 2 KiB apart would put sixteen rows' lines into at most two L1 sets
  // each (8 ways): such strides keep the groups of four.
  const bool wide = (std::size_t(ldx) * sizeof(float)) % 2048 != 0;
  for_each_rows(rows, cols, kParallelElems, [&](index_t i0, index_t i1) {
    Stats group[kWide];
    index_t g0 = i0, gn = 0;  // the group's first row and its row count (0: no group)
    for (index_t i = i0; i < i1; ++i) {
      const float* xi = x + i * ldx;
      float* yi = y + i * ldy;
      if (cols <= kGroupCols && i >= g0 + gn) {
        g0 = i;
        gn = 0;
        if constexpr (kWide > 4) {
          if (wide && i + kWide <= i1) {
            wide_rows_stats<V>(len, xi, ldx, group);
            gn = kWide;
          }
        }
        if (gn == 0) {
          gn = i + 4 <= i1 ? 4 : 1;
          if (gn == 4)
            short_rows_stats<V, 4>(len, xi, ldx, group);
          else
            short_rows_stats<V, 1>(len, xi, 0, group);
        }
      }
      Stats st = cols <= kGroupCols ? group[i - g0] : row_stats<V>(cols, xi);
      if (!std::isfinite(st.m2) || !std::isfinite(st.mean)) st = row_stats_double(cols, xi);
      const double rs = 1.0 / std::sqrt(st.m2 * len.inv + double(eps));
      if (mean) mean[i] = float(st.mean);
      if (rstd) rstd[i] = float(rs);
      // x - mean with the mean as hi + lo: a row whose spread is far below its mean
      // (1.0001, 1.0003) would otherwise lose its xhat to the mean's rounding.
      const float mean_hi = float(st.mean);
      const V mv = V(mean_hi), ml = V(float(st.mean - double(mean_hi))), rv = V(float(rs));
      if (gamma && beta) {
        normalize_row<V, true, true>(cols, xi, gamma, beta, yi, mv, ml, rv);
      } else if (gamma) {
        normalize_row<V, true, false>(cols, xi, gamma, beta, yi, mv, ml, rv);
      } else if (beta) {
        normalize_row<V, false, true>(cols, xi, gamma, beta, yi, mv, ml, rv);
      } else {
        normalize_row<V, false, false>(cols, xi, gamma, beta, yi, mv, ml, rv);
      }
    }
  });
}

// Per-thread accumulators for dgamma and dbeta: float partial sums over at most kFold
// rows, folded into double (a float sum over 10^5 rows would drift by ~1e-5).
struct ParamGrads {
  static constexpr int kFold = 32;
  ZeroScratch<float> dg_buf, db_buf;
  ZeroScratch<double> dg_total_buf, db_total_buf;
  float *dg = nullptr, *db = nullptr;  // nullptr where that gradient is not wanted
  double *dg_total = nullptr, *db_total = nullptr;
  index_t n = 0;
  int pending = 0;
  void resize(index_t cols, bool want_g, bool want_b) {
    n = cols;
    dg_buf.zero(want_g ? std::size_t(cols) : 0);
    db_buf.zero(want_b ? std::size_t(cols) : 0);
    dg_total_buf.zero(dg_buf.size());
    db_total_buf.zero(db_buf.size());
    dg = want_g ? dg_buf.data() : nullptr, db = want_b ? db_buf.data() : nullptr;
    dg_total = want_g ? dg_total_buf.data() : nullptr, db_total = want_b ? db_total_buf.data() : nullptr;
  }
  void fold() {
    for (index_t j = 0; dg && j < n; ++j) dg_total[j] += dg[j], dg[j] = 0;
    for (index_t j = 0; db && j < n; ++j) db_total[j] += db[j], db[j] = 0;
    pending = 0;
  }
};

template <class V>
void backward(index_t rows, index_t cols, const float* x, index_t ldx, const float* dy,
              index_t lddy, const float* gamma, const float* mean, const float* rstd, float* dx,
              index_t lddx, float* dgamma, float* dbeta) {
  constexpr int L = V::kLanes;
  const bool params = dgamma || dbeta;
  const int threads = (rows * cols < kParallelElems || omp_in_parallel() || rows == 1)
                          ? 1 : int(std::min<index_t>(omp_get_max_threads(), rows));
  std::vector<ParamGrads> acc(std::size_t(params ? threads : 0));
  for (ParamGrads& pg : acc) pg.resize(cols, dgamma != nullptr, dbeta != nullptr);  // not in the region
  const double inv_cols = 1.0 / double(cols);  // as the forward's: no divisions a row
  auto run = [&](int t, index_t i0, index_t i1) {
    ParamGrads* pg = params ? &acc[std::size_t(t)] : nullptr;
    for (index_t i = i0; i < i1; ++i) {
      const float* xi = x + i * ldx;
      const float* dyi = dy + i * lddy;
      float* dxi = dx + i * lddx;
      const V mv(mean[i]), rv(rstd[i]);
      // Pass 1: sum(g), sum(g xhat), in blocks folded into double.
      double sg = 0, sgx = 0;
      for (index_t b0 = 0; b0 < cols; b0 += ln_impl::kBlock) {
        const index_t len = std::min(kBlock, cols - b0);
        V ag(0.0f), agx(0.0f), ag1(0.0f), agx1(0.0f);  // two chains: the adds' latency
        index_t j = b0;
        for (; j + 2 * L <= b0 + len; j += 2 * L) {
          const V xh = (V::load(xi + j) - mv) * rv, xh1 = (V::load(xi + j + L) - mv) * rv;
          const V g = V::load(dyi + j) * (gamma ? V::load(gamma + j) : V(1.0f));
          const V g1 = V::load(dyi + j + L) * (gamma ? V::load(gamma + j + L) : V(1.0f));
          ag = ag + g;
          ag1 = ag1 + g1;
          agx = fma(g, xh, agx);
          agx1 = fma(g1, xh1, agx1);
        }
        ag = ag + ag1;
        agx = agx + agx1;
        for (; j + L <= b0 + len; j += L) {
          const V xh = (V::load(xi + j) - mv) * rv;
          const V g = V::load(dyi + j) * (gamma ? V::load(gamma + j) : V(1.0f));
          ag = ag + g;
          agx = fma(g, xh, agx);
        }
        if (j < b0 + len) {
          const int r = int(b0 + len - j);
          const V xh = (V::load_partial(xi + j, r) - mv) * rv;
          const V g = V::load_partial(dyi + j, r) * (gamma ? V::load_partial(gamma + j, r) : V(1.0f));
          ag = ag + g;
          agx = fma(g, xh, agx);  // g = 0 past the row
        }
        sg += simd::reduce_add(ag);
        sgx += simd::reduce_add(agx);
      }
      const V mg(float(sg * inv_cols)), mgx(float(sgx * inv_cols));
      // Pass 2: dx, and this row's share of dgamma, dbeta. dx may be dy (in place):
      // each element's dy is read before its dx is written.
      auto step = [&](index_t j, int r) {
        const bool full = r == L;
        const V xv = full ? V::load(xi + j) : V::load_partial(xi + j, r);
        const V d = full ? V::load(dyi + j) : V::load_partial(dyi + j, r);
        const V gm = gamma ? (full ? V::load(gamma + j) : V::load_partial(gamma + j, r)) : V(1.0f);
        const V xh = (xv - mv) * rv;
        const V out = rv * fnma(xh, mgx, d * gm - mg);
        if (pg) {
          if (dgamma) {
            const V a = full ? V::load(pg->dg + j) : V::load_partial(pg->dg + j, r);
            const V s2 = fma(d, xh, a);
            full ? s2.store(pg->dg + j) : simd::store_partial(pg->dg + j, s2, r);
          }
          if (dbeta) {
            const V a = full ? V::load(pg->db + j) : V::load_partial(pg->db + j, r);
            const V s2 = a + d;
            full ? s2.store(pg->db + j) : simd::store_partial(pg->db + j, s2, r);
          }
        }
        full ? out.store(dxi + j) : simd::store_partial(dxi + j, out, r);
      };
      index_t j = 0;
      for (; j + L <= cols; j += L) step(j, L);
      if (j < cols) step(j, int(cols - j));
      if (pg && ++pg->pending == ParamGrads::kFold) pg->fold();
    }
    if (pg) pg->fold();
  };
  if (threads <= 1) {
    run(0, 0, rows);
  } else {
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      run(t, rows * t / nt, rows * (t + 1) / nt);
    }
  }
  if (!params) return;
  for (index_t j = 0; j < cols; ++j) {
    double g = 0, b = 0;
    for (const ParamGrads& pg : acc) {  // thread order: the same sum on every run
      if (dgamma) g += pg.dg_total[j];
      if (dbeta) b += pg.db_total[j];
    }
    if (dgamma) dgamma[j] = float(g);
    if (dbeta) dbeta[j] = float(b);
  }
}

}  // namespace ln_impl
}  // namespace
}  // namespace tg::cpu

// A path's entries of cpu/layer_norm.hpp over the lane type V, defined by one line in
// namespace tg::cpu of each path's translation unit.
#define TG_LAYER_NORM_PATH(path, V)                                                                       \
  void layer_norm_forward_##path(index_t rows, index_t cols, const float* x, index_t ldx, const float* gamma, \
                                 const float* beta, double eps, float* y, index_t ldy, float* mean,        \
                                 float* rstd) {                                                           \
    ln_impl::forward<V>(rows, cols, x, ldx, gamma, beta, eps, y, ldy, mean, rstd);                        \
  }                                                                                                       \
  void layer_norm_backward_##path(index_t rows, index_t cols, const float* x, index_t ldx, const float* dy, \
                                  index_t lddy, const float* gamma, const float* mean, const float* rstd, \
                                  double /*eps*/, float* dx, index_t lddx, float* dgamma, float* dbeta) {  \
    ln_impl::backward<V>(rows, cols, x, ldx, dy, lddy, gamma, mean, rstd, dx, lddx, dgamma, dbeta);       \
  }
