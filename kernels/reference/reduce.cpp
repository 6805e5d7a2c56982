// Reference sum, mean and max over the middle axis of an (outer, n, inner) view, in double.
#include <limits>

#include "tilegrad/kernels/reduce.hpp"

namespace tg {

template <class T>
void reduce_ref(Reduce kind, index_t outer, index_t n, index_t inner, const T* x,
                index_t xs_outer, index_t xs_n, index_t xs_inner, T* y, index_t ys_outer,
                index_t ys_inner) {
  for (index_t o = 0; o < outer; ++o)
    for (index_t i = 0; i < inner; ++i) {
      double s = kind == Reduce::max ? -std::numeric_limits<double>::infinity() : 0.0;
      for (index_t r = 0; r < n; ++r) {
        const double v = double(x[o * xs_outer + r * xs_n + i * xs_inner]);
        s = kind != Reduce::max ? s + v : (v > s || v != v) ? v : s;
        if (s != s) break;  // max: a NaN wins
      }
      if (kind == Reduce::mean)
        s = n > 0 ? s / double(n) : std::numeric_limits<double>::quiet_NaN();
      y[o * ys_outer + i * ys_inner] = T(s);
    }
}

template void reduce_ref(Reduce, index_t, index_t, index_t, const float*, index_t, index_t,
                         index_t, float*, index_t, index_t);
template void reduce_ref(Reduce, index_t, index_t, index_t, const double*, index_t, index_t,
                         index_t, double*, index_t, index_t);

}  // namespace tg
