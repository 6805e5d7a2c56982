// Fused scaled dot-product attention on the CPU (kernels/attention.hpp's contract), float,
// written once over a GEMM Arch (packers and micro-kernel, cpu/gemm/gemm_impl.hpp) and a
// lane type V for the exponentials; compiled per path by attention.cpp (portable),
// attention_avx2.cpp and attention_avx512.cpp. Not a public header. cpu/NOTES.md ("Attention") has the floors,
// the steps and the measurements.
//
// Forward (FlashAttention-2, Dao 2023, Algorithm 1): one work unit is bro query rows of
// one (batch, head), their Q packed once; key/value blocks of bc rows stream past it,
// each packed once for the unit and used by its br-row score tiles in turn (Tiles:
// sizes from the micro-kernel and the caches): S = scale log2(e) Q K^T by the
// micro-kernel into a br x bc tile, the mask (times log2 e) added, then per row the online
// softmax in base 2 (running max m and sum l; the partial output rescaled by
// 2^(m_old - m_new) when the max grows; each probability one vmath::exp2_nonpositive,
// whose reduction is a rounding and whose polynomial is shorter than e^x's), and
// O += P V by the micro-kernel again. With a causal mask the blocks wholly above the
// diagonal are never visited, and in a block that straddles it a score tile forms only
// the columns its last row sees, masking the rest of the triangle element by element. At
// the end O /= l and lse = m ln 2 + log l (natural units, as the contract has it); a row
// that saw no key (l = 0) gives O = 0, lse = -inf.
//
// Backward (Algorithm 2, recomputing P from lse): one work unit is a (batch, key/value
// head): it owns dK and dV of that head and dQ of the query heads that share it, so no
// two threads write one element, no atomics are needed and the sums are formed in a
// fixed order (the same bits on any thread count). For each key/value block: K and V
// packed, dK and dV accumulated in the workspace; for each query head of the group and
// each query tile that sees the block: S and P from lse, dP = dO V^T, dS = P (dP - D)
// with D = rowsum(dO o O), dV += P^T dO, dK += dS^T Q, dQ += scale dS K (read-modify-write
// into dQ, zeroed when the unit starts). Five micro-kernel GEMMs per tile pair. P in base 2
// as in the forward: 2^(log2 e (S - lse)).
//
// Memory: the workspace (attention_workspace_bytes) holds per thread the packed tiles
// and the score tile: it depends on the head dim and the thread count, never on the
// sequence lengths. Nothing else is allocated.
#pragma once

#include "tilegrad/cpu/omp.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <numbers>
#include <numeric>

#include "tilegrad/cpu/gemm/gemm_impl.hpp"
#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/cpu/vmath/vec_scalar.hpp"
#include "tilegrad/cpu/vmath/vmath.hpp"
#include "tilegrad/kernels/attention.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::cpu {

// A 64-byte aligned block of `bytes` (a multiple of 64) from std::aligned_alloc, or a
// tg::Error naming the attention's workspace. Defined once, in the portable unit
// (attention.cpp): its error path formats a message, code that no ISA unit may
// instantiate with its own flags (tests/isa_units_check.py).
float* attention_workspace(std::size_t bytes);

