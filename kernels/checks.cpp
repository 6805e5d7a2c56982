// The argument checks of the public API (the check_* functions of the contract
// headers). Each throws tg::Error naming the op, the argument, what was expected and
// what came. Overlap is judged on address ranges, so it is conservative: two strided
// views that interleave without sharing an element are rejected too.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include <vector>

#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/ops.hpp"
#include "tilegrad/kernels/elementwise.hpp"
#include "tilegrad/kernels/random.hpp"
#include "tilegrad/kernels/cross_entropy.hpp"
#include "tilegrad/kernels/optimizer.hpp"

namespace tg {

namespace {

struct Range {
  std::uintptr_t lo = 0, hi = 0;  // [lo, hi) in bytes; empty when lo == hi
  bool empty() const { return lo == hi; }
};

bool overlap(Range a, Range b) { return !a.empty() && !b.empty() && a.lo < b.hi && b.lo < a.hi; }

void check_size(const char* op, const char* arg, index_t v) {
  TG_CHECK(v >= 0, op, arg, "expected a size >= 0, got ", v);
}

// A (rows x cols) row-major view with row stride ld. Returns its address range.
Range check_view(const char* op, const char* ptr_arg, const char* ld_arg, index_t rows,
                 index_t cols, const void* p, index_t ld, std::size_t elem, bool strict_ld) {
  if (strict_ld || rows > 1)
    TG_CHECK(ld >= std::max<index_t>(cols, strict_ld ? 1 : 0), op, ld_arg, "expected ", ld_arg,
             " >= ", std::max<index_t>(cols, strict_ld ? 1 : 0), " (a row of ", cols,
             " elements), got ", ld);
  TG_CHECK(ld >= 0, op, ld_arg, "expected ", ld_arg, " >= 0, got ", ld);
  if (rows == 0 || cols == 0) return {};
  TG_CHECK(p != nullptr, op, ptr_arg, "expected a non-null pointer for a ", rows, "x", cols,
           " view");
  index_t extent = checked_add(checked_mul(rows - 1, ld, op, ld_arg), cols, op, ld_arg);
  index_t bytes = checked_mul(extent, index_t(elem), op, ld_arg);
  auto lo = reinterpret_cast<std::uintptr_t>(p);
  return {lo, lo + std::uintptr_t(bytes)};
}

Range check_vector(const char* op, const char* arg, index_t n, const void* p, std::size_t elem) {
  if (n == 0) return {};
  TG_CHECK(p != nullptr, op, arg, "expected a non-null pointer to ", n, " elements");
  auto lo = reinterpret_cast<std::uintptr_t>(p);
  return {lo, lo + std::uintptr_t(checked_mul(n, index_t(elem), op, arg))};
}

// An output may be the same view as an input (in place) but must not partly overlap it.
void check_in_place(const char* op, const char* out_arg, Range out, const void* out_p,
                    index_t out_ld, const char* in_arg, Range in, const void* in_p,
                    index_t in_ld) {
  if (out_p == in_p && out_ld == in_ld) return;
  TG_CHECK(!overlap(out, in), op, out_arg, "must not overlap ", in_arg,
           " (in place needs the same pointer and leading dimension)");
}

void check_disjoint(const char* op, const char* out_arg, Range out, const char* in_arg, Range in) {
  TG_CHECK(!overlap(out, in), op, out_arg, "must not overlap ", in_arg);
}

// A strided view of up to 4 dims: strides >= 0 and the extent in bytes fits.
Range check_strided(const char* op, const char* arg, const void* p, std::initializer_list<index_t> n,
                    std::initializer_list<index_t> s, std::size_t elem) {
  for (index_t st : s) TG_CHECK(st >= 0, op, arg, "expected strides >= 0, got ", st);
  for (index_t sz : n) if (sz == 0) return {};
  TG_CHECK(p != nullptr, op, arg, "expected a non-null pointer for a view of ", n.size(), " dims");
  index_t last = 0;
  for (auto ni = n.begin(), si = s.begin(); ni != n.end(); ++ni, ++si)
    last = checked_add(last, checked_mul(*ni - 1, *si, op, arg), op, arg);
  index_t bytes = checked_mul(checked_add(last, 1, op, arg), index_t(elem), op, arg);
  auto lo = reinterpret_cast<std::uintptr_t>(p);
  return {lo, lo + std::uintptr_t(bytes)};
}

template <class T>
Range check_view4(const char* op, const char* arg, const View4<T>& v, index_t n0, index_t n1,
                  index_t n2, index_t n3) {
  return check_strided(op, arg, v.data, {n0, n1, n2, n3}, {v.sb, v.sh, v.ss, v.sd},
                       sizeof(std::remove_const_t<T>));
}

void check_attention_dims(const char* op, const AttentionDims& d, double scale) {
  check_size(op, "batch", d.batch);
  check_size(op, "heads", d.heads);
  check_size(op, "seq_q", d.seq_q);
  check_size(op, "seq_k", d.seq_k);
  TG_CHECK(d.kv_heads >= 1 && d.heads % d.kv_heads == 0, op, "kv_heads",
           "expected kv_heads >= 1 dividing heads = ", d.heads, ", got ", d.kv_heads);
  TG_CHECK(d.head_dim >= 1, op, "head_dim", "expected head_dim >= 1, got ", d.head_dim);
  TG_CHECK(scale == scale, op, "scale", "expected a number, got NaN");
}

}  // namespace

namespace {

// The detailed checks of check_gemm: run only when the fast test below failed, to find
// which argument is wrong and say so.
[[gnu::cold, gnu::noinline]] void check_gemm_slow(const char* op, Trans ta, Trans tb, index_t M,
                                                  index_t N, index_t K, double alpha, const void* A,
                                                  index_t lda, const void* B, index_t ldb,
                                                  const void* C, index_t ldc, const void* bias,
                                                  std::size_t elem) {
  check_size(op, "M", M);
  check_size(op, "N", N);
  check_size(op, "K", K);
  // A and B are read only when the product is formed (BLAS: alpha == 0 leaves them alone).
  const bool reads_ab = alpha != 0 && M > 0 && N > 0 && K > 0;
  Range a = ta == Trans::N ? check_view(op, "A", "lda", reads_ab ? M : 0, K, A, lda, elem, true)
                           : check_view(op, "A", "lda", reads_ab ? K : 0, M, A, lda, elem, true);
  Range b = tb == Trans::N ? check_view(op, "B", "ldb", reads_ab ? K : 0, N, B, ldb, elem, true)
                           : check_view(op, "B", "ldb", reads_ab ? N : 0, K, B, ldb, elem, true);
  Range c = check_view(op, "C", "ldc", M, N, C, ldc, elem, true);
  Range bi = bias ? check_vector(op, "bias", M > 0 ? N : 0, bias, elem) : Range{};
  check_disjoint(op, "C", c, "A", a);
  check_disjoint(op, "C", c, "B", b);
  check_disjoint(op, "C", c, "bias", bi);
}

// [p, p + ((rows - 1) ld + cols) elem) for a non-empty view; false on overflow.
inline bool extent(const void* p, index_t rows, index_t cols, index_t ld, std::size_t elem, Range& r) {
  index_t e = 0, bytes = 0;
  if (__builtin_mul_overflow(rows - 1, ld, &e) || __builtin_add_overflow(e, cols, &e) ||
      __builtin_mul_overflow(e, index_t(elem), &bytes))
    return false;
  r.lo = reinterpret_cast<std::uintptr_t>(p);
  r.hi = r.lo + std::uintptr_t(bytes);
  return true;
}

}  // namespace

// The common case is answered by one pass of compares (tens of instructions: a 10x10x1
// GEMM takes tens of nanoseconds, and this runs before it); anything off goes to
// check_gemm_slow, which names the argument.
void check_gemm(const char* op, Trans ta, Trans tb, index_t M, index_t N, index_t K, double alpha,
                const void* A, index_t lda, const void* B, index_t ldb, const void* C,
                index_t ldc, const void* bias, std::size_t elem) {
  const index_t a_cols = ta == Trans::N ? K : M, b_cols = tb == Trans::N ? N : K;
  bool ok = M >= 0 && N >= 0 && K >= 0 && lda >= std::max<index_t>(a_cols, 1) &&
            ldb >= std::max<index_t>(b_cols, 1) && ldc >= std::max<index_t>(N, 1);
  if (ok && M > 0 && N > 0) {
    Range c, a, b, bi;
    ok = C != nullptr && extent(C, M, N, ldc, elem, c);
    if (ok && alpha != 0 && K > 0) {
      ok = A != nullptr && B != nullptr &&
           extent(A, ta == Trans::N ? M : K, a_cols, lda, elem, a) &&
           extent(B, tb == Trans::N ? K : N, b_cols, ldb, elem, b) && !overlap(c, a) && !overlap(c, b);
    }
    if (ok && bias) ok = extent(bias, 1, N, N, elem, bi) && !overlap(c, bi);
  }
  if (!ok) check_gemm_slow(op, ta, tb, M, N, K, alpha, A, lda, B, ldb, C, ldc, bias, elem);
}

void check_act_forward(const char* op, index_t rows, index_t cols, const void* x, index_t ldx,
                       const void* bias, const void* y, index_t ldy, std::size_t elem) {
  check_size(op, "rows", rows);
  check_size(op, "cols", cols);
  Range rx = check_view(op, "x", "ldx", rows, cols, x, ldx, elem, false);
  Range ry = check_view(op, "y", "ldy", rows, cols, y, ldy, elem, false);
  Range rb = bias ? check_vector(op, "bias", rows > 0 ? cols : 0, bias, elem) : Range{};
  check_in_place(op, "y", ry, y, ldy, "x", rx, x, ldx);
  check_disjoint(op, "y", ry, "bias", rb);
}

void check_act_backward(const char* op, index_t rows, index_t cols, const void* x, index_t ldx,
                        const void* bias, const void* dy, index_t lddy, const void* dx,
                        index_t lddx, std::size_t elem) {
  check_size(op, "rows", rows);
  check_size(op, "cols", cols);
  Range rx = check_view(op, "x", "ldx", rows, cols, x, ldx, elem, false);
  Range rdy = check_view(op, "dy", "lddy", rows, cols, dy, lddy, elem, false);
  Range rdx = check_view(op, "dx", "lddx", rows, cols, dx, lddx, elem, false);
  Range rb = bias ? check_vector(op, "bias", rows > 0 ? cols : 0, bias, elem) : Range{};
  check_in_place(op, "dx", rdx, dx, lddx, "dy", rdy, dy, lddy);
  check_disjoint(op, "dx", rdx, "x", rx);
  check_disjoint(op, "dx", rdx, "bias", rb);
}

void check_softmax_forward(const char* op, index_t rows, index_t cols, const void* x,
                           index_t ldx, const void* y, index_t ldy, std::size_t elem) {
  check_size(op, "rows", rows);
  check_size(op, "cols", cols);
  Range rx = check_view(op, "x", "ldx", rows, cols, x, ldx, elem, false);
  Range ry = check_view(op, "y", "ldy", rows, cols, y, ldy, elem, false);
  check_in_place(op, "y", ry, y, ldy, "x", rx, x, ldx);
}

void check_softmax_backward(const char* op, index_t rows, index_t cols, const void* y,
                            index_t ldy, const void* dy, index_t lddy, const void* dx,
                            index_t lddx, std::size_t elem) {
  check_size(op, "rows", rows);
  check_size(op, "cols", cols);
  Range ry = check_view(op, "y", "ldy", rows, cols, y, ldy, elem, false);
  Range rdy = check_view(op, "dy", "lddy", rows, cols, dy, lddy, elem, false);
  Range rdx = check_view(op, "dx", "lddx", rows, cols, dx, lddx, elem, false);
  check_in_place(op, "dx", rdx, dx, lddx, "dy", rdy, dy, lddy);
  check_disjoint(op, "dx", rdx, "y", ry);
}

void check_layer_norm_forward(const char* op, index_t rows, index_t cols, const void* x,
                              index_t ldx, const void* y, index_t ldy, double eps,
                              std::size_t elem) {
  check_size(op, "rows", rows);
  check_size(op, "cols", cols);
  TG_CHECK(rows == 0 || cols > 0, op, "cols", "expected cols > 0 (a row to normalize), got 0");
  TG_CHECK(eps > 0, op, "eps", "expected eps > 0, got ", eps);
  Range rx = check_view(op, "x", "ldx", rows, cols, x, ldx, elem, false);
  Range ry = check_view(op, "y", "ldy", rows, cols, y, ldy, elem, false);
  check_in_place(op, "y", ry, y, ldy, "x", rx, x, ldx);
}

void check_layer_norm_backward(const char* op, index_t rows, index_t cols, const void* x,
                               index_t ldx, const void* dy, index_t lddy, const void* mean,
                               const void* rstd, const void* dx, index_t lddx,
                               std::size_t elem) {
  check_size(op, "rows", rows);
  check_size(op, "cols", cols);
  TG_CHECK(rows == 0 || cols > 0, op, "cols", "expected cols > 0 (a row to normalize), got 0");
  Range rx = check_view(op, "x", "ldx", rows, cols, x, ldx, elem, false);
  Range rdy = check_view(op, "dy", "lddy", rows, cols, dy, lddy, elem, false);
  Range rdx = check_view(op, "dx", "lddx", rows, cols, dx, lddx, elem, false);
  check_vector(op, "mean", rows, mean, elem);
  check_vector(op, "rstd", rows, rstd, elem);
  check_in_place(op, "dx", rdx, dx, lddx, "dy", rdy, dy, lddy);
  check_disjoint(op, "dx", rdx, "x", rx);
}

void check_reduce(const char* op, index_t outer, index_t n, index_t inner, const void* x,
                  index_t xs_outer, index_t xs_n, index_t xs_inner, const void* y,
                  index_t ys_outer, index_t ys_inner, std::size_t elem) {
  check_size(op, "outer", outer);
  check_size(op, "n", n);
  check_size(op, "inner", inner);
  Range rx = check_strided(op, "x", x, {outer, n, inner}, {xs_outer, xs_n, xs_inner}, elem);
  Range ry = check_strided(op, "y", y, {outer, inner}, {ys_outer, ys_inner}, elem);
  check_disjoint(op, "y", ry, "x", rx);
}

template <class T>
void check_attention_forward(const char* op, const AttentionForwardArgs<T>& a) {
  const AttentionDims& d = a.dims;
  check_attention_dims(op, d, a.scale);
  const index_t nq = checked_mul(checked_mul(d.batch, d.heads, op, "lse"), d.seq_q, op, "lse");
  const Range in[4] = {
      check_view4(op, "q", a.q, d.batch, d.heads, d.seq_q, d.head_dim),
      check_view4(op, "k", a.k, d.batch, d.kv_heads, d.seq_k, d.head_dim),
      check_view4(op, "v", a.v, d.batch, d.kv_heads, d.seq_k, d.head_dim),
      a.mask.data ? check_view4(op, "mask", a.mask, d.batch, d.heads, d.seq_q, d.seq_k) : Range{},
  };
  const char* in_names[4] = {"q", "k", "v", "mask"};
  const Range o = check_view4(op, "o", a.o, d.batch, d.heads, d.seq_q, d.head_dim);
  const Range lse = a.lse ? check_vector(op, "lse", nq, a.lse, sizeof(T)) : Range{};
  for (int j = 0; j < 4; ++j) {
    check_disjoint(op, "o", o, in_names[j], in[j]);
    check_disjoint(op, "lse", lse, in_names[j], in[j]);
  }
  check_disjoint(op, "lse", lse, "o", o);
}

template <class T>
void check_attention_backward(const char* op, const AttentionBackwardArgs<T>& a) {
  const AttentionDims& d = a.dims;
  check_attention_dims(op, d, a.scale);
  const index_t nq = checked_mul(checked_mul(d.batch, d.heads, op, "lse"), d.seq_q, op, "lse");
  Range in[7] = {
      check_view4(op, "q", a.q, d.batch, d.heads, d.seq_q, d.head_dim),
      check_view4(op, "k", a.k, d.batch, d.kv_heads, d.seq_k, d.head_dim),
      check_view4(op, "v", a.v, d.batch, d.kv_heads, d.seq_k, d.head_dim),
      check_view4(op, "o", a.o, d.batch, d.heads, d.seq_q, d.head_dim),
      check_view4(op, "d_o", a.d_o, d.batch, d.heads, d.seq_q, d.head_dim),
      a.mask.data ? check_view4(op, "mask", a.mask, d.batch, d.heads, d.seq_q, d.seq_k) : Range{},
      check_vector(op, "lse", nq, a.lse, sizeof(T)),
  };
  const char* in_names[7] = {"q", "k", "v", "o", "d_o", "mask", "lse"};
  Range out[3] = {
      check_view4(op, "dq", a.dq, d.batch, d.heads, d.seq_q, d.head_dim),
      check_view4(op, "dk", a.dk, d.batch, d.kv_heads, d.seq_k, d.head_dim),
      check_view4(op, "dv", a.dv, d.batch, d.kv_heads, d.seq_k, d.head_dim),
  };
  const char* out_names[3] = {"dq", "dk", "dv"};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 7; ++j) check_disjoint(op, out_names[i], out[i], in_names[j], in[j]);
    for (int j = i + 1; j < 3; ++j) check_disjoint(op, out_names[i], out[i], out_names[j], out[j]);
  }
}

