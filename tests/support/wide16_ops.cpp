// wide16_ops(): the *_impl.hpp templates instantiated over simd::P16 (see the header).
#include "tests/support/wide16_ops.hpp"

#include "cpu/vmath/vec_wide.hpp"
// (the lane types before the generic code that uses them)
#include "cpu/activation_impl.hpp"
#include "cpu/attention_impl.hpp"
#include "cpu/elementwise_impl.hpp"
#include "cpu/isa.hpp"
#include "cpu/layer_norm_impl.hpp"
#include "cpu/ops.hpp"
#include "cpu/softmax_impl.hpp"

namespace tg::testing {
namespace {

using V = cpu::simd::P16;

void act_forward(Activation act, index_t rows, index_t cols, const float* x, index_t ldx, const float* bias,
                 float* y, index_t ldy) {
  cpu::act_impl::forward_any<V>(act, rows, cols, x, ldx, bias, y, ldy);
}
void act_backward(Activation act, index_t rows, index_t cols, const float* x, index_t ldx, const float* bias,
                  const float* dy, index_t lddy, float* dx, index_t lddx) {
  cpu::act_impl::backward_any<V>(act, rows, cols, x, ldx, bias, dy, lddy, dx, lddx);
}
template <bool kLog>
void softmax_forward(index_t rows, index_t cols, const float* x, index_t ldx, float* y, index_t ldy) {
  cpu::softmax_impl::forward<V, kLog>(rows, cols, x, ldx, y, ldy);
}
template <bool kLog>
void softmax_backward(index_t rows, index_t cols, const float* y, index_t ldy, const float* dy, index_t lddy,
                      float* dx, index_t lddx) {
  cpu::softmax_impl::backward<V, kLog>(rows, cols, y, ldy, dy, lddy, dx, lddx);
}
void layer_norm_forward(index_t rows, index_t cols, const float* x, index_t ldx, const float* gamma,
                        const float* beta, float eps, float* y, index_t ldy, float* mean, float* rstd) {
  cpu::ln_impl::forward<V>(rows, cols, x, ldx, gamma, beta, eps, y, ldy, mean, rstd);
}
void layer_norm_backward(index_t rows, index_t cols, const float* x, index_t ldx, const float* dy, index_t lddy,
                         const float* gamma, const float* mean, const float* rstd, float /*eps*/, float* dx,
                         index_t lddx, float* dgamma, float* dbeta) {
  cpu::ln_impl::backward<V>(rows, cols, x, ldx, dy, lddy, gamma, mean, rstd, dx, lddx, dgamma, dbeta);
}
void attention_forward(const AttentionForwardArgs<float>& a) {
  cpu::attn_impl::forward<V>(cpu::gemm_impl::arch_portable_f32(), a);
}
void attention_backward(const AttentionBackwardArgs<float>& a) {
  cpu::attn_impl::backward<V>(cpu::gemm_impl::arch_portable_f32(), a);
}
template <class T>
void unary(Unary op, double p0, double p1, const Shape& xs, const T* x, const Shape& ys, T* y) {
  cpu::ew_impl::unary<V>(op, p0, p1, xs, x, ys, y);
}

OpTable make() {
  OpTable t = cpu::ops(cpu::Isa::scalar);
  t.name = "cpu-wide16";
  t.f32.act_forward = &act_forward;
  t.f32.act_backward = &act_backward;
  t.f32.softmax_forward = &softmax_forward<false>;
  t.f32.log_softmax_forward = &softmax_forward<true>;
  t.f32.softmax_backward = &softmax_backward<false>;
  t.f32.log_softmax_backward = &softmax_backward<true>;
  t.f32.layer_norm_forward = &layer_norm_forward;
  t.f32.layer_norm_backward = &layer_norm_backward;
  t.f32.attention_forward = &attention_forward;
  t.f32.attention_backward = &attention_backward;
  t.f32.unary = &unary<float>;
  t.f64.unary = &unary<double>;
  return t;
}

}  // namespace

void math_array_wide16(cpu::MathFn fn, index_t n, const float* x, float* y) {
  cpu::act_impl::math_array<V>(fn, n, x, y);
}

const OpTable& wide16_ops() {
  static const OpTable t = make();
  return t;
}

std::vector<const OpTable*> cpu_tables() {
  std::vector<const OpTable*> v;
  for (cpu::Isa isa : cpu::supported_isas()) v.push_back(&cpu::ops(isa));
  v.push_back(&wide16_ops());
  return v;
}

}  // namespace tg::testing
