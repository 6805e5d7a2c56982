// The elementwise kernels' AVX2/FMA path: the same loops compiled for AVX2, exp and log
// through eight float lanes (simd::F8).
#include "cpu/elementwise.hpp"

#include "cpu/elementwise_impl.hpp"
#include "cpu/vmath/vec_avx2.hpp"

namespace tg::cpu {

#define TG_EW_DEFINE(T)                                                                                   \
  void unary_avx2(Unary op, double p0, double p1, const Shape& xs, const T* x, const Shape& ys, T* y) {     \
    ew_impl::unary<simd::F8>(op, p0, p1, xs, x, ys, y);                                                   \
  }                                                                                                       \
  void binary_avx2(Binary op, const Shape& as, const T* a, const Shape& bs, const T* b, const Shape& ys,     \
                   T* y) {                                                                                \
    ew_impl::binary(op, as, a, bs, b, ys, y);                                                             \
  }                                                                                                       \
  void where_avx2(const Shape& cs, const T* c, const Shape& as, const T* a, const Shape& bs, const T* b,     \
                  const Shape& ys, T* y) {                                                                \
    ew_impl::where(cs, c, as, a, bs, b, ys, y);                                                           \
  }
TG_EW_DEFINE(float)
TG_EW_DEFINE(double)
#undef TG_EW_DEFINE

}  // namespace tg::cpu
