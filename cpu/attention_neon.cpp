// Fused attention on NEON (aarch64): cpu/attention_impl.hpp over this path's GEMM
// micro-kernel and simd::N4 exponentials.
#include "tilegrad/cpu/attention.hpp"
#include "tilegrad/cpu/attention_impl.hpp"
#include "tilegrad/cpu/vmath/vec_neon.hpp"

namespace tg::cpu {

TG_ATTENTION_PATH(neon, simd::N4, gemm_impl::arch_neon_f32())

}  // namespace tg::cpu
