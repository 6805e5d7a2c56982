// layer_norm on AVX2/FMA: cpu/layer_norm_impl.hpp over simd::F8.
#include "cpu/vmath/vec_avx2.hpp"
// (vec_avx2.hpp before the generic code that uses its types)
#include "cpu/layer_norm_impl.hpp"

namespace tg::cpu {

void layer_norm_forward_avx2(index_t rows, index_t cols, const float* x, index_t ldx, const float* gamma,
                             const float* beta, float eps, float* y, index_t ldy, float* mean, float* rstd) {
  ln_impl::forward<simd::F8>(rows, cols, x, ldx, gamma, beta, eps, y, ldy, mean, rstd);
}

void layer_norm_backward_avx2(index_t rows, index_t cols, const float* x, index_t ldx, const float* dy,
                              index_t lddy, const float* gamma, const float* mean, const float* rstd,
                              float /*eps*/, float* dx, index_t lddx, float* dgamma, float* dbeta) {
  ln_impl::backward<simd::F8>(rows, cols, x, ldx, dy, lddy, gamma, mean, rstd, dx, lddx, dgamma, dbeta);
}

}  // namespace tg::cpu
