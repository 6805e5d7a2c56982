// layer_norm: the portable path (cpu/layer_norm_impl.hpp over simd::F1) and the checked
// public entries.
#include "tilegrad/cpu/layer_norm.hpp"

#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/cpu/vmath/vec_scalar.hpp"
// (vec_scalar.hpp before the generic code that uses its types)
#include "tilegrad/cpu/layer_norm_impl.hpp"

namespace tg::cpu {

TG_LAYER_NORM_PATH(portable, simd::F1)

namespace {
template <class T>
void forward_checked(index_t rows, index_t cols, const T* x, index_t ldx, const T* gamma, const T* beta,
                     double eps, T* y, index_t ldy, T* mean, T* rstd) {
  check_layer_norm_forward("layer_norm_forward", rows, cols, x, ldx, y, ldy, eps, sizeof(T));
  ops().get<T>().layer_norm_forward(rows, cols, x, ldx, gamma, beta, eps, y, ldy, mean, rstd);
}
template <class T>
void backward_checked(index_t rows, index_t cols, const T* x, index_t ldx, const T* dy, index_t lddy,
                      const T* gamma, const T* mean, const T* rstd, double eps, T* dx, index_t lddx,
                      T* dgamma, T* dbeta) {
  check_layer_norm_backward("layer_norm_backward", rows, cols, x, ldx, dy, lddy, mean, rstd, dx, lddx, sizeof(T));
  ops().get<T>().layer_norm_backward(rows, cols, x, ldx, dy, lddy, gamma, mean, rstd, eps, dx, lddx, dgamma, dbeta);
}
}  // namespace

void layer_norm_forward(index_t rows, index_t cols, const float* x, index_t ldx, const float* gamma,
                        const float* beta, double eps, float* y, index_t ldy, float* mean, float* rstd) {
  forward_checked(rows, cols, x, ldx, gamma, beta, eps, y, ldy, mean, rstd);
}
void layer_norm_forward(index_t rows, index_t cols, const double* x, index_t ldx, const double* gamma,
                        const double* beta, double eps, double* y, index_t ldy, double* mean, double* rstd) {
  forward_checked(rows, cols, x, ldx, gamma, beta, eps, y, ldy, mean, rstd);
}
void layer_norm_backward(index_t rows, index_t cols, const float* x, index_t ldx, const float* dy,
                         index_t lddy, const float* gamma, const float* mean, const float* rstd, double eps,
                         float* dx, index_t lddx, float* dgamma, float* dbeta) {
  backward_checked(rows, cols, x, ldx, dy, lddy, gamma, mean, rstd, eps, dx, lddx, dgamma, dbeta);
}
void layer_norm_backward(index_t rows, index_t cols, const double* x, index_t ldx, const double* dy,
                         index_t lddy, const double* gamma, const double* mean, const double* rstd,
                         double eps, double* dx, index_t lddx, double* dgamma, double* dbeta) {
  backward_checked(rows, cols, x, ldx, dy, lddy, gamma, mean, rstd, eps, dx, lddx, dgamma, dbeta);
}

}  // namespace tg::cpu
