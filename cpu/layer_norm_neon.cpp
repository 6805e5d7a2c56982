// layer_norm on NEON (aarch64): cpu/layer_norm_impl.hpp over simd::N4.
#include "tilegrad/cpu/vmath/vec_neon.hpp"
// (the lane type before the generic code that uses it)
#include "tilegrad/cpu/layer_norm_impl.hpp"

namespace tg::cpu {

TG_LAYER_NORM_PATH(neon, simd::N4)

}  // namespace tg::cpu
