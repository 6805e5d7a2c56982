#include "tilegrad/nn/loss.hpp"

#include "tilegrad/autograd/node.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::nn {

namespace {
Tensor reduce(const Tensor& per_element, Reduction r) {
  return r == Reduction::none ? per_element : r == Reduction::sum ? sum(per_element) : mean(per_element);
}

// The elementwise BCE-with-logits loss with its exact derivative: composing it from
// relu and abs would give a wrong subgradient at x = 0 where the kinks cancel.
struct BceWithLogitsBackward final : Node {
  SavedTensor x, t;
  const char* name() const override { return "BceWithLogitsBackward"; }
  void release_saved() override { x.reset(), t.reset(); }
  index_t saved_bytes() const override { return x.bytes() + t.bytes(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor xv = x.unpack(*this), tv = t.unpack(*this);
    Tensor gx = next[0].node ? g * (sigmoid(xv) - tv) : Tensor();
    Tensor gt = next[1].node ? g * -xv : Tensor();  // d/dt = -x
    return {gx, gt};
  }
};
}  // namespace

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  return reduce(abs(input - target), reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, Reduction reduction) {
  TG_CHECK(logits.defined() && target.defined() && logits.dim() == target.dim() &&
               std::equal(logits.sizes().begin(), logits.sizes().end(), target.sizes().begin()),
           "binary_cross_entropy_with_logits", "target", "expected the shape of the logits ",
           logits.defined() ? logits.shape().str() : "", ", got ", target.defined() ? target.shape().str() : "undefined");
  Tensor loss;
  {
    NoGradGuard no_grad;
    loss = relu(logits) - logits * target + log(1.0 + exp(-abs(logits)));
  }
  if (needs_graph({&logits, &target})) {
    auto n = std::make_shared<BceWithLogitsBackward>();
    n->x = SavedTensor(logits), n->t = SavedTensor(target);
    attach(n, {&logits, &target}, loss, std::source_location::current());
  }
  return reduce(loss, reduction);
}

}  // namespace tg::nn
