// The activation kernels on AVX-512: cpu/activation_impl.hpp's loops over simd::Z16.
#include "tilegrad/cpu/vmath/vec_avx512.hpp"
// (the lane type before the generic code that uses it)
#include "tilegrad/cpu/activation_impl.hpp"

namespace tg::cpu {

TG_ACTIVATION_PATH(avx512, simd::Z16)

}  // namespace tg::cpu
