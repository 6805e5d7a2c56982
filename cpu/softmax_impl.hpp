// softmax and log_softmax kernels, written once over a lane type V (simd::Z16 in
// softmax_avx512.cpp, simd::F8 in softmax_avx2.cpp, simd::F1 in softmax.cpp). Not a
// public header.
//
// Forward, per row (or per slice of a long row split across threads):
//   pass 1, in blocks of 256: the block's maximum; if it raises the running maximum m,
//     the running sum (per lane) is rescaled by e^(m_old - m); then e^(x - m) is summed
//     and, for softmax, stored into y, with m recorded per block (Milakov & Gimelshein
//     2018, "Online normalizer calculation for softmax", blocked);
//   pass 2: softmax y *= e^(m_block - m) / sum, one factor per block; log_softmax
//     y = x - (m + log sum).
// One exp per element. Rows whose maximum is +inf, or that hold a NaN, or that are all
// -inf get the contract's values (kernels/softmax.hpp) from the special-row path.
#pragma once

#include "tilegrad/cpu/omp.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "tilegrad/cpu/parallel.hpp"
#include "tilegrad/cpu/scratch.hpp"
#include "tilegrad/cpu/softmax.hpp"
#include "tilegrad/cpu/vmath/vmath.hpp"

namespace tg::cpu {
namespace {  // internal linkage: one copy per path's unit (docs/design.md)
namespace softmax_impl {

inline constexpr index_t kBlock = 256;               // elements per online block
inline constexpr index_t kSplitCols = index_t(1) << 16;  // rows this long may be split
inline constexpr index_t kParallelElems = index_t(1) << 15;
inline constexpr float kInf = std::numeric_limits<float>::infinity();

// Per-thread scratch: the running maximum of each block of a row.
inline float* block_scratch(index_t blocks) {
  thread_local ZeroScratch<float> buf;
  if (index_t(buf.size()) < blocks) buf.zero(std::size_t(blocks));
  return buf.data();
}

struct Partial {  // pass 1's result over a row or a slice of one
  float m = -kInf;  // maximum
  double s = 0;     // sum of e^(x - m)
  bool nan = false;
  index_t pos_inf = 0;  // entries equal to +inf
};

// Pass 1 over x[0, n). kWrite: y[j] = e^(x_j - m_b), m_b the running max after block b,
// stored in bmax[b]. Each block is summed in float lanes (32 terms a lane), the blocks
// in double: the sum's error stays near a block's, not the row's (n eps grows to 6e-3
// at a million terms in one float accumulator).
template <class V, bool kWrite>
Partial pass1(index_t n, const float* x, float* y, float* bmax) {
  constexpr int L = V::kLanes;
  float m = -kInf;
  index_t pos_inf = 0;
  double sum = 0;
  bool nan = false;
  for (index_t b0 = 0, b = 0; b0 < n; b0 += kBlock, ++b) {
    const index_t len = std::min(kBlock, n - b0);
    const float* xb = x + b0;
    // The block's maximum. A NaN may or may not survive MAXPS here; it is found below,
    // by the exponentials it turns into NaN, or by a scan where there are none.
    V bm(-kInf);
    index_t j = 0;
    for (; j + L <= len; j += L) {
      prefetch_ahead(xb + j);  // the next blocks, read next by this loop (cpu/parallel.hpp)
      bm = max(bm, V::load(xb + j));
    }
    if (j < len) bm = max(bm, V::load_partial_fill(xb + j, int(len - j), -kInf));
    const float block_max = simd::reduce_max(bm);
    if (block_max == kInf) pos_inf += std::count(xb, xb + len, kInf);  // rare: +inf rows
    if (block_max > m) {
      if (m > -kInf) sum *= std::exp(double(m) - double(block_max));
      m = block_max;
    }
    if constexpr (kWrite) bmax[b] = m;
    // From a +inf on the row is special (special_row): x is left as it is, so an
    // in-place softmax still finds its +inf entries. All -inf so far contributes 0.
    // Neither computes exponentials, so a NaN is looked for directly (rare rows).
    if (m == kInf || m == -kInf) {
      nan = nan || std::any_of(xb, xb + len, [](float v) { return std::isnan(v); });
      if (m == -kInf) {
        if constexpr (kWrite) std::fill(y + b0, y + b0 + len, 0.0f);
      }
      continue;
    }
    const V mv(m);
    V bsum(0.0f);
    for (j = 0; j + L <= len; j += L) {
      const V e = vmath::exp_nonpositive(V::load(xb + j) - mv);
      bsum = bsum + e;
      if constexpr (kWrite) e.store(y + b0 + j);
    }
    if (j < len) {
      const int r = int(len - j);
      const V e = vmath::exp_nonpositive(V::load_partial_fill(xb + j, r, -kInf) - mv);
      bsum = bsum + e;
      if constexpr (kWrite) simd::store_partial(y + b0 + j, e, r);
    }
    sum += double(simd::reduce_add(bsum));
  }
  // With a finite maximum, a NaN input made its exponential NaN (exp_nonpositive keeps
  // NaN), and with it the sum: sums of e^(x - m) <= 1 are otherwise finite.
  return {m, sum, nan || std::isnan(sum), pos_inf};
}

// Combines slices' partials into the row's.
inline Partial combine(const Partial* parts, int count) {
  Partial r;
  for (int t = 0; t < count; ++t) {
    r.nan |= parts[t].nan;
    r.m = std::max(r.m, parts[t].m);
    r.pos_inf += parts[t].pos_inf;
  }
  if (r.m > -kInf && r.m < kInf)
    for (int t = 0; t < count; ++t)
      if (parts[t].m > -kInf) r.s += parts[t].s * std::exp(double(parts[t].m) - double(r.m));
  return r;
}

// The contract's rows that are not ordinary numbers: NaN anywhere, a +inf, all -inf.
inline bool special(const Partial& p) { return p.nan || p.m == kInf || p.m == -kInf; }

// Writes a special row's slice [0, n): x and y point at the slice, p is the whole row's.
inline void special_row(bool log, index_t n, const float* x, float* y, const Partial& p) {
  if (p.nan) {
    std::fill(y, y + n, std::numeric_limits<float>::quiet_NaN());
  } else if (p.m == -kInf) {
    std::fill(y, y + n, log ? -kInf : 0.0f);
  } else {  // the limit: the mass split evenly over the row's c entries that are +inf
    const float c = float(p.pos_inf);
    const float hit = log ? -std::log(c) : 1.0f / c, miss = log ? -kInf : 0.0f;
    for (index_t j = 0; j < n; ++j) y[j] = x[j] == kInf ? hit : miss;
  }
}

// Pass 2 over the slice [0, n) of a row whose partial is p (the row's, combined).
template <class V>
void softmax_pass2(index_t n, float* y, const float* bmax, const Partial& p) {
  constexpr int L = V::kLanes;
  const double inv = 1.0 / p.s;
  for (index_t b0 = 0, b = 0; b0 < n; b0 += kBlock, ++b) {
    const index_t len = std::min(kBlock, n - b0);
    const V f(bmax[b] == -kInf ? 0.0f : float(std::exp(double(bmax[b]) - double(p.m)) * inv));
    float* yb = y + b0;
    index_t j = 0;
    for (; j + L <= len; j += L) (V::load(yb + j) * f).store(yb + j);
    if (j < len) simd::store_partial(yb + j, V::load_partial(yb + j, int(len - j)) * f, int(len - j));
  }
}

// y = (x - m) - log s. x - m is exact for the entries that matter (Sterbenz: those
// within a factor of 2 of m), and log s is in [0, log n]: at most an ulp of y in all.
// x - float(m + log s) instead rounded m + log s to float first, half an ulp of m: 3e-5
// for logits near 1000, where the outputs are ~1.
template <class V>
void log_softmax_pass2(index_t n, const float* x, float* y, const Partial& p) {
  constexpr int L = V::kLanes;
  const V m(p.m), ls(float(std::log(p.s)));
  index_t j = 0;
  for (; j + L <= n; j += L) ((V::load(x + j) - m) - ls).store(y + j);
  if (j < n) simd::store_partial(y + j, (V::load_partial(x + j, int(n - j)) - m) - ls, int(n - j));
}

// One whole row on the calling thread.
template <class V, bool kLog>
void forward_row(index_t n, const float* x, float* y) {
  float* bmax = kLog ? nullptr : block_scratch((n + kBlock - 1) / kBlock);
  const Partial p = pass1<V, !kLog>(n, x, y, bmax);
  if (special(p)) return special_row(kLog, n, x, y, p);
  if constexpr (kLog) {
    log_softmax_pass2<V>(n, x, y, p);
  } else {
    softmax_pass2<V>(n, y, bmax, p);
  }
}

// One long row split across the team: slices of whole blocks, partials combined
// between two barriers, each thread finishing its own slice.
template <class V, bool kLog>
void forward_split_row(index_t n, const float* x, float* y) {
  const int threads = omp_get_max_threads();
  std::vector<Partial> parts(static_cast<std::size_t>(threads));
  const index_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const index_t j0 = std::min(n, blocks * t / nt * kBlock), j1 = std::min(n, blocks * (t + 1) / nt * kBlock);
    float* bmax = kLog ? nullptr : block_scratch((j1 - j0 + kBlock - 1) / kBlock + 1);
    parts[std::size_t(t)] = j1 > j0 ? pass1<V, !kLog>(j1 - j0, x + j0, y + j0, bmax) : Partial{};
#pragma omp barrier
    const Partial p = combine(parts.data(), nt);
    if (j1 > j0) {
      if (special(p)) {
        special_row(kLog, j1 - j0, x + j0, y + j0, p);
      } else if constexpr (kLog) {
        log_softmax_pass2<V>(j1 - j0, x + j0, y + j0, p);
      } else {
        softmax_pass2<V>(j1 - j0, y + j0, bmax, p);
      }
    }
  }
}

template <class V, bool kLog>
void forward(index_t rows, index_t cols, const float* x, index_t ldx, float* y, index_t ldy) {
  if (rows < omp_get_max_threads() && cols >= kSplitCols && !omp_in_parallel()) {
    for (index_t i = 0; i < rows; ++i) forward_split_row<V, kLog>(cols, x + i * ldx, y + i * ldy);
    return;
  }
  for_each_rows(rows, cols, kParallelElems, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) forward_row<V, kLog>(cols, x + i * ldx, y + i * ldy);
  });
}

