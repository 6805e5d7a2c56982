// The CUDA op table (kernels/ops.hpp's OpTable): each op's f32 entry, from the files
// that hold it (cuda/<op>.hpp and .cu, the kernels in cuda/<op>.cuh); f64 entries throw.
#include "tilegrad/cuda/ops.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::cuda {

namespace {

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

}  // namespace tg::cuda
