// The reductions' NEON path (aarch64): cpu/reduce_impl.hpp's lane loops, which the
// compiler vectorizes with Advanced SIMD.
#include "tilegrad/cpu/reduce.hpp"
#include "tilegrad/cpu/reduce_impl.hpp"

namespace tg::cpu {

TG_REDUCE_PATH(neon)

}  // namespace tg::cpu
