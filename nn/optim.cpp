#include "tilegrad/nn/optim.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "tilegrad/autograd/detail.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::nn {

namespace {


Tensor scalar(double v) { return Tensor::full({}, v, TensorOptions().with_dtype(DType::f64)); }

// Runs run(slots) once per dtype over the parameters that have a gradient (and pass
// `use`), then bumps their storage versions (the kernel wrote them in place).
template <class Use, class MakeSlot, class Run>
void for_each_dtype(const std::vector<Tensor>& params, Use&& use, MakeSlot&& make, Run&& run) {
  std::vector<ParamSlot<float>> f32;
  std::vector<ParamSlot<double>> f64;
  std::vector<Tensor> keep;  // contiguous gradients live until the kernel ran
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    const Tensor g = p.grad();
    if (!g.defined() || !use(i)) continue;
    TG_CHECK(p.device() == params[0].device(), "optimizer", "params", "expected every parameter on ",
             params[0].device().str(), ", parameter ", i, " is on ", p.device().str());
    TG_CHECK(p.is_contiguous(), "optimizer", "params", "expected contiguous parameters, parameter ", i, " is ",
             p.shape().str(), " with strides");
    TG_CHECK(g.dtype() == p.dtype() && g.numel() == p.numel(), "optimizer", "grad",
             "expected a gradient like its parameter for parameter ", i);
    keep.push_back(g.contiguous());
    if (p.dtype() == DType::f32) f32.push_back(make(i, keep.back(), float{}));
    else if (p.dtype() == DType::f64) f64.push_back(make(i, keep.back(), double{}));
    else detail::throw_error("optimizer", "dtype", "expected f32 or f64 parameters, got ", dtype_name(p.dtype()));
  }
  if (!f32.empty()) run(std::span<const ParamSlot<float>>(f32), float{});
  if (!f64.empty()) run(std::span<const ParamSlot<double>>(f64), double{});
  for (std::size_t i = 0; i < params.size(); ++i)
    if (params[i].grad().defined() && use(i)) ++params[i].storage()->version;
}

}  // namespace

Optimizer::Optimizer(std::vector<Tensor> params, double lr) : params_(std::move(params)), lr_(lr) {
  TG_CHECK(lr >= 0, "optimizer", "lr", "expected a learning rate >= 0, got ", lr);
  for (std::size_t i = 0; i < params_.size(); ++i)
    TG_CHECK(params_[i].defined() && params_[i].is_leaf() && params_[i].requires_grad(), "optimizer", "params",
             "expected leaves that require grad; parameter ", i, " is not");
  state_.resize(params_.size());
}

void Optimizer::set_lr(double lr) {
  TG_CHECK(lr >= 0, "optimizer", "lr", "expected a learning rate >= 0, got ", lr);
  if (live_.defined()) {
    TG_CHECK(live_.device().is_cpu() || !cuda::capturing(), "optimizer", "set_lr",
             "cannot be called inside a CUDA graph capture: the graph would set this rate on every replay (set it "
             "between replays)");
    NoGradGuard no_grad;
    live_.slice(0, 0, 1).fill_(lr);
  }
  lr_ = lr;
}

index_t Optimizer::steps() const { return live_.defined() ? index_t(live_.slice(0, 1, 2).item()) : steps_; }

void Optimizer::use_live_scalars() {
  if (live_.defined()) return;
  const Device dev = params_.empty() ? Device::cpu() : params_[0].device();
  TG_CHECK(dev.is_cpu() || !cuda::capturing(), "optimizer", "capture",
           "step the optimizer once before capturing its step in a CUDA graph: the first step makes its state, "
           "which a graph would make again on every replay");
  NoGradGuard no_grad;
  const TensorOptions o = TensorOptions().with_dtype(DType::f32).with_device(dev);
  live_ = Tensor::zeros({2}, o);
  live_.slice(0, 0, 1).fill_(lr_);
  live_.slice(0, 1, 2).fill_(double(steps_));
  one_ = Tensor::zeros({2}, o);
  one_.slice(0, 1, 2).fill_(1.0);
}

const float* Optimizer::advance_live(const char* op) {
  if (!params_.empty() && !params_[0].device().is_cpu()) use_live_scalars();
  if (!live_.defined()) return nullptr;
  TG_CHECK(params_.empty() || live_.device() == params_[0].device(), op, "params",
           "expected the parameters on ", live_.device().str(), ", where this optimizer keeps its scalars");
  NoGradGuard no_grad;
  live_.add_(one_);
  return live_.data<float>();
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.set_grad({});
}

