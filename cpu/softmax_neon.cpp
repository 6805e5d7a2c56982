// softmax and log_softmax on NEON (aarch64): cpu/softmax_impl.hpp over simd::N4.
#include "tilegrad/cpu/vmath/vec_neon.hpp"
// (the lane type before the generic code that uses it)
#include "tilegrad/cpu/softmax_impl.hpp"

namespace tg::cpu {

TG_SOFTMAX_PATH(neon, simd::N4)

}  // namespace tg::cpu
