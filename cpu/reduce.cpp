// The reductions' portable path and the checked entries.
#include "tilegrad/cpu/reduce.hpp"

#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/cpu/reduce_impl.hpp"

namespace tg::cpu {

TG_REDUCE_PATH(portable)

#define TG_REDUCE_DEFINE(T)                                                                                     \
  void reduce_checked(Reduce kind, index_t outer, index_t n, index_t inner, const T* x, index_t xs_outer,        \
                      index_t xs_n, index_t xs_inner, T* y, index_t ys_outer, index_t ys_inner) {                \
    check_reduce(reduce_name(kind), outer, n, inner, x, xs_outer, xs_n, xs_inner, y, ys_outer, ys_inner,         \
                 sizeof(T));                                                                                    \
    ops().get<T>().reduce(kind, outer, n, inner, x, xs_outer, xs_n, xs_inner, y, ys_outer, ys_inner);            \
  }
TG_REDUCE_DEFINE(float)
TG_REDUCE_DEFINE(double)
#undef TG_REDUCE_DEFINE

}  // namespace tg::cpu
