// What one call of each op costs: floating-point operations and bytes moved, from the
// op's contract alone (its sizes and flags), so that a profiler can turn a measured time
// into GFLOP/s, GB/s and a fraction of the machine's roofline without guessing.
//
// One function per op, `<op>_cost`, taking exactly the arguments of the op table's entry
// (kernels/ops.hpp), so the profiling table calls it with what it is about to pass on.
//
// The conventions, the ones roofline models use:
//   - flops: the multiply-adds of the products count 2 (GEMM 2 M N K, attention 4 per
//     (query, visible key, head dim) forward and 10 backward: S, dV, dP, dQ and dK); every
//     other op counts the arithmetic of its formula per element, nominally (an exp,
//     a division or a comparison counts 1), so that element-wise ops come out memory-bound
//     as they are.
//   - bytes: every operand read once and every result written once, at the element size,
//     whatever the strides (a broadcast operand counts its own elements, not the
//     output's); C of a GEMM is read too when beta != 0. What a kernel re-reads from its
//     caches is not counted: this is the floor's traffic, not a measurement.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>

#include "tilegrad/kernels/activation.hpp"
#include "tilegrad/kernels/attention.hpp"
#include "tilegrad/kernels/cross_entropy.hpp"
#include "tilegrad/kernels/elementwise.hpp"
#include "tilegrad/kernels/gemm.hpp"
#include "tilegrad/kernels/layer_norm.hpp"
#include "tilegrad/kernels/optimizer.hpp"
#include "tilegrad/kernels/random.hpp"
#include "tilegrad/kernels/reduce.hpp"
#include "tilegrad/kernels/softmax.hpp"

