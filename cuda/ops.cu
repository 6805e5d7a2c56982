// The CUDA kernels between the big ones (cuda/ops.hpp), and the CUDA op table.
//
//   elementwise  unary, binary, where over strided N-D views: the host first drops size-1
//                dimensions and merges those that are contiguous in every operand, so
//                that a contiguous (or same-layout) call becomes one flat grid-stride
//                loop; otherwise each element's offsets come from its row-major index.
//   reduce       sum / mean / max over the middle axis of (outer, n, inner): a group of
//                threads per output when inner == 1 (a warp for short rows, a 256-thread
//                block for long ones), a 32-column x 8-row block per 32 outputs when
//                inner > 1 (coalesced along inner); when those blocks cannot fill the GPU,
//                n is cut into chunks whose partial results (double) go to a workspace
//                from the caching allocator and a second kernel adds them in a fixed
//                order. Accumulation in double: the same answer for any chunking, to a
//                float rounding of the exact sum for the sizes of a training step.
//   layer_norm   a warp per row with the row in registers up to 1024 columns (mean, then
//                the variance around it, then the write: the row is read once), a block
//                per row with the row in registers up to 8192, a block per row reading it
//                three times beyond; dgamma / dbeta through the column reduction.
//   cross_entropy a warp (a block for rows over 1024 classes) per row: max, then the sum
//                of exponentials and of logits, both in double; the backward is
//                elementwise from the saved lse.
//   random, dropout  Philox (kernels/random.hpp), element i from (seed, offset, i): the
//                same bits as the CPU.
//   sgd, adam    a multi-tensor apply: up to 24 parameters per launch, blocks assigned to
//                4096-element chunks of them.
//
// The kernels and the host-side plans (collapse, plan_reduce, ln_plan, multi_tensor) are
// in cuda/ops.cuh, which the SIMT emulator's test runs on the CPU; this file launches them.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "tilegrad/cuda/activation.hpp"
#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/cross_entropy.hpp"
#include "tilegrad/cuda/gemm.hpp"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/cuda/ops.cuh"
#include "tilegrad/cuda/ops.hpp"
#include "tilegrad/cuda/softmax.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::cuda {

