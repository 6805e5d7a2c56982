// Reference optimizer steps: each element's update in double (kernels/optimizer.hpp).
#include <cmath>

#include "tilegrad/kernels/optimizer.hpp"

namespace tg {

template <class T>
void sgd_step_ref(const SgdConfig& config, std::span<const ParamSlot<T>> slots) {
  const SgdConfig c = read_live(config);
  for (const ParamSlot<T>& s : slots)
    for (index_t i = 0; i < s.n; ++i) {
      double g = double(s.grad[i]) + c.weight_decay * double(s.param[i]);
      if (c.momentum != 0) {
        const double b = c.first_step ? g : c.momentum * double(s.m[i]) + (1 - c.dampening) * g;
        s.m[i] = T(b);
        g = c.nesterov ? g + c.momentum * b : b;
      }
      s.param[i] = T(double(s.param[i]) - c.lr * g);
    }
}

template <class T>
void adam_step_ref(const AdamConfig& config, std::span<const ParamSlot<T>> slots) {
  const AdamConfig c = read_live(config);
  const double bc1 = 1 - std::pow(c.beta1, double(c.step)), bc2 = 1 - std::pow(c.beta2, double(c.step));
  for (const ParamSlot<T>& s : slots)
    for (index_t i = 0; i < s.n; ++i) {
      double p = double(s.param[i]), g = double(s.grad[i]);
      if (c.decoupled) p *= 1 - c.lr * c.weight_decay;
      else g += c.weight_decay * p;
      const double m = c.beta1 * double(s.m[i]) + (1 - c.beta1) * g;
      const double v = c.beta2 * double(s.v[i]) + (1 - c.beta2) * g * g;
      s.m[i] = T(m);
      s.v[i] = T(v);
      s.param[i] = T(p - c.lr * (m / bc1) / (std::sqrt(v / bc2) + c.eps));
    }
}

template void sgd_step_ref<float>(const SgdConfig&, std::span<const ParamSlot<float>>);
template void sgd_step_ref<double>(const SgdConfig&, std::span<const ParamSlot<double>>);
template void adam_step_ref<float>(const AdamConfig&, std::span<const ParamSlot<float>>);
template void adam_step_ref<double>(const AdamConfig&, std::span<const ParamSlot<double>>);

}  // namespace tg
