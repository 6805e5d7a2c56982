// Fused cross-entropy, the portable path: cpu/cross_entropy_impl.hpp over simd::F1.
#include "tilegrad/cpu/vmath/vec_scalar.hpp"
// (the lane type before the generic code that uses it)
#include "tilegrad/cpu/cross_entropy_impl.hpp"

namespace tg::cpu {

TG_CROSS_ENTROPY_PATH(portable, simd::F1)

}  // namespace tg::cpu