namespace {

using namespace opk;
using i64 = std::int64_t;

// Reduces (outer, n, inner) through `load` into y (strides yo, yi) by plan_reduce's plan.
template <class Op, class Loader>
void launch_reduce(bool mean, i64 outer, i64 n, i64 inner, Loader load, float* y, i64 yo, i64 yi) {
  if (outer == 0 || inner == 0) return;
  const ReducePlan plan = plan_reduce(outer, n, inner, detail::sm_count());
  const i64 chunks = plan.chunks, chunk_len = plan.chunk_len;
  Out out{y, yo, yi, nullptr, mean, n, outer, inner};
  const cudaStream_t stream = detail::stream();
  Buffer ws;
  if (chunks > 1) {
    ws = Buffer(std::size_t(chunks * outer * inner) * sizeof(double), Device::cuda(detail::current_device()));
    out.y = nullptr;
    out.part = ws.as<double>();
  }
  const unsigned gz = unsigned(chunks);
  if (plan.rows) {
    TG_CHECK(outer <= i64(INT32_MAX) * 8, "cuda::reduce", "outer", "expected fewer than 2^34 outputs, got ", outer);
    if (plan.warp_rows) reduce_rows<32, Op><<<dim3(unsigned((outer + 7) / 8), gz), 256, 0, stream>>>(outer, n, chunk_len, load, out);
    else reduce_rows<256, Op><<<dim3(unsigned(outer), gz), 256, 0, stream>>>(outer, n, chunk_len, load, out);
  } else {
    TG_CHECK((inner + 31) / 32 <= i64(INT32_MAX), "cuda::reduce", "inner", "expected fewer than 2^36 inner elements");
    reduce_cols<Op><<<dim3(unsigned((inner + 31) / 32), unsigned(std::min<i64>(outer, 65535)), gz), dim3(32, 8), 0,
                      stream>>>(outer, n, inner, chunk_len, load, out);
  }
  TG_CUDA_LAUNCHED();
  if (chunks > 1) {
    Out final_out{y, yo, yi, nullptr, mean, n, outer, inner};
    reduce_chunks<Op><<<detail::grid_for(outer * inner, 256), 256, 0, stream>>>(outer, inner, int(chunks), ws.as<double>(), final_out);
    TG_CUDA_LAUNCHED();
  }
}

// ---- the table ----

[[noreturn]] void no_f64() {
  ::tg::detail::throw_error("cuda", "dtype", "f64 tensors are not supported on CUDA (f32 only); compute in f32 or on the CPU");
}


constexpr TypedOps<float> cuda_f32() {
  TypedOps<float> t;
  t.gemm = &cuda::gemm;
  t.act_forward = &cuda::act_forward;
  t.act_backward = &cuda::act_backward;
  t.softmax_forward = [](index_t r, index_t c, const float* x, index_t ldx, float* y, index_t ldy) {
    softmax_forward(false, r, c, x, ldx, y, ldy);
  };
  t.log_softmax_forward = [](index_t r, index_t c, const float* x, index_t ldx, float* y, index_t ldy) {
    softmax_forward(true, r, c, x, ldx, y, ldy);
  };
  t.softmax_backward = [](index_t r, index_t c, const float* y, index_t ldy, const float* dy, index_t lddy, float* dx,
                          index_t lddx) { softmax_backward(false, r, c, y, ldy, dy, lddy, dx, lddx); };
  t.log_softmax_backward = [](index_t r, index_t c, const float* y, index_t ldy, const float* dy, index_t lddy,
                              float* dx, index_t lddx) { softmax_backward(true, r, c, y, ldy, dy, lddy, dx, lddx); };
  t.layer_norm_forward = &cuda::layer_norm_forward;
  t.layer_norm_backward = &cuda::layer_norm_backward;
  t.attention_forward = &cuda::attention_forward;
  t.attention_backward = &cuda::attention_backward;
  t.reduce = &cuda::reduce;
  t.unary = &cuda::unary;
  t.binary = &cuda::binary;
  t.where = &cuda::where;
  t.random = &cuda::random;
  t.dropout = &cuda::dropout;
  t.cross_entropy_forward = &cuda::cross_entropy_forward;
  t.cross_entropy_backward = &cuda::cross_entropy_backward;
  t.sgd_step = &cuda::sgd_step;
  t.adam_step = &cuda::adam_step;
  return t;
}


constexpr OpTable kCuda{"cuda", cuda_f32(), failing_ops<double, &no_f64>()};
TG_ASSERT_COMPLETE(kCuda, "the cuda table lacks an op of TG_OPS");

}  // namespace

const OpTable& ops() { return kCuda; }

void unary(Unary op, double p0, double p1, const Shape& xs, const float* x, const Shape& ys, float* y) {
  check_unary("cuda::unary", xs, x, ys, y, sizeof(float), op != Unary::fill);
  const i64 n = ys.numel();
  if (n == 0) return;
  const Shape* const shapes[2] = {&xs, &ys};
  const Collapsed<2> c = collapse<2>(ys, shapes);
  const cudaStream_t s = detail::stream();
  if (c.flat()) {
    const float* xin = op == Unary::fill ? nullptr : x;
    if ((xin == nullptr || detail::aligned16(xin)) && detail::aligned16(y) && n >= 4)
      unary_flat<true><<<detail::grid_for(n / 4, 256), 256, 0, s>>>(op, float(p0), float(p1), n, xin, y);
    else
      unary_flat<false><<<detail::grid_for(n, 256), 256, 0, s>>>(op, float(p0), float(p1), n, xin, y);
  } else
    unary_nd<<<detail::grid_for(n, 256), 256, 0, s>>>(op, float(p0), float(p1), n, c.dims, c.st[0], c.st[1], x, y);
  TG_CUDA_LAUNCHED();
}

