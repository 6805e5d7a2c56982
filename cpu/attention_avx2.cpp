// Fused attention on AVX2/FMA: cpu/attention_impl.hpp over this path's GEMM micro-kernel and
// simd::F8 exponentials.
#include "tilegrad/cpu/attention.hpp"
#include "tilegrad/cpu/attention_impl.hpp"
#include "tilegrad/cpu/vmath/vec_avx2.hpp"

namespace tg::cpu {

TG_ATTENTION_PATH(avx2, simd::F8, gemm_impl::arch_avx2_f32())

}  // namespace tg::cpu
