// The elementwise kernels' AVX2/FMA path: cpu/elementwise_impl.hpp's loops under this
// unit's flags, exp and log through simd::F8.
#include "tilegrad/cpu/elementwise.hpp"

#include "tilegrad/cpu/elementwise_impl.hpp"
#include "tilegrad/cpu/vmath/vec_avx2.hpp"

namespace tg::cpu {

TG_ELEMENTWISE_PATH(avx2, simd::F8)

}  // namespace tg::cpu