void binary(Binary op, const Shape& as, const float* a, const Shape& bs, const float* b, const Shape& ys, float* y) {
  check_binary("cuda::binary", as, a, bs, b, ys, y, sizeof(float));
  const i64 n = ys.numel();
  if (n == 0) return;
  const Shape* const shapes[3] = {&as, &bs, &ys};
  const Collapsed<3> c = collapse<3>(ys, shapes);
  const cudaStream_t s = detail::stream();
  if (c.flat() && detail::aligned16(a) && detail::aligned16(b) && detail::aligned16(y) && n >= 4)
    binary_flat<true><<<detail::grid_for(n / 4, 256), 256, 0, s>>>(op, n, a, b, y);
  else if (c.flat())
    binary_flat<false><<<detail::grid_for(n, 256), 256, 0, s>>>(op, n, a, b, y);
  else binary_nd<<<detail::grid_for(n, 256), 256, 0, s>>>(op, n, c.dims, c.st[0], c.st[1], c.st[2], a, b, y);
  TG_CUDA_LAUNCHED();
}

void where(const Shape& cs, const float* c, const Shape& as, const float* a, const Shape& bs, const float* b,
           const Shape& ys, float* y) {
  check_where("cuda::where", cs, c, as, a, bs, b, ys, y, sizeof(float));
  const i64 n = ys.numel();
  if (n == 0) return;
  const Shape* const shapes[4] = {&cs, &as, &bs, &ys};
  const Collapsed<4> k = collapse<4>(ys, shapes);
  where_nd<<<detail::grid_for(n, 256), 256, 0, detail::stream()>>>(n, k.dims, k.st[0], k.st[1], k.st[2], k.st[3], c, a, b, y);
  TG_CUDA_LAUNCHED();
}

void reduce(Reduce kind, index_t outer, index_t n, index_t inner, const float* x, index_t xs_outer, index_t xs_n,
            index_t xs_inner, float* y, index_t ys_outer, index_t ys_inner) {
  check_reduce("cuda::reduce", outer, n, inner, x, xs_outer, xs_n, xs_inner, y, ys_outer, ys_inner, sizeof(float));
  const ViewLoader load{x, xs_outer, xs_n, xs_inner};
  if (kind == Reduce::max) launch_reduce<MaxOp>(false, outer, n, inner, load, y, ys_outer, ys_inner);
  else launch_reduce<SumOp>(kind == Reduce::mean, outer, n, inner, load, y, ys_outer, ys_inner);
}

void layer_norm_forward(index_t rows, index_t cols, const float* x, index_t ldx, const float* gamma, const float* beta,
                        double eps, float* y, index_t ldy, float* mean, float* rstd) {
  check_layer_norm_forward("cuda::layer_norm_forward", rows, cols, x, ldx, y, ldy, eps, sizeof(float));
  if (rows == 0) return;
  TG_CHECK(rows < (index_t(1) << 31) && cols < (index_t(1) << 31), "cuda::layer_norm_forward", "rows",
           "expected rows and cols below 2^31");
  const cudaStream_t s = detail::stream();
  if (!with_ln_regs(int(cols), [&]<int kGroup, int kPer>() {
        ln_fwd_regs<kGroup, kPer><<<ln_blocks(kGroup, rows), 256, 0, s>>>(int(rows), int(cols), x, i64(ldx), gamma,
                                                                          beta, float(eps), y, i64(ldy), mean, rstd);
      }))
    ln_fwd_block<<<unsigned(rows), 256, 0, s>>>(int(cols), x, ldx, gamma, beta, float(eps), y, ldy, mean, rstd);
  TG_CUDA_LAUNCHED();
}