template void check_attention_forward(const char*, const AttentionForwardArgs<float>&);
template void check_attention_forward(const char*, const AttentionForwardArgs<double>&);
template void check_attention_backward(const char*, const AttentionBackwardArgs<float>&);
template void check_attention_backward(const char*, const AttentionBackwardArgs<double>&);

// ---------------------------------------------------------------------------------
// Elementwise, random, dropout, cross-entropy.
// ---------------------------------------------------------------------------------
namespace {

// A Shape-described view: non-null when non-empty; its byte range.
Range check_nd(const char* op, const char* arg, const Shape& v, const void* p, std::size_t elem) {
  if (v.numel() == 0) return {};
  TG_CHECK(p != nullptr, op, arg, "expected a non-null pointer for a view of shape ", v.str());
  auto lo = reinterpret_cast<std::uintptr_t>(p);
  return {lo, lo + std::uintptr_t(checked_mul(v.extent(), index_t(elem), op, arg))};
}

void check_same_sizes(const char* op, const char* arg, const Shape& v, const Shape& out) {
  bool same = v.rank() == out.rank();
  for (int d = 0; same && d < v.rank(); ++d) same = v.sizes()[std::size_t(d)] == out.sizes()[std::size_t(d)];
  TG_CHECK(same, op, arg, "expected the sizes of y ", out.str(), ", got ", v.str());
}

// An output writes each element once: no stride 0 on a dimension of size > 1.
Range check_output_nd(const char* op, const Shape& y, const void* p, std::size_t elem) {
  for (int d = 0; d < y.rank(); ++d)
    TG_CHECK(y.sizes()[std::size_t(d)] <= 1 || y.strides()[std::size_t(d)] > 0, op, "y",
             "expected an output that does not broadcast (stride 0 at dim ", d, " of ", y.str(), ")");
  return check_nd(op, "y", y, p, elem);
}

// In place means the very same view; anything else must be disjoint.
void check_input_nd(const char* op, const char* arg, const Shape& v, const void* p, const Shape& y,
                    const void* yp, Range ry, std::size_t elem) {
  Range r = check_nd(op, arg, v, p, elem);
  check_same_sizes(op, arg, v, y);
  if (p == yp && v == y) return;
  TG_CHECK(!overlap(r, ry), op, "y", "must not overlap ", arg, " (in place needs the same pointer and strides)");
}

}  // namespace

