#include "tilegrad/autograd/dot.hpp"

#include <cstdio>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "tilegrad/autograd/node.hpp"

namespace tg {

namespace {
std::string bytes_str(index_t b) {
  char buf[32];
  if (b >= (index_t(1) << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", double(b) / double(1 << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", double(b) / 1024.0);
  else std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(b));
  return buf;
}
}  // namespace

std::string to_dot(const Tensor& t) {
  std::ostringstream out;
  out << "digraph autograd {\n  rankdir=BT;\n  node [fontname=\"Helvetica\", fontsize=10];\n";
  std::unordered_map<const Node*, int> id;
  std::vector<const Node*> stack;
  auto visit = [&](const Node* n) {
    auto [it, fresh] = id.try_emplace(n, int(id.size()));
    if (fresh) stack.push_back(n);
    return it->second;
  };
  if (!t.defined() || !t.requires_grad()) {
    out << "  empty [label=\"no graph (the tensor does not require grad)\", shape=plaintext];\n}\n";
    return out.str();
  }
  const Edge root = edge_of(t);
  visit(root.node.get());
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    const int me = id[n];
    if (const auto* acc = dynamic_cast<const AccumulateGrad*>(n)) {
      const std::shared_ptr<TensorImpl> leaf = acc->leaf();
      const std::string nm = leaf && !leaf->name.empty() ? leaf->name : "leaf";
      out << "  n" << me << " [shape=ellipse, style=filled, fillcolor=\"" << (leaf && !leaf->name.empty() ? "#cfe8cf" : "#e8e8e8")
          << "\", label=\"" << nm;
      if (leaf) out << "\\n" << leaf->shape.str() << " " << dtype_name(leaf->dtype);
      out << "\"];\n";
    } else {
      out << "  n" << me << " [shape=box, style=filled, fillcolor=\"#dde6f5\", label=\"" << n->name() << "\\n"
          << n->out_shape.str() << " " << dtype_name(n->out_dtype);
      if (n->saved_bytes() > 0) out << "\\nsaved " << bytes_str(n->saved_bytes());
      out << "\"];\n";
    }
    for (const Edge& e : n->next)
      if (e.node) out << "  n" << visit(e.node.get()) << " -> n" << me << ";\n";
  }
  out << "  out [shape=plaintext, label=\"" << t.shape().str() << " " << dtype_name(t.dtype()) << "\"];\n  n"
      << id[root.node.get()] << " -> out;\n}\n";
  return out.str();
}

}  // namespace tg
