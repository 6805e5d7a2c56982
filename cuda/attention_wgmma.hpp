// The sm_90a (Hopper) path of the 16-bit attention forward, cuda/attention_wgmma.cu.
// Internal to cuda/.
#pragma once

#include "tilegrad/cuda/attention_bf16.cuh"

namespace tg::cuda::detail {

// O and lse for `f` (checked by the caller: views of 16-byte aligned rows, strides
// multiples of 8 values, head dims 8 to 128) on the Hopper kernel (cuda/attention_wgmma.cuh),
// f16 or bf16. Returns false, doing nothing, where it does not apply: no compute
// capability 9.0 device running the sm_90a binary, or no tensor-map encoder.
bool attention_forward_wgmma(bool f16, const attn16::Fwd16& f);

}  // namespace tg::cuda::detail
