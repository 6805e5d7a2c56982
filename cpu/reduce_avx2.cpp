// The reductions' AVX2/FMA path: cpu/reduce_impl.hpp's lane loops under this unit's flags.
#include "tilegrad/cpu/reduce.hpp"
#include "tilegrad/cpu/reduce_impl.hpp"

namespace tg::cpu {

TG_REDUCE_PATH(avx2)

}  // namespace tg::cpu
