// softmax and log_softmax: the portable path (cpu/softmax_impl.hpp over simd::F1) and
// the checked public entries.
#include "tilegrad/cpu/softmax.hpp"

#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/cpu/vmath/vec_scalar.hpp"
// (vec_scalar.hpp before the generic code that uses its types)
#include "tilegrad/cpu/softmax_impl.hpp"

namespace tg::cpu {

TG_SOFTMAX_PATH(portable, simd::F1)

#define TG_FORWARD(name)                                                                        \
  template <class T>                                                                            \
  void name##_checked(index_t rows, index_t cols, const T* x, index_t ldx, T* y, index_t ldy) { \
    check_softmax_forward(#name, rows, cols, x, ldx, y, ldy, sizeof(T));                        \
    ops().get<T>().name(rows, cols, x, ldx, y, ldy);                                            \
  }                                                                                             \
  void name(index_t rows, index_t cols, const float* x, index_t ldx, float* y, index_t ldy) {   \
    name##_checked(rows, cols, x, ldx, y, ldy);                                                 \
  }                                                                                             \
  void name(index_t rows, index_t cols, const double* x, index_t ldx, double* y, index_t ldy) { \
    name##_checked(rows, cols, x, ldx, y, ldy);                                                 \
  }
TG_FORWARD(softmax_forward)
TG_FORWARD(log_softmax_forward)
#undef TG_FORWARD

#define TG_BACKWARD(name)                                                                       \
  template <class T>                                                                            \
  void name##_checked(index_t rows, index_t cols, const T* y, index_t ldy, const T* dy,         \
                      index_t lddy, T* dx, index_t lddx) {                                      \
    check_softmax_backward(#name, rows, cols, y, ldy, dy, lddy, dx, lddx, sizeof(T));           \
    ops().get<T>().name(rows, cols, y, ldy, dy, lddy, dx, lddx);                                \
  }                                                                                             \
  void name(index_t rows, index_t cols, const float* y, index_t ldy, const float* dy,           \
            index_t lddy, float* dx, index_t lddx) {                                            \
    name##_checked(rows, cols, y, ldy, dy, lddy, dx, lddx);                                     \
  }                                                                                             \
  void name(index_t rows, index_t cols, const double* y, index_t ldy, const double* dy,         \
            index_t lddy, double* dx, index_t lddx) {                                           \
    name##_checked(rows, cols, y, ldy, dy, lddy, dx, lddx);                                     \
  }
TG_BACKWARD(softmax_backward)
TG_BACKWARD(log_softmax_backward)
#undef TG_BACKWARD

}  // namespace tg::cpu
