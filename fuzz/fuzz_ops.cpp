// The public ops through the Tensor API, structure-aware: the input chooses a dtype,
// an op, a tensor of rank 1-4 with dims 0-6, values (finite, signed zeros, huge, tiny,
// infinities, NaN), a view of it (transposed, sliced with a step, a dim expanded: strides
// that are not row-major, stride 0) and the op's arguments (a second operand broadcast
// or not, dims, shapes that may not fit). Each call returns or throws tg::Error, never
// crashes or reads out of bounds (ASan, UBSan); and for f32 inputs what it returns
// matches the same op in f64 on the same values, rounded to f32: NaN where NaN, the same
// infinities, finite values within 1e-3 of the reference's scale (a loose bound: the
// tests hold the tight ones; this one catches a wrong element, stride or shape).
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "autograd/autograd.hpp"
#include "fuzz/fuzz.hpp"
#include "kernels/error.hpp"

namespace {

using namespace tg;

// Reads the input front to back; zeros once it runs out.
struct Bytes {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  int pick(int k) { return int(byte() % unsigned(k)); }
  double value() {
    const double special[] = {0.0, -0.0, 1.0, -1.0, 1e30, -1e30, 1e-40, INFINITY, -INFINITY, NAN, 100.0, -100.0};
    const std::uint8_t b = byte();
    if (b >= 244) return special[b - 244];
    return (double(b) - 122.0) / 16.0 + double(byte()) / 4096.0;  // [-7.6, 7.7] in 1/4096 steps
  }
};

Tensor base_tensor(Bytes& in, DType dt, std::vector<index_t> sizes) {
  index_t n = 1;
  for (index_t s : sizes) n *= s;
  std::vector<double> v(static_cast<std::size_t>(n));
  for (double& x : v) x = in.value();
  return Tensor::from_vector(v, sizes).to(dt);
}

// A view of t with other strides: a transpose, a strided slice, or a size-1 dim expanded.
Tensor some_view(Bytes& in, Tensor t) {
  const int r = t.dim();
  if (r == 0) return t;
  switch (in.pick(4)) {
    case 0: return t;
    case 1: return r >= 2 ? t.transpose(in.pick(r), in.pick(r)) : t;
    case 2: {
      const int d = in.pick(r);
      return t.slice(d, in.pick(3), t.size(d), 1 + in.pick(3));
    }
    default: {
      const int d = in.pick(r);
      std::vector<index_t> sizes(t.sizes().begin(), t.sizes().end());
      sizes[std::size_t(d)] = 1;
      std::vector<index_t> big = sizes;
      big[std::size_t(d)] = 1 + in.pick(4);
      return t.slice(d, 0, 1).expand(big);
    }
  }
}

// Operands that differ from a's shape in a few dims (set to 1 for broadcasting, or to
// another size that may not broadcast).
std::vector<index_t> other_shape(Bytes& in, const Tensor& a) {
  std::vector<index_t> s(a.sizes().begin(), a.sizes().end());
  for (index_t& d : s) {
    const int k = in.pick(5);
    if (k == 0) d = 1;
    if (k == 1) d = in.pick(5);
  }
  if (in.pick(4) == 0 && !s.empty()) s.erase(s.begin());
  return s;
}

Tensor apply(int op, Bytes& in, const Tensor& a, const Tensor& b, int dim, bool keep) {
  const int dims[] = {dim};
  switch (op) {
    case 0: return a + b;
    case 1: return a * b;
    case 2: return a / b;
    case 3: return maximum(a, b);
    case 4: return exp(a);
    case 5: return log(a);
    case 6: return sqrt(a);
    case 7: return tanh(a);
    case 8: return sigmoid(a);
    case 9: return gelu(a, dim % 2 == 0);
    case 10: return silu(a);
    case 11: return leaky_relu(a, 0.25);
    case 12: return softmax(a);
    case 13: return log_softmax(a);
    case 14: return layer_norm(a, {}, {}, 1e-3);
    case 15: return sum(a, dims, keep);
    case 16: return mean(a, dims, keep);
    case 17: return max(a, dims, keep);
    case 18: return matmul(a, b);
    case 19: return clamp(a, -1.5, 2.5);
    case 20: return pow(a, 2.0);
    case 21: return where(gt(a, b), a, b);
    default: {
      std::vector<index_t> s;
      for (int i = 0, r = 1 + in.pick(3); i < r; ++i) s.push_back(index_t(in.pick(7)) - (i == 0 && in.pick(4) == 0));
      return a.reshape(s);  // -1 infers a dim; sizes that do not fit are an error
    }
  }
}
constexpr int kOps = 23;

bool same_values(const Tensor& got, const Tensor& ref) {
  if (got.sizes().size() != ref.sizes().size()) return false;
  for (std::size_t i = 0; i < got.sizes().size(); ++i)
    if (got.sizes()[i] != ref.sizes()[i]) return false;
  const std::vector<double> g = got.to_vector<double>(), r = ref.to(DType::f32).to_vector<double>();
  double scale = 0;
  for (double v : r)
    if (std::isfinite(v)) scale = std::max(scale, std::fabs(v));
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(r[i]) || std::isnan(g[i])) {
      if (std::isnan(r[i]) != std::isnan(g[i])) return false;
    } else if (std::isinf(r[i]) || std::isinf(g[i])) {
      // Rounding at the edge of the float range: a finite reference just past FLT_MAX.
      if (g[i] != r[i] && std::fabs(g[i]) < 3e38 && std::fabs(r[i]) < 3e38) return false;
    } else if (std::fabs(g[i] - r[i]) > 1e-3 * (std::fabs(r[i]) + scale) + 1e-30) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes in{data, size};
  const DType dt = in.pick(4) == 0 ? DType::f64 : DType::f32;
  const int op = in.pick(kOps);
  std::vector<index_t> sizes(static_cast<std::size_t>(1 + in.pick(4)));
  for (index_t& s : sizes) s = in.pick(7);
  Tensor a, b;
  try {
    a = some_view(in, base_tensor(in, dt, sizes));
    b = some_view(in, base_tensor(in, dt, other_shape(in, a)));
  } catch (const Error&) {
    return 0;  // a view the tensor does not allow
  }
  const int dim = in.pick(9) - 4;  // -4..4: some out of range
  const bool keep = in.pick(2);
  Bytes replay = in;  // the reshape's sizes, read again for the reference
  Tensor got;
  try {
    got = apply(op, in, a, b, dim, keep);
  } catch (const Error&) {
    return 0;
  }
  if (dt != DType::f32) return 0;
  Tensor ref;
  try {
    ref = apply(op, replay, a.to(DType::f64), b.to(DType::f64), dim, keep);
  } catch (const Error&) {
    __builtin_trap();  // f32 accepted what f64 refuses
  }
  if (!same_values(got, ref)) __builtin_trap();
  return 0;
}
