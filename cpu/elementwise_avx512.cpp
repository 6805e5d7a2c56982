// The elementwise kernels' AVX-512 path: cpu/elementwise_impl.hpp's loops under this
// unit's flags, exp and log through simd::Z16.
#include "tilegrad/cpu/elementwise.hpp"

#include "tilegrad/cpu/elementwise_impl.hpp"
#include "tilegrad/cpu/vmath/vec_avx512.hpp"

namespace tg::cpu {

TG_ELEMENTWISE_PATH(avx512, simd::Z16)

}  // namespace tg::cpu
