// Optimizers (torch.optim.SGD, Adam, AdamW), each step one fused kernel over all
// parameters (kernels/optimizer.hpp), gradient clipping by global norm, and learning
// rate schedules (StepLR, ExponentialLR, CosineAnnealingLR, linear warmup composed with
// any of them), computed in closed form from the step count so a resumed run lands on
// the same values.
#pragma once

#include <memory>
#include <vector>

#include "tilegrad/autograd/autograd.hpp"
#include "tilegrad/nn/module.hpp"

namespace tg::nn {

class Optimizer {
 public:
  Optimizer(std::vector<Tensor> params, double lr);
  virtual ~Optimizer() = default;
  // One update of every parameter that has a gradient (those without are skipped).
  virtual void step() = 0;
  void zero_grad();  // sets every parameter's .grad to none
  double lr() const { return lr_; }
  void set_lr(double lr);  // between steps (and between a graph's replays), not inside a capture
  // Steps taken. With live scalars: the count beside the parameters, which a replayed
  // CUDA graph advances too (reading it from a device waits for the device).
  index_t steps() const;
  const std::vector<Tensor>& params() const { return params_; }
  // Live scalars (kernels/optimizer.hpp): the rate and the step count kept in a 2-element
  // f32 tensor beside the parameters, which each step advances there and its kernel reads,
  // so that a step captured in a CUDA graph uses the rate set between replays and Adam's
  // bias correction of each replay's own step. Always so on a device (made on the first
  // step, which therefore cannot be inside a capture); on the CPU on request.
  void use_live_scalars();
  bool live_scalars() const { return live_.defined(); }
  // The state to resume from: "lr", "steps" and each parameter's buffers
  // ("state.<i>.<buffer>"), detached.
  virtual StateDict state_dict() const;
  virtual void load_state_dict(const StateDict& state);

 protected:
  // The per-parameter state buffers this optimizer keeps, made on first use (zeros; not
  // inside a CUDA graph's capture, whose replays would zero them again).
  Tensor& buffer(std::size_t param, int which);
  // A step's first call: advances the live step count (making the scalars on a device's
  // first step) and returns them for the kernel's config; null without live scalars.
  const float* advance_live(const char* op);
  virtual int buffer_count() const = 0;
  virtual const char* buffer_name(int which) const = 0;

  std::vector<Tensor> params_;
  std::vector<std::vector<Tensor>> state_;  // [param][buffer]
  double lr_;
  index_t steps_ = 0;    // the host's count (stale after graph replays: steps() reads live_)
  Tensor live_, one_;    // live scalars [lr, steps] and the increment [0, 1]
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, double lr, double momentum = 0, double dampening = 0, double weight_decay = 0,
      bool nesterov = false);
  void step() override;
  double momentum, dampening, weight_decay;
  bool nesterov;

 protected:
  int buffer_count() const override { return momentum != 0 ? 1 : 0; }
  const char* buffer_name(int) const override { return "momentum"; }
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
       double weight_decay = 0, bool decoupled = false);
  void step() override;
  double beta1, beta2, eps, weight_decay;
  bool decoupled;

 protected:
  int buffer_count() const override { return 2; }
  const char* buffer_name(int which) const override { return which == 0 ? "exp_avg" : "exp_avg_sq"; }
};

// Adam with decoupled weight decay (Loshchilov & Hutter 2019); default decay 0.01.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, double lr = 1e-3, double b1 = 0.9, double b2 = 0.999, double e = 1e-8,
        double decay = 0.01)
      : Adam(std::move(params), lr, b1, b2, e, decay, true) {}
};

// Scales every gradient by max_norm / (norm + 1e-6) when their global L2 norm exceeds
// max_norm; returns the norm before clipping.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

class LRScheduler {
 public:
  explicit LRScheduler(Optimizer& opt);
  virtual ~LRScheduler() = default;
  // The learning rate after `epoch` calls of step(), from the base rate.
  virtual double lr_at(index_t epoch) const = 0;
  void step();  // advances one epoch (or step) and sets the optimizer's rate
  index_t epoch() const { return epoch_; }
  double base_lr() const { return base_lr_; }
  StateDict state_dict() const;  // "epoch", "base_lr"
  void load_state_dict(const StateDict& state);

 protected:
  Optimizer& opt_;
  double base_lr_;
  index_t epoch_ = 0;
};

class StepLR : public LRScheduler {  // base gamma^floor(e / step_size)
 public:
  StepLR(Optimizer& opt, index_t step_size, double gamma = 0.1);
  double lr_at(index_t e) const override;
  index_t step_size;
  double gamma;
};

class ExponentialLR : public LRScheduler {  // base gamma^e
 public:
  ExponentialLR(Optimizer& opt, double gamma);
  double lr_at(index_t e) const override;
  double gamma;
};

class CosineAnnealingLR : public LRScheduler {  // eta_min + (base - eta_min)(1 + cos(pi e / T_max)) / 2
 public:
  CosineAnnealingLR(Optimizer& opt, index_t t_max, double eta_min = 0);
  double lr_at(index_t e) const override;
  index_t t_max;
  double eta_min;
};

// Linear warmup from start_factor * base to base over `warmup` steps, then `after`
// (which counts its own epochs from the end of the warmup), or the base rate.
class LinearWarmup : public LRScheduler {
 public:
  LinearWarmup(Optimizer& opt, index_t warmup, double start_factor = 0.0, std::unique_ptr<LRScheduler> after = nullptr);
  double lr_at(index_t e) const override;
  index_t warmup;
  double start_factor;

 private:
  std::unique_ptr<LRScheduler> after_;
};

}  // namespace tg::nn
