// The activation kernels on AVX2/FMA: cpu/activation_impl.hpp's loops over simd::F8.
#include "tilegrad/cpu/vmath/vec_avx2.hpp"
// (the lane type before the generic code that uses it)
#include "tilegrad/cpu/activation_impl.hpp"

namespace tg::cpu {

TG_ACTIVATION_PATH(avx2, simd::F8)

}  // namespace tg::cpu
