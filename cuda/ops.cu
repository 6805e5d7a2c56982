// The CUDA op table (kernels/ops.hpp's OpTable): each op's f32 entry, from the files
// that hold it (cuda/<op>.hpp and .cu, the kernels in cuda/<op>.cuh), and the 16-bit
// GEMM and attention (HalfOps); f64 entries throw.
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

// The tensor cores' 16-bit entries (kernels/ops.hpp's HalfOps), each kernel's default path.
constexpr HalfOps cuda_half() {
  HalfOps t;
  t.gemm_bf16 = [](Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const std::uint16_t* A,
                   index_t lda, const std::uint16_t* B, index_t ldb, float beta, float* C, index_t ldc,
                   const GemmEpilogue<float>& ep) {
    gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
  };
  t.gemm_f16 = [](Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const std::uint16_t* A, index_t lda,
                  const std::uint16_t* B, index_t ldb, float beta, float* C, index_t ldc,
                  const GemmEpilogue<float>& ep) {
    gemm_f16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
  };
  t.attention_forward_bf16 = [](const AttentionForwardArgs<bfloat16>& a, float* lse) {
    attention_forward_bf16(a, lse);
  };
  t.attention_backward_bf16 = [](const AttentionBackwardArgs<bfloat16>& a, const float* lse) {
    attention_backward_bf16(a, lse);
  };
  t.attention_forward_f16 = [](const AttentionForwardArgs<float16>& a, float* lse) { attention_forward_f16(a, lse); };
  t.attention_backward_f16 = [](const AttentionBackwardArgs<float16>& a, const float* lse) {
    attention_backward_f16(a, lse);
  };
  return t;
}

constexpr OpTable kCuda{"cuda", cuda_f32(), failing_ops<double, &no_f64>(), cuda_half()};
#if !defined(TG_SANITIZED)  // as TG_ASSERT_COMPLETE (kernels/ops.hpp)
static_assert(kCuda.half.gemm_bf16 != nullptr && kCuda.half.all_or_none(), "the cuda table lacks a 16-bit entry");
#endif
TG_ASSERT_COMPLETE(kCuda, "the cuda table lacks an op of TG_OPS");

}  // namespace

const OpTable& ops() { return kCuda; }

}  // namespace tg::cuda
