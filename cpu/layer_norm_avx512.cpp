// layer_norm on AVX-512: cpu/layer_norm_impl.hpp over simd::Z16.
#include "cpu/vmath/vec_avx512.hpp"
// (vec_avx512.hpp before the generic code that uses its types)
#include "cpu/layer_norm_impl.hpp"

namespace tg::cpu {

void layer_norm_forward_avx512(index_t rows, index_t cols, const float* x, index_t ldx, const float* gamma,
                             const float* beta, float eps, float* y, index_t ldy, float* mean, float* rstd) {
  ln_impl::forward<simd::Z16>(rows, cols, x, ldx, gamma, beta, eps, y, ldy, mean, rstd);
}

void layer_norm_backward_avx512(index_t rows, index_t cols, const float* x, index_t ldx, const float* dy,
                              index_t lddy, const float* gamma, const float* mean, const float* rstd,
                              float /*eps*/, float* dx, index_t lddx, float* dgamma, float* dbeta) {
  ln_impl::backward<simd::Z16>(rows, cols, x, ldx, dy, lddy, gamma, mean, rstd, dx, lddx, dgamma, dbeta);
}

}  // namespace tg::cpu
