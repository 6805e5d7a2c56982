// Fused cross-entropy, AVX2/FMA: cpu/cross_entropy_impl.hpp over simd::F8.
#include "tilegrad/cpu/vmath/vec_avx2.hpp"
// (the lane type before the generic code that uses it)
#include "tilegrad/cpu/cross_entropy_impl.hpp"

namespace tg::cpu {

TG_CROSS_ENTROPY_PATH(avx2, simd::F8)

}  // namespace tg::cpu
