// Fused attention on AVX2/FMA: cpu/attention_impl.hpp over the 6x16 GEMM micro-kernel and
// eight-lane exponentials.
#include "cpu/attention.hpp"
#include "cpu/attention_impl.hpp"
#include "cpu/vmath/vec_avx2.hpp"

namespace tg::cpu {

void attention_forward_avx2(const AttentionForwardArgs<float>& a) {
  attn_impl::forward<simd::F8>(gemm_impl::arch_avx2_f32(), a);
}
void attention_backward_avx2(const AttentionBackwardArgs<float>& a) {
  attn_impl::backward<simd::F8>(gemm_impl::arch_avx2_f32(), a);
}
std::size_t attention_workspace_bytes_avx2(index_t head_dim, int threads) {
  const auto& arch = gemm_impl::arch_avx2_f32();
  return attn_impl::workspace_bytes(head_dim, threads, arch.mr, arch.nr);
}

}  // namespace tg::cpu
