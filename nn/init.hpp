// Parameter initialization (torch.nn.init), all from one seeded generator: pass one, or
// the global default generator is used (tg::manual_seed reseeds it).
//
//   fan_in, fan_out of a weight (out, in, ...): in * receptive field, out * receptive field
//   xavier_uniform: U(-a, a), a = gain sqrt(6 / (fan_in + fan_out))     (Glorot & Bengio 2010)
//   xavier_normal:  N(0, gain^2 2 / (fan_in + fan_out))
//   kaiming_uniform: U(-b, b), b = gain sqrt(3 / fan), gain = sqrt(2 / (1 + a^2))  (He et al. 2015)
//   kaiming_normal:  N(0, gain^2 / fan)
// Linear's default (PyTorch's): kaiming_uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)),
// and its bias U(-1/sqrt(in), 1/sqrt(in)).
#pragma once

#include "tilegrad/autograd/autograd.hpp"

namespace tg::nn::init {

enum class FanMode { fan_in, fan_out };

// Each fills t in place (under no_grad) and returns it.
Tensor uniform_(Tensor t, double lo, double hi, Generator* gen = nullptr);
Tensor normal_(Tensor t, double mean, double std, Generator* gen = nullptr);
Tensor xavier_uniform_(Tensor t, double gain = 1.0, Generator* gen = nullptr);
Tensor xavier_normal_(Tensor t, double gain = 1.0, Generator* gen = nullptr);
Tensor kaiming_uniform_(Tensor t, double a = 0.0, FanMode mode = FanMode::fan_in, Generator* gen = nullptr);
Tensor kaiming_normal_(Tensor t, double a = 0.0, FanMode mode = FanMode::fan_in, Generator* gen = nullptr);

// (fan_in, fan_out) of a weight of at least 2 dims.
std::pair<index_t, index_t> fans(const Tensor& t);

}  // namespace tg::nn::init