void check_unary(const char* op, const Shape& xs, const void* x, const Shape& ys, const void* y,
                 std::size_t elem, bool reads_x) {
  Range ry = check_output_nd(op, ys, y, elem);
  if (reads_x) check_input_nd(op, "x", xs, x, ys, y, ry, elem);
}

void check_binary(const char* op, const Shape& as, const void* a, const Shape& bs, const void* b,
                  const Shape& ys, const void* y, std::size_t elem) {
  Range ry = check_output_nd(op, ys, y, elem);
  check_input_nd(op, "a", as, a, ys, y, ry, elem);
  check_input_nd(op, "b", bs, b, ys, y, ry, elem);
}

void check_where(const char* op, const Shape& cs, const void* c, const Shape& as, const void* a,
                 const Shape& bs, const void* b, const Shape& ys, const void* y, std::size_t elem) {
  Range ry = check_output_nd(op, ys, y, elem);
  check_input_nd(op, "cond", cs, c, ys, y, ry, elem);
  check_input_nd(op, "a", as, a, ys, y, ry, elem);
  check_input_nd(op, "b", bs, b, ys, y, ry, elem);
}

void check_random(const char* op, index_t n, const void* y) {
  check_size(op, "n", n);
  TG_CHECK(n == 0 || y != nullptr, op, "y", "expected a non-null pointer to ", n, " elements");
}

