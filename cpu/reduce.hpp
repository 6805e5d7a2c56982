// CPU sum, mean and max over one axis of a strided view (kernels/reduce.hpp), per path.
// The raw entries trust their input (the op table calls them); the checked one runs
// check_reduce first and uses the selected path.
#pragma once

#include "tilegrad/kernels/reduce.hpp"

namespace tg::cpu {

#define TG_REDUCE_DECLARE(suffix, T)                                                                      \
  void reduce_##suffix(Reduce kind, index_t outer, index_t n, index_t inner, const T* x, index_t xs_outer, \
                       index_t xs_n, index_t xs_inner, T* y, index_t ys_outer, index_t ys_inner);
TG_REDUCE_DECLARE(portable, float)
TG_REDUCE_DECLARE(portable, double)
TG_REDUCE_DECLARE(avx2, float)
TG_REDUCE_DECLARE(avx2, double)
TG_REDUCE_DECLARE(avx512, float)
TG_REDUCE_DECLARE(avx512, double)
TG_REDUCE_DECLARE(neon, float)
TG_REDUCE_DECLARE(neon, double)
TG_REDUCE_DECLARE(checked, float)
TG_REDUCE_DECLARE(checked, double)
#undef TG_REDUCE_DECLARE

}  // namespace tg::cpu
