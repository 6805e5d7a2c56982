// The elementwise kernels' NEON path (aarch64): cpu/elementwise_impl.hpp's loops, exp and
// log through simd::N4.
#include "tilegrad/cpu/elementwise.hpp"

#include "tilegrad/cpu/elementwise_impl.hpp"
#include "tilegrad/cpu/vmath/vec_neon.hpp"

namespace tg::cpu {

TG_ELEMENTWISE_PATH(neon, simd::N4)

}  // namespace tg::cpu
