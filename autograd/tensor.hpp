// Tensor: a strided view of shared storage on one device, with what reverse-mode
// autograd needs (requires_grad, grad, the op that made it).
//
// A Tensor is a handle: copies share the same TensorImpl (like torch.Tensor in Python).
// Views (view/reshape, transpose, permute, slice, expand, squeeze, unsqueeze) make a new
// TensorImpl over the same Storage, never a copy; contiguous() copies only when needed.
// Storage carries a version counter that in-place writes bump, so that a backward pass
// can tell that a tensor it saved has changed since (SavedTensor in autograd/node.hpp).
//
// dtypes: f32 everywhere, f64 on the CPU (the reference kernels serve it: gradcheck runs
// in double), bf16 and f16 for mixed precision (casts with to(DType); matmul and linear
// multiply them with f32 accumulation into f32; other ops compute them in f32 and round
// once; AutocastGuard in node.hpp), i64 for class indices (creation, copies, item,
// printing only). Devices:
// cpu, and cuda where built (to(Device) copies; the ops dispatch on the inputs' device
// and mixing devices in one op is an error).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <source_location>
#include <span>
#include <string>
#include <vector>

#include "tilegrad/kernels/buffer.hpp"
#include "tilegrad/kernels/shape.hpp"
#include "tilegrad/kernels/types.hpp"

namespace tg {

class Node;
class AccumulateGrad;
class Tensor;

struct Storage {
  Buffer buffer;
  std::uint64_t version = 0;  // bumped by every in-place write to the storage
};

// A hook on a gradient: returns a replacement, or an undefined Tensor to keep it.
using GradHook = std::function<Tensor(const Tensor& grad)>;
// Runs after a leaf's .grad was accumulated.
using PostAccumulateHook = std::function<void(const Tensor& leaf)>;

struct TensorImpl {
  TensorImpl() = default;
  TensorImpl(const TensorImpl&) = delete;
  TensorImpl& operator=(const TensorImpl&) = delete;
  ~TensorImpl();  // hands grad_fn to release_node (autograd/node.hpp)

