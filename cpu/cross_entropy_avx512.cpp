// Fused cross-entropy, AVX-512: cpu/cross_entropy_impl.hpp over simd::Z16.
#include "tilegrad/cpu/vmath/vec_avx512.hpp"
// (the lane type before the generic code that uses it)
#include "tilegrad/cpu/cross_entropy_impl.hpp"

namespace tg::cpu {

TG_CROSS_ENTROPY_PATH(avx512, simd::Z16)

}  // namespace tg::cpu
