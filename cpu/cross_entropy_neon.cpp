// Fused cross-entropy, NEON (aarch64): cpu/cross_entropy_impl.hpp over simd::N4.
#include "tilegrad/cpu/vmath/vec_neon.hpp"
// (the lane type before the generic code that uses it)
#include "tilegrad/cpu/cross_entropy_impl.hpp"

namespace tg::cpu {

TG_CROSS_ENTROPY_PATH(neon, simd::N4)

}  // namespace tg::cpu
