// softmax and log_softmax on AVX2/FMA: cpu/softmax_impl.hpp over simd::F8.
#include "tilegrad/cpu/vmath/vec_avx2.hpp"
// (the lane type before the generic code that uses it)
#include "tilegrad/cpu/softmax_impl.hpp"

namespace tg::cpu {

TG_SOFTMAX_PATH(avx2, simd::F8)

}  // namespace tg::cpu