void check_dropout(const char* op, index_t n, const void* x, const void* y, double p, std::size_t elem) {
  check_size(op, "n", n);
  TG_CHECK(p >= 0 && p < 1, op, "p", "expected a drop probability in [0, 1), got ", p);
  TG_CHECK(n == 0 || (x != nullptr && y != nullptr), op, x ? "y" : "x", "expected non-null pointers to ", n,
           " elements");
  if (x == y || n == 0) return;
  const Range rx = check_vector(op, "x", n, x, elem), ry = check_vector(op, "y", n, y, elem);
  TG_CHECK(!overlap(rx, ry), op, "y", "must be x itself (in place) or not overlap it");
}

void check_cross_entropy(const char* op, index_t rows, index_t classes, const void* logits, index_t ld,
                         const index_t* target, index_t ignore_index, double smoothing,
                         const void* out0, const void* out1, std::size_t elem, bool targets_on_host) {
  check_size(op, "rows", rows);
  TG_CHECK(classes >= 1, op, "classes", "expected at least one class, got ", classes);
  TG_CHECK(smoothing >= 0 && smoothing < 1, op, "label_smoothing", "expected a value in [0, 1), got ", smoothing);
  check_view(op, "logits", "ld", rows, classes, logits, ld, elem, false);
  if (rows == 0) return;
  TG_CHECK(target != nullptr, op, "target", "expected a non-null pointer to ", rows, " class indices");
  TG_CHECK(out0 != nullptr && out1 != nullptr, op, out0 ? "lse" : "loss", "expected a non-null pointer to ",
           out0 ? 2 * rows : rows, " elements");
  for (index_t i = 0; targets_on_host && i < rows; ++i)
    TG_CHECK(target[i] == ignore_index || (target[i] >= 0 && target[i] < classes), op, "target",
             "expected class indices in [0, ", classes, ") or ignore_index = ", ignore_index, ", got ", target[i],
             " at row ", i);
}

