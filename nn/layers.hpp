// Layers: Linear (one GEMM with the bias and activation fused), Sequential, the
// activation modules, LayerNorm, Dropout, MultiheadAttention on the fused attention
// kernel, and a pre-norm transformer block. Weights use PyTorch's default
// initializations (nn/init.hpp), drawn from the generator given, else the global one.
#pragma once

#include <memory>
#include <vector>

#include "tilegrad/nn/module.hpp"

namespace tg::nn {

// y = act(x W^T + b): W (out, in), b (out). The activation rides in the GEMM's epilogue.
class Linear : public Module {
 public:
  Linear(index_t in, index_t out, bool bias = true, Activation act = {}, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override;
  Tensor weight, bias;
  Activation act;
};

class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> layers);
  Sequential& add(std::shared_ptr<Module> layer);  // registered as "0", "1", ...
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }
  std::size_t size() const { return layers_.size(); }
  Module& operator[](std::size_t i) { return *layers_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

// A multilayer perceptron: Linear layers between consecutive `widths` (at least two),
// `hidden` fused into every layer but the last, registered "0", "1", ...
std::shared_ptr<Sequential> mlp(const std::vector<index_t>& widths, Activation hidden = {Act::relu},
                                Generator* gen = nullptr);

class ActivationModule : public Module {
 public:
  explicit ActivationModule(Activation act) : act_(act) {}
  Tensor forward(const Tensor& x) override { return activation(x, act_); }
  std::string type_name() const override;

 private:
  Activation act_;
};
struct ReLU : ActivationModule { ReLU() : ActivationModule({Act::relu}) {} };
struct LeakyReLU : ActivationModule { explicit LeakyReLU(float slope = 0.01f) : ActivationModule({Act::leaky_relu, slope}) {} };
struct GELU : ActivationModule { explicit GELU(bool tanh = false) : ActivationModule({tanh ? Act::gelu_tanh : Act::gelu_erf}) {} };
struct SiLU : ActivationModule { SiLU() : ActivationModule({Act::silu}) {} };
struct Sigmoid : ActivationModule { Sigmoid() : ActivationModule({Act::sigmoid}) {} };
struct Tanh : ActivationModule { Tanh() : ActivationModule({Act::tanh}) {} };

// Over the last dimension of size `features`; weight ones and bias zeros when affine.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(index_t features, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "LayerNorm"; }
  Tensor weight, bias;
  double eps;
};

// Identity in eval mode; zeroes with probability p and rescales in training mode.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Dropout"; }
  double p;

 private:
  Generator* gen_;
};

// Multi-head attention over (batch, seq, embed) inputs: q, k, v projections, the fused
// scaled dot-product attention per head (heads as a strided view, no transposing copy),
// an output projection. Self-attention: forward(x); cross: forward(query, key_value).
// mask: additive, broadcastable to (batch, heads, seq_q, seq_k); causal aligns
// bottom-right (kernels/attention.hpp).
class MultiheadAttention : public Module {
 public:
  MultiheadAttention(index_t embed, index_t heads, bool bias = true, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override { return forward(x, x); }
  Tensor forward(const Tensor& query, const Tensor& key_value, const Tensor& mask = {}, bool causal = false);
  std::string type_name() const override { return "MultiheadAttention"; }
  index_t embed, heads;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, out_proj;
};

// Pre-norm transformer block: x + attn(ln1(x)), then + mlp(ln2(x)) with mlp =
// Linear(embed, hidden, GELU) -> Linear(hidden, embed); dropout after each branch.
class TransformerBlock : public Module {
 public:
  TransformerBlock(index_t embed, index_t heads, index_t hidden, double dropout = 0.0, bool causal = true,
                   Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "TransformerBlock"; }
  std::shared_ptr<LayerNorm> ln1, ln2;
  std::shared_ptr<MultiheadAttention> attn;
  std::shared_ptr<Linear> fc1, fc2;
  std::shared_ptr<Dropout> drop;
  bool causal;
};

}  // namespace tg::nn
