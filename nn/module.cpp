#include "tilegrad/nn/module.hpp"

#include <sstream>

#include "tilegrad/kernels/error.hpp"

namespace tg::nn {

Tensor Module::forward(const Tensor& /*x*/) {
  detail::throw_error(type_name().c_str(), "forward", "this module has no single-input forward");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  TG_CHECK(t.defined(), type_name().c_str(), name.c_str(), "expected a defined tensor for parameter ", name);
  if (!t.is_leaf()) t = t.detach();
  t.requires_grad_(true);
  t.set_name(name);
  params_.push_back({name, t});
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  TG_CHECK(t.defined(), type_name().c_str(), name.c_str(), "expected a defined tensor for buffer ", name);
  t.set_name(name);
  buffers_.push_back({name, t});
  return t;
}

namespace {
void prefix_names(Module& m, const std::string& prefix) {
  for (auto& [name, t] : m.named_parameters()) Tensor(t).set_name(prefix + "." + name);
  for (auto& [name, t] : m.named_buffers()) Tensor(t).set_name(prefix + "." + name);
}
}  // namespace

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  TG_CHECK(m != nullptr, type_name().c_str(), name.c_str(), "expected a module, got null");
  for (const auto& [n, c] : children_) TG_CHECK(n != name, type_name().c_str(), name.c_str(), "a child named ", name, " exists");
  prefix_names(*m, name);
  m->name_ = name;
  children_.push_back({name, std::move(m)});
}

Tensor Module::forward_profiled(const Tensor& x) {
  const ProfileScope scope(ProfileEvent::Kind::module, name_.empty() ? type_name() : name_);
  return forward(x);
}

void Module::collect(const std::string& prefix, bool params, std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, t] : params ? params_ : buffers_) out.push_back({prefix + name, t});
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

index_t Module::parameter_count() const {
  index_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (const Tensor& p : parameters()) Tensor(p).set_grad({});
}

namespace {
// Puts `moved`'s storage and layout under t's TensorImpl: every handle to t sees it.
void rebind(const Tensor& t, const Tensor& moved) {
  TensorImpl& impl = t.impl();
  impl.storage = moved.storage();
  impl.shape = moved.shape();
  impl.offset = moved.offset();
  impl.device = moved.device();
  impl.dtype = moved.dtype();
  impl.grad.reset();
}
}  // namespace

void Module::to(Device device) {
  for (auto& [name, t] : named_parameters()) rebind(t, t.detach().to(device));
  for (auto& [name, t] : named_buffers()) rebind(t, t.detach().to(device));
}

void Module::to(DType dtype) {
  for (auto& [name, t] : named_parameters()) rebind(t, t.detach().to(dtype));
  for (auto& [name, t] : named_buffers()) rebind(t, t.detach().to(dtype));
}

StateDict Module::state_dict() const {
  StateDict sd;
  for (auto& [name, t] : named_parameters()) sd[name] = t.detach();
  for (auto& [name, t] : named_buffers()) sd[name] = t.detach();
  return sd;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  std::map<std::string, Tensor> mine;
  for (auto& [name, t] : named_parameters()) mine[name] = t;
  for (auto& [name, t] : named_buffers()) mine[name] = t;
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, t] : mine)
    if (!state.count(name)) missing.push_back(name);
  for (const auto& [name, src] : state) {
    auto it = mine.find(name);
    if (it == mine.end()) {
      unexpected.push_back(name);
    } else if (src.shape().sizes().size() != it->second.sizes().size() ||
               !std::equal(src.sizes().begin(), src.sizes().end(), it->second.sizes().begin())) {
      mismatched.push_back(name + " (checkpoint " + src.shape().str() + ", model " + it->second.shape().str() + ")");
    }
  }
  if (!mismatched.empty() || (strict && (!missing.empty() || !unexpected.empty()))) {
    std::ostringstream s;
    s << "the state does not match the model:";
    auto list = [&](const char* what, const std::vector<std::string>& v) {
      if (v.empty()) return;
      s << " " << what << ":";
      for (const std::string& k : v) s << " " << k << ";";
    };
    list("missing keys", missing);
    list("unexpected keys", unexpected);
    list("shape mismatches", mismatched);
    detail::throw_error("load_state_dict", "state", s.str());
  }
  NoGradGuard no_grad;
  for (const auto& [name, src] : state)
    if (auto it = mine.find(name); it != mine.end()) Tensor(it->second).copy_(src);
}

void Module::summary_lines(const std::string& prefix, int depth, std::string& out) const {
  out += std::string(std::size_t(2 * depth), ' ') + (prefix.empty() ? type_name() : prefix + ": " + type_name());
  out += " (" + std::to_string(parameter_count()) + " parameters)\n";
  for (const auto& [name, child] : children_) child->summary_lines(name, depth + 1, out);
}

std::string Module::summary() const {
  std::string out;
  summary_lines("", 0, out);
  return out;
}

}  // namespace tg::nn
