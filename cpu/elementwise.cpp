// The elementwise kernels' portable path (one float lane for exp and log) and the
// checked entries.
#include "tilegrad/cpu/elementwise.hpp"

#include "tilegrad/cpu/elementwise_impl.hpp"
#include "tilegrad/cpu/ops.hpp"

namespace tg::cpu {

TG_ELEMENTWISE_PATH(portable, simd::F1)

#define TG_EW_DEFINE(T)                                                                                   \
  void unary_checked(Unary op, double p0, double p1, const Shape& xs, const T* x, const Shape& ys, T* y) {  \
    check_unary(unary_name(op), xs, x, ys, y, sizeof(T), op != Unary::fill);                               \
    ops().get<T>().unary(op, p0, p1, xs, x, ys, y);                                                       \
  }                                                                                                       \
  void binary_checked(Binary op, const Shape& as, const T* a, const Shape& bs, const T* b, const Shape& ys,  \
                      T* y) {                                                                             \
    check_binary(binary_name(op), as, a, bs, b, ys, y, sizeof(T));                                        \
    ops().get<T>().binary(op, as, a, bs, b, ys, y);                                                       \
  }                                                                                                       \
  void where_checked(const Shape& cs, const T* c, const Shape& as, const T* a, const Shape& bs, const T* b,  \
                     const Shape& ys, T* y) {                                                             \
    check_where("where", cs, c, as, a, bs, b, ys, y, sizeof(T));                                          \
    ops().get<T>().where(cs, c, as, a, bs, b, ys, y);                                                     \
  }
TG_EW_DEFINE(float)
TG_EW_DEFINE(double)
#undef TG_EW_DEFINE

}  // namespace tg::cpu
