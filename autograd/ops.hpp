// The differentiable ops. Each runs its kernel through the op table of its inputs'
// device (mixing devices or dtypes in one op is a tg::Error naming the op), and, when
// grad mode is on and an input requires grad, records a node whose backward is written
// with these same ops, so that create_graph gives second derivatives. Fused kernels
// without a double backward (softmax, log_softmax, layer_norm, attention, cross_entropy,
// gelu, dropout, linear with an activation) throw under create_graph, naming the op.
//
// The named functions record the caller's source location (for anomaly mode and
// to_dot); the operators record their own.
//
// Broadcasting follows NumPy: sizes align from the right, a size 1 (or a missing
// dimension) stretches; gradients are summed back over the stretched dimensions.
#pragma once

#include <cstdint>
#include <optional>
#include <source_location>
#include <span>
#include <vector>

#include "tilegrad/autograd/tensor.hpp"
#include "tilegrad/kernels/activation.hpp"

namespace tg {

using Loc = std::source_location;

// ---- elementwise, with broadcasting ----
Tensor add(const Tensor& a, const Tensor& b, Loc where = Loc::current());
Tensor sub(const Tensor& a, const Tensor& b, Loc where = Loc::current());
Tensor mul(const Tensor& a, const Tensor& b, Loc where = Loc::current());
Tensor div(const Tensor& a, const Tensor& b, Loc where = Loc::current());
Tensor maximum(const Tensor& a, const Tensor& b, Loc where = Loc::current());  // ties: gradient split
Tensor add_scalar(const Tensor& a, double s, Loc where = Loc::current());
Tensor mul_scalar(const Tensor& a, double s, Loc where = Loc::current());
Tensor neg(const Tensor& a, Loc where = Loc::current());
Tensor exp(const Tensor& a, Loc where = Loc::current());
Tensor log(const Tensor& a, Loc where = Loc::current());
Tensor sqrt(const Tensor& a, Loc where = Loc::current());
Tensor abs(const Tensor& a, Loc where = Loc::current());  // gradient sign(x), 0 at 0
Tensor pow(const Tensor& a, double p, Loc where = Loc::current());
Tensor clamp(const Tensor& a, double lo, double hi, Loc where = Loc::current());  // gradient 1 inside [lo, hi]
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b, Loc where = Loc::current());  // cond != 0 ? a : b
// Not differentiable (constant masks): 1 where the comparison holds, else 0.
Tensor gt(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor sign(const Tensor& a);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);

// ---- reductions over dims (negative dims count from the end; empty dims = all) ----
Tensor sum(const Tensor& a, std::span<const int> dims = {}, bool keepdim = false, Loc where = Loc::current());
Tensor mean(const Tensor& a, std::span<const int> dims = {}, bool keepdim = false, Loc where = Loc::current());
// Max over dims; the gradient is split evenly among tied maxima.
Tensor max(const Tensor& a, std::span<const int> dims = {}, bool keepdim = false, Loc where = Loc::current());
Tensor sum(const Tensor& a, std::initializer_list<int> dims, bool keepdim = false, Loc where = Loc::current());
Tensor mean(const Tensor& a, std::initializer_list<int> dims, bool keepdim = false, Loc where = Loc::current());
Tensor max(const Tensor& a, std::initializer_list<int> dims, bool keepdim = false, Loc where = Loc::current());
// Sums a broadcast gradient back to `sizes` (the inverse of broadcasting to g's sizes).
Tensor sum_to(const Tensor& g, std::span<const index_t> sizes, Loc where = Loc::current());

// ---- linear algebra ----
// a (..., M, K) @ b (..., K, N): 2-D or batched (batch dims broadcast), a 1-D operand
// is a vector as in NumPy. Transposed views go to the GEMM as transpose flags, no copy.
Tensor matmul(const Tensor& a, const Tensor& b, Loc where = Loc::current());
// act(x W^T + b): x (..., in), W (out, in), bias (out) or undefined; one GEMM with the
// bias (and, without grad, the activation) in its epilogue.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias, Activation act = {},
              Loc where = Loc::current());

// ---- activations, normalizations, attention, dropout ----
Tensor relu(const Tensor& a, Loc where = Loc::current());
Tensor leaky_relu(const Tensor& a, double slope = 0.01, Loc where = Loc::current());
Tensor gelu(const Tensor& a, bool tanh_approximation = false, Loc where = Loc::current());
Tensor silu(const Tensor& a, Loc where = Loc::current());
Tensor sigmoid(const Tensor& a, Loc where = Loc::current());
Tensor tanh(const Tensor& a, Loc where = Loc::current());
Tensor activation(const Tensor& a, Activation act, Loc where = Loc::current());
// Over the last dimension.
Tensor softmax(const Tensor& a, Loc where = Loc::current());
Tensor log_softmax(const Tensor& a, Loc where = Loc::current());
// Over the last dimension; weight and bias (its size) optional.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5,
                  Loc where = Loc::current());
// q (B, H, Sq, D), k and v (B, Hkv, Sk, D) with H a multiple of Hkv (grouped-query);
// mask (additive, broadcastable to (B, H, Sq, Sk)) optional; scale default 1/sqrt(D).
// causal aligns bottom-right when Sq != Sk (kernels/attention.hpp). On a GPU, bf16 and
// f16 tensors, and f32 ones under a 16-bit AutocastGuard, run on the tensor cores in that
// type for head dims 8 to 128 in steps of 8 (P and dS rounded to it, FP32 accumulation;
// the output in the inputs' dtype, a mask rounded too); other 16-bit cases compute in f32
// and round once; the rest in their own dtype.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask = {},
                                    bool causal = false, std::optional<double> scale = std::nullopt,
                                    Loc where = Loc::current());
// Zeroes each element with probability p and scales the rest by 1/(1-p); identity when
// !training or p == 0. The mask comes from gen (default: the global generator).
Tensor dropout(const Tensor& a, double p, bool training = true, Generator* gen = nullptr, Loc where = Loc::current());

// ---- losses ----
enum class Reduction : std::uint8_t { mean, sum, none };
// logits (N, C), target (N) of i64 class indices; mean over the targets not ignored.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction = Reduction::mean,
                     index_t ignore_index = -100, double label_smoothing = 0.0, Loc where = Loc::current());
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean,
                Loc where = Loc::current());

// ---- joining ----
Tensor cat(const std::vector<Tensor>& tensors, int dim = 0, Loc where = Loc::current());
Tensor stack(const std::vector<Tensor>& tensors, int dim = 0, Loc where = Loc::current());

}  // namespace tg