// ---------------------------------------------------------------------------------
// Backward. softmax: dx = y (dy - dot(dy, y)); log_softmax: dx = dy - e^y sum(dy), and 0
// for a fully masked row (all y = -inf).
// ---------------------------------------------------------------------------------
struct BackPartial {
  double dot = 0;       // softmax: dot(dy, y); log_softmax: sum(dy)
  bool live = false;    // log_softmax: some y that is not -inf (NaN counts: its row's dx is NaN)
};

// In blocks of 256 summed in float lanes, the blocks in double (as pass1).
template <class V, bool kLog>
BackPartial back_pass1(index_t n, const float* y, const float* dy) {
  constexpr int L = V::kLanes;
  BackPartial p;
  typename V::Mask live = is_nan(V(0.0f));
  for (index_t b0 = 0; b0 < n; b0 += kBlock) {
    const index_t len = std::min(kBlock, n - b0);
    const float* yb = y + b0;
    const float* db = dy + b0;
    V acc(0.0f);
    index_t j = 0;
    for (; j + L <= len; j += L) {
      const V yv = V::load(yb + j), d = V::load(db + j);
      if constexpr (kLog) {
        acc = acc + d;
        live = live | (yv > V(-kInf)) | is_nan(yv);
      } else {
        acc = fma(d, yv, acc);
      }
    }
    if (j < len) {
      const int r = int(len - j);
      const V d = V::load_partial(db + j, r);
      if constexpr (kLog) {
        acc = acc + d;
        const V yt = V::load_partial_fill(yb + j, r, -kInf);
        live = live | (yt > V(-kInf)) | is_nan(yt);
      } else {
        acc = fma(d, V::load_partial(yb + j, r), acc);
      }
    }
    p.dot += double(simd::reduce_add(acc));
  }
  p.live = any(live);
  return p;
}

