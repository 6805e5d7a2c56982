// The activation kernels on AVX-512: cpu/activation_impl.hpp's loops over simd::Z16.
#include "cpu/vmath/vec_avx512.hpp"
// (vec_avx512.hpp before the generic code that uses its types)
#include "cpu/activation_impl.hpp"

namespace tg::cpu {

void act_forward_avx512(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                      const float* bias, float* y, index_t ldy) {
  act_impl::forward_any<simd::Z16>(act, rows, cols, x, ldx, bias, y, ldy);
}

void act_backward_avx512(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                       const float* bias, const float* dy, index_t lddy, float* dx, index_t lddx) {
  act_impl::backward_any<simd::Z16>(act, rows, cols, x, ldx, bias, dy, lddy, dx, lddx);
}

void math_array_avx512(MathFn fn, index_t n, const float* x, float* y) {
  act_impl::math_array<simd::Z16>(fn, n, x, y);
}

}  // namespace tg::cpu
