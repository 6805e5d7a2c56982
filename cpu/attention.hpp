// The CPU fused attention's public entries: the contract of kernels/attention.hpp, float
// through FlashAttention-2-style kernels (cpu/attention_impl.hpp), double through the
// reference.
//
// Checked entries validate with check_attention_* plus this backend's head-dim limit
// (1 to kMaxHeadDim) and throw tg::Error naming the argument, then run the path
// cpu::selected_isa() chose. The kernels allocate exactly attention_workspace_bytes()
// per call and nothing else: it grows with the head dim and the thread count, never
// with the sequence lengths.
#pragma once

#include <cstddef>

#include "tilegrad/kernels/attention.hpp"

namespace tg::cpu {

inline constexpr index_t kMaxHeadDim = 256;

// Bytes of workspace one forward or backward call takes for head_dim on `threads`
// threads (0: the current OpenMP thread count), on the selected path.
std::size_t attention_workspace_bytes(index_t head_dim, int threads = 0);

void attention_forward(const AttentionForwardArgs<float>& args);
void attention_forward(const AttentionForwardArgs<double>& args);
void attention_backward(const AttentionBackwardArgs<float>& args);
void attention_backward(const AttentionBackwardArgs<double>& args);

// Unchecked entries of the op tables, per path.
void attention_forward_avx2(const AttentionForwardArgs<float>& args);
void attention_backward_avx2(const AttentionBackwardArgs<float>& args);
void attention_forward_portable(const AttentionForwardArgs<float>& args);
void attention_backward_portable(const AttentionBackwardArgs<float>& args);
std::size_t attention_workspace_bytes_avx2(index_t head_dim, int threads);
void attention_forward_avx512(const AttentionForwardArgs<float>& args);
void attention_backward_avx512(const AttentionBackwardArgs<float>& args);
std::size_t attention_workspace_bytes_avx512(index_t head_dim, int threads);
void attention_forward_neon(const AttentionForwardArgs<float>& args);
void attention_backward_neon(const AttentionBackwardArgs<float>& args);
std::size_t attention_workspace_bytes_neon(index_t head_dim, int threads);
std::size_t attention_workspace_bytes_portable(index_t head_dim, int threads);

}  // namespace tg::cpu
