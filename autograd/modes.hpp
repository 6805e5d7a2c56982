// The modes an op consults before it records or computes: grad mode (record a graph
// or not, per thread), autocast (mixed precision for matmul and linear, per thread) and
// anomaly mode (check every output for NaN and Inf, process-wide), each with its RAII
// guard. autograd/node.hpp holds the graph they govern.
#pragma once

#include "tilegrad/kernels/types.hpp"

namespace tg {

// Grad mode: ops record a graph only while it is on (per thread; on by default). Read
// by every op, so inline: the flag is constant-initialized, a plain thread-local load.
namespace detail {
extern constinit thread_local bool t_grad_enabled;
}
inline bool grad_enabled() { return detail::t_grad_enabled; }
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool saved_;
};
// Sets grad mode to `on` for a scope (the engine runs backward under it).
class GradModeGuard {
 public:
  explicit GradModeGuard(bool on);
  ~GradModeGuard();
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool saved_;
};

// Autocast (mixed precision) on this thread: while an AutocastGuard for bf16 or f16
// lives, matmul and linear cast their f32 operands to that type (differentiable casts,
// so the gradients reach f32 master weights as f32) and multiply the rounded values
// exactly with f32 accumulation; their outputs stay f32, and every other op runs in f32
// as before. AutocastGuard(DType::f32) turns autocast off for a scope (the backward
// formulas run under it: their GEMMs take the saved 16-bit operands and f32 gradients).
DType autocast_dtype();  // f32 when off
class AutocastGuard {
 public:
  explicit AutocastGuard(DType dtype);  // f32, bf16 or f16 (else tg::Error)
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DType saved_;
};

// Anomaly mode (process-wide): every op checks its outputs for NaN and Inf, in the
// forward pass and in backward, and throws naming the op, its input shapes and where it
// was created. Off, it costs one relaxed load per op.
bool anomaly_enabled();
class AnomalyGuard {
 public:
  explicit AnomalyGuard(bool on = true);
  ~AnomalyGuard();
  AnomalyGuard(const AnomalyGuard&) = delete;
  AnomalyGuard& operator=(const AnomalyGuard&) = delete;

 private:
  bool saved_;
};

}  // namespace tg
