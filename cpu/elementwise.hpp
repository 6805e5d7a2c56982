// CPU elementwise kernels over N-D strided views (kernels/elementwise.hpp), per path.
// The raw entries trust their input (the op table calls them); the checked ones run
// check_unary / check_binary / check_where first and use the selected path.
#pragma once

#include "tilegrad/kernels/elementwise.hpp"

namespace tg::cpu {

#define TG_EW_DECLARE(suffix, T)                                                                        \
  void unary_##suffix(Unary op, double p0, double p1, const Shape& xs, const T* x, const Shape& ys, T* y); \
  void binary_##suffix(Binary op, const Shape& as, const T* a, const Shape& bs, const T* b, const Shape& ys, \
                       T* y);                                                                            \
  void where_##suffix(const Shape& cs, const T* c, const Shape& as, const T* a, const Shape& bs, const T* b, \
                      const Shape& ys, T* y);
TG_EW_DECLARE(portable, float)
TG_EW_DECLARE(portable, double)
TG_EW_DECLARE(avx2, float)
TG_EW_DECLARE(avx2, double)
TG_EW_DECLARE(avx512, float)
TG_EW_DECLARE(avx512, double)
TG_EW_DECLARE(neon, float)
TG_EW_DECLARE(neon, double)
TG_EW_DECLARE(checked, float)
TG_EW_DECLARE(checked, double)
#undef TG_EW_DECLARE

}  // namespace tg::cpu
