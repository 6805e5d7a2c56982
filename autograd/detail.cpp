#include "tilegrad/autograd/detail.hpp"

#include <cstdint>

#include "tilegrad/autograd/profiler.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/cuda/ops.hpp"
#include "tilegrad/kernels/reference/nd.hpp"

namespace tg::detail {

void no_kernels_for(const char* op, Device device) {
  throw_error(op, "device", "no kernels for device ", device.str());
}

void check_same(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  int i = 0;
  for (const Tensor* t : tensors) {
    TG_CHECK(t && t->defined(), op, "input", "expected a defined tensor as input ", i);
    if (!first) {
      first = t;
    } else {
      TG_CHECK(t->device() == first->device(), op, "device", "expected every input on ", first->device().str(),
               ", got input ", i, " on ", t->device().str());
      TG_CHECK(t->dtype() == first->dtype(), op, "dtype", "expected every input of dtype ",
               dtype_name(first->dtype()), ", got input ", i, " of ", dtype_name(t->dtype()));
    }
    ++i;
  }
}

int wrap_dim(const char* op, int d, int rank) {
  const int r = std::max(rank, 1);  // a scalar accepts dim 0 and -1, as NumPy does
  TG_CHECK(d >= -r && d < r, op, "dim", "expected a dim in [", -r, ", ", r, "), got ", d);
  return d < 0 ? d + r : d;
}

std::vector<index_t> broadcast_sizes(const char* op, std::span<const index_t> a, std::span<const index_t> b) {
  const std::size_t n = std::max(a.size(), b.size());
  std::vector<index_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const index_t x = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const index_t y = i < n - b.size() ? 1 : b[i - (n - b.size())];
    TG_CHECK(x == y || x == 1 || y == 1, op, "shape", "cannot broadcast ", Shape(a).str(), " with ", Shape(b).str(),
             " (dim ", i, ": ", x, " vs ", y, ")");
    out[i] = x == 1 ? y : x;
  }
  return out;
}

Shape broadcast_view(const Tensor& t, std::span<const index_t> sizes) {
  const std::size_t n = sizes.size(), r = std::size_t(t.dim());
  index_t st[Shape::kMaxRank] = {};
  for (std::size_t i = 0; i < r; ++i) {
    const std::size_t o = n - r + i;
    st[o] = t.sizes()[i] == sizes[o] ? t.strides()[i] : 0;
  }
  return Shape(sizes, std::span<const index_t>(st, n));
}

std::vector<index_t> to_vector(std::span<const index_t> s) { return {s.begin(), s.end()}; }

Tensor unary_kernel(const char* name, Unary op, const Tensor& x, double p0, double p1) {
  if (is_half(x.dtype())) return unary_kernel(name, op, x.detach().to(DType::f32), p0, p1).to(x.dtype());
  Tensor y = make_tensor(x.sizes(), x.dtype(), x.device());
  with_float_type(name, x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    table_for(name, x.device()).get<T>().unary(op, p0, p1, x.shape(), x.data<T>(), y.shape(), y.data<T>());
  });
  return y;
}

Tensor binary_kernel(const char* name, Binary op, const Tensor& a, const Tensor& b) {
  check_same(name, {&a, &b});
  if (is_half(a.dtype()))
    return binary_kernel(name, op, a.detach().to(DType::f32), b.detach().to(DType::f32)).to(a.dtype());
  const bool same = a.dim() == b.dim() && std::equal(a.sizes().begin(), a.sizes().end(), b.sizes().begin());
  std::vector<index_t> broadcast;  // allocated only when the sizes differ
  if (!same) broadcast = broadcast_sizes(name, a.sizes(), b.sizes());
  const std::span<const index_t> sizes = same ? a.sizes() : std::span<const index_t>(broadcast);
  Tensor y = make_tensor(sizes, a.dtype(), a.device());
  with_float_type(name, a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    table_for(name, a.device())
        .get<T>()
        .binary(op, same ? a.shape() : broadcast_view(a, sizes), a.data<T>(), same ? b.shape() : broadcast_view(b, sizes),
                b.data<T>(), y.shape(), y.data<T>());
  });
  return y;
}

void copy_into(const char* name, const Tensor& dst, const Tensor& src) {
  check_same(name, {&dst, &src});
  bool fits = src.dim() <= dst.dim();
  for (int i = 0; fits && i < src.dim(); ++i) {
    const index_t n = src.sizes()[std::size_t(i)], m = dst.sizes()[std::size_t(dst.dim() - src.dim() + i)];
    fits = n == m || n == 1;
  }
  TG_CHECK(fits, name, "src", "cannot broadcast ", src.shape().str(), " into ", dst.shape().str());
  const Shape sv = broadcast_view(src, dst.sizes());
  if (is_half(dst.dtype())) {  // 16-bit words move as they are (no arithmetic kernel for them)
    if (dst.device().is_cuda()) {
      TG_CHECK(dst.is_contiguous(), name, "dst", "a 16-bit copy on cuda writes a contiguous tensor; got ",
               dst.shape().str());
      cuda::convert(dst.dtype(), dst.dtype(), sv, src.raw_data(), dst.raw_data());
    } else {
      auto* out = static_cast<std::uint16_t*>(dst.raw_data());
      const auto* in = static_cast<const std::uint16_t*>(src.raw_data());
      const Shape& ds = dst.shape();
      ref::nd_for_each<2>(ds.sizes(), {&ds, &sv}, [&](index_t o, index_t i) { out[o] = in[i]; });
    }
    return;
  }
  with_float_type(name, dst.dtype(), [&](auto zero) {
    using T = decltype(zero);
    table_for(name, dst.device()).get<T>().unary(Unary::copy, 0, 0, sv, src.data<T>(), dst.shape(), dst.data<T>());
  });
}

}  // namespace tg::detail
