// The views of a Tensor (view, reshape, permute, transpose, slice, select, expand,
// squeeze, unsqueeze): new sizes, strides and offset over the same storage, no copy.
// Each records a linear backward node (the gradient reshaped, permuted back, summed
// over the expanded dimensions, or embedded into zeros for a slice), so second
// derivatives pass through them too.
#include <algorithm>
#include <numeric>

#include "tilegrad/autograd/detail.hpp"
#include "tilegrad/autograd/node.hpp"
#include "tilegrad/autograd/ops.hpp"
#include "tilegrad/autograd/tensor.hpp"

namespace tg {

namespace {

// reshape/view/squeeze/unsqueeze: the gradient is reshaped back.
struct ViewBackward final : Node {
  std::vector<index_t> in_sizes;
  const char* name() const override { return "ViewBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g.reshape(in_sizes)}; }
};

struct PermuteBackward final : Node {
  std::vector<int> inverse;
  const char* name() const override { return "PermuteBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g.permute(inverse)}; }
};

struct ExpandBackward final : Node {
  std::vector<index_t> in_sizes;
  const char* name() const override { return "ExpandBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {sum_to(g, in_sizes)}; }
};

Tensor embed_slice(const Tensor& g, const std::vector<index_t>& in_sizes, int d, index_t start, index_t step,
                   Loc where);

// The gradient of a slice is zero outside it; the gradient of that embedding is the
// slice again: both linear, so second derivatives pass through.
struct SliceBackward final : Node {
  std::vector<index_t> in_sizes;
  int d = 0;
  index_t start = 0, step = 1;
  const char* name() const override { return "SliceBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {embed_slice(g, in_sizes, d, start, step, where)}; }
};

struct EmbedSliceBackward final : Node {
  int d = 0;
  index_t start = 0, step = 1, len = 0;
  const char* name() const override { return "EmbedSliceBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g.slice(d, start, start + len * step, step)}; }
};

Tensor embed_slice(const Tensor& g, const std::vector<index_t>& in_sizes, int d, index_t start, index_t step,
                   Loc where) {
  Tensor out = Tensor::zeros(in_sizes, TensorOptions().with_dtype(g.dtype()).with_device(g.device()));
  {
    NoGradGuard no_grad;
    detail::copy_into("slice_backward", out.slice(d, start, start + g.size(d) * step, step), g);
  }
  if (needs_graph({&g})) {
    auto n = std::make_shared<EmbedSliceBackward>();
    n->d = d, n->start = start, n->step = step, n->len = g.size(d);
    attach(n, {&g}, out, where);
  }
  return out;
}

Tensor as_view(const Tensor& t, const Shape& s, index_t offset, const std::shared_ptr<Node>& node, Loc where) {
  Tensor v = make_view(t, s, offset);
  if (node) attach(node, {&t}, v, where);
  return v;
}

}  // namespace

Tensor Tensor::view(std::span<const index_t> req) const {
  // Infer a -1, then require a layout that the new sizes can walk: contiguous.
  std::vector<index_t> sizes(req.begin(), req.end());
  index_t known = 1;
  int infer = -1;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == -1) {
      TG_CHECK(infer < 0, "view", "sizes", "expected at most one -1");
      infer = int(i);
    } else {
      TG_CHECK(sizes[i] >= 0, "view", "sizes", "expected sizes >= 0 or -1, got ", sizes[i]);
      known *= sizes[i];
    }
  }
  if (infer >= 0) {
    TG_CHECK(known > 0 && numel() % known == 0, "view", "sizes", "cannot infer -1 for ", numel(),
             " elements from the other sizes");
    sizes[std::size_t(infer)] = numel() / known;
    known *= sizes[std::size_t(infer)];
  }
  TG_CHECK(known == numel(), "view", "sizes", "expected sizes with ", numel(), " elements (shape ",
           shape().str(), "), got ", Shape(sizes).str());
  TG_CHECK(is_contiguous(), "view", "tensor",
           "expected a contiguous tensor (shape ", shape().str(), "); use reshape(), which copies when it must");
  std::shared_ptr<Node> node;
  if (needs_graph({this})) {
    auto n = std::make_shared<ViewBackward>();
    n->in_sizes = detail::to_vector(this->sizes());
    node = n;
  }
  return as_view(*this, Shape(sizes), offset(), node, Loc::current());
}

Tensor Tensor::reshape(std::span<const index_t> sizes) const {
  return is_contiguous() ? view(sizes) : contiguous().view(sizes);
}

Tensor Tensor::permute(std::span<const int> order) const {
  const int rank = dim();
  TG_CHECK(int(order.size()) == rank, "permute", "order", "expected ", rank, " dims, got ", order.size());
  std::vector<index_t> sz(static_cast<std::size_t>(rank), 0), st(std::size_t(rank), 0);
  std::vector<int> inverse(static_cast<std::size_t>(rank), -1);
  for (int i = 0; i < rank; ++i) {
    const int d = detail::wrap_dim("permute", order[std::size_t(i)], rank);
    TG_CHECK(inverse[std::size_t(d)] < 0, "permute", "order", "expected a permutation, dim ", d, " repeats");
    inverse[std::size_t(d)] = i;
    sz[std::size_t(i)] = sizes()[std::size_t(d)];
    st[std::size_t(i)] = strides()[std::size_t(d)];
  }
  std::shared_ptr<Node> node;
  if (needs_graph({this})) {
    auto n = std::make_shared<PermuteBackward>();
    n->inverse = inverse;
    node = n;
  }
  return as_view(*this, Shape(sz, st), offset(), node, Loc::current());
}

Tensor Tensor::transpose(int d0, int d1) const {
  const int rank = dim();
  std::vector<int> order(static_cast<std::size_t>(rank));
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[std::size_t(detail::wrap_dim("transpose", d0, rank))],
            order[std::size_t(detail::wrap_dim("transpose", d1, rank))]);
  return permute(order);
}

Tensor Tensor::slice(int d, index_t start, index_t end, index_t step) const {
  d = detail::wrap_dim("slice", d, dim());
  TG_CHECK(step >= 1, "slice", "step", "expected step >= 1, got ", step);
  const index_t n = size(d);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<index_t>(start, 0, n);
  end = std::clamp<index_t>(end, start, n);
  std::vector<index_t> sz = detail::to_vector(sizes()), st = detail::to_vector(strides());
  sz[std::size_t(d)] = (end - start + step - 1) / step;
  const index_t off = offset() + (sz[std::size_t(d)] > 0 ? start * st[std::size_t(d)] : 0);
  st[std::size_t(d)] *= step;
  std::shared_ptr<Node> node;
  if (needs_graph({this})) {
    auto s = std::make_shared<SliceBackward>();
    s->in_sizes = detail::to_vector(sizes());
    s->d = d, s->start = start, s->step = step;
    node = s;
  }
  return as_view(*this, Shape(sz, st), off, node, Loc::current());
}

Tensor Tensor::select(int d, index_t i) const {
  d = detail::wrap_dim("select", d, dim());
  TG_CHECK(i >= -size(d) && i < size(d), "select", "index", "expected an index in [", -size(d), ", ", size(d),
           "), got ", i);
  if (i < 0) i += size(d);
  return slice(d, i, i + 1).squeeze(d);
}

Tensor Tensor::expand(std::span<const index_t> req) const {
  const int rank = dim(), out_rank = int(req.size());
  TG_CHECK(out_rank >= rank, "expand", "sizes", "expected at least ", rank, " sizes, got ", out_rank);
  std::vector<index_t> sz(req.begin(), req.end()), st(req.size(), 0);
  for (int i = out_rank - 1, j = rank - 1; i >= 0; --i, --j) {
    if (j < 0) {
      TG_CHECK(sz[std::size_t(i)] >= 0, "expand", "sizes", "expected a size for new dim ", i, ", got -1");
      continue;  // new leading dims: stride 0
    }
    const index_t have = sizes()[std::size_t(j)];
    if (sz[std::size_t(i)] == -1) sz[std::size_t(i)] = have;
    if (have == sz[std::size_t(i)]) {
      st[std::size_t(i)] = strides()[std::size_t(j)];
    } else {
      TG_CHECK(have == 1, "expand", "sizes", "can only stretch dims of size 1: dim ", j, " of ", shape().str(),
               " to ", sz[std::size_t(i)]);
    }
  }
  std::shared_ptr<Node> node;
  if (needs_graph({this})) {
    auto n = std::make_shared<ExpandBackward>();
    n->in_sizes = detail::to_vector(sizes());
    node = n;
  }
  return as_view(*this, Shape(sz, st), offset(), node, Loc::current());
}

namespace {
Tensor reshaped_view(const Tensor& t, std::vector<index_t> sz, std::vector<index_t> st) {
  std::shared_ptr<Node> node;
  if (needs_graph({&t})) {
    auto n = std::make_shared<ViewBackward>();
    n->in_sizes = detail::to_vector(t.sizes());
    node = n;
  }
  return as_view(t, Shape(sz, st), t.offset(), node, Loc::current());
}
}  // namespace

Tensor Tensor::squeeze(int d) const {
  d = detail::wrap_dim("squeeze", d, dim());
  if (size(d) != 1) return *this;
  std::vector<index_t> sz = detail::to_vector(sizes()), st = detail::to_vector(strides());
  sz.erase(sz.begin() + d);
  st.erase(st.begin() + d);
  return reshaped_view(*this, sz, st);
}

Tensor Tensor::squeeze() const {
  std::vector<index_t> sz, st;
  for (int d = 0; d < dim(); ++d)
    if (sizes()[std::size_t(d)] != 1) sz.push_back(sizes()[std::size_t(d)]), st.push_back(strides()[std::size_t(d)]);
  if (int(sz.size()) == dim()) return *this;
  return reshaped_view(*this, sz, st);
}

Tensor Tensor::unsqueeze(int d) const {
  d = detail::wrap_dim("unsqueeze", d, dim() + 1);
  std::vector<index_t> sz = detail::to_vector(sizes()), st = detail::to_vector(strides());
  const index_t stride = d < dim() ? st[std::size_t(d)] * sz[std::size_t(d)] : 1;
  sz.insert(sz.begin() + d, 1);
  st.insert(st.begin() + d, stride);
  return reshaped_view(*this, sz, st);
}

}  // namespace tg
