// The activations and their derivatives on the device (kernels/activation.hpp's
// functions), shared by the GEMM epilogue and the elementwise kernels. At +-inf each
// returns its limit, never inf * 0 = NaN; NaN in gives NaN out.
#pragma once

#ifndef TG_SIMT_HOST  // the host SIMT emulator (tests/simt) stands in for CUDA
#include <cuda_runtime.h>
#endif

#include "tilegrad/kernels/activation.hpp"

namespace tg::cuda {

__device__ __forceinline__ float act_forward1(Act kind, float slope, float x) {
  if (isinf(x) && kind != Act::relu && kind != Act::leaky_relu && kind != Act::none) {
    switch (kind) {
      case Act::sigmoid: return x > 0 ? 1.0f : 0.0f;
      case Act::tanh: return x > 0 ? 1.0f : -1.0f;
      default: return x > 0 ? x : 0.0f;  // gelu, silu: x at +inf, 0 at -inf
    }
  }
  switch (kind) {
    case Act::relu: return x < 0.0f ? 0.0f : x;  // NaN stays NaN
    case Act::leaky_relu: return x >= 0.0f ? x : (x < 0.0f ? slope * x : x);
    case Act::gelu_erf: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case Act::gelu_tanh: return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case Act::silu: return x / (1.0f + expf(-x));
    case Act::sigmoid: return 1.0f / (1.0f + expf(-x));
    case Act::tanh: return tanhf(x);
    default: return x;
  }
}

__device__ __forceinline__ float act_derivative1(Act kind, float slope, float x) {
  if (x != x) return x;  // NaN in gives NaN out, the identity's derivative included (as the reference)
  switch (kind) {
    case Act::relu: return x > 0.0f ? 1.0f : 0.0f;
    case Act::leaky_relu: return x > 0.0f ? 1.0f : slope;
    case Act::gelu_erf:
      if (isinf(x)) return x > 0 ? 1.0f : 0.0f;
      return 0.5f * (1.0f + erff(x * 0.70710678118654752f)) + x * expf(-0.5f * x * x) * 0.3989422804014327f;
    case Act::gelu_tanh: {
      if (isinf(x)) return x > 0 ? 1.0f : 0.0f;
      const float t = tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x));
      return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * x * x);
    }
    case Act::silu: {
      if (isinf(x)) return x > 0 ? 1.0f : 0.0f;
      const float s = 1.0f / (1.0f + expf(-x));
      return s * (1.0f + x * (1.0f - s));
    }
    case Act::sigmoid: {
      const float s = 1.0f / (1.0f + expf(-x));
      return s * (1.0f - s);
    }
    case Act::tanh: {
      const float t = tanhf(x);
      return 1.0f - t * t;
    }
    default: return 1.0f;
  }
}

}  // namespace tg::cuda
