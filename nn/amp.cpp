#include "tilegrad/nn/amp.hpp"

#include <cmath>
#include <map>

#include "tilegrad/kernels/error.hpp"

namespace tg::nn {

GradScaler::GradScaler(const GradScalerOptions& options) : options_(options), scale_(options.init_scale) {
  const char* op = "nn::GradScaler";
  TG_CHECK(std::isfinite(options.init_scale) && options.init_scale > 0, op, "init_scale",
           "expected a finite value > 0, got ", options.init_scale);
  TG_CHECK(std::isfinite(options.growth_factor) && options.growth_factor > 1, op, "growth_factor",
           "expected a finite value > 1, got ", options.growth_factor);
  TG_CHECK(options.backoff_factor > 0 && options.backoff_factor < 1, op, "backoff_factor",
           "expected a value in (0, 1), got ", options.backoff_factor);
  TG_CHECK(options.growth_interval >= 1, op, "growth_interval", "expected >= 1, got ", options.growth_interval);
}

Tensor GradScaler::scale(const Tensor& loss) const {
  TG_CHECK(loss.defined(), "nn::GradScaler::scale", "loss", "expected a defined tensor");
  return options_.enabled ? loss * scale_ : loss;
}

void GradScaler::unscale(Optimizer& opt) {
  TG_CHECK(!unscaled_, "nn::GradScaler::unscale", "opt",
           "the gradients were already unscaled since the last step(); call step() first");
  unscaled_ = true;
  finite_ = true;
  if (!options_.enabled) return;
  NoGradGuard no_grad;
  // g - g is 0 where g is finite and NaN where it is inf or NaN: one sum per device and
  // dtype tells whether every gradient is finite, without overflowing as a sum of the
  // values could.
  std::map<std::pair<std::string, DType>, Tensor> checks;
  for (const Tensor& p : opt.params()) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    g.mul_(1.0 / scale_);
    Tensor bad = sum(g - g);
    Tensor& total = checks[{g.device().str(), g.dtype()}];
    total = total.defined() ? total + bad : bad;
  }
  for (const auto& [key, total] : checks)
    if (!std::isfinite(total.item())) finite_ = false;
}

bool GradScaler::step(Optimizer& opt) {
  if (!unscaled_) unscale(opt);
  unscaled_ = false;
  if (!options_.enabled) {
    opt.step();
    return true;
  }
  if (!finite_) {
    ++skipped_;
    finite_in_a_row_ = 0;
    scale_ *= options_.backoff_factor;
    return false;
  }
  opt.step();
  if (++finite_in_a_row_ >= options_.growth_interval) {
    finite_in_a_row_ = 0;
    const double grown = scale_ * options_.growth_factor;
    if (std::isfinite(grown)) scale_ = grown;
  }
  return true;
}

}  // namespace tg::nn