template <class V, bool kLog>
void back_pass2(index_t n, const float* y, const float* dy, float* dx, const BackPartial& p) {
  constexpr int L = V::kLanes;
  const V c(float(p.dot));
  auto f = [&](V yv, V d) {
    if constexpr (kLog) return fnma(vmath::exp_nonpositive(yv), c, d);  // dy - e^y sum
    else return yv * (d - c);
  };
  if (kLog && !p.live) {
    std::fill(dx, dx + n, 0.0f);
    return;
  }
  index_t j = 0;
  for (; j + L <= n; j += L) f(V::load(y + j), V::load(dy + j)).store(dx + j);
  if (j < n) {
    const int r = int(n - j);
    simd::store_partial(dx + j, f(V::load_partial_fill(y + j, r, kLog ? -kInf : 0.0f), V::load_partial(dy + j, r)), r);
  }
}

template <class V, bool kLog>
void backward(index_t rows, index_t cols, const float* y, index_t ldy, const float* dy,
              index_t lddy, float* dx, index_t lddx) {
  if (rows < omp_get_max_threads() && cols >= kSplitCols && !omp_in_parallel()) {
    for (index_t i = 0; i < rows; ++i) {
      const float* yi = y + i * ldy;
      const float* dyi = dy + i * lddy;
      float* dxi = dx + i * lddx;
      const int threads = omp_get_max_threads();
      std::vector<BackPartial> parts(static_cast<std::size_t>(threads));
#pragma omp parallel num_threads(threads)
      {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const index_t j0 = cols * t / nt / 16 * 16, j1 = t + 1 == nt ? cols : cols * (t + 1) / nt / 16 * 16;
        parts[std::size_t(t)] = back_pass1<V, kLog>(j1 - j0, yi + j0, dyi + j0);
#pragma omp barrier
        BackPartial p;
        for (int k = 0; k < nt; ++k) {  // the same order on every thread: the same sum
          p.dot += parts[std::size_t(k)].dot;
          p.live |= parts[std::size_t(k)].live;
        }
        back_pass2<V, kLog>(j1 - j0, yi + j0, dyi + j0, dxi + j0, p);
      }
    }
    return;
  }
  for_each_rows(rows, cols, kParallelElems, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      const BackPartial p = back_pass1<V, kLog>(cols, y + i * ldy, dy + i * lddy);
      back_pass2<V, kLog>(cols, y + i * ldy, dy + i * lddy, dx + i * lddx, p);
    }
  });
}

}  // namespace softmax_impl
}  // namespace
}  // namespace tg::cpu