namespace tg {

struct OpCost {
  double flops = 0;
  double bytes = 0;
  // The sizes that set the cost, for a profile's rows: GEMM {M, N, K} with layout "nn",
  // "nt", "tn" or "tt"; row ops {rows, cols}; attention {batch x heads, Sq, Sk, head dim};
  // element-wise ops and optimizer steps {elements}.
  index_t dims[4] = {0, 0, 0, 0};
  int rank = 0;
  const char* layout = "";
};

namespace cost_detail {
inline double d(index_t v) { return double(v); }
// Query rows times the keys each sees, summed over one (batch, head): Sq Sk without a
// causal mask; with one (aligned bottom-right: row i sees keys j <= i + Sk - Sq, i.e.
// max(0, i + 1 + Sk - Sq) of them, never more than Sk) an arithmetic series from the
// first row that sees a key to the last, which sees Sk.
inline double visible_pairs(index_t sq, index_t sk, bool causal) {
  if (!causal) return d(sq) * d(sk);
  const index_t off = sk - sq;
  const index_t first = std::clamp<index_t>(-off, 0, sq);  // rows before it see none
  return d(sq - first) * (d(first + 1 + off) + d(sk)) / 2.0;
}
}  // namespace cost_detail

template <class T>
OpCost gemm_cost(Trans ta, Trans tb, index_t M, index_t N, index_t K, T, const T*, index_t, const T*, index_t, T beta,
                 T*, index_t, const GemmEpilogue<T>& ep) {
  using cost_detail::d;
  const double c_reads = beta != T(0) ? 2.0 : 1.0;
  static constexpr const char* kLayouts[4] = {"nn", "nt", "tn", "tt"};
  return {2.0 * d(M) * d(N) * d(K),
          double(sizeof(T)) * (d(M) * d(K) + d(K) * d(N) + c_reads * d(M) * d(N) + (ep.bias ? d(N) : 0.0)),
          {M, N, K, 0},
          3,
          kLayouts[(ta == Trans::T ? 2 : 0) + (tb == Trans::T ? 1 : 0)]};
}

template <class T>
OpCost act_forward_cost(Activation, index_t rows, index_t cols, const T*, index_t, const T* bias, T*, index_t) {
  using cost_detail::d;
  return {d(rows) * d(cols), double(sizeof(T)) * (2.0 * d(rows) * d(cols) + (bias ? d(cols) : 0.0)), {rows, cols, 0, 0}, 2};
}

template <class T>
OpCost act_backward_cost(Activation, index_t rows, index_t cols, const T*, index_t, const T* bias, const T*,
                         index_t, T*, index_t) {
  using cost_detail::d;
  return {2.0 * d(rows) * d(cols), double(sizeof(T)) * (3.0 * d(rows) * d(cols) + (bias ? d(cols) : 0.0)), {rows, cols, 0, 0}, 2};
}

// softmax and log_softmax: max, exp of the difference, sum, scale (4 a score);
// backward: the row dot product and dx = y (dy - dot) (3).
template <class T>
OpCost softmax_forward_cost(index_t rows, index_t cols, const T*, index_t, T*, index_t) {
  using cost_detail::d;
  return {4.0 * d(rows) * d(cols), double(sizeof(T)) * 2.0 * d(rows) * d(cols), {rows, cols, 0, 0}, 2};
}
template <class T>
OpCost softmax_backward_cost(index_t rows, index_t cols, const T*, index_t, const T*, index_t, T*, index_t) {
  using cost_detail::d;
  return {3.0 * d(rows) * d(cols), double(sizeof(T)) * 3.0 * d(rows) * d(cols), {rows, cols, 0, 0}, 2};
}

// layer norm: sum, deviation, square-add, then (x - mean) rstd gamma + beta (8 an
// element); backward: g = dy gamma, the two row sums, dx, and dgamma/dbeta (12).
template <class T>
OpCost layer_norm_forward_cost(index_t rows, index_t cols, const T*, index_t, const T* gamma, const T* beta, double,
                               T*, index_t, T* mean, T* rstd) {
  using cost_detail::d;
  const double per_col = (gamma ? 1.0 : 0.0) + (beta ? 1.0 : 0.0), per_row = (mean ? 1.0 : 0.0) + (rstd ? 1.0 : 0.0);
  return {8.0 * d(rows) * d(cols), double(sizeof(T)) * (2.0 * d(rows) * d(cols) + per_col * d(cols) + per_row * d(rows)), {rows, cols, 0, 0}, 2};
}
template <class T>
OpCost layer_norm_backward_cost(index_t rows, index_t cols, const T*, index_t, const T*, index_t, const T* gamma,
                                const T*, const T*, double, T*, index_t, T* dgamma, T* dbeta) {
  using cost_detail::d;
  const double per_col = (gamma ? 1.0 : 0.0) + (dgamma ? 1.0 : 0.0) + (dbeta ? 1.0 : 0.0);
  return {12.0 * d(rows) * d(cols), double(sizeof(T)) * (3.0 * d(rows) * d(cols) + per_col * d(cols) + 2.0 * d(rows)), {rows, cols, 0, 0}, 2};
}

namespace cost_detail {
// Attention over dims: per_dot FLOPs per (query, visible key, head-dim element), and
// q_tensors tensors of (B, H, Sq, D) and k_tensors of (B, Hkv, Sk, D) moved once each,
// plus the mask (an upper bound: every score) and the log-sum-exp row.
inline OpCost attention_cost(const AttentionDims& m, bool causal, double per_dot, double q_tensors,
                             double k_tensors, bool mask, bool lse, std::size_t elem) {
  const double heads = d(m.batch) * d(m.heads);
  const double elements = q_tensors * heads * d(m.seq_q) * d(m.head_dim) +
                          k_tensors * d(m.batch) * d(m.kv_heads) * d(m.seq_k) * d(m.head_dim) +
                          (mask ? heads * d(m.seq_q) * d(m.seq_k) : 0.0) + (lse ? heads * d(m.seq_q) : 0.0);
  return {per_dot * heads * visible_pairs(m.seq_q, m.seq_k, causal) * d(m.head_dim), double(elem) * elements,
          {m.batch * m.heads, m.seq_q, m.seq_k, m.head_dim}, 4};
}
}  // namespace cost_detail

// Forward: S = QK^T and O = PV (4 a dot element); Q read, O written, K and V read.
// The 16-bit GEMM (kernels/ops.hpp's HalfOps): A and B 2 bytes an element, C f32.
inline OpCost gemm16_cost(Trans ta, Trans tb, index_t M, index_t N, index_t K, float, const std::uint16_t*, index_t,
                          const std::uint16_t*, index_t, float beta, float*, index_t, const GemmEpilogue<float>& ep) {
  using cost_detail::d;
  const double c_reads = beta != 0.0f ? 2.0 : 1.0;
  static constexpr const char* kLayouts[4] = {"nn", "nt", "tn", "tt"};
  return {2.0 * d(M) * d(N) * d(K),
          2.0 * (d(M) * d(K) + d(K) * d(N)) + 4.0 * (c_reads * d(M) * d(N) + (ep.bias ? d(N) : 0.0)),
          {M, N, K, 0},
          3,
          kLayouts[(ta == Trans::T ? 2 : 0) + (tb == Trans::T ? 1 : 0)]};
}

template <class T>
OpCost attention_forward_cost(const AttentionForwardArgs<T>& a) {
  return cost_detail::attention_cost(a.dims, a.causal, 4.0, 2.0, 2.0, a.mask.data != nullptr, a.lse != nullptr,
                                     sizeof(T));
}
// Backward: S again, dV, dP, dQ and dK (10); Q, O, dO read and dQ written, K and V read
// and dK, dV written, the saved log-sum-exp read.
template <class T>
OpCost attention_backward_cost(const AttentionBackwardArgs<T>& a) {
  return cost_detail::attention_cost(a.dims, a.causal, 10.0, 4.0, 4.0, a.mask.data != nullptr, true, sizeof(T));
}

template <class T>
OpCost reduce_cost(Reduce, index_t outer, index_t n, index_t inner, const T*, index_t, index_t, index_t, T*, index_t,
                   index_t) {
  using cost_detail::d;
  const double in = d(outer) * d(n) * d(inner), out = d(outer) * d(inner);
  return {in, double(sizeof(T)) * (in + out), {outer, n, inner, 0}, 3};
}

template <class T>
OpCost unary_cost(Unary, double, double, const Shape& xs, const T*, const Shape& ys, T*) {
  using cost_detail::d;
  return {d(ys.numel()), double(sizeof(T)) * (d(xs.numel()) + d(ys.numel())), {ys.numel(), 0, 0, 0}, 1};
}
template <class T>
OpCost binary_cost(Binary, const Shape& as, const T*, const Shape& bs, const T*, const Shape& ys, T*) {
  using cost_detail::d;
  return {d(ys.numel()), double(sizeof(T)) * (d(as.numel()) + d(bs.numel()) + d(ys.numel())), {ys.numel(), 0, 0, 0}, 1};
}
template <class T>
OpCost where_cost(const Shape& cs, const T*, const Shape& as, const T*, const Shape& bs, const T*, const Shape& ys, T*) {
  using cost_detail::d;
  return {d(ys.numel()), double(sizeof(T)) * (d(cs.numel()) + d(as.numel()) + d(bs.numel()) + d(ys.numel())), {ys.numel(), 0, 0, 0}, 1};
}

template <class T>
OpCost random_cost(Random, index_t n, T*, double, double, std::uint64_t, std::uint64_t) {
  return {double(n), double(sizeof(T)) * double(n), {n, 0, 0, 0}, 1};
}
template <class T>
OpCost dropout_cost(index_t n, const T*, T*, double, std::uint64_t, std::uint64_t) {
  return {double(n), double(sizeof(T)) * 2.0 * double(n), {n, 0, 0, 0}, 1};
}

// Cross-entropy: the row's log-sum-exp and the target's term (4 a logit); backward:
// softmax minus the (smoothed) target, scaled (3). Targets are 8-byte indices.
template <class T>
OpCost cross_entropy_forward_cost(index_t rows, index_t classes, const T*, index_t, const index_t*, index_t, double,
                                  T*, T* lse) {
  using cost_detail::d;
  const double out = 1.0 + (lse ? d(rows) : 0.0);
  return {4.0 * d(rows) * d(classes), double(sizeof(T)) * (d(rows) * d(classes) + out) + 8.0 * d(rows), {rows, classes, 0, 0}, 2};
}
template <class T>
OpCost cross_entropy_backward_cost(index_t rows, index_t classes, const T*, index_t, const index_t*, index_t, double,
                                   const T*, const T*, T*, index_t) {
  using cost_detail::d;
  return {3.0 * d(rows) * d(classes), double(sizeof(T)) * (2.0 * d(rows) * d(classes) + d(rows) + 1.0) + 8.0 * d(rows), {rows, classes, 0, 0}, 2};
}

// Optimizers, per parameter element: SGD reads p and g and writes p (2 flops: the
// decay and the step), with momentum also m (read and write, 2 more); Adam reads p, g,
// m, v and writes p, m, v (12: the two moments, the bias corrections, the root, the
// division and the step).
template <class T>
OpCost sgd_step_cost(const SgdConfig& c, std::span<const ParamSlot<T>> slots) {
  OpCost cost;
  for (const ParamSlot<T>& s : slots) {
    const bool momentum = c.momentum != 0 && s.m;
    cost.flops += double(s.n) * (momentum ? 4.0 : 2.0);
    cost.bytes += double(sizeof(T)) * double(s.n) * (momentum ? 5.0 : 3.0);
    cost.dims[0] += s.n;
  }
  cost.rank = 1;
  return cost;
}
template <class T>
OpCost adam_step_cost(const AdamConfig&, std::span<const ParamSlot<T>> slots) {
  OpCost cost;
  for (const ParamSlot<T>& s : slots) {
    cost.flops += 12.0 * double(s.n);
    cost.bytes += 7.0 * double(sizeof(T)) * double(s.n);
    cost.dims[0] += s.n;
  }
  cost.rank = 1;
  return cost;
}

// The op table's log_softmax entries have softmax's signatures and costs.
template <class T>
OpCost log_softmax_forward_cost(index_t rows, index_t cols, const T* x, index_t ldx, T* y, index_t ldy) {
  return softmax_forward_cost<T>(rows, cols, x, ldx, y, ldy);
}
template <class T>
OpCost log_softmax_backward_cost(index_t rows, index_t cols, const T* y, index_t ldy, const T* dy, index_t lddy, T* dx,
                                 index_t lddx) {
  return softmax_backward_cost<T>(rows, cols, y, ldy, dy, lddy, dx, lddx);
}

}  // namespace tg
