// The activation kernels on AVX2/FMA: cpu/activation_impl.hpp's loops over simd::F8.
#include "cpu/vmath/vec_avx2.hpp"
// (vec_avx2.hpp before the generic code that uses its types)
#include "cpu/activation_impl.hpp"

namespace tg::cpu {

void act_forward_avx2(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                      const float* bias, float* y, index_t ldy) {
  act_impl::forward_any<simd::F8>(act, rows, cols, x, ldx, bias, y, ldy);
}

void act_backward_avx2(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                       const float* bias, const float* dy, index_t lddy, float* dx, index_t lddx) {
  act_impl::backward_any<simd::F8>(act, rows, cols, x, ldx, bias, dy, lddy, dx, lddx);
}

void math_array_avx2(MathFn fn, index_t n, const float* x, float* y) {
  act_impl::math_array<simd::F8>(fn, n, x, y);
}

}  // namespace tg::cpu