  std::shared_ptr<Storage> storage;
  Shape shape;        // sizes and strides in elements
  index_t offset = 0; // of element 0, in elements
  DType dtype = DType::f32;
  Device device{};
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;               // the op that made this tensor (non-leaf)
  std::shared_ptr<TensorImpl> grad;            // accumulated by backward (leaves)
  std::shared_ptr<AccumulateGrad> accumulator; // a leaf's sink in the graph, made on demand
  std::string name;                            // shown by to_dot (parameters get theirs)
};

struct TensorOptions {
  DType dtype = DType::f32;
  Device device = Device::cpu();
  bool requires_grad = false;
  TensorOptions& with_dtype(DType d) { dtype = d; return *this; }
  TensorOptions& with_device(Device d) { device = d; return *this; }
  TensorOptions& with_requires_grad(bool r = true) { requires_grad = r; return *this; }
};

// Seeded, reproducible random numbers: a seed and an offset that each draw advances
// (kernels/random.hpp: element i of a draw depends only on seed, offset and i).
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0x5eed) : seed_(seed) {}
  void manual_seed(std::uint64_t seed) { seed_ = seed, offset_ = 0; }
  std::uint64_t seed() const { return seed_; }
  std::uint64_t offset() const { return offset_; }
  void set_state(std::uint64_t seed, std::uint64_t offset) { seed_ = seed, offset_ = offset; }
  std::uint64_t take() { return offset_++; }  // the offset of the next draw

 private:
  std::uint64_t seed_;
  std::uint64_t offset_ = 0;
};
Generator& default_generator();
void manual_seed(std::uint64_t seed);

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories: contiguous, on opts.device ----
  static Tensor empty(std::span<const index_t> sizes, TensorOptions opts = {});
  static Tensor zeros(std::span<const index_t> sizes, TensorOptions opts = {});
  static Tensor ones(std::span<const index_t> sizes, TensorOptions opts = {});
  static Tensor full(std::span<const index_t> sizes, double value, TensorOptions opts = {});
  static Tensor arange(double start, double end, double step = 1, TensorOptions opts = {});
  // uniform in [0, 1) and standard normal, from gen (default: the global generator)
  static Tensor rand(std::span<const index_t> sizes, TensorOptions opts = {}, Generator* gen = nullptr);
  static Tensor randn(std::span<const index_t> sizes, TensorOptions opts = {}, Generator* gen = nullptr);
  // Copies values (float, double or int64 vectors) into a new CPU tensor of their dtype,
  // then moves it to opts.device; opts.dtype is ignored.
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, std::span<const index_t> sizes, TensorOptions opts = {});
  // Wraps memory owned by the caller (contiguous, on the CPU); it must outlive the tensor.
  static Tensor from_blob(void* data, std::span<const index_t> sizes, DType dtype);

  // initializer_list forms: Tensor::zeros({2, 3})
  static Tensor empty(std::initializer_list<index_t> s, TensorOptions o = {}) { return empty(span(s), o); }
  static Tensor zeros(std::initializer_list<index_t> s, TensorOptions o = {}) { return zeros(span(s), o); }
  static Tensor ones(std::initializer_list<index_t> s, TensorOptions o = {}) { return ones(span(s), o); }
  static Tensor full(std::initializer_list<index_t> s, double v, TensorOptions o = {}) { return full(span(s), v, o); }
  static Tensor rand(std::initializer_list<index_t> s, TensorOptions o = {}, Generator* g = nullptr) {
    return rand(span(s), o, g);
  }
  static Tensor randn(std::initializer_list<index_t> s, TensorOptions o = {}, Generator* g = nullptr) {
    return randn(span(s), o, g);
  }
  template <class T>
  static Tensor from_vector(const std::vector<T>& v, std::initializer_list<index_t> s, TensorOptions o = {}) {
    return from_vector(v, span(s), o);
  }

  // ---- what it is ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  std::span<const index_t> sizes() const { return impl().shape.sizes(); }
  std::span<const index_t> strides() const { return impl().shape.strides(); }
  int dim() const { return impl().shape.rank(); }
  index_t size(int d) const;  // d may be negative (from the end)
  index_t numel() const { return impl().shape.numel(); }
  index_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().device; }
  bool is_contiguous() const { return impl().shape.is_contiguous(); }
  std::uint64_t version() const { return impl().storage ? impl().storage->version : 0; }
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  // The first element (storage + offset); T must match dtype().
  template <class T> T* data() const;
  void* raw_data() const;
  // The single element as double (tg::Error unless numel() == 1); copies from a device.
  double item() const;
  // All elements in row-major order, copied to the host, converted to T.
  template <class T> std::vector<T> to_vector() const;
  std::string str() const;  // values (NumPy-style truncation), shape, dtype, device, grad_fn

  // ---- autograd ----
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& requires_grad_(bool on = true);  // leaves only
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  Tensor grad() const;  // undefined until a backward reached it
  void set_grad(const Tensor& g);  // replace (or, with an undefined Tensor, clear) .grad
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  // Backward from this tensor: a scalar without grad_output (which defaults to 1), any
  // shape with one. Gradients accumulate into the .grad of leaves that require grad.
  void backward(const Tensor& grad_output = {}, bool retain_graph = false, bool create_graph = false) const;
  Tensor detach() const;  // same storage, no history, requires_grad false
  // Hooks: on a non-leaf, on the gradient flowing into it; on a leaf, before it is
  // accumulated into .grad. A hook may return a replacement gradient.
  void register_hook(GradHook hook) const;
  void register_post_accumulate_grad_hook(PostAccumulateHook hook) const;  // leaves only
  const std::string& name() const { return impl().name; }
  Tensor& set_name(std::string n);

  // ---- views (no copy) ----
  Tensor view(std::span<const index_t> sizes) const;  // needs a compatible layout; -1 infers one size
  Tensor view(std::initializer_list<index_t> s) const { return view(span(s)); }
  Tensor reshape(std::span<const index_t> sizes) const;  // a view when possible, else a copy
  Tensor reshape(std::initializer_list<index_t> s) const { return reshape(span(s)); }
  Tensor transpose(int d0, int d1) const;
  Tensor t() const { return transpose(0, 1); }  // 2-D
  Tensor permute(std::span<const int> order) const;
  Tensor permute(std::initializer_list<int> o) const { return permute(std::span<const int>(o.begin(), o.size())); }
  Tensor slice(int d, index_t start, index_t end, index_t step = 1) const;  // [start, end) clamped, step >= 1
  Tensor select(int d, index_t i) const;  // slice of one, dimension removed
  Tensor expand(std::span<const index_t> sizes) const;  // size-1 dims stretched (stride 0); -1 keeps
  Tensor expand(std::initializer_list<index_t> s) const { return expand(span(s)); }
  Tensor squeeze(int d) const;
  Tensor squeeze() const;  // every size-1 dim
  Tensor unsqueeze(int d) const;
  Tensor flatten() const { return reshape({-1}); }
  Tensor contiguous() const;  // this when already contiguous

  // ---- copies ----
  Tensor to(Device d) const;  // this when already there; differentiable
  Tensor to(DType t) const;   // f32, f64, bf16, f16 (and i64 on the CPU); differentiable
  Tensor clone() const;       // a contiguous copy; differentiable

  // ---- in place (bump the version; refused on tensors that need grad while grad mode is on) ----
  Tensor& zero_();
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);  // broadcast src into this
  Tensor& add_(const Tensor& other, double alpha = 1);
  Tensor& mul_(double value);

  TensorImpl& impl() const;  // tg::Error on an undefined tensor
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  static std::span<const index_t> span(std::initializer_list<index_t> s) { return {s.begin(), s.size()}; }
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// A contiguous tensor of `sizes` on dtype/device, uninitialized, requires_grad false.
Tensor make_tensor(std::span<const index_t> sizes, DType dtype, Device device);
// A view of t's storage with other sizes/strides/offset (no autograd history).
Tensor make_view(const Tensor& t, const Shape& shape, index_t offset);

}  // namespace tg
