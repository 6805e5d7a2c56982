// Module: named parameters and buffers, child modules registered by name (so that
// named_parameters() gives "layers.0.weight"), train()/eval(), zero_grad(), to(Device),
// state_dict()/load_state_dict(), as in torch.nn.Module.
//
// Parameters are Tensors (leaves that require grad) owned by their module; the handles
// that parameters() returns stay valid when the module moves to another device (to()
// swaps the storage under the same TensorImpl, as PyTorch does).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tilegrad/autograd/autograd.hpp"

namespace tg::nn {

using StateDict = std::map<std::string, Tensor>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The module's computation on one input (modules with other signatures, such as
  // MultiheadAttention, add their own overloads); the default throws naming the type.
  virtual Tensor forward(const Tensor& x);
  // forward(x), recorded as a scope named by the module's path while a Profiler runs.
  Tensor operator()(const Tensor& x) { return profiling() ? forward_profiled(x) : forward(x); }
  virtual std::string type_name() const { return "Module"; }

  // Every parameter of this module and its children, in registration order, named by
  // path ("fc1.weight").
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  index_t parameter_count() const;

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();  // sets every parameter's .grad to none

  // Moves (or converts) every parameter and buffer in place; the Tensor handles stay.
  void to(Device device);
  void to(DType dtype);

  // Parameters and buffers by path, detached (sharing storage with the module).
  StateDict state_dict() const;
  // Copies values in; strict: every key of the module present, no unexpected key, every
  // shape equal, else one tg::Error listing all missing, unexpected and mismatched keys.
  void load_state_dict(const StateDict& state, bool strict = true);

  // A text summary: one line per module with its parameter count.
  std::string summary() const;

 protected:
  // Registers (and names, for to_dot) a parameter: a leaf that requires grad.
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }

 private:
  Tensor forward_profiled(const Tensor& x);
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void collect(const std::string& prefix, bool params, std::vector<std::pair<std::string, Tensor>>& out) const;
  void summary_lines(const std::string& prefix, int depth, std::string& out) const;

  std::vector<std::pair<std::string, Tensor>> params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  std::string name_;  // as its parent registered it; "" for a root (its type_name() then)
};

}  // namespace tg::nn
