// Fused attention's portable path (the portable GEMM micro-kernel, one float lane) and
// the checked entries.
#include "tilegrad/cpu/attention.hpp"

#include "tilegrad/cpu/attention_impl.hpp"
#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/cpu/ops.hpp"

namespace tg::cpu {

float* attention_workspace(std::size_t bytes) {
  auto* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  TG_CHECK(p != nullptr, "attention", "workspace", "cannot allocate ", bytes, " bytes");
  return p;
}

TG_ATTENTION_PATH(portable, simd::F1, gemm_impl::arch_portable_f32())

std::size_t attention_workspace_bytes(index_t head_dim, int threads) {
  TG_CHECK(head_dim >= 1 && head_dim <= kMaxHeadDim, "attention_workspace_bytes", "head_dim", "expected 1 to ",
           kMaxHeadDim, ", got ", head_dim);
  TG_CHECK(threads >= 0, "attention_workspace_bytes", "threads", "expected >= 0, got ", threads);
  if (threads == 0) threads = num_threads();
#if TG_X86_PATHS
  if (selected_isa() == Isa::avx512) return attention_workspace_bytes_avx512(head_dim, threads);
  if (selected_isa() == Isa::avx2) return attention_workspace_bytes_avx2(head_dim, threads);
#endif
#if TG_NEON_PATHS
  if (selected_isa() == Isa::neon) return attention_workspace_bytes_neon(head_dim, threads);
#endif
  return attention_workspace_bytes_portable(head_dim, threads);
}

namespace {
void check_head_dim(const char* op, index_t head_dim) {
  TG_CHECK(head_dim <= kMaxHeadDim, op, "head_dim", "expected at most ", kMaxHeadDim,
           " on the CPU (the tiles are sized for it), got ", head_dim);
}
}  // namespace

template <class T>
static void forward_checked(const AttentionForwardArgs<T>& a) {
  check_attention_forward("attention_forward", a);
  check_head_dim("attention_forward", a.dims.head_dim);
  ops().get<T>().attention_forward(a);
}
template <class T>
static void backward_checked(const AttentionBackwardArgs<T>& a) {
  check_attention_backward("attention_backward", a);
  check_head_dim("attention_backward", a.dims.head_dim);
  ops().get<T>().attention_backward(a);
}

void attention_forward(const AttentionForwardArgs<float>& a) { forward_checked(a); }
void attention_forward(const AttentionForwardArgs<double>& a) { forward_checked(a); }
void attention_backward(const AttentionBackwardArgs<float>& a) { backward_checked(a); }
void attention_backward(const AttentionBackwardArgs<double>& a) { backward_checked(a); }

}  // namespace tg::cpu
