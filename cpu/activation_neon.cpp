// The activation kernels on NEON (aarch64): cpu/activation_impl.hpp's loops over simd::N4.
#include "tilegrad/cpu/vmath/vec_neon.hpp"
// (the lane type before the generic code that uses it)
#include "tilegrad/cpu/activation_impl.hpp"

namespace tg::cpu {

TG_ACTIVATION_PATH(neon, simd::N4)

}  // namespace tg::cpu