template <class T>
void check_param_slots(const char* op, std::span<const ParamSlot<T>> slots, bool needs_m, bool needs_v) {
  std::vector<std::pair<Range, const char*>> ranges;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const ParamSlot<T>& s = slots[i];
    check_size(op, "n", s.n);
    TG_CHECK(s.n == 0 || (s.param && s.grad && (!needs_m || s.m) && (!needs_v || s.v)), op, "slots",
             "expected param, grad", needs_m ? ", m" : "", needs_v ? ", v" : "", " pointers for slot ", i);
    ranges.push_back({check_vector(op, "param", s.n, s.param, sizeof(T)), "param"});
    if (s.m) ranges.push_back({check_vector(op, "m", s.n, s.m, sizeof(T)), "m"});
    if (s.v) ranges.push_back({check_vector(op, "v", s.n, s.v, sizeof(T)), "v"});
  }
  std::sort(ranges.begin(), ranges.end(), [](const auto& a, const auto& b) { return a.first.lo < b.first.lo; });
  for (std::size_t i = 1; i < ranges.size(); ++i)
    TG_CHECK(!overlap(ranges[i - 1].first, ranges[i].first), op, ranges[i].second,
             "must not overlap another written array (", ranges[i - 1].second, ")");
}
template void check_param_slots<float>(const char*, std::span<const ParamSlot<float>>, bool, bool);
template void check_param_slots<double>(const char*, std::span<const ParamSlot<double>>, bool, bool);

}  // namespace tg
