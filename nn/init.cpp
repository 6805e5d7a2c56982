#include "tilegrad/nn/init.hpp"

#include <cmath>

#include "tilegrad/kernels/error.hpp"

namespace tg::nn::init {

namespace {
Tensor fill_from(Tensor t, const Tensor& values) {
  NoGradGuard no_grad;
  t.copy_(values);
  return t;
}
TensorOptions like(const Tensor& t) { return TensorOptions().with_dtype(t.dtype()).with_device(t.device()); }
}  // namespace

std::pair<index_t, index_t> fans(const Tensor& t) {
  TG_CHECK(t.dim() >= 2, "init", "tensor", "fan in and fan out need at least 2 dims, got ", t.shape().str());
  index_t receptive = 1;
  for (int d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

Tensor uniform_(Tensor t, double lo, double hi, Generator* gen) {
  NoGradGuard no_grad;
  return fill_from(t, Tensor::rand(t.sizes(), like(t), gen) * (hi - lo) + lo);
}

Tensor normal_(Tensor t, double mean, double std, Generator* gen) {
  NoGradGuard no_grad;
  return fill_from(t, Tensor::randn(t.sizes(), like(t), gen) * std + mean);
}

Tensor xavier_uniform_(Tensor t, double gain, Generator* gen) {
  const auto [in, out] = fans(t);
  const double a = gain * std::sqrt(6.0 / double(in + out));
  return uniform_(t, -a, a, gen);
}

Tensor xavier_normal_(Tensor t, double gain, Generator* gen) {
  const auto [in, out] = fans(t);
  return normal_(t, 0.0, gain * std::sqrt(2.0 / double(in + out)), gen);
}

Tensor kaiming_uniform_(Tensor t, double a, FanMode mode, Generator* gen) {
  const auto [in, out] = fans(t);
  const double gain = std::sqrt(2.0 / (1 + a * a));
  const double bound = gain * std::sqrt(3.0 / double(mode == FanMode::fan_in ? in : out));
  return uniform_(t, -bound, bound, gen);
}

Tensor kaiming_normal_(Tensor t, double a, FanMode mode, Generator* gen) {
  const auto [in, out] = fans(t);
  const double gain = std::sqrt(2.0 / (1 + a * a));
  return normal_(t, 0.0, gain / std::sqrt(double(mode == FanMode::fan_in ? in : out)), gen);
}

}  // namespace tg::nn::init
