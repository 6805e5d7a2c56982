// The reductions' AVX-512 path: the same lane loops compiled for AVX-512 (zmm).
#include "cpu/reduce.hpp"
#include "cpu/reduce_impl.hpp"

namespace tg::cpu {

#define TG_REDUCE_DEFINE(T)                                                                                     \
  void reduce_avx512(Reduce kind, index_t outer, index_t n, index_t inner, const T* x, index_t xs_outer,           \
                   index_t xs_n, index_t xs_inner, T* y, index_t ys_outer, index_t ys_inner) {                   \
    reduce_impl::reduce(kind, outer, n, inner, x, xs_outer, xs_n, xs_inner, y, ys_outer, ys_inner);             \
  }
TG_REDUCE_DEFINE(float)
TG_REDUCE_DEFINE(double)
#undef TG_REDUCE_DEFINE

}  // namespace tg::cpu
