// Fused attention on AVX-512: cpu/attention_impl.hpp over this path's GEMM micro-kernel and
// simd::Z16 exponentials.
#include "tilegrad/cpu/attention.hpp"
#include "tilegrad/cpu/attention_impl.hpp"
#include "tilegrad/cpu/vmath/vec_avx512.hpp"

namespace tg::cpu {

TG_ATTENTION_PATH(avx512, simd::Z16, gemm_impl::arch_avx512_f32())

}  // namespace tg::cpu
