// The backward engine: walks the recorded graph from a root in topological order,
// calling each node's backward once with the sum of the gradients that reached it.
//
//   1. Count, for every node reachable from the root, how many edges lead into it
//      (an iterative breadth-first walk over a list, no recursion: a chain of 100 000
//      ops must not overflow a stack).
//   2. Start from the root with grad_output (1 for a scalar). Repeatedly take a ready
//      node (every edge into it delivered), the most recently created first (as PyTorch:
//      gradients of late ops are consumed, and freed, early), run its hooks and its
//      backward, and hand each input's gradient to the node behind that edge, summing
//      when several arrive. Leaves' AccumulateGrad nodes add into .grad; they count as
//      the latest of all, so a leaf's .grad (and its post-accumulate hooks) is done as
//      soon as its gradient is complete, not after the rest of the walk.
//   3. Without retain_graph each node drops its saved tensors after its backward: the
//      activations of a training step are freed as the backward pass goes.
//
// Everything runs under grad mode = create_graph: with it, the backward formulas (written
// with differentiable ops) record a graph of their own, and second derivatives follow.
#include <atomic>
#include <queue>
#include <vector>

#include "tilegrad/autograd/node.hpp"
#include "tilegrad/autograd/ops.hpp"
#include "tilegrad/autograd/profiler.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg {

void run_backward(const Tensor& root, const Tensor& grad_output, bool retain_graph, bool create_graph) {
  TG_CHECK(root.defined() && root.requires_grad(), "backward", "tensor",
           "expected a tensor that requires grad (it has no graph: no input of the ops that made it requires grad)");
  Tensor seed = grad_output;
  if (!seed.defined()) {
    TG_CHECK(root.numel() == 1, "backward", "grad_output",
             "expected a grad_output for a non-scalar tensor of shape ", root.shape().str());
    seed = Tensor::ones(root.sizes(), TensorOptions().with_dtype(root.dtype()).with_device(root.device()));
  } else {
    TG_CHECK(seed.shape().numel() == root.numel() && seed.dim() == root.dim(), "backward", "grad_output",
             "expected the shape of the tensor ", root.shape().str(), ", got ", seed.shape().str());
  }
  GradModeGuard mode(create_graph);
  const Edge start = edge_of(root);

  // 1. Dependencies: edges into each reachable node (counted in the nodes themselves,
  // under a fresh walk number; `seen` lists them so that a throwing backward leaves no
  // gradient behind in the graph).
  static std::atomic<std::uint64_t> walks{0};
  const std::uint64_t walk = ++walks;
  std::vector<Node*> seen{start.node.get()};
  start.node->walk = walk;
  start.node->walk_deps = 0;
  for (std::size_t i = 0; i < seen.size(); ++i)
    for (const Edge& e : seen[i]->next) {
      Node* n = e.node.get();
      if (!n) continue;
      if (n->walk != walk) {
        n->walk = walk;
        n->walk_deps = 0;
        seen.push_back(n);
      }
      ++n->walk_deps;
    }
  struct Cleanup {
    std::vector<Node*>& nodes;
    ~Cleanup() {
      for (Node* n : nodes) n->walk_grad = Tensor();
    }
  } cleanup{seen};

  // 2. Kahn's walk, latest node first among the ready ones.
  start.node->walk_grad = seed;
  auto later = [](const Node* a, const Node* b) { return a->sequence < b->sequence; };
  std::priority_queue<Node*, std::vector<Node*>, decltype(later)> ready(later);
  ready.push(start.node.get());
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    Tensor grad = std::move(node->walk_grad);
    node->walk_grad = Tensor();
    if (grad.defined())
      for (const GradHook& hook : node->hooks)
        if (Tensor replaced = hook(grad); replaced.defined()) grad = replaced;
    std::vector<Tensor> inputs;
    if (grad.defined()) {
      BackwardScope scope;
      const ProfileScope prof(ProfileEvent::Kind::backward, "backward:", node->name());
      inputs = node->backward(grad);
    }
    if (anomaly_enabled())
      for (const Tensor& g : inputs) check_finite(g, "backward", node, node->name(), node->where);
    if (!retain_graph) {  // 3.
      node->release_saved();
      node->released = true;
    }
    for (std::size_t i = 0; i < node->next.size(); ++i) {
      Node* next = node->next[i].node.get();
      if (!next) continue;
      if (i < inputs.size() && inputs[i].defined()) {
        Tensor& slot = next->walk_grad;
        slot = slot.defined() ? slot + inputs[i] : std::move(inputs[i]);
      }
      if (--next->walk_deps == 0) ready.push(next);
    }
  }
}

void Tensor::backward(const Tensor& grad_output, bool retain_graph, bool create_graph) const {
  run_backward(*this, grad_output, retain_graph, create_graph);
}

}  // namespace tg