// A path's entries of cpu/softmax.hpp over the lane type V, defined by one line in
// namespace tg::cpu of each path's translation unit.
#define TG_SOFTMAX_PATH(path, V)                                                                          \
  void softmax_forward_##path(index_t rows, index_t cols, const float* x, index_t ldx, float* y, index_t ldy) { \
    softmax_impl::forward<V, false>(rows, cols, x, ldx, y, ldy);                                          \
  }                                                                                                       \
  void log_softmax_forward_##path(index_t rows, index_t cols, const float* x, index_t ldx, float* y,      \
                                  index_t ldy) {                                                          \
    softmax_impl::forward<V, true>(rows, cols, x, ldx, y, ldy);                                           \
  }                                                                                                       \
  void softmax_backward_##path(index_t rows, index_t cols, const float* y, index_t ldy, const float* dy,  \
                               index_t lddy, float* dx, index_t lddx) {                                   \
    softmax_impl::backward<V, false>(rows, cols, y, ldy, dy, lddy, dx, lddx);                             \
  }                                                                                                       \
  void log_softmax_backward_##path(index_t rows, index_t cols, const float* y, index_t ldy, const float* dy, \
                                   index_t lddy, float* dx, index_t lddx) {                               \
    softmax_impl::backward<V, true>(rows, cols, y, ldy, dy, lddy, dx, lddx);                              \
  }
