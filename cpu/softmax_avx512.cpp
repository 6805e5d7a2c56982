// softmax and log_softmax on AVX-512: cpu/softmax_impl.hpp over simd::Z16.
#include "tilegrad/cpu/vmath/vec_avx512.hpp"
// (the lane type before the generic code that uses it)
#include "tilegrad/cpu/softmax_impl.hpp"

namespace tg::cpu {

TG_SOFTMAX_PATH(avx512, simd::Z16)

}  // namespace tg::cpu
