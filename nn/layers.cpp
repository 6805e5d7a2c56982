#include "tilegrad/nn/layers.hpp"

#include <cmath>

#include "tilegrad/kernels/error.hpp"
#include "tilegrad/nn/init.hpp"

namespace tg::nn {

Linear::Linear(index_t in, index_t out, bool with_bias, Activation a, Generator* gen) : act(a) {
  TG_CHECK(in >= 1 && out >= 1, "Linear", in < 1 ? "in" : "out", "expected sizes >= 1, got ", in, " -> ", out);
  const double bound = 1.0 / std::sqrt(double(in));
  weight = register_parameter("weight", init::kaiming_uniform_(Tensor::empty({out, in}), std::sqrt(5.0),
                                                              init::FanMode::fan_in, gen));
  if (with_bias) bias = register_parameter("bias", init::uniform_(Tensor::empty({out}), -bound, bound, gen));
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias, act); }

std::string Linear::type_name() const {
  std::string s = "Linear(" + std::to_string(weight.size(1)) + " -> " + std::to_string(weight.size(0));
  if (act.kind != Act::none) s += ", " + std::string(act_name(act.kind));
  return s + (bias.defined() ? ")" : ", no bias)");
}

Sequential::Sequential(std::vector<std::shared_ptr<Module>> layers) {
  for (auto& l : layers) add(std::move(l));
}

Sequential& Sequential::add(std::shared_ptr<Module> layer) {
  register_module(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
  return *this;
}

std::shared_ptr<Sequential> mlp(const std::vector<index_t>& widths, Activation hidden, Generator* gen) {
  TG_CHECK(widths.size() >= 2, "mlp", "widths", "expected at least an input and an output width, got ",
           widths.size(), " widths");
  auto model = std::make_shared<Sequential>();
  for (std::size_t l = 0; l + 1 < widths.size(); ++l)
    model->add(std::make_shared<Linear>(widths[l], widths[l + 1], true, l + 2 < widths.size() ? hidden : Activation{},
                                        gen));
  return model;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& l : layers_) y = (*l)(y);
  return y;
}

std::string ActivationModule::type_name() const { return act_name(act_.kind); }

LayerNorm::LayerNorm(index_t features, double e, bool affine) : eps(e) {
  TG_CHECK(features >= 1, "LayerNorm", "features", "expected >= 1, got ", features);
  if (affine) {
    weight = register_parameter("weight", Tensor::ones({features}));
    bias = register_parameter("bias", Tensor::zeros({features}));
  }
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, weight, bias, eps); }

Dropout::Dropout(double prob, Generator* gen) : p(prob), gen_(gen) {
  TG_CHECK(p >= 0 && p < 1, "Dropout", "p", "expected a probability in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training(), gen_); }

MultiheadAttention::MultiheadAttention(index_t e, index_t h, bool bias, Generator* gen) : embed(e), heads(h) {
  TG_CHECK(h >= 1 && e % h == 0, "MultiheadAttention", "heads", "expected heads dividing embed = ", e, ", got ", h);
  q_proj = register_module("q_proj", std::make_shared<Linear>(e, e, bias, Activation{}, gen));
  k_proj = register_module("k_proj", std::make_shared<Linear>(e, e, bias, Activation{}, gen));
  v_proj = register_module("v_proj", std::make_shared<Linear>(e, e, bias, Activation{}, gen));
  out_proj = register_module("out_proj", std::make_shared<Linear>(e, e, bias, Activation{}, gen));
}

Tensor MultiheadAttention::forward(const Tensor& query, const Tensor& key_value, const Tensor& mask, bool causal) {
  TG_CHECK(query.dim() == 3 && query.size(2) == embed, "MultiheadAttention", "query",
           "expected (batch, seq, ", embed, "), got ", query.shape().str());
  TG_CHECK(key_value.dim() == 3 && key_value.size(2) == embed && key_value.size(0) == query.size(0),
           "MultiheadAttention", "key_value", "expected (", query.size(0), ", seq, ", embed, "), got ",
           key_value.shape().str());
  const index_t B = query.size(0), Sq = query.size(1), Sk = key_value.size(1), D = embed / heads;
  // (B, S, E) -> (B, S, H, D) -> (B, H, S, D): views; the kernel takes the strides.
  auto split = [&](const Tensor& t, index_t S) { return t.view({B, S, heads, D}).permute({0, 2, 1, 3}); };
  const Tensor q = split((*q_proj)(query), Sq), k = split((*k_proj)(key_value), Sk),
               v = split((*v_proj)(key_value), Sk);
  const Tensor o = scaled_dot_product_attention(q, k, v, mask, causal);
  return (*out_proj)(o.permute({0, 2, 1, 3}).reshape({B, Sq, embed}));
}

TransformerBlock::TransformerBlock(index_t embed, index_t heads, index_t hidden, double p, bool c, Generator* gen)
    : causal(c) {
  ln1 = register_module("ln1", std::make_shared<LayerNorm>(embed));
  attn = register_module("attn", std::make_shared<MultiheadAttention>(embed, heads, true, gen));
  ln2 = register_module("ln2", std::make_shared<LayerNorm>(embed));
  fc1 = register_module("fc1", std::make_shared<Linear>(embed, hidden, true, Activation{Act::gelu_tanh}, gen));
  fc2 = register_module("fc2", std::make_shared<Linear>(hidden, embed, true, Activation{}, gen));
  drop = register_module("drop", std::make_shared<Dropout>(p, gen));
}

Tensor TransformerBlock::forward(const Tensor& x) {
  const Tensor n1 = (*ln1)(x);
  const Tensor h = x + (*drop)(attn->forward(n1, n1, {}, causal));
  return h + (*drop)((*fc2)((*fc1)((*ln2)(h))));
}

}  // namespace tg::nn
