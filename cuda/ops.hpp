// The CUDA backend's op table (kernels/ops.hpp) and the entries cuda/ops.cu adds to those
// of cuda/gemm.hpp, cuda/activation.hpp, cuda/softmax.hpp and cuda/cross_entropy.hpp:
// every op autograd's tensors need, in f32, with the CPU kernels' signatures, on device
// pointers, queued on the current stream (no host synchronization). f64 entries throw tg::Error (f32 only on CUDA). Plain C++: callers need no nvcc.
// Without CUDA in the build every entry throws.
#pragma once

#include <span>

#include "tilegrad/kernels/ops.hpp"

namespace tg::cuda {

const OpTable& ops();

// y (contiguous, src.numel() elements of `to`) = the elements of x (`from`, laid out as
// src) converted: f32, bf16, f16 in any direction (the same dtype copies), rounded to
// nearest even (kernels/half.hpp).
void convert(DType from, DType to, const Shape& src, const void* x, void* y);

// Checked entries (the check_* of kernels/, pointers on one device).
void unary(Unary op, double p0, double p1, const Shape& xs, const float* x, const Shape& ys, float* y);
void binary(Binary op, const Shape& as, const float* a, const Shape& bs, const float* b, const Shape& ys, float* y);
void where(const Shape& cs, const float* c, const Shape& as, const float* a, const Shape& bs, const float* b,
           const Shape& ys, float* y);
void reduce(Reduce kind, index_t outer, index_t n, index_t inner, const float* x, index_t xs_outer, index_t xs_n,
            index_t xs_inner, float* y, index_t ys_outer, index_t ys_inner);
void layer_norm_forward(index_t rows, index_t cols, const float* x, index_t ldx, const float* gamma, const float* beta,
                        double eps, float* y, index_t ldy, float* mean, float* rstd);
void layer_norm_backward(index_t rows, index_t cols, const float* x, index_t ldx, const float* dy, index_t lddy,
                         const float* gamma, const float* mean, const float* rstd, double eps, float* dx, index_t lddx,
                         float* dgamma, float* dbeta);
void random(Random kind, index_t n, float* y, double a, double b, std::uint64_t seed, std::uint64_t offset);
void dropout(index_t n, const float* x, float* y, double p, std::uint64_t seed, std::uint64_t offset);
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
// One launch per 24 parameters (a multi-tensor apply); the slots' arrays on the device.
void sgd_step(const SgdConfig& c, std::span<const ParamSlot<float>> slots);
void adam_step(const AdamConfig& c, std::span<const ParamSlot<float>> slots);

}  // namespace tg::cuda
