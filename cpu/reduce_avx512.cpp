// The reductions' AVX-512 path: cpu/reduce_impl.hpp's lane loops under this unit's flags.
#include "tilegrad/cpu/reduce.hpp"
#include "tilegrad/cpu/reduce_impl.hpp"

namespace tg::cpu {

TG_REDUCE_PATH(avx512)

}  // namespace tg::cpu
