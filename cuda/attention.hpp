// CUDA fused attention: the CPU kernels' contract (kernels/attention.hpp) on device pointers, asynchronous on the current device's
// stream, checked like the CPU entries. Plain C++: callers need no nvcc. Without CUDA in
// the build they throw tg::Error.
#pragma once

#include "tilegrad/kernels/attention.hpp"
#include "tilegrad/kernels/half.hpp"

namespace tg::cuda {

// Fused attention (cuda/attention.cu), FP32: forward for head dims up to 256, backward
// (no atomics: the same bits each run) up to 128.
void attention_forward(const AttentionForwardArgs<float>& args);
void attention_backward(const AttentionBackwardArgs<float>& args);
// Fused attention forward on BF16 tensor cores (cuda/attention_bf16.cu): q, k, v, o bf16
// with unit stride along the head dim and 16-byte aligned rows, head dims 8 to 128 in
// steps of 8 (64 and 128 compiled, the rest zero-padded), causal or not, grouped heads,
// an optional bf16 additive mask with any non-negative strides (args.lse null); FP32
// accumulation and softmax, P rounded to bf16 for P V; lse (B, H, Sq) as FP32, or null.
// Which kernel the 16-bit attention forward runs: auto_select (mma.sync until the Hopper
// kernel has been timed on a GPU; TG_CUDA_ATTENTION=wgmma makes auto take it where it
// applies), mma_sync (cuda/attention_bf16.cuh: any device of compute capability 8.0+), or
// wgmma (cuda/attention_wgmma.cuh: wgmma and TMA on a compute capability 9.0 device, a
// tg::Error elsewhere).
enum class AttentionForwardPath : int { auto_select, mma_sync, wgmma };
void attention_forward_bf16(const AttentionForwardArgs<bfloat16>& args, float* lse,
                            AttentionForwardPath path = AttentionForwardPath::auto_select);
// How the 16-bit attention backward forms dQ:
//   deterministic: a kernel per query tile recomputes P and dS (7 products of N^2 d in
//     all), no atomics, the same bits every run;
//   atomic_dq: the dK / dV kernel adds its keys' share of dQ into an FP32 buffer with
//     atomics (5 products, FlashAttention-2's way; B H Sq D x 4 bytes of scratch); the
//     order of the sums, hence dQ's last bits, varies from run to run.
enum class AttentionBackwardPath : int { deterministic, atomic_dq };
// Its backward (FlashAttention-2, Algorithm 2, on BF16 tensor cores): dq, dk, dv bf16
// (overwritten) from q, k, v, o, d_o bf16 and the forward's FP32 lse; the same limits
// and mask.
void attention_backward_bf16(const AttentionBackwardArgs<bfloat16>& args, const float* lse,
                             AttentionBackwardPath path = AttentionBackwardPath::deterministic);
// The same pair on f16 (IEEE binary16) tensors: the same kernels with mma .f16, P and dS
// rounded to f16.
void attention_forward_f16(const AttentionForwardArgs<float16>& args, float* lse,
                           AttentionForwardPath path = AttentionForwardPath::auto_select);
void attention_backward_f16(const AttentionBackwardArgs<float16>& args, const float* lse,
                            AttentionBackwardPath path = AttentionBackwardPath::deterministic);

}  // namespace tg::cuda
