// Optimizer steps, fused over all parameters at once (a "multi-tensor apply"): one call
// updates every parameter of a model from its gradient and its state, in one pass over
// each array, instead of a chain of small elementwise ops per parameter.
//
// Each ParamSlot is one contiguous parameter of n elements with its gradient and state
// arrays (m: momentum buffer or Adam's first moment; v: Adam's second moment).
//
// SGD (PyTorch's torch.optim.SGD), per element, g the gradient:
//   g = g + weight_decay p
//   momentum > 0:  b = first_step ? g : momentum b + (1 - dampening) g      (b in m)
//                  g = nesterov ? g + momentum b : b
//   p = p - lr g
// Adam / AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019, decoupled decay), t >= 1:
//   decoupled:  p = p (1 - lr weight_decay)       else:  g = g + weight_decay p
//   m = beta1 m + (1 - beta1) g        v = beta2 v + (1 - beta2) g^2
//   p = p - lr (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
// Arrays of different slots must not overlap; grad is read only.
//
// Live scalars: when a config's `live` is set, the call reads the learning rate from
// live[0] and (Adam) the step count t from live[1] instead of `lr` and `step`, where the
// parameters are (device memory for a device's kernels). A step replayed from a CUDA
// graph runs without the host: the rate a schedule sets between replays and the count
// each replay advances (on the device, before the call) have to be read there. t is an
// f32 count, exact to 2^24 steps (PyTorch's capturable Adam keeps it so too).
#pragma once

#include <cstddef>
#include <span>

#include "tilegrad/kernels/types.hpp"

namespace tg {

template <class T>
struct ParamSlot {
  T* param = nullptr;
  const T* grad = nullptr;
  T* m = nullptr;  // may be null for SGD without momentum
  T* v = nullptr;  // Adam only
  index_t n = 0;
};

struct SgdConfig {
  double lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
  bool first_step = true;  // the momentum buffer starts as the first gradient
  const float* live = nullptr;  // [lr] in the parameters' memory, or null
};

struct AdamConfig {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled = false;  // AdamW
  index_t step = 1;        // t, counted from 1
  const float* live = nullptr;  // [lr, t] in the parameters' memory, or null
};

// A host kernel's first step: the config with its live scalars (host memory) read in.
inline SgdConfig read_live(SgdConfig c) {
  if (c.live) c.lr = double(c.live[0]), c.live = nullptr;
  return c;
}
inline AdamConfig read_live(AdamConfig c) {
  if (c.live) c.lr = double(c.live[0]), c.step = index_t(c.live[1]), c.live = nullptr;
  return c;
}

template <class T>
void check_param_slots(const char* op, std::span<const ParamSlot<T>> slots, bool needs_m, bool needs_v);

template <class T>
void sgd_step_ref(const SgdConfig& c, std::span<const ParamSlot<T>> slots);
template <class T>
void adam_step_ref(const AdamConfig& c, std::span<const ParamSlot<T>> slots);

}  // namespace tg
