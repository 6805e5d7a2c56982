// Tensor: storage, factories, element access, printing, device and dtype copies,
// in-place writes. The views (view, reshape, permute, slice, expand, ...) and their
// backward nodes are in autograd/ops/view.cpp.
#include "tilegrad/autograd/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <ostream>
#include <sstream>

#include "tilegrad/autograd/detail.hpp"
#include "tilegrad/autograd/node.hpp"
#include "tilegrad/autograd/ops.hpp"
#include "tilegrad/cpu/convert.hpp"
#include "tilegrad/cuda/ops.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/reference/nd.hpp"

namespace tg {

Generator& default_generator() {
  static Generator g;  // one per process, as torch's default CPU generator
  return g;
}
void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

TensorImpl& Tensor::impl() const {
  if (!impl_) [[unlikely]]
    detail::throw_error("Tensor", "tensor", "expected a defined tensor, got an undefined (default-constructed) one");
  return *impl_;
}

Tensor make_tensor(std::span<const index_t> sizes, DType dtype, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = Shape(sizes);
  impl->storage = std::make_shared<Storage>();
  impl->storage->buffer = Buffer(std::size_t(impl->shape.numel()) * dtype_size(dtype), device);
  impl->dtype = dtype;
  impl->device = device;
  return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& t, const Shape& shape, index_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.storage();
  impl->shape = shape;
  impl->offset = offset;
  impl->dtype = t.dtype();
  impl->device = t.device();
  return Tensor(std::move(impl));
}

// ---------------------------------------------------------------------------------
// Factories
// ---------------------------------------------------------------------------------
namespace {
Tensor finish(Tensor t, const TensorOptions& opts) {
  if (opts.requires_grad) t.requires_grad_(true);
  return t;
}
}  // namespace

Tensor Tensor::empty(std::span<const index_t> sizes, TensorOptions opts) {
  return finish(make_tensor(sizes, opts.dtype, opts.device), opts);
}

Tensor Tensor::full(std::span<const index_t> sizes, double value, TensorOptions opts) {
  Tensor t = make_tensor(sizes, opts.dtype, opts.device);
  t.fill_(value);
  return finish(t, opts);
}
Tensor Tensor::zeros(std::span<const index_t> sizes, TensorOptions opts) { return full(sizes, 0.0, opts); }
Tensor Tensor::ones(std::span<const index_t> sizes, TensorOptions opts) { return full(sizes, 1.0, opts); }

Tensor Tensor::arange(double start, double end, double step, TensorOptions opts) {
  TG_CHECK(step != 0 && std::isfinite(step), "arange", "step", "expected a finite nonzero step, got ", step);
  const double count = std::ceil((end - start) / step);
  const index_t n = count > 0 ? index_t(count) : 0;
  std::vector<double> v(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) v[std::size_t(i)] = start + double(i) * step;
  const index_t sizes[] = {n};
  Tensor t = from_vector(v, sizes, TensorOptions().with_device(opts.device));
  if (opts.dtype != DType::f64) t = t.to(opts.dtype);
  return finish(t, opts);
}

namespace {
Tensor random_tensor(const char* op, Random kind, std::span<const index_t> sizes, TensorOptions opts, Generator* gen,
                     double a, double b) {
  TG_CHECK(opts.device.is_cpu() || !cuda::capturing(), op, "capture",
           "cannot be captured in a CUDA graph: its draws come from the generator's counter on the host, so every "
           "replay would draw the same numbers (draw outside the graph)");
  Tensor t = make_tensor(sizes, opts.dtype, opts.device);
  Generator& g = gen ? *gen : default_generator();
  const std::uint64_t offset = g.take();
  detail::with_float_type(op, opts.dtype, [&](auto zero) {
    using T = decltype(zero);
    detail::table_for(op, opts.device).get<T>().random(kind, t.numel(), t.data<T>(), a, b, g.seed(), offset);
  });
  return finish(t, opts);
}
}  // namespace

Tensor Tensor::rand(std::span<const index_t> sizes, TensorOptions opts, Generator* gen) {
  return random_tensor("rand", Random::uniform, sizes, opts, gen, 0.0, 1.0);
}
Tensor Tensor::randn(std::span<const index_t> sizes, TensorOptions opts, Generator* gen) {
  return random_tensor("randn", Random::normal, sizes, opts, gen, 0.0, 1.0);
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, std::span<const index_t> sizes, TensorOptions opts) {
  Tensor t = make_tensor(sizes, dtype_v<T>, Device::cpu());
  TG_CHECK(t.numel() == index_t(values.size()), "from_vector", "values", "expected ", t.numel(),
           " values for shape ", t.shape().str(), ", got ", values.size());
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  if (!opts.device.is_cpu()) t = t.to(opts.device);
  return finish(t, opts);
}
template Tensor Tensor::from_vector<float>(const std::vector<float>&, std::span<const index_t>, TensorOptions);
template Tensor Tensor::from_vector<double>(const std::vector<double>&, std::span<const index_t>, TensorOptions);
template Tensor Tensor::from_vector<std::int64_t>(const std::vector<std::int64_t>&, std::span<const index_t>,
                                                  TensorOptions);

Tensor Tensor::from_blob(void* data, std::span<const index_t> sizes, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = Shape(sizes);
  impl->storage = std::make_shared<Storage>();
  impl->storage->buffer = Buffer::borrow(data, std::size_t(impl->shape.numel()) * dtype_size(dtype));
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

// ---------------------------------------------------------------------------------
// Element access and printing
// ---------------------------------------------------------------------------------
index_t Tensor::size(int d) const { return sizes()[std::size_t(detail::wrap_dim("size", d, dim()))]; }

void* Tensor::raw_data() const {
  const TensorImpl& t = impl();
  char* base = static_cast<char*>(t.storage->buffer.data());
  // An empty tensor's storage may have no memory at all (nullptr), and a view of it an
  // offset: no element to address, and nullptr + offset is undefined.
  if (base == nullptr) return nullptr;
  return base + t.offset * index_t(dtype_size(t.dtype));
}

template <class T>
T* Tensor::data() const {
  TG_CHECK(dtype() == dtype_v<T>, "Tensor::data", "T", "expected the tensor's dtype ", dtype_name(dtype()),
           ", got a pointer type for ", dtype_name(dtype_v<T>));
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template std::int64_t* Tensor::data<std::int64_t>() const;
template bfloat16* Tensor::data<bfloat16>() const;
template float16* Tensor::data<float16>() const;

namespace {
// An element as double (16-bit ones through float: exact).
template <class S> double as_double(S v) {
  if constexpr (std::is_same_v<S, bfloat16> || std::is_same_v<S, float16>) return double(float(v));
  else return double(v);
}
}  // namespace

template <class T>
std::vector<T> Tensor::to_vector() const {
  const Tensor host = device().is_cpu() ? *this : to(Device::cpu());
  std::vector<T> out;
  out.reserve(std::size_t(numel()));
  const Shape& s = host.shape();
  auto gather = [&](auto* p) {
    ref::nd_for_each<1>(s.sizes(), {&s}, [&](index_t o) {
      if constexpr (std::is_same_v<std::remove_cvref_t<decltype(p[o])>, std::int64_t>) out.push_back(T(p[o]));
      else out.push_back(T(as_double(p[o])));
    });
  };
  switch (dtype()) {
    case DType::f32: gather(host.data<float>()); break;
    case DType::f64: gather(host.data<double>()); break;
    case DType::i64: gather(host.data<std::int64_t>()); break;
    case DType::bf16: gather(host.data<bfloat16>()); break;
    case DType::f16: gather(host.data<float16>()); break;
  }
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<std::int64_t> Tensor::to_vector<std::int64_t>() const;

double Tensor::item() const {
  TG_CHECK(numel() == 1, "item", "tensor", "expected one element, got shape ", shape().str());
  return to_vector<double>()[0];
}

namespace {
// NumPy's print options: summarize beyond 1000 elements, 3 items at each edge.
constexpr index_t kThreshold = 1000, kEdge = 3;

struct Printer {
  const std::vector<double>& v;
  std::span<const index_t> sizes;
  bool summarize, integer, sci;
  std::ostringstream out;

  std::string number(double x) const {
    char buf[64];
    if (integer) std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(x));
    else if (sci) std::snprintf(buf, sizeof buf, "%.4e", x);
    else std::snprintf(buf, sizeof buf, "%.4f", x);
    return buf;
  }
  // Prints the sub-array at dim d starting at flat index base (row-major strides).
  void print(int d, index_t base, int indent) {
    const int rank = int(sizes.size());
    if (rank == 0) {
      out << number(v[0]);
      return;
    }
    index_t inner = 1;
    for (int k = d + 1; k < rank; ++k) inner *= sizes[std::size_t(k)];
    const index_t n = sizes[std::size_t(d)];
    out << "[";
    for (index_t i = 0; i < n; ++i) {
      if (summarize && n > 2 * kEdge && i == kEdge) {
        out << (d + 1 == rank ? "..., " : "...,\n" + std::string(std::size_t(indent + 1), ' '));
        i = n - kEdge;
      }
      if (d + 1 == rank) out << number(v[std::size_t(base + i)]);
      else print(d + 1, base + i * inner, indent + 1);
      if (i + 1 < n) out << (d + 1 == rank ? ", " : ",\n" + std::string(std::size_t(indent + 1), ' '));
    }
    out << "]";
  }
};
}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  const std::vector<double> v = to_vector<double>();
  double big = 0, small = INFINITY;
  for (double x : v)
    if (std::isfinite(x) && x != 0) big = std::max(big, std::fabs(x)), small = std::min(small, std::fabs(x));
  Printer p{v, sizes(), numel() > kThreshold, dtype() == DType::i64, big >= 1e8 || small < 1e-4, {}};
  p.out << "tensor(";
  p.print(0, 0, 7);
  p.out << ", shape=" << shape().str() << ", dtype=" << dtype_name(dtype()) << ", device=" << device().str();
  if (grad_fn()) p.out << ", grad_fn=" << grad_fn()->name();
  else if (requires_grad()) p.out << ", requires_grad=true";
  p.out << ")";
  return p.out.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

// ---------------------------------------------------------------------------------
// Autograd state
// ---------------------------------------------------------------------------------
Tensor& Tensor::requires_grad_(bool on) {
  TG_CHECK(is_leaf(), "requires_grad_", "tensor",
           "can only be set on a leaf (this tensor was made by ", grad_fn()->name(), "); use detach() first");
  TG_CHECK(!on || dtype() != DType::i64, "requires_grad_", "dtype",
           "only floating tensors can require grad, got ", dtype_name(dtype()));
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
void Tensor::set_grad(const Tensor& g) { impl().grad = g.impl_ptr(); }

Tensor Tensor::detach() const { return make_view(*this, shape(), offset()); }

void Tensor::register_hook(GradHook hook) const {
  TG_CHECK(requires_grad(), "register_hook", "tensor", "expected a tensor that requires grad");
  edge_of(*this).node->hooks.push_back(std::move(hook));
}

void Tensor::register_post_accumulate_grad_hook(PostAccumulateHook hook) const {
  TG_CHECK(requires_grad() && is_leaf(), "register_post_accumulate_grad_hook", "tensor",
           "expected a leaf that requires grad");
  std::static_pointer_cast<AccumulateGrad>(edge_of(*this).node)->post_hooks.push_back(std::move(hook));
}

Tensor& Tensor::set_name(std::string n) {
  impl().name = std::move(n);
  return *this;
}

// ---------------------------------------------------------------------------------
// Copies between layouts, devices and dtypes
// ---------------------------------------------------------------------------------
namespace {
struct CloneBackward final : Node {
  const char* name() const override { return "CloneBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g}; }
};
struct ToDeviceBackward final : Node {
  Device from{};
  const char* name() const override { return "ToDeviceBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g.to(from)}; }
};
struct ToDTypeBackward final : Node {
  DType from = DType::f32;
  const char* name() const override { return "ToDTypeBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g.to(from)}; }
};

// A contiguous copy of t on the same device (i64 by plain loops on the CPU).
Tensor copy_contiguous(const Tensor& t) {
  Tensor out = make_tensor(t.sizes(), t.dtype(), t.device());
  if (t.dtype() == DType::i64) {
    TG_CHECK(t.device().is_cpu(), "clone", "device", "i64 tensors are copied on the CPU only");
    const Shape& s = t.shape();
    const std::int64_t* src = t.data<std::int64_t>();
    std::int64_t* dst = out.data<std::int64_t>();
    ref::nd_for_each<1>(s.sizes(), {&s}, [&](index_t o) { *dst++ = src[o]; });
  } else {
    detail::copy_into("clone", out, t);
  }
  return out;
}
}  // namespace

Tensor Tensor::clone() const {
  Tensor out = copy_contiguous(*this);
  if (needs_graph({this})) attach(std::make_shared<CloneBackward>(), {this}, out, Loc::current());
  return out;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

namespace {
// bytes from src on `from` to dst on `to` (one of them a device), a profile's copy row
// named by its direction.
void transfer(void* dst, Device to, const void* src, Device from, std::size_t bytes) {
  const char* name = from.is_cpu() ? "copy host -> device" : to.is_cpu() ? "copy device -> host" : "copy device -> device";
  const ProfileScope prof(ProfileEvent::Kind::copy, name, {}, double(bytes));
  cuda::copy_bytes(dst, !to.is_cpu(), src, !from.is_cpu(), bytes);
}
}  // namespace

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  const Tensor src = contiguous();
  Tensor out = make_tensor(sizes(), dtype(), d);
  transfer(out.raw_data(), d, src.raw_data(), device(), std::size_t(numel()) * dtype_size(dtype()));
  if (needs_graph({this})) {
    auto n = std::make_shared<ToDeviceBackward>();
    n->from = device();
    attach(n, {this}, out, Loc::current());
  }
  return out;
}

namespace {
// A double rounded to float toward zero, its last bit set when inexact ("round to odd"):
// rounding that float to a 16-bit type then gives the correctly rounded result of the
// double, which double -> float -> 16 bits (two roundings to nearest) does not always.
float round_to_odd(double d) {
  float f = float(d);
  if (std::fabs(double(f)) > std::fabs(d)) f = std::nextafter(f, 0.0f);
  if (double(f) != d && !std::isnan(d)) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    u |= 1u;
    std::memcpy(&f, &u, 4);
  }
  return f;
}

template <class D, class S> D convert_one(S v) {
  constexpr bool to16 = std::is_same_v<D, bfloat16> || std::is_same_v<D, float16>;
  constexpr bool from16 = std::is_same_v<S, bfloat16> || std::is_same_v<S, float16>;
  if constexpr (to16 && from16) return D(float(v));
  else if constexpr (to16 && std::is_same_v<S, float>) return D(v);
  else if constexpr (to16) return D(round_to_odd(double(v)));
  else if constexpr (from16) return static_cast<D>(float(v));
  else return static_cast<D>(v);
}
}  // namespace

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor out = make_tensor(sizes(), t, device());
  if (device().is_cuda()) {
    auto on_cuda = [](DType d) { return d == DType::f32 || d == DType::bf16 || d == DType::f16; };
    TG_CHECK(on_cuda(dtype()) && on_cuda(t), "to", "dtype",
             "dtype conversion on cuda takes f32, bf16 and f16; got ", dtype_name(dtype()), " -> ", dtype_name(t),
             " (convert on the CPU)");
    cuda::convert(dtype(), t, shape(), raw_data(), out.raw_data());
  } else if (is_contiguous() && (dtype() == DType::f32 || detail::is_half(dtype())) &&
             (t == DType::f32 || detail::is_half(t))) {
    cpu::convert(dtype(), t, numel(), raw_data(), out.raw_data());  // AVX2/F16C, threads
  } else {
    const Shape& s = shape();
    const bool dense = is_contiguous();
    auto convert = [&](auto* src, auto* dst) {
      using D = std::remove_pointer_t<decltype(dst)>;
      if (dense) {  // a plain loop the compiler vectorizes
        const index_t n = numel();
        for (index_t i = 0; i < n; ++i) dst[i] = convert_one<D>(src[i]);
      } else if (const index_t r = dim() >= 2 ? size(-2) : 0, c = dim() >= 2 ? size(-1) : 0;
                 dim() >= 2 && transpose(-1, -2).is_contiguous()) {
        // A transposed matrix (a weight's W^T, its gradient): 32 x 32 tiles read along the
        // storage, so both sides stay in cache (a per-element index walk cost ~10x more).
        const index_t batches = r * c == 0 ? 0 : numel() / (r * c);
        for (index_t b = 0; b < batches; ++b)
          for (index_t j0 = 0; j0 < c; j0 += 32)
            for (index_t i0 = 0; i0 < r; i0 += 32)
              for (index_t j = j0; j < std::min(c, j0 + 32); ++j)
                for (index_t i = i0; i < std::min(r, i0 + 32); ++i)
                  dst[b * r * c + i * c + j] = convert_one<D>(src[b * r * c + j * r + i]);
      } else {
        ref::nd_for_each<1>(s.sizes(), {&s}, [&](index_t o) { *dst++ = convert_one<D>(src[o]); });
      }
    };
    auto from = [&](auto* src) {
      switch (t) {
        case DType::f32: return convert(src, out.data<float>());
        case DType::f64: return convert(src, out.data<double>());
        case DType::i64: return convert(src, out.data<std::int64_t>());
        case DType::bf16: return convert(src, out.data<bfloat16>());
        case DType::f16: return convert(src, out.data<float16>());
      }
    };
    switch (dtype()) {
      case DType::f32: from(data<float>()); break;
      case DType::f64: from(data<double>()); break;
      case DType::i64: from(data<std::int64_t>()); break;
      case DType::bf16: from(data<bfloat16>()); break;
      case DType::f16: from(data<float16>()); break;
    }
  }
  if (needs_graph({this}) && t != DType::i64) {
    auto n = std::make_shared<ToDTypeBackward>();
    n->from = dtype();
    attach(n, {this}, out, Loc::current());
  }
  return out;
}

// ---------------------------------------------------------------------------------
// In place
// ---------------------------------------------------------------------------------
namespace {
void check_in_place(const char* op, const Tensor& t) {
  TG_CHECK(!(grad_enabled() && t.requires_grad()), op, "tensor",
           "in-place write to a tensor that requires grad while grad mode is on; use the out-of-place op, or "
           "write under NoGradGuard (as optimizers do)");
}
void bump(const Tensor& t) { ++t.storage()->version; }
}  // namespace

Tensor& Tensor::fill_(double value) {
  check_in_place("fill_", *this);
  if (dtype() == DType::i64) {
    TG_CHECK(device().is_cpu(), "fill_", "device", "i64 tensors are filled on the CPU only");
    const Shape& s = shape();
    std::int64_t* p = data<std::int64_t>();
    ref::nd_for_each<1>(s.sizes(), {&s}, [&](index_t o) { p[o] = std::int64_t(value); });
  } else {
    detail::with_float_type("fill_", dtype(), [&](auto zero) {
      using T = decltype(zero);
      detail::table_for("fill_", device()).get<T>().unary(Unary::fill, value, 0, shape(), nullptr, shape(), data<T>());
    });
  }
  bump(*this);
  return *this;
}

Tensor& Tensor::zero_() { return fill_(0.0); }

Tensor& Tensor::copy_(const Tensor& src) {
  check_in_place("copy_", *this);
  if (src.device() != device() && src.dtype() == dtype() && std::ranges::equal(src.sizes(), sizes()) &&
      src.is_contiguous() && is_contiguous()) {
    // Across devices, like for like: the bytes in one transfer (no staging tensor), for
    // every dtype (i64 targets too: a batch copied into a CUDA graph's inputs).
    transfer(raw_data(), device(), src.raw_data(), src.device(), std::size_t(numel()) * dtype_size(dtype()));
    bump(*this);
    return *this;
  }
  const Tensor s = src.device() == device() && src.dtype() == dtype() ? src : src.to(device()).to(dtype());
  detail::copy_into("copy_", *this, s);
  bump(*this);
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_in_place("add_", *this);
  detail::check_same("add_", {this, &other});
  const Tensor o = alpha == 1 ? other : detail::unary_kernel("add_", Unary::mul_scalar, other, alpha);
  detail::with_float_type("add_", dtype(), [&](auto zero) {
    using T = decltype(zero);
    detail::table_for("add_", device()).get<T>().binary(Binary::add, shape(), data<T>(),
                                                         detail::broadcast_view(o, sizes()), o.data<T>(), shape(),
                                                         data<T>());
  });
  bump(*this);
  return *this;
}

Tensor& Tensor::mul_(double value) {
  check_in_place("mul_", *this);
  detail::with_float_type("mul_", dtype(), [&](auto zero) {
    using T = decltype(zero);
    detail::table_for("mul_", device()).get<T>().unary(Unary::mul_scalar, value, 0, shape(), data<T>(), shape(),
                                                        data<T>());
  });
  bump(*this);
  return *this;
}

}  // namespace tg
