// Reductions over dimensions (sum, mean, max) and sum_to, the inverse of broadcasting.
// Each reduced dimension is one call of the reduce kernel over an (outer, n, inner)
// view of a contiguous input; backward expands the gradient back (a view, no copy).
#include <algorithm>

#include "tilegrad/autograd/detail.hpp"
#include "tilegrad/autograd/node.hpp"
#include "tilegrad/autograd/ops.hpp"

namespace tg {

namespace {

// The dims to reduce, sorted and unique; empty means all.
std::vector<int> normalize_dims(const char* op, std::span<const int> dims, int rank) {
  std::vector<int> out;
  if (dims.empty()) {
    for (int d = 0; d < rank; ++d) out.push_back(d);
    return out;
  }
  for (int d : dims) out.push_back(detail::wrap_dim(op, d, rank));
  std::sort(out.begin(), out.end());
  TG_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), op, "dims", "expected each dim once");
  return out;
}

std::vector<index_t> kept_sizes(std::span<const index_t> sizes, const std::vector<int>& dims) {
  std::vector<index_t> k(sizes.begin(), sizes.end());
  for (int d : dims) k[std::size_t(d)] = 1;
  return k;
}

std::vector<index_t> squeezed_sizes(std::span<const index_t> sizes, const std::vector<int>& dims) {
  std::vector<index_t> s;
  for (int d = 0; d < int(sizes.size()); ++d)
    if (!std::binary_search(dims.begin(), dims.end(), d)) s.push_back(sizes[std::size_t(d)]);
  return s;
}

// The reduction itself, no autograd: keepdim sizes out.
Tensor reduce_kernel(const char* op, Reduce kind, const Tensor& x, const std::vector<int>& dims) {
  Tensor cur = x.contiguous();
  if (cur.requires_grad()) cur = cur.detach();
  if (dims.empty()) return cur.clone();
  detail::with_float_type(op, x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const auto& table = detail::table_for(op, x.device()).get<T>();
    // Adjacent dims reduce in one call; a run of dims is merged into n.
    for (std::size_t i = dims.size(); i-- > 0;) {
      std::size_t j = i;
      while (j > 0 && dims[j - 1] + 1 == dims[j]) --j;
      const int lo = dims[j], hi = dims[i];
      index_t outer = 1, n = 1, inner = 1;
      for (int d = 0; d < cur.dim(); ++d) {
        const index_t s = cur.sizes()[std::size_t(d)];
        (d < lo ? outer : d <= hi ? n : inner) *= s;
      }
      std::vector<index_t> out_sizes = detail::to_vector(cur.sizes());
      for (int d = lo; d <= hi; ++d) out_sizes[std::size_t(d)] = 1;
      Tensor next = make_tensor(out_sizes, cur.dtype(), cur.device());
      table.reduce(kind, outer, n, inner, cur.template data<T>(), n * inner, inner, 1, next.template data<T>(),
                   inner, 1);
      cur = next;
      i = j;
    }
  });
  return cur;
}

struct SumBackward final : Node {
  std::vector<index_t> in_sizes, kept;
  double scale = 1;  // 1 / count for mean
  const char* name() const override { return scale == 1 ? "SumBackward" : "MeanBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor e = g.reshape(kept).expand(in_sizes);
    return {scale == 1 ? e : e * scale};
  }
};

struct MaxBackward final : Node {
  SavedTensor x, y;  // y with keepdim sizes
  std::vector<index_t> kept;
  std::vector<int> dims;
  const char* name() const override { return "MaxBackward"; }
  void release_saved() override { x.reset(), y.reset(); }
  index_t saved_bytes() const override { return x.bytes() + y.bytes(); }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor xv = x.unpack(*this);
    const Tensor mask = eq(xv, y.unpack(*this));          // the maxima, ties included
    const Tensor count = sum(mask, dims, true);           // how many share each maximum
    return {g.reshape(kept) * (mask / count)};
  }
};

Tensor finish(const Tensor& kept_result, const std::vector<int>& dims, std::span<const index_t> in_sizes,
              bool keepdim) {
  return keepdim ? kept_result : kept_result.detach().view(squeezed_sizes(in_sizes, dims));
}

}  // namespace

Tensor sum(const Tensor& a, std::span<const int> dims_in, bool keepdim, Loc where) {
  const std::vector<int> dims = normalize_dims("sum", dims_in, a.dim());
  Tensor y = finish(reduce_kernel("sum", Reduce::sum, a, dims), dims, a.sizes(), keepdim);
  if (needs_graph({&a})) {
    auto n = std::make_shared<SumBackward>();
    n->in_sizes = detail::to_vector(a.sizes());
    n->kept = kept_sizes(a.sizes(), dims);
    y = y.detach();
    attach(n, {&a}, y, where);
  }
  return y;
}

Tensor mean(const Tensor& a, std::span<const int> dims_in, bool keepdim, Loc where) {
  const std::vector<int> dims = normalize_dims("mean", dims_in, a.dim());
  Tensor y = finish(reduce_kernel("mean", Reduce::mean, a, dims), dims, a.sizes(), keepdim);
  if (needs_graph({&a})) {
    index_t count = 1;
    for (int d : dims) count *= a.sizes()[std::size_t(d)];
    auto n = std::make_shared<SumBackward>();
    n->in_sizes = detail::to_vector(a.sizes());
    n->kept = kept_sizes(a.sizes(), dims);
    n->scale = 1.0 / double(count);
    y = y.detach();
    attach(n, {&a}, y, where);
  }
  return y;
}

Tensor max(const Tensor& a, std::span<const int> dims_in, bool keepdim, Loc where) {
  const std::vector<int> dims = normalize_dims("max", dims_in, a.dim());
  const Tensor kept = reduce_kernel("max", Reduce::max, a, dims);
  Tensor y = finish(kept, dims, a.sizes(), keepdim).detach();
  if (needs_graph({&a})) {
    auto n = std::make_shared<MaxBackward>();
    n->x = SavedTensor(a);
    n->y = SavedTensor(kept.detach());
    n->kept = kept_sizes(a.sizes(), dims);
    n->dims = dims;
    attach(n, {&a}, y, where);
  }
  return y;
}

Tensor sum(const Tensor& a, std::initializer_list<int> d, bool k, Loc w) { return sum(a, std::span<const int>(d.begin(), d.size()), k, w); }
Tensor mean(const Tensor& a, std::initializer_list<int> d, bool k, Loc w) { return mean(a, std::span<const int>(d.begin(), d.size()), k, w); }
Tensor max(const Tensor& a, std::initializer_list<int> d, bool k, Loc w) { return max(a, std::span<const int>(d.begin(), d.size()), k, w); }

Tensor sum_to(const Tensor& g, std::span<const index_t> sizes, Loc where) {
  const int extra = g.dim() - int(sizes.size());
  TG_CHECK(extra >= 0, "sum_to", "sizes", "cannot sum ", g.shape().str(), " to more dims ", Shape(sizes).str());
  std::vector<int> dims;
  for (int d = 0; d < g.dim(); ++d) {
    const index_t want = d < extra ? 1 : sizes[std::size_t(d - extra)];
    if (d < extra || (want == 1 && g.sizes()[std::size_t(d)] != 1)) dims.push_back(d);
    else
      TG_CHECK(want == g.sizes()[std::size_t(d)], "sum_to", "sizes", "cannot sum ", g.shape().str(), " to ",
               Shape(sizes).str());
  }
  if (dims.empty()) return g;
  return sum(g, dims, true, where).reshape(sizes);
}

}  // namespace tg
