// The activation kernels' portable path (cpu/activation_impl.hpp's loops over one float
// at a time, simd::F1) and the checked public entries.
#include "tilegrad/cpu/activation.hpp"

#include "tilegrad/cpu/activation_impl.hpp"
#include "tilegrad/cpu/ops.hpp"

namespace tg::cpu {

TG_ACTIVATION_PATH(portable, simd::F1)

namespace {
template <class T>
void forward_checked(Activation act, index_t rows, index_t cols, const T* x, index_t ldx,
                     const T* bias, T* y, index_t ldy) {
  check_act_forward("act_forward", rows, cols, x, ldx, bias, y, ldy, sizeof(T));
  ops().get<T>().act_forward(act, rows, cols, x, ldx, bias, y, ldy);
}
template <class T>
void backward_checked(Activation act, index_t rows, index_t cols, const T* x, index_t ldx,
                      const T* bias, const T* dy, index_t lddy, T* dx, index_t lddx) {
  check_act_backward("act_backward", rows, cols, x, ldx, bias, dy, lddy, dx, lddx, sizeof(T));
  ops().get<T>().act_backward(act, rows, cols, x, ldx, bias, dy, lddy, dx, lddx);
}
}  // namespace

void act_forward(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                 const float* bias, float* y, index_t ldy) {
  forward_checked(act, rows, cols, x, ldx, bias, y, ldy);
}
void act_forward(Activation act, index_t rows, index_t cols, const double* x, index_t ldx,
                 const double* bias, double* y, index_t ldy) {
  forward_checked(act, rows, cols, x, ldx, bias, y, ldy);
}
void act_backward(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                  const float* bias, const float* dy, index_t lddy, float* dx, index_t lddx) {
  backward_checked(act, rows, cols, x, ldx, bias, dy, lddy, dx, lddx);
}
void act_backward(Activation act, index_t rows, index_t cols, const double* x, index_t ldx,
                  const double* bias, const double* dy, index_t lddy, double* dx, index_t lddx) {
  backward_checked(act, rows, cols, x, ldx, bias, dy, lddy, dx, lddx);
}

}  // namespace tg::cpu