namespace {  // internal linkage: one copy per path's unit (docs/design.md)
namespace attn_impl {

inline constexpr float kInf = std::numeric_limits<float>::infinity();
inline constexpr double kLog2e = std::numbers::log2e;
inline constexpr float kLn2 = std::numbers::ln2_v<float>;

inline index_t round_up(index_t x, index_t m) { return (x + m - 1) / m * m; }

// Tile sizes, from the micro-kernel's shape (mr x nr), the head dim D and the caches
// (cpu::cache_sizes()), counted in floats:
//   br  query rows per forward score tile: 8 row panels of mr, so that each K
//       micro-panel (D x nr) the QK^T product brings from L2 serves 8 of them;
//   bc  keys per block: the br x bc score tile and the K micro-panel (D x nr) that the
//       QK^T product reuses across the tile's row panels share L1, one way left for the
//       rest (ways counted as in the GEMM's gemm_impl::blocking_for); a panel larger
//       than half of L1 is streamed from L2 whatever the tile and is not counted. Where
//       that leaves the tile under two micro-panels' width (a 16 KiB panel, 6x64 at head
//       dim 64, on a 32 KiB L1: one 64-key panel), the per-block costs (each row's max
//       and sum, O's rescale, the C update of the PV product) would be spread over too
//       few keys: the panel streams from L2, as the GEMM's B micro-panel does when its L1
//       model falls under its floor, and the block is sized for L2 instead, the K and V
//       blocks (2 bc D) in an eighth of it. A multiple of nr and of 16 (the widest lane
//       count), in [lcm(nr, 16), 512]. With head dim 64: 128 on a 48 KiB 12-way L1 with
//       the 6x64 micro-kernel and on a 32 KiB 8-way one with the 6x16, where it was tuned
//       by hand first; 256 with the 6x64 on the 32 KiB L1 and 1 MiB L2 of Zen 4 (64 by
//       the L1 model, 4-7% slower forward there);
//   bro the most query rows of a forward work unit: up to 32 score tiles, each K and V
//       block packed once for them (the packing was 8.5% of the forward at 4 tiles, 4%
//       at 16); fewer where Q packed, the output accumulator and the two packed blocks
//       (2 bro D + 2 bc D) would pass half of L2. A call splits the query rows into
//       equal units of at most bro rows, smaller where that leaves the threads too few
//       units (unit_rows);
//   brb query rows per backward tile, the k depth of its dK and dV products: 2 br, fewer
//       where P, dS, and Q and dO packed twice (2 brb bc + 4 brb D) would pass half of L2.
struct Tiles {
  index_t br, bc, bro, brb;
};
inline Tiles tiles_for(const CacheSizes& c, int mr, int nr, index_t D) {
  Tiles t{};
  t.br = 8 * index_t(mr);
  const index_t l1 = index_t(c.l1 / sizeof(float)), l2 = index_t(c.l2 / sizeof(float));
  const int ways = std::max(c.l1_ways, 2);
  const index_t panel = D * index_t(nr);  // a K micro-panel larger than half of L1 streams from L2 anyway
  const index_t usable = l1 * (ways - 1) / ways - (panel <= l1 / 2 ? panel : 0);
  const index_t step = std::lcm(index_t(nr), index_t(16));
  const index_t cap = std::max<index_t>(512 / step * step, step);
  const index_t fit = std::max<index_t>(usable, 0) / t.br / step * step;
  t.bc = fit >= 2 * step ? std::min(fit, cap) : std::clamp<index_t>(l2 / 8 / (2 * D) / step * step, step, cap);
  t.bro = 32 * t.br;
  while (t.bro > t.br && 2 * t.bro * D + 2 * t.bc * D > l2 / 2) t.bro -= t.br;
  t.brb = 2 * t.br;
  while (t.brb > index_t(mr) && 2 * t.brb * t.bc + 4 * t.brb * D > l2 / 2) t.brb -= index_t(mr);
  return t;
}

// The per-thread workspace, in floats, laid out by Layout (forward or backward).
struct Layout {
  index_t total = 0;
  index_t take(index_t n) {
    const index_t at = total;
    total += round_up(n + 16, 16);  // slack: the packers may write 8 floats past the end
    return at;
  }
};

struct FwdLayout : Layout {
  Tiles t;
  index_t qa, kb, vb, s, pa, o, m, l, mn, rs, g, g2;
  FwdLayout(index_t D, int mr, int nr, const Tiles& tiles) : t(tiles) {
    const index_t kBr = t.br, kBrO = t.bro, kBc = t.bc;
    qa = take(round_up(kBrO, mr) * D);  // the unit's Q packed as A
    kb = take(D * round_up(kBc, nr));   // K block packed as B (K^T)
    vb = take(kBc * round_up(D, nr));   // V block packed as B
    s = take(kBr * kBc);                // scores, then probabilities, of one sub-tile
    pa = take(mr * kBc);                // the last, partial row panel of P packed as A
    o = take(kBrO * D);                 // the output accumulator
    m = take(kBrO);
    l = take(kBrO);
    mn = take(kBr);                     // a sub-tile's new row maxima
    rs = take(kBr);                     // and rescale factors
    g = take(std::max(kBrO, kBc) * D);  // gathered tiles, for views whose head dim is not contiguous
    g2 = take(kBc * D);
  }
};

struct BwdLayout : Layout {
  Tiles t;
  index_t qa, oa, qb, ob, kb, vb, kn, p, ds, at, sa, dk, dv, dq, di, g, g2;
  BwdLayout(index_t D, int mr, int nr, const Tiles& tiles) : t(tiles) {
    const index_t kBrB = t.brb, kBc = t.bc;
    qa = take(round_up(kBrB, mr) * D);      // Q tile as A (S = Q K^T): gathered Q, or the tail of Q read in place
    oa = take(round_up(kBrB, mr) * D);      // dO tile as A (dP = dO V^T), likewise
    qb = take(kBrB * round_up(D, nr));      // Q tile as B (dK += dS^T Q)
    ob = take(kBrB * round_up(D, nr));      // dO tile as B (dV += P^T dO)
    kb = take(D * round_up(kBc, nr));      // K^T as B
    vb = take(D * round_up(kBc, nr));      // V^T as B
    kn = take(kBc * round_up(D, nr));      // K as B (dQ += dS K)
    p = take(kBrB * kBc);                   // P
    ds = take(kBrB * kBc);                  // dP, then dS
    at = take(mr * kBrB);                   // the last panel of P^T or dS^T (read in place) packed as A
    sa = take(mr * kBc);                    // the last panel of dS (read in place) packed as A
    dk = take(kBc * D);
    dv = take(kBc * D);
    dq = take(kBrB * D);  // a dQ tile, when dQ's head dim is not contiguous
    di = take(kBrB);
    g = take(std::max(kBc, kBrB) * D);   // gathered tiles, when a view's head dim is not contiguous
    g2 = take(std::max(kBc, kBrB) * D);
  }
};

// Rows [r0, r0 + n) of the (b, h) slice of a view as (pointer, row stride) with a unit
// column stride: the view itself when its head dim is contiguous, else a copy in buf.
template <class T>
std::pair<const float*, index_t> rows_of(const View4<T>& v, index_t b, index_t h, index_t r0, index_t n, index_t D,
                                         float* buf) {
  const float* base = &v.at(b, h, r0, 0);
  if (v.sd == 1) return {base, v.ss};
  for (index_t i = 0; i < n; ++i)
    for (index_t c = 0; c < D; ++c) buf[i * D + c] = base[i * v.ss + c * v.sd];
  return {buf, D};
}

// C (m x n, ldc) [+]= alpha A B over whole micro-tiles, k from 0 to kc: A packed
// (mr-row panels of depth kc), B packed (nr-column panels of depth bk >= kc: a prefix of
// each panel is used when kc < bk).
template <class Arch>
void tile_gemm(const Arch& arch, index_t m, index_t n, index_t kc, const float* ap, const float* bp, index_t bk,
               float* c, index_t ldc, float alpha, float beta) {
  const gemm_impl::TileEpilogue<float> e{alpha, beta, nullptr, {}};
  const index_t mr = arch.mr, nr = arch.nr;
  for (index_t j = 0; j < n; j += nr)
    for (index_t i = 0; i < m; i += mr)
      arch.kernel(kc, ap + i * kc, 1, mr, bp + j * bk, c + i * ldc + j, ldc, int(std::min(mr, m - i)),
                  int(std::min(nr, n - j)), e);
}

// The same with op(A) (m x kc) read in place from a row-major A (lda, unit column
// stride) for its whole mr-row panels: ta = N takes A's rows (k stride 1), ta = T its
// columns (A is kc x m; k stride lda), so no (transposing) pack; the last, partial panel
// is packed into `tail` (mr x kc floats).
template <class Arch>
void tile_gemm_inplace(const Arch& arch, Trans ta, index_t m, index_t n, index_t kc, const float* a, index_t lda,
                       const float* bp, index_t bk, float* c, index_t ldc, float alpha, float beta, float* tail) {
  const gemm_impl::TileEpilogue<float> e{alpha, beta, nullptr, {}};
  const index_t mr = arch.mr, nr = arch.nr, full = m / mr * mr;
  const index_t rs = ta == Trans::N ? lda : 1, ks = ta == Trans::N ? 1 : lda;
  if (full < m) arch.pack_a(ta, a + full * rs, lda, m - full, kc, tail);
  for (index_t j = 0; j < n; j += nr) {
    const int nj = int(std::min(nr, n - j));
    for (index_t i = 0; i < full; i += mr) arch.kernel(kc, a + i * rs, rs, ks, bp + j * bk, c + i * ldc + j, ldc, int(mr), nj, e);
    if (full < m) arch.kernel(kc, tail, 1, mr, bp + j * bk, c + full * ldc + j, ldc, int(m - full), nj, e);
  }
}

// Adds the mask, in base 2 (times log2 e), and the causal -inf to the scores of rows
// [i0, i0 + br) x keys [j0, j0 + bc) (s: br rows of stride lds); off = Sk - Sq
// (bottom-right causal alignment).
inline void mask_scores(const View4<const float>& mask, bool causal, index_t b, index_t h, index_t i0, index_t br,
                        index_t j0, index_t bc, index_t off, float* s, index_t lds) {
  const float log2e = float(kLog2e);
  if (mask.data)
    for (index_t i = 0; i < br; ++i) {
      const float* mrow = &mask.at(b, h, i0 + i, j0);
      float* si = s + i * lds;
      if (mask.sd == 1)
        for (index_t j = 0; j < bc; ++j) si[j] += mrow[j] * log2e;
      else
        for (index_t j = 0; j < bc; ++j) si[j] += mrow[j * mask.sd] * log2e;
    }
  if (causal && j0 + bc - 1 > i0 + off)  // the block straddles the diagonal
    for (index_t i = 0; i < br; ++i) {
      const index_t first_hidden = std::max<index_t>(i0 + i + off + 1 - j0, 0);
      float* si = s + i * lds;
      for (index_t j = first_hidden; j < bc; ++j) si[j] = -kInf;
    }
}

template <class V>
float row_max(const float* x, index_t n) {
  constexpr int L = V::kLanes;
  V m(-kInf);
  index_t j = 0;
  for (; j + L <= n; j += L) m = max(m, V::load(x + j));
  float r = reduce_max(m);  // by ADL: the lane type's namespace
  for (; j < n; ++j) r = std::max(r, x[j]);
  return r;
}

// x[j] = 2^(x[j] - m) for j < n, returns their sum (m finite).
template <class V>
float exp2_row(float* x, index_t n, float m) {
  constexpr int L = V::kLanes;
  const V mv(m);
  V sum(0.0f);
  index_t j = 0;
  for (; j + L <= n; j += L) {
    const V p = vmath::exp2_nonpositive(V::load(x + j) - mv);
    p.store(x + j);
    sum = sum + p;
  }
  float r = reduce_add(sum);
  for (; j < n; ++j) {
    const float p = vmath::exp2_nonpositive(simd::F1(x[j] - m)).v;
    x[j] = p;
    r += p;
  }
  return r;
}

// x . y over n floats: float lanes in two accumulators (products rounded as the GEMM's
// are), the lanes and the tail summed in double. The backward's D_i, computed for every
// key block; a double loop there was 9% of the backward.
template <class V>
float row_dot(const float* x, const float* y, index_t n) {
  constexpr int L = V::kLanes;
  V a0(0.0f), a1(0.0f);
  index_t j = 0;
  for (; j + 2 * L <= n; j += 2 * L) {
    a0 = fma(V::load(x + j), V::load(y + j), a0);
    a1 = fma(V::load(x + j + L), V::load(y + j + L), a1);
  }
  for (; j + L <= n; j += L) a0 = fma(V::load(x + j), V::load(y + j), a0);
  double s = double(reduce_add(a0 + a1));
  for (; j < n; ++j) s += double(x[j]) * double(y[j]);
  return float(s);
}

// f[i] = 2^(m_old[i] - m_new[i]) for i < n (m_new >= m_old): 0 where m_old = -inf,
// 1 where m_new = -inf (the row has seen nothing yet; its factor is not used).
template <class V>
void rescale_factors(const float* m_old, const float* m_new, float* f, index_t n) {
  constexpr int L = V::kLanes;
  index_t i = 0;
  for (; i + L <= n; i += L) {
    const V mo = V::load(m_old + i), mv = V::load(m_new + i);
    vmath::exp2_nonpositive(select(mv == V(-kInf), V(0.0f), mo - mv)).store(f + i);
  }
  for (; i < n; ++i) f[i] = m_new[i] == -kInf ? 1.0f : vmath::exp2_nonpositive(simd::F1(m_old[i] - m_new[i])).v;
}

template <class V>
void scale_row(float* x, index_t n, float f) {
  constexpr int L = V::kLanes;
  index_t j = 0;
  for (; j + L <= n; j += L) (V::load(x + j) * V(f)).store(x + j);
  for (; j < n; ++j) x[j] *= f;
}

// One query tile of one (b, h): rows [i0, i0 + rows) (rows <= bro; fewer at the end of
// the sequence), in sub-tiles of kBr rows that share each packed key/value block (the
// packing is paid once per unit, the score tile stays kBr x kBc).
template <class V, class Arch>
void forward_tile(const Arch& arch, const AttentionForwardArgs<float>& a, index_t b, index_t h, index_t i0,
                  index_t rows, float* ws, const FwdLayout& L) {
  const AttentionDims& d = a.dims;
  const index_t kBr = L.t.br, kBc = L.t.bc;
  const index_t D = d.head_dim, br = std::min(rows, d.seq_q - i0), off = d.seq_k - d.seq_q;
  const index_t kh = h / (d.heads / d.kv_heads);
  float *s = ws + L.s, *o = ws + L.o, *m = ws + L.m, *l = ws + L.l;
  const float scale2 = float(a.scale * kLog2e);  // scores in base 2
  auto [q, ldq] = rows_of(a.q, b, h, i0, br, D, ws + L.g);
  arch.pack_a(Trans::N, q, ldq, br, D, ws + L.qa);  // kBr is a multiple of mr: sub-tile t starts at t kBr D
  std::fill(o, o + br * D, 0.0f);
  std::fill(m, m + br, -kInf);
  std::fill(l, l + br, 0.0f);
  // Keys past the last visible one of the tile's last row are never visited.
  const index_t end = a.causal ? std::clamp<index_t>(i0 + br - 1 + off + 1, 0, d.seq_k) : d.seq_k;
  for (index_t j0 = 0; j0 < end; j0 += kBc) {
    const index_t bc = std::min(kBc, end - j0);
    auto [k, ldk] = rows_of(a.k, b, kh, j0, bc, D, ws + L.g);
    arch.pack_b(Trans::T, k, ldk, D, bc, ws + L.kb);
    auto [v, ldv] = rows_of(a.v, b, kh, j0, bc, D, ws + L.g2);
    arch.pack_b(Trans::N, v, ldv, bc, D, ws + L.vb);
    for (index_t t0 = 0; t0 < br; t0 += kBr) {
      const index_t tr = std::min(kBr, br - t0);
      if (a.causal && i0 + t0 + tr - 1 + off < j0) continue;  // the sub-tile sees none of the block
      // Causal: only the block's columns that the sub-tile's last row sees are formed.
      const index_t bct = a.causal ? std::min(bc, i0 + t0 + tr + off - j0) : bc;
      tile_gemm(arch, tr, bct, D, ws + L.qa + t0 * D, ws + L.kb, D, s, kBc, scale2, 0.0f);
      mask_scores(a.mask, a.causal, b, h, i0 + t0, tr, j0, bct, off, s, kBc);
      // The online softmax in three passes over the sub-tile's rows, each row
      // independent of the others within a pass (no row waits on the previous one's
      // reductions): the new maxima, the rescale factors exp(m_old - m_new) as vectors
      // over rows, then the exponentials, sums and rescaled outputs.
      float* mn = ws + L.mn;
      float* rs = ws + L.rs;
      for (index_t i = 0; i < tr; ++i) mn[i] = std::max(m[t0 + i], row_max<V>(s + i * kBc, bct));
      rescale_factors<V>(m + t0, mn, rs, tr);
      for (index_t i = 0; i < tr; ++i) {
        float* si = s + i * kBc;
        const index_t r = t0 + i;
        if (mn[i] == -kInf) {  // nothing visible yet: P = 0
          // ... unless a score is NaN, which the maximum passes over: then the row is
          // NaN (l NaN marks it; the last loop writes it), not a masked row of zeros.
          if (std::any_of(si, si + bct, [](float x) { return x != x; }))
            l[r] = m[r] = std::numeric_limits<float>::quiet_NaN();
          std::fill(si, si + bct, 0.0f);
          continue;
        }
        const float sum = exp2_row<V>(si, bct, mn[i]);
        if (rs[i] != 1.0f) scale_row<V>(o + r * D, D, rs[i]);
        l[r] = l[r] * rs[i] + sum;
        m[r] = mn[i];
      }
      tile_gemm_inplace(arch, Trans::N, tr, D, bct, s, kBc, ws + L.vb, bc, o + t0 * D, D, 1.0f, 1.0f, ws + L.pa);
    }
  }
  // O / l, by vectors where the output's head dim is contiguous, and lse = m ln 2 + log l
  // (m in base 2) in lanes, a vector of rows a log (the last one partial).
  // Scalar, with a std::log a row, this loop took ~3% of a short head's forward
  // (16x4x64x64x16, cpu/NOTES.md).
  constexpr int Ln = V::kLanes;
  for (index_t i = 0; i < br; ++i) {
    const float inv = l[i] > 0 ? 1.0f / l[i] : l[i] != l[i] ? l[i] : 0.0f;  // NaN row: NaN out
    float* out = &a.o.at(b, h, i0 + i, 0);
    const float* oi = o + i * D;
    // A fully masked row is 0 by the contract, written as such: its accumulator holds
    // 0 * v, which is NaN where v is infinite.
    const bool masked = l[i] == 0;
    if (a.o.sd == 1) {
      const V f(inv), zero(0.0f);
      index_t c = 0;
      for (; c + Ln <= D; c += Ln) (masked ? zero : V::load(oi + c) * f).store(out + c);
      if (c < D) store_partial(out + c, masked ? zero : V::load_partial(oi + c, int(D - c)) * f, int(D - c));
    } else {
      for (index_t c = 0; c < D; ++c) out[c * a.o.sd] = masked ? 0.0f : oi[c] * inv;
    }
  }
  if (a.lse) {
    float* lse = a.lse + (b * d.heads + h) * d.seq_q + i0;
    auto lse_of = [](V lv, V mv) {
      return select(lv > V(0.0f), fma(mv, V(kLn2), vmath::log(lv)), select(is_nan(lv), lv, V(-kInf)));
    };
    index_t i = 0;
    for (; i + Ln <= br; i += Ln) lse_of(V::load(l + i), V::load(m + i)).store(lse + i);
    if (i < br) {
      const int r = int(br - i);
      store_partial(lse + i, lse_of(V::load_partial(l + i, r), V::load_partial(m + i, r)), r);
    }
  }
}

// A 64-byte aligned block of floats, freed on scope exit.
struct Workspace {
  std::unique_ptr<float, decltype(&std::free)> p{nullptr, &std::free};
  explicit Workspace(index_t floats) {
    const std::size_t bytes = (std::size_t(std::max<index_t>(floats, 16)) * sizeof(float) + 63) / 64 * 64;
    p.reset(attention_workspace(bytes));
  }
  float* get() const { return p.get(); }
};

inline int threads_for(index_t units) {
  if (omp_in_parallel() || units <= 1) return 1;
  return int(std::min<index_t>(omp_get_max_threads(), units));
}

// Query rows per forward work unit for `slices` (batch, head) pairs of sq rows on
// `threads` threads: sq split into equal parts (multiples of t.br) of at most t.bro
// rows, more and smaller parts while several threads would get fewer than 4 units each
// (the dynamic schedule evens out causal units, whose costs differ, only with several a
// thread).
inline index_t unit_rows(const Tiles& t, index_t sq, index_t slices, int threads) {
  if (sq <= 0) return t.br;
  for (index_t parts = (sq + t.bro - 1) / t.bro;; ++parts) {
    const index_t rows = round_up((sq + parts - 1) / parts, t.br);
    if (threads <= 1 || rows == t.br || slices * ((sq + rows - 1) / rows) >= 4 * index_t(threads)) return rows;
  }
}

template <class V, class Arch>
void forward(const Arch& arch, const AttentionForwardArgs<float>& a) {
  const AttentionDims& d = a.dims;
  const FwdLayout L(d.head_dim, arch.mr, arch.nr, tiles_for(cache_sizes(), arch.mr, arch.nr, d.head_dim));
  const index_t slices = d.batch * d.heads;
  const index_t kBrO = unit_rows(L.t, d.seq_q, slices, omp_in_parallel() ? 1 : omp_get_max_threads());
  const index_t tiles = (d.seq_q + kBrO - 1) / kBrO, units = slices * tiles;
  if (units == 0 || d.head_dim == 0) return;
  const int threads = threads_for(units);
  const Workspace ws(L.total * threads);
  // Dynamic: causal tiles near the top cost a fraction of those at the bottom.
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
  for (index_t u = 0; u < units; ++u) {
    // Last tiles first: under a causal mask they see the most keys, and taking the
    // longest work first leaves the short tiles to even out the threads at the end.
    const index_t t = tiles - 1 - u / slices, bh = u % slices;
    forward_tile<V>(arch, a, bh / d.heads, bh % d.heads, t * kBrO, kBrO, ws.get() + L.total * omp_get_thread_num(), L);
  }
}

// ---- backward ----

// One (b, kv head): dK, dV of that head, dQ of its query heads.
template <class V, class Arch>
void backward_unit(const Arch& arch, const AttentionBackwardArgs<float>& a, index_t b, index_t kh, float* ws,
                   const BwdLayout& L) {
  const AttentionDims& d = a.dims;
  const index_t kBrB = L.t.brb, kBc = L.t.bc, nr = arch.nr;
  const index_t D = d.head_dim, off = d.seq_k - d.seq_q, group = d.heads / d.kv_heads;
  // dQ rows of the group start at zero: they are accumulated block by block.
  for (index_t h = kh * group; h < (kh + 1) * group; ++h)
    for (index_t i = 0; i < d.seq_q; ++i)
      for (index_t c = 0; c < D; ++c) a.dq.at(b, h, i, c) = 0.0f;
  float *p = ws + L.p, *ds = ws + L.ds, *dk = ws + L.dk, *dv = ws + L.dv, *di = ws + L.di;
  const float scale2 = float(a.scale * kLog2e);  // scores in base 2, as the forward's
  for (index_t j0 = 0; j0 < d.seq_k; j0 += kBc) {
    const index_t bc = std::min(kBc, d.seq_k - j0);
    {
      auto [k, ldk] = rows_of(a.k, b, kh, j0, bc, D, ws + L.g);
      arch.pack_b(Trans::T, k, ldk, D, bc, ws + L.kb);
      arch.pack_b(Trans::N, k, ldk, bc, D, ws + L.kn);
      auto [v, ldv] = rows_of(a.v, b, kh, j0, bc, D, ws + L.g);
      arch.pack_b(Trans::T, v, ldv, D, bc, ws + L.vb);
    }
    std::fill(dk, dk + bc * D, 0.0f);
    std::fill(dv, dv + bc * D, 0.0f);
    // Causal: query row i sees key j0 iff i + off >= j0.
    const index_t first_row = a.causal ? std::clamp<index_t>(j0 - off, 0, d.seq_q) : 0;
    for (index_t h = kh * group; h < (kh + 1) * group; ++h) {
      const float* lse = a.lse + (b * d.heads + h) * d.seq_q;
      for (index_t i0 = first_row / kBrB * kBrB; i0 < d.seq_q; i0 += kBrB) {
        const index_t br = std::min(kBrB, d.seq_q - i0);
        // Q and dO with a contiguous head dim are read in place as the A of S and dP (the
        // micro-kernel takes row-major rows), and as the B of dK and dV where a row is
        // exactly one packed panel (D = nr) aligned as the packing buffers are (the AVX2
        // kernel loads B with aligned moves); otherwise packed (gathered ones always:
        // they share one gather buffer).
        auto as_panel = [&](const float* x, index_t ld) {
          return D == nr && ld == D && reinterpret_cast<std::uintptr_t>(x) % 64 == 0;
        };
        auto [q, ldq] = rows_of(a.q, b, h, i0, br, D, ws + L.g);
        const bool q_rows = a.q.sd == 1, o_rows = a.d_o.sd == 1;
        if (!q_rows) arch.pack_a(Trans::N, q, ldq, br, D, ws + L.qa);
        const float* qb = q_rows && as_panel(q, ldq) ? q : ws + L.qb;
        if (qb != q) arch.pack_b(Trans::N, q, ldq, br, D, ws + L.qb);
        auto [g, ldg] = rows_of(a.d_o, b, h, i0, br, D, ws + L.g);
        if (!o_rows) arch.pack_a(Trans::N, g, ldg, br, D, ws + L.oa);
        const float* ob = o_rows && as_panel(g, ldg) ? g : ws + L.ob;
        if (ob != g) arch.pack_b(Trans::N, g, ldg, br, D, ws + L.ob);
        auto [o, ldo] = rows_of(a.o, b, h, i0, br, D, ws + L.g2);
        for (index_t i = 0; i < br; ++i) di[i] = row_dot<V>(g + i * ldg, o + i * ldo, D);  // D_i = dO_i . O_i
        // Causal: only the block's columns that the tile's last row sees take part.
        const index_t bct = a.causal ? std::min(bc, i0 + br + off - j0) : bc;
        // P = 2^(log2 e (scale Q K^T + mask - lse)), 0 where masked or the row sees nothing.
        if (q_rows)  // the tail buffer: qa, unused when Q is read in place
          tile_gemm_inplace(arch, Trans::N, br, bct, D, q, ldq, ws + L.kb, D, p, kBc, scale2, 0.0f, ws + L.qa);
        else
          tile_gemm(arch, br, bct, D, ws + L.qa, ws + L.kb, D, p, kBc, scale2, 0.0f);
        mask_scores(a.mask, a.causal, b, h, i0, br, j0, bct, off, p, kBc);
        for (index_t i = 0; i < br; ++i) {
          float* pi = p + i * kBc;
          const float li = lse[i0 + i];
          if (li == -kInf) {
            std::fill(pi, pi + bct, 0.0f);
            continue;
          }
          exp2_row<V>(pi, bct, float(double(li) * kLog2e));
        }
        // dS = P (dO V^T - D)
        if (o_rows)
          tile_gemm_inplace(arch, Trans::N, br, bct, D, g, ldg, ws + L.vb, D, ds, kBc, 1.0f, 0.0f, ws + L.oa);
        else
          tile_gemm(arch, br, bct, D, ws + L.oa, ws + L.vb, D, ds, kBc, 1.0f, 0.0f);
        for (index_t i = 0; i < br; ++i) {
          constexpr int Ln = V::kLanes;
          float *pi = p + i * kBc, *si = ds + i * kBc;
          const V dv_i(di[i]);
          index_t j = 0;
          for (; j + Ln <= bct; j += Ln) (V::load(pi + j) * (V::load(si + j) - dv_i)).store(si + j);
          for (; j < bct; ++j) si[j] = pi[j] * (si[j] - di[i]);
        }
        // dV += P^T dO, dK += dS^T Q (scale applied when dK is written)
        // (P^T and dS^T read in place: the micro-kernel's rows are P's columns)
        tile_gemm_inplace(arch, Trans::T, bct, D, br, p, kBc, ob, br, dv, D, 1.0f, 1.0f, ws + L.at);
        tile_gemm_inplace(arch, Trans::T, bct, D, br, ds, kBc, qb, br, dk, D, 1.0f, 1.0f, ws + L.at);
        // dQ += scale dS K
        if (a.dq.sd == 1) {
          tile_gemm_inplace(arch, Trans::N, br, D, bct, ds, kBc, ws + L.kn, bc, &a.dq.at(b, h, i0, 0), a.dq.ss,
                            float(a.scale), 1.0f, ws + L.sa);
        } else {
          float* dq = ws + L.dq;
          for (index_t i = 0; i < br; ++i)
            for (index_t c = 0; c < D; ++c) dq[i * D + c] = a.dq.at(b, h, i0 + i, c);
          tile_gemm_inplace(arch, Trans::N, br, D, bct, ds, kBc, ws + L.kn, bc, dq, D, float(a.scale), 1.0f, ws + L.sa);
          for (index_t i = 0; i < br; ++i)
            for (index_t c = 0; c < D; ++c) a.dq.at(b, h, i0 + i, c) = dq[i * D + c];
        }
      }
    }
    for (index_t j = 0; j < bc; ++j)
      for (index_t c = 0; c < D; ++c) {
        a.dk.at(b, kh, j0 + j, c) = float(a.scale) * dk[j * D + c];
        a.dv.at(b, kh, j0 + j, c) = dv[j * D + c];
      }
  }
}

template <class V, class Arch>
void backward(const Arch& arch, const AttentionBackwardArgs<float>& a) {
  const AttentionDims& d = a.dims;
  const index_t units = d.batch * d.kv_heads;
  if (units == 0 || d.head_dim == 0) return;
  const BwdLayout L(d.head_dim, arch.mr, arch.nr, tiles_for(cache_sizes(), arch.mr, arch.nr, d.head_dim));
  const int threads = threads_for(units);
  const Workspace ws(L.total * threads);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
  for (index_t u = 0; u < units; ++u)
    backward_unit<V>(arch, a, u / d.kv_heads, u % d.kv_heads, ws.get() + L.total * omp_get_thread_num(), L);
}

// Bytes the calls above allocate for `threads` threads (forward and backward alike).
inline std::size_t workspace_bytes(index_t head_dim, int threads, int mr, int nr) {
  const Tiles t = tiles_for(cache_sizes(), mr, nr, head_dim);
  const index_t per = std::max(FwdLayout(head_dim, mr, nr, t).total, BwdLayout(head_dim, mr, nr, t).total);
  return std::size_t(per) * sizeof(float) * std::size_t(std::max(threads, 1));
}

}  // namespace attn_impl
}  // namespace
}  // namespace tg::cpu

// A path's entries of cpu/attention.hpp over the lane type V and the GEMM leaves `arch`
// (a gemm_impl::Arch<float>), defined by one line in namespace tg::cpu of each path's
// translation unit.
#define TG_ATTENTION_PATH(path, V, arch)                                                                  \
  void attention_forward_##path(const AttentionForwardArgs<float>& a) { attn_impl::forward<V>(arch, a); } \
  void attention_backward_##path(const AttentionBackwardArgs<float>& a) { attn_impl::backward<V>(arch, a); } \
  std::size_t attention_workspace_bytes_##path(index_t head_dim, int threads) {                           \
    return attn_impl::workspace_bytes(head_dim, threads, (arch).mr, (arch).nr);                           \
  }
