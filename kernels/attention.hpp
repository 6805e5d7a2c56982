// Scaled dot-product attention, forward and backward: the contract.
//
// Shapes (B batch, H query heads, Hkv key/value heads, Sq, Sk sequence lengths, D head
// dim), each a strided 4-D view, strides in elements, any order and any non-negative
// values, so (batch, seq, heads, d) layouts need no copy:
//   Q, O, dO, dQ: (B, H, Sq, D)   K, V, dK, dV: (B, Hkv, Sk, D)   lse: (B, H, Sq), contiguous
//   mask (optional, additive): (B, H, Sq, Sk) with stride 0 on any axis to broadcast
// Grouped-query attention: H % Hkv == 0 and query head h reads key/value head
// h / (H / Hkv); Hkv == 1 is multi-query attention.
//
// Forward, per (b, h, i):
//   s_ij  = scale * (q_i . k_j) + mask_ij, or -inf where the causal mask hides j
//   lse_i = log sum_j exp(s_ij)       p_ij = exp(s_ij - lse_i)       o_i = sum_j p_ij v_j
// Causal masking is aligned bottom-right, as FlashAttention and PyTorch >= 2.1 do for
// Sq != Sk: query i sees key j iff j <= i + (Sk - Sq), so the last query row sees every
// key. When Sq > Sk the first Sq - Sk rows see nothing.
// A fully masked row (every s_ij = -inf, Sk == 0 included) gives o_i = 0 and
// lse_i = -inf, and zero gradients in the backward, never NaN. Otherwise o_i is the
// product as IEEE arithmetic forms it: a value row holding an infinity or a NaN makes o_i
// NaN even where its key is masked (p_ij = 0, 0 * inf), as in PyTorch's math path.
//
// Backward (Dao 2023, FlashAttention-2, Algorithm 2), from dO, O and lse:
//   D_i = dO_i . o_i     dp_ij = dO_i . v_j     ds_ij = p_ij (dp_ij - D_i)
//   dQ_i = scale sum_j ds_ij k_j    dK_j = scale sum_i ds_ij q_i    dV_j = sum_i p_ij dO_i
// dK and dV sum over the H / Hkv query heads that share a key/value head. The mask is a
// constant: it gets no gradient.
#pragma once

#include <cstddef>

#include "tilegrad/kernels/types.hpp"

namespace tg {

// A strided 4-D view; for the mask the axes are (b, h, query, key).
template <class T>
struct View4 {
  T* data = nullptr;
  index_t sb = 0, sh = 0, ss = 0, sd = 0;

  // Always inlined: an out-of-line copy compiled in an AVX-512 unit could be the one
  // the linker keeps for every path (tests/isa_units_check.py).
  [[gnu::always_inline]] T& at(index_t b, index_t h, index_t s, index_t d) const {
    return data[b * sb + h * sh + s * ss + d * sd];
  }
};

struct AttentionDims {
  index_t batch = 1, heads = 1, kv_heads = 1, seq_q = 0, seq_k = 0, head_dim = 0;
};

template <class T>
struct AttentionForwardArgs {
  AttentionDims dims;
  double scale = 0;  // usually 1 / sqrt(head_dim); f64 kernels use it whole, the others round it
  bool causal = false;
  View4<const T> q, k, v;
  View4<const T> mask;  // data == nullptr: no additive mask
  View4<T> o;
  T* lse = nullptr;  // (B, H, Sq) contiguous; nullptr when the caller does not need it
};

template <class T>
struct AttentionBackwardArgs {
  AttentionDims dims;
  double scale = 0;
  bool causal = false;
  View4<const T> q, k, v, o, d_o;
  View4<const T> mask;
  const T* lse = nullptr;  // as written by the forward
  View4<T> dq, dk, dv;     // overwritten
};

// Argument checks shared by every backend's public entry (throw tg::Error).
template <class T> void check_attention_forward(const char* op, const AttentionForwardArgs<T>& args);
template <class T> void check_attention_backward(const char* op, const AttentionBackwardArgs<T>& args);

// Reference: every score, probability and sum in double. The backward recomputes the
// probabilities from Q, K and the mask; it reads neither O nor lse.
template <class T> void attention_forward_ref(const AttentionForwardArgs<T>& args);
template <class T> void attention_backward_ref(const AttentionBackwardArgs<T>& args);

}  // namespace tg
