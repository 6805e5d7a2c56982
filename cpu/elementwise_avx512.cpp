// The elementwise kernels' AVX-512 path: the same loops compiled for AVX-512 (zmm), exp
// and log through sixteen float lanes (simd::Z16).
#include "cpu/elementwise.hpp"

#include "cpu/elementwise_impl.hpp"
#include "cpu/vmath/vec_avx512.hpp"

namespace tg::cpu {

#define TG_EW_DEFINE(T)                                                                                   \
  void unary_avx512(Unary op, double p0, double p1, const Shape& xs, const T* x, const Shape& ys, T* y) {     \
    ew_impl::unary<simd::Z16>(op, p0, p1, xs, x, ys, y);                                                   \
  }                                                                                                       \
  void binary_avx512(Binary op, const Shape& as, const T* a, const Shape& bs, const T* b, const Shape& ys,     \
                   T* y) {                                                                                \
    ew_impl::binary(op, as, a, bs, b, ys, y);                                                             \
  }                                                                                                       \
  void where_avx512(const Shape& cs, const T* c, const Shape& as, const T* a, const Shape& bs, const T* b,     \
                  const Shape& ys, T* y) {                                                                \
    ew_impl::where(cs, c, as, a, bs, b, ys, y);                                                           \
  }
TG_EW_DEFINE(float)
TG_EW_DEFINE(double)
#undef TG_EW_DEFINE

}  // namespace tg::cpu
