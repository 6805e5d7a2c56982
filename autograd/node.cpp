// Saved tensors, leaf accumulation, node teardown and the recording of a node.
#include "tilegrad/autograd/node.hpp"

#include <atomic>
#include <cmath>
#include <sstream>

#include "tilegrad/autograd/ops.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg {

namespace {
thread_local int t_in_backward = 0;  // the engine's node backward calls in progress
std::atomic<std::uint64_t> g_sequence{0};
}  // namespace

namespace {
thread_local std::vector<std::shared_ptr<Node>>* t_dying = nullptr;
}

void release_node(std::shared_ptr<Node>&& node) {
  if (!node) return;
  if (node.use_count() > 1) {  // someone else still holds it
    node.reset();
    return;
  }
  if (t_dying) {  // inside a teardown already: queue it
    t_dying->push_back(std::move(node));
    return;
  }
  std::vector<std::shared_ptr<Node>> dying;
  t_dying = &dying;
  dying.push_back(std::move(node));
  while (!dying.empty()) {
    std::shared_ptr<Node> n = std::move(dying.back());
    dying.pop_back();
    n.reset();  // its destructors queue what it held
  }
  t_dying = nullptr;
}

Node::~Node() {
  for (Edge& e : next) release_node(std::move(e.node));
}

TensorImpl::~TensorImpl() { release_node(std::move(grad_fn)); }

std::string Node::describe() const {
  std::ostringstream s;
  s << name() << " (created at " << where.file_name() << ":" << where.line() << " in " << where.function_name();
  if (!input_shapes.empty()) s << "; inputs " << input_shapes;
  s << "; output " << out_shape.str() << ")";
  return s.str();
}

Tensor SavedTensor::unpack(const Node& owner) const {
  TG_CHECK(!owner.released, owner.name(), "graph",
           "trying to backward through the graph a second time (its saved tensors were freed after the first "
           "backward); pass retain_graph = true to the first backward to keep them");
  if (!t_.defined()) return t_;
  TG_CHECK(t_.version() == version_, owner.name(), "saved tensor",
           "a tensor this op saved for backward was modified in place since (version ", version_, " then, ",
           t_.version(), " now): ", owner.describe());
  return t_;
}

index_t SavedTensor::bytes() const {
  return t_.defined() ? t_.numel() * index_t(dtype_size(t_.dtype())) : 0;
}

std::vector<Tensor> AccumulateGrad::backward(const Tensor& grad) {
  std::shared_ptr<TensorImpl> leaf = leaf_.lock();
  if (!leaf) return {};
  Tensor g = grad;
  if (!grad_enabled()) {
    // Without create_graph .grad holds no history. A gradient nobody else holds is
    // stolen; one that is shared (add passes the same tensor to both inputs, the
    // user's grad_output) is copied, so that writing into one .grad never changes another.
    const bool exclusive = g.impl_ptr().use_count() <= 2 && g.storage().use_count() == 1 && g.is_contiguous();
    g = exclusive ? g.detach() : g.detach().clone();
  }
  if (!leaf->grad) {
    leaf->grad = g.impl_ptr();
  } else {
    leaf->grad = (Tensor(leaf->grad) + g).impl_ptr();
  }
  Tensor leaf_tensor(leaf);
  for (const PostAccumulateHook& h : post_hooks) h(leaf_tensor);
  return {};
}

bool needs_graph(std::initializer_list<const Tensor*> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

Edge edge_of(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  TensorImpl& impl = t.impl();
  if (impl.grad_fn) return {impl.grad_fn};
  if (!impl.accumulator) impl.accumulator = std::make_shared<AccumulateGrad>(t.impl_ptr());
  return {impl.accumulator};
}

void attach(const std::shared_ptr<Node>& node, std::initializer_list<const Tensor*> inputs, Tensor& out,
            std::source_location where) {
  node->next.reserve(inputs.size());
  for (const Tensor* t : inputs) node->next.push_back(t ? edge_of(*t) : Edge{});
  node->sequence = g_sequence.fetch_add(1, std::memory_order_relaxed);
  node->where = where;
  node->out_shape = out.shape();
  node->out_dtype = out.dtype();
  if (anomaly_enabled()) {
    std::string shapes;
    for (const Tensor* t : inputs) {
      if (!shapes.empty()) shapes += ", ";
      shapes += t && t->defined() ? t->shape().str() : std::string("-");
    }
    node->input_shapes = shapes;
  }
  TensorImpl& o = out.impl();
  o.grad_fn = node;
  o.requires_grad = true;
}

BackwardScope::BackwardScope() { ++t_in_backward; }
BackwardScope::~BackwardScope() { --t_in_backward; }

void check_finite(const Tensor& t, const char* phase, const Node* node, const char* op,
                  std::source_location where) {
  if (!t.defined() || t.numel() == 0 || t.dtype() == DType::i64) return;
  // The ops of a backward formula are not checked one by one: the engine checks what
  // the node returns and names the node.
  if (t_in_backward > 0 && phase[0] == 'f') return;
  const std::vector<double> v = t.to_vector<double>();
  for (double x : v)
    if (!std::isfinite(x)) {
      std::ostringstream s;
      s << (std::isnan(x) ? "NaN" : "Inf") << " produced by the " << phase << " of ";
      if (node)
        s << node->describe();
      else
        s << op << " (created at " << where.file_name() << ":" << where.line() << ")";
      detail::throw_error(node ? node->name() : op, "anomaly", s.str());
    }
}

}  // namespace tg
