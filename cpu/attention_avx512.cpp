// Fused attention on AVX-512: cpu/attention_impl.hpp over the 12x32 GEMM micro-kernel and
// sixteen-lane exponentials.
#include "cpu/attention.hpp"
#include "cpu/attention_impl.hpp"
#include "cpu/vmath/vec_avx512.hpp"

namespace tg::cpu {

void attention_forward_avx512(const AttentionForwardArgs<float>& a) {
  attn_impl::forward<simd::Z16>(gemm_impl::arch_avx512_f32(), a);
}
void attention_backward_avx512(const AttentionBackwardArgs<float>& a) {
  attn_impl::backward<simd::Z16>(gemm_impl::arch_avx512_f32(), a);
}
std::size_t attention_workspace_bytes_avx512(index_t head_dim, int threads) {
  const auto& arch = gemm_impl::arch_avx512_f32();
  return attn_impl::workspace_bytes(head_dim, threads, arch.mr, arch.nr);
}

}  // namespace tg::cpu