Tensor& Optimizer::buffer(std::size_t param, int which) {
  std::vector<Tensor>& s = state_[param];
  if (s.size() < std::size_t(buffer_count())) s.resize(std::size_t(buffer_count()));
  Tensor& b = s[std::size_t(which)];
  if (!b.defined()) {
    const Tensor& p = params_[param];
    TG_CHECK(p.device().is_cpu() || !cuda::capturing(), "optimizer", "capture",
             "step the optimizer once before capturing its step in a CUDA graph: parameter ", param,
             " has no state yet, and a graph would make it again (zeros) on every replay");
    b = Tensor::zeros(p.sizes(), TensorOptions().with_dtype(p.dtype()).with_device(p.device()));
  }
  return b;
}

StateDict Optimizer::state_dict() const {
  StateDict sd{{"lr", scalar(lr_)}, {"steps", scalar(double(steps()))}};
  for (std::size_t i = 0; i < state_.size(); ++i)
    for (std::size_t k = 0; k < state_[i].size(); ++k)
      if (state_[i][k].defined())
        sd["state." + std::to_string(i) + "." + buffer_name(int(k))] = state_[i][k].detach();
  return sd;
}

void Optimizer::load_state_dict(const StateDict& state) {
  auto get = [&](const std::string& key) -> const Tensor& {
    auto it = state.find(key);
    TG_CHECK(it != state.end(), "Optimizer::load_state_dict", "state", "missing key ", key);
    return it->second;
  };
  set_lr(get("lr").item());
  steps_ = index_t(get("steps").item());
  if (live_.defined()) {
    NoGradGuard no_grad;
    live_.slice(0, 1, 2).fill_(double(steps_));
  }
  for (std::size_t i = 0; i < params_.size(); ++i)
    for (int k = 0; k < buffer_count(); ++k) {
      const std::string key = "state." + std::to_string(i) + "." + buffer_name(k);
      if (!state.count(key)) continue;  // a buffer not made yet (that parameter never had a gradient)
      const Tensor& src = state.at(key);
      TG_CHECK(src.numel() == params_[i].numel(), "Optimizer::load_state_dict", key.c_str(), "expected ",
               params_[i].numel(), " elements, got ", src.numel());
      NoGradGuard no_grad;
      buffer(i, k).copy_(src.reshape(params_[i].sizes()));
    }
  for (const auto& [key, t] : state)
    TG_CHECK(key == "lr" || key == "steps" || key.rfind("state.", 0) == 0, "Optimizer::load_state_dict", "state",
             "unexpected key ", key);
}

SGD::SGD(std::vector<Tensor> params, double lr, double mom, double damp, double wd, bool nest)
    : Optimizer(std::move(params), lr), momentum(mom), dampening(damp), weight_decay(wd), nesterov(nest) {
  TG_CHECK(momentum >= 0, "SGD", "momentum", "expected >= 0, got ", momentum);
  TG_CHECK(!nesterov || (momentum > 0 && dampening == 0), "SGD", "nesterov",
           "Nesterov momentum needs momentum > 0 and dampening 0");
}

void SGD::step() {
  const ProfileScope scope(ProfileEvent::Kind::optimizer, "SGD.step");
  // A parameter's momentum buffer starts as its first gradient (PyTorch), whenever that
  // first gradient comes: those parameters go in a call of their own.
  std::vector<char> fresh(params_.size());
  for (std::size_t i = 0; i < params_.size(); ++i) fresh[i] = state_[i].empty() || !state_[i][0].defined();
  const float* live = advance_live("SGD");
  for (int first = 1; first >= 0; --first) {
    SgdConfig c{lr_, momentum, dampening, weight_decay, nesterov, first == 1, live};
    for_each_dtype(
        params_, [&](std::size_t i) { return momentum == 0 ? first == 1 : bool(fresh[i]) == (first == 1); },
        [&](std::size_t i, const Tensor& g, auto zero) {
          using T = decltype(zero);
          const Tensor& p = params_[i];
          T* m = momentum != 0 ? buffer(i, 0).data<T>() : nullptr;
          return ParamSlot<T>{p.data<T>(), g.data<T>(), m, nullptr, p.numel()};
        },
        [&](auto slots, auto zero) {
          using T = decltype(zero);
          check_param_slots<T>("SGD", slots, momentum != 0, false);
          detail::table_for("optimizer", params_[0].device()).get<T>().sgd_step(c, slots);
        });
  }
  ++steps_;
}

Adam::Adam(std::vector<Tensor> params, double lr, double b1, double b2, double e, double wd, bool dec)
    : Optimizer(std::move(params), lr), beta1(b1), beta2(b2), eps(e), weight_decay(wd), decoupled(dec) {
  TG_CHECK(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1, "Adam", "betas", "expected betas in [0, 1), got ", b1, ", ", b2);
  TG_CHECK(e >= 0, "Adam", "eps", "expected eps >= 0, got ", e);
}

