// The graph that the forward pass records (define-by-run) and the backward pass walks.
//
// Each differentiable op that sees an input requiring grad (with grad mode on) makes
// one Node: it keeps what its backward needs (SavedTensor), one Edge per input (to the
// node that made that input, or to the input's AccumulateGrad if it is a leaf; null if
// the input needs no gradient), and where in the source it was created. The output
// tensor points at the node (grad_fn). engine.cpp walks the nodes in topological order.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <source_location>
#include <string>
#include <vector>

#include "tilegrad/autograd/modes.hpp"
#include "tilegrad/autograd/tensor.hpp"

namespace tg {

struct Edge {
  std::shared_ptr<Node> node;  // null: that input gets no gradient
};

// A tensor kept for backward, with the storage version it had when saved: unpacking it
// after an in-place write, or after the graph was freed, is an error naming the op.
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t) : t_(t), version_(t.defined() ? t.version() : 0) {}
  Tensor unpack(const Node& owner) const;
  void reset() { t_ = Tensor(); }
  bool defined() const { return t_.defined(); }
  index_t bytes() const;

 private:
  Tensor t_;
  std::uint64_t version_ = 0;
};

class Node {
 public:
  // Releases the edges without recursing (see release_node): a graph 100 000 ops deep
  // would otherwise overflow the stack through nested shared_ptr destructors.
  virtual ~Node();
  virtual const char* name() const = 0;
  // Gradients for each input (one per edge; an undefined Tensor for none), given the
  // gradient of the output. Runs under grad mode = create_graph.
  virtual std::vector<Tensor> backward(const Tensor& grad) = 0;
  // Drops the saved tensors (after a backward without retain_graph).
  virtual void release_saved() {}
  virtual index_t saved_bytes() const { return 0; }  // for to_dot

  std::vector<Edge> next;
  std::vector<GradHook> hooks;  // on the output's gradient
  std::source_location where;
  std::string input_shapes;  // filled only in anomaly mode: "(2, 3), (3)"
  Shape out_shape;           // the output's sizes (to_dot, anomaly messages)
  DType out_dtype = DType::f32;
  bool released = false;
  std::uint64_t sequence = 0;  // creation order: the engine breaks ties by it

  // The engine's bookkeeping during a backward walk (engine.cpp), kept in the node
  // rather than in hash maps: the walk that last visited it, how many edges into it are
  // still to deliver, and the sum of the gradients delivered so far. One backward walks
  // a graph at a time.
  std::uint64_t walk = 0;
  int walk_deps = 0;
  Tensor walk_grad;

  std::string describe() const;  // "MulBackward at file.cpp:12, inputs (2, 3), (3)"
};

// The sink of a leaf that requires grad: accumulates into its .grad. Its sequence is the
// largest there is, so the engine runs it the moment its gradient is complete, before the
// backward of any op still waiting (as PyTorch orders its AccumulateGrad): the leaf's
// post-accumulate hooks then fire while backward still has the earlier layers to do,
// which is when a data-parallel bucket's all-reduce has to start to overlap them.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf) : leaf_(leaf) {
    sequence = std::numeric_limits<std::uint64_t>::max();
  }
  const char* name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> backward(const Tensor& grad) override;
  std::shared_ptr<TensorImpl> leaf() const { return leaf_.lock(); }
  std::vector<PostAccumulateHook> post_hooks;

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

// Drops a reference to a node; when it was the last, the node is destroyed from a
// work list rather than recursively (Node's and TensorImpl's destructors call it).
void release_node(std::shared_ptr<Node>&& node);

// Whether an op on these inputs records a node (grad mode on, some input requires grad).
bool needs_graph(std::initializer_list<const Tensor*> inputs);
// The edge for an input: its grad_fn, its accumulator (made on first use), or null.
Edge edge_of(const Tensor& t);
// Fills the node's common fields (edges, sequence, source location, anomaly
// information) and makes it out's grad_fn; out becomes a non-leaf requiring grad.
void attach(const std::shared_ptr<Node>& node, std::initializer_list<const Tensor*> inputs, Tensor& out,
            std::source_location where);
// Marks the engine's call of a node's backward (anomaly mode checks its result, not
// the ops inside it).
class BackwardScope {
 public:
  BackwardScope();
  ~BackwardScope();
  BackwardScope(const BackwardScope&) = delete;
  BackwardScope& operator=(const BackwardScope&) = delete;
};

// Anomaly mode: throws if t holds NaN or Inf ("forward of <op>" or "backward of <op>").
void check_finite(const Tensor& t, const char* phase, const Node* node, const char* op,
                  std::source_location where);

// Runs backward from roots (a scalar root's gradient defaults to 1). engine.cpp.
void run_backward(const Tensor& root, const Tensor& grad_output, bool retain_graph, bool create_graph);

}  // namespace tg
