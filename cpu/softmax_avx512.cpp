// softmax and log_softmax on AVX-512: cpu/softmax_impl.hpp over simd::Z16.
#include "cpu/vmath/vec_avx512.hpp"
// (vec_avx512.hpp before the generic code that uses its types)
#include "cpu/softmax_impl.hpp"

namespace tg::cpu {

void softmax_forward_avx512(index_t rows, index_t cols, const float* x, index_t ldx, float* y, index_t ldy) {
  softmax_impl::forward<simd::Z16, false>(rows, cols, x, ldx, y, ldy);
}
void log_softmax_forward_avx512(index_t rows, index_t cols, const float* x, index_t ldx, float* y, index_t ldy) {
  softmax_impl::forward<simd::Z16, true>(rows, cols, x, ldx, y, ldy);
}
void softmax_backward_avx512(index_t rows, index_t cols, const float* y, index_t ldy, const float* dy,
                           index_t lddy, float* dx, index_t lddx) {
  softmax_impl::backward<simd::Z16, false>(rows, cols, y, ldy, dy, lddy, dx, lddx);
}
void log_softmax_backward_avx512(index_t rows, index_t cols, const float* y, index_t ldy, const float* dy,
                               index_t lddy, float* dx, index_t lddx) {
  softmax_impl::backward<simd::Z16, true>(rows, cols, y, ldy, dy, lddy, dx, lddx);
}

}  // namespace tg::cpu