void Adam::step() {
  const ProfileScope scope(ProfileEvent::Kind::optimizer, decoupled ? "AdamW.step" : "Adam.step");
  // With live scalars the kernel reads t (advanced here, on the parameters' device) and the
  // rate from there: a replayed graph's step is corrected for its own t.
  const float* live = advance_live(decoupled ? "AdamW" : "Adam");
  AdamConfig c{lr_, beta1, beta2, eps, weight_decay, decoupled, steps_ + 1, live};
  for_each_dtype(
      params_, [](std::size_t) { return true; },
      [&](std::size_t i, const Tensor& g, auto zero) {
        using T = decltype(zero);
        const Tensor& p = params_[i];
        return ParamSlot<T>{p.data<T>(), g.data<T>(), buffer(i, 0).data<T>(), buffer(i, 1).data<T>(), p.numel()};
      },
      [&](auto slots, auto zero) {
        using T = decltype(zero);
        check_param_slots<T>(decoupled ? "AdamW" : "Adam", slots, true, true);
        detail::table_for("optimizer", params_[0].device()).get<T>().adam_step(c, slots);
      });
  ++steps_;
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  TG_CHECK(max_norm > 0, "clip_grad_norm", "max_norm", "expected > 0, got ", max_norm);
  NoGradGuard no_grad;
  // Squares summed where the gradients live (per device and dtype), so that a GPU step
  // waits once, to read the total, instead of copying every gradient to the host.
  std::vector<Tensor> partial;
  for (const Tensor& p : params)
    if (const Tensor g = p.grad(); g.defined()) {
      const Tensor sq = sum(g * g);
      auto same = [&](const Tensor& t) { return t.device() == sq.device() && t.dtype() == sq.dtype(); };
      auto it = std::find_if(partial.begin(), partial.end(), same);
      if (it == partial.end()) partial.push_back(sq);
      else *it = *it + sq;
    }
  double total = 0;
  for (const Tensor& t : partial) total += t.item();
  const double norm = std::sqrt(total);
  if (norm > max_norm)
    for (const Tensor& p : params)
      if (Tensor g = p.grad(); g.defined()) g.mul_(max_norm / (norm + 1e-6));
  return norm;
}

LRScheduler::LRScheduler(Optimizer& opt) : opt_(opt), base_lr_(opt.lr()) {}

void LRScheduler::step() {
  ++epoch_;
  opt_.set_lr(lr_at(epoch_));
}

StateDict LRScheduler::state_dict() const { return {{"epoch", scalar(double(epoch_))}, {"base_lr", scalar(base_lr_)}}; }

void LRScheduler::load_state_dict(const StateDict& state) {
  TG_CHECK(state.count("epoch") && state.count("base_lr"), "LRScheduler::load_state_dict", "state",
           "expected the keys epoch and base_lr");
  epoch_ = index_t(state.at("epoch").item());
  base_lr_ = state.at("base_lr").item();
  opt_.set_lr(lr_at(epoch_));
}

StepLR::StepLR(Optimizer& opt, index_t s, double g) : LRScheduler(opt), step_size(s), gamma(g) {
  TG_CHECK(s >= 1, "StepLR", "step_size", "expected >= 1, got ", s);
}
double StepLR::lr_at(index_t e) const { return base_lr_ * std::pow(gamma, double(e / step_size)); }

ExponentialLR::ExponentialLR(Optimizer& opt, double g) : LRScheduler(opt), gamma(g) {}
double ExponentialLR::lr_at(index_t e) const { return base_lr_ * std::pow(gamma, double(e)); }

CosineAnnealingLR::CosineAnnealingLR(Optimizer& opt, index_t t, double m) : LRScheduler(opt), t_max(t), eta_min(m) {
  TG_CHECK(t >= 1, "CosineAnnealingLR", "t_max", "expected >= 1, got ", t);
}
double CosineAnnealingLR::lr_at(index_t e) const {
  const double x = double(std::min(e, t_max)) / double(t_max);
  return eta_min + (base_lr_ - eta_min) * (1 + std::cos(std::numbers::pi * x)) / 2;
}

LinearWarmup::LinearWarmup(Optimizer& opt, index_t w, double s, std::unique_ptr<LRScheduler> after)
    : LRScheduler(opt), warmup(w), start_factor(s), after_(std::move(after)) {
  TG_CHECK(w >= 0 && s >= 0 && s <= 1, "LinearWarmup", "warmup", "expected warmup >= 0 and start_factor in [0, 1]");
  opt_.set_lr(lr_at(0));
}
double LinearWarmup::lr_at(index_t e) const {
  if (e < warmup) return base_lr_ * (start_factor + (1 - start_factor) * double(e) / double(warmup));
  return after_ ? after_->lr_at(e - warmup) : base_lr_;
}

}  // namespace tg::nn
