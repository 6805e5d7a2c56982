// layer_norm on AVX2/FMA: cpu/layer_norm_impl.hpp over simd::F8.
#include "tilegrad/cpu/vmath/vec_avx2.hpp"
// (the lane type before the generic code that uses it)
#include "tilegrad/cpu/layer_norm_impl.hpp"

namespace tg::cpu {

TG_LAYER_NORM_PATH(avx2, simd::F8)

}  // namespace tg::cpu
