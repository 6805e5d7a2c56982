// The recorded graph of one training step of a small MLP classifier, as Graphviz DOT:
// what autograd saved, where, and how the gradient flows back to each parameter.
//
//   build/examples/autograd_graph > mlp.dot && dot -Tpng mlp.dot -o mlp.png
//   (scripts/render-graph does both; Debian's graphviz has dot)
#include <iostream>

#include "tilegrad/autograd/autograd.hpp"

int main() {
  using namespace tg;
  Generator gen(0);
  auto param = [&](std::initializer_list<index_t> sizes, const char* name) {
    Tensor p = Tensor::randn(sizes, {}, &gen) * 0.1;
    p.requires_grad_().set_name(name);
    return p;
  };
  const Tensor w1 = param({256, 784}, "fc1.weight"), b1 = param({256}, "fc1.bias");
  const Tensor w2 = param({10, 256}, "fc2.weight"), b2 = param({10}, "fc2.bias");
  const Tensor x = Tensor::rand({128, 784}, {}, &gen);
  const Tensor target = Tensor::from_vector(std::vector<std::int64_t>(128, 3), {128});
  const Tensor logits = linear(linear(x, w1, b1, {Act::relu}), w2, b2);
  const Tensor loss = cross_entropy(logits, target);
  std::cout << to_dot(loss);
  return 0;
}
