// Loss scaling for f16 mixed precision (autograd's AutocastGuard with DType::f16), as
// torch.amp.GradScaler does it: the loss is multiplied by a large scale before backward,
// so that small gradients survive f16's narrow range (its smallest subnormal is 6e-8, and
// the backward's 16-bit gradients are rounded there); step() divides the gradients by the
// scale and updates the parameters only when every gradient is finite. An inf or NaN
// means the scale was too large: the step is skipped and the scale multiplied by
// backoff_factor; after growth_interval finite steps in a row it is multiplied by
// growth_factor. bf16 has f32's range and needs no scaler (a disabled one passes through).
//
//   nn::GradScaler scaler;
//   { AutocastGuard amp(DType::f16); loss = cross_entropy(model(x), y); }
//   opt.zero_grad();
//   scaler.scale(loss).backward();
//   scaler.unscale(opt);                        // optional: before clip_grad_norm
//   clip_grad_norm(opt.params(), 1.0);
//   scaler.step(opt);                           // unscale (once), check, step or skip, update
#pragma once

#include "tilegrad/autograd/autograd.hpp"
#include "tilegrad/nn/optim.hpp"

namespace tg::nn {

struct GradScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;   // > 1
  double backoff_factor = 0.5;  // in (0, 1)
  index_t growth_interval = 2000;
  bool enabled = true;  // false: scale() and unscale() pass through, step() always steps
};

class GradScaler {
 public:
  GradScaler() : GradScaler(GradScalerOptions{}) {}
  explicit GradScaler(const GradScalerOptions& options);

  // loss * scale (differentiable); the loss itself when disabled.
  Tensor scale(const Tensor& loss) const;
  // Divides the gradients of opt's parameters by the scale, in place, and notes whether
  // all are finite (one read from the device for all of them). Once per step: a second
  // call before step() is an error.
  void unscale(Optimizer& opt);
  // unscale() unless done, then opt.step() if every gradient was finite; then the scale
  // is updated. Returns whether the parameters were updated.
  bool step(Optimizer& opt);

  double scale_value() const { return scale_; }
  index_t skipped_steps() const { return skipped_; }
  const GradScalerOptions& options() const { return options_; }

 private:
  GradScalerOptions options_;
  double scale_;
  index_t finite_in_a_row_ = 0, skipped_ = 0;
  bool unscaled_ = false, finite_ = true;
};

}  // namespace tg::nn