void layer_norm_backward(index_t rows, index_t cols, const float* x, index_t ldx, const float* dy, index_t lddy,
                         const float* gamma, const float* mean, const float* rstd, double /*eps*/, float* dx,
                         index_t lddx, float* dgamma, float* dbeta) {
  check_layer_norm_backward("cuda::layer_norm_backward", rows, cols, x, ldx, dy, lddy, mean, rstd, dx, lddx,
                            sizeof(float));
  TG_CHECK(rows == 0 || (mean != nullptr && rstd != nullptr), "cuda::layer_norm_backward", "mean",
           "expected the mean and rstd the forward saved (the CUDA backward does not recompute them)");
  TG_CHECK(rows < (index_t(1) << 31) && cols < (index_t(1) << 31), "cuda::layer_norm_backward", "rows",
           "expected rows and cols below 2^31");
  if (rows > 0) {
    const cudaStream_t s = detail::stream();
    if (!with_ln_regs(int(cols), [&]<int kGroup, int kPer>() {
          ln_bwd_regs<kGroup, kPer><<<ln_blocks(kGroup, rows), 256, 0, s>>>(int(rows), int(cols), x, i64(ldx), dy,
                                                                            i64(lddy), gamma, mean, rstd, dx, i64(lddx));
        }))
      ln_bwd_block<<<unsigned(rows), 256, 0, s>>>(int(cols), x, ldx, dy, lddy, gamma, mean, rstd, dx, lddx);
    TG_CUDA_LAUNCHED();
  }
  // Column sums over the rows (zeros when rows == 0).
  if (dgamma) launch_reduce<SumOp>(false, 1, rows, cols, DGammaLoader{x, dy, mean, rstd, ldx, lddy}, dgamma, 0, 1);
  if (dbeta) launch_reduce<SumOp>(false, 1, rows, cols, ViewLoader{dy, 0, lddy, 1}, dbeta, 0, 1);
}

void random(Random kind, index_t n, float* y, double a, double b, std::uint64_t seed, std::uint64_t offset) {
  check_random("cuda::random", n, y);
  if (n == 0) return;
  random_kernel<<<detail::grid_for(n, 256), 256, 0, detail::stream()>>>(kind, n, y, a, b, seed, offset);
  TG_CUDA_LAUNCHED();
}

void dropout(index_t n, const float* x, float* y, double p, std::uint64_t seed, std::uint64_t offset) {
  check_dropout("cuda::dropout", n, x, y, p, sizeof(float));
  if (n == 0) return;
  dropout_kernel<<<detail::grid_for(n, 256), 256, 0, detail::stream()>>>(n, x, y, p, 1.0 / (1.0 - p), seed, offset);
  TG_CUDA_LAUNCHED();
}

void sgd_step(const SgdConfig& c, std::span<const ParamSlot<float>> slots) {
  check_param_slots("cuda::sgd_step", slots, c.momentum != 0, false);
  const SgdParams p = sgd_params(c);
  const cudaStream_t s = detail::stream();
  multi_tensor(slots, [&](const Pack& pk, int blocks) {
    sgd_kernel<<<unsigned(blocks), 256, 0, s>>>(pk, p, c.live);
    TG_CUDA_LAUNCHED();
  });
}

void adam_step(const AdamConfig& c, std::span<const ParamSlot<float>> slots) {
  check_param_slots("cuda::adam_step", slots, true, true);
  TG_CHECK(c.live != nullptr || c.step >= 1, "cuda::adam_step", "step", "expected step >= 1, got ", c.step);
  const AdamParams p = adam_params(c);
  const cudaStream_t s = detail::stream();
  multi_tensor(slots, [&](const Pack& pk, int blocks) {
    adam_kernel<<<unsigned(blocks), 256, 0, s>>>(pk, p, c.live);
    TG_CUDA_LAUNCHED();
  });
}

}  // namespace tg::cuda
