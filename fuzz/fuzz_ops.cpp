// The public ops through the Tensor API, structure-aware: the input chooses a dtype,
// an op, a tensor of rank 1-4 with dims 0-6, values (finite, signed zeros, huge, tiny,
// infinities, NaN), a view of it (transposed, sliced with a step, a dim expanded: strides
// that are not row-major, stride 0), the op's arguments (a second operand broadcast or
// not, dims, shapes that may not fit), and whether to run the backward of a weighted
// sum of the output.
// Each call returns or throws tg::Error, never crashes or reads out of bounds (ASan,
// UBSan); and for f32 inputs whose finite values stay within 1e15, what it returns, and
// the gradients (where the inputs are ordinary: finite, |x| <= 8), match the same op in
// f64 on the same values, rounded to f32: NaN where NaN, the same infinities, finite
// values within 1e-3 of the reference's scale (a loose bound: the tests hold the tight
// ones; this one catches a wrong element, stride or shape).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "tilegrad/autograd/autograd.hpp"
#include "tilegrad/nn/nn.hpp"
#include "fuzz/fuzz.hpp"
#include "tilegrad/kernels/error.hpp"

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
    case 23: return cat({a, b}, dim);
    case 24: return stack({a, b}, dim);
    case 25: return a.dim() ? a.select(dim, index_t(keep)) : a;
    case 26: return a.unsqueeze(dim).squeeze();
    case 27: return abs(a) - a * 0.5;
    case 28: return mse_loss(a, b, keep ? Reduction::sum : Reduction::none);
    case 29: {  // logits (N, C) from a's last dim; targets from the input, some ignored or out of range
      const Tensor z = a.dim() == 2 ? a : a.reshape({-1, a.dim() ? a.size(-1) : 1});
      std::vector<std::int64_t> t(static_cast<std::size_t>(z.size(0)));
      for (std::int64_t& v : t) v = std::int64_t(in.pick(9)) - 2;  // -2..6: -1 ignored below
      if (std::getenv("TG_FUZZ_VERBOSE")) {
        std::fprintf(stderr, "z %s:", z.shape().str().c_str());
        for (double v : z.to_vector<double>()) std::fprintf(stderr, " %g", v);
        std::fprintf(stderr, "\ntargets:");
        for (std::int64_t v : t) std::fprintf(stderr, " %lld", (long long)v);
        std::fprintf(stderr, "\n");
      }
      return cross_entropy(z, Tensor::from_vector(t, {z.size(0)}), keep ? Reduction::sum : Reduction::mean, -1,
                           dim > 0 ? 0.1 : 0.0);
    }
    case 30: {  // attention over a's dims read as (B, H, S, D), b as k and v
      return scaled_dot_product_attention(a, b, b, {}, keep);
    }
    default: {
      std::vector<index_t> s;
      for (int i = 0, r = 1 + in.pick(3); i < r; ++i) s.push_back(index_t(in.pick(7)) - (i == 0 && in.pick(4) == 0));
      return a.reshape(s);  // -1 infers a dim; sizes that do not fit are an error
    }
  }
}
constexpr int kOps = 31;

// floor: an absolute allowance for results that cancel to ~0 (a gradient through
// sum(softmax(x)) is 0 plus each dtype's rounding noise).
bool same_values(const Tensor& got, const Tensor& ref, double floor = 1e-30) {
  if (got.sizes().size() != ref.sizes().size()) return false;
  for (std::size_t i = 0; i < got.sizes().size(); ++i)
    if (got.sizes()[i] != ref.sizes()[i]) return false;
  const std::vector<double> g = got.to_vector<double>(), r = ref.to(DType::f32).to_vector<double>();
  const std::vector<double> exact = ref.to_vector<double>();
  double scale = 0;
  for (double v : r)
    if (std::isfinite(v)) scale = std::max(scale, std::fabs(v));
  for (std::size_t i = 0; i < g.size(); ++i) {
    bool ok = true;
    if (std::isnan(r[i]) || std::isnan(g[i])) {
      // NaN against a finite reference beyond the float range: float's terms overflowed
      // to infinities of both signs and met (a / b's gradient for b, summed over a
      // broadcast row, at b = 1e-40: -inf + inf, where f64 has 3e80).
      const bool past_range = std::isfinite(exact[i]) && std::fabs(exact[i]) > 3.4028234663852886e38;
      ok = std::isnan(r[i]) == std::isnan(g[i]) || (std::isnan(g[i]) && past_range);
    } else if (std::isinf(r[i]) || std::isinf(g[i])) {
      // Rounding at the edge of the float range: a finite reference just past FLT_MAX.
      ok = g[i] == r[i] || std::fabs(g[i]) >= 3e38 || std::fabs(r[i]) >= 3e38;
    } else {
      ok = std::fabs(g[i] - r[i]) <= 1e-3 * (std::fabs(r[i]) + scale) + floor;
    }
    if (!ok) {
      if (std::getenv("TG_FUZZ_VERBOSE")) std::fprintf(stderr, "differs at %zu: %.9g against %.9g\n", i, g[i], r[i]);
      return false;
    }
  }
  return true;
}

// The operands: base tensors (leaves, requiring grad when the backward runs) and their
// views. With `like`, the bases are like's converted to f64 (the same values) and the
// same views are taken: the bytes are read the same way.
struct Operands {
  Tensor base_a, a, base_b, b;
};
Operands operands(Bytes& in, DType dt, bool grad, const Operands* like) {
  Operands o;
  std::vector<index_t> sizes(static_cast<std::size_t>(1 + in.pick(4)));
  for (index_t& s : sizes) s = in.pick(7);
  auto leaf = [&](Tensor t, const Tensor* from) {
    if (from) t = from->detach().to(DType::f64);
    if (grad) t.requires_grad_();
    return t;
  };
  o.base_a = leaf(base_tensor(in, dt, sizes), like ? &like->base_a : nullptr);
  o.a = some_view(in, o.base_a);
  o.base_b = leaf(base_tensor(in, dt, other_shape(in, o.a)), like ? &like->base_b : nullptr);
  o.b = some_view(in, o.base_b);
  return o;
}

// The backward's seed: sum(out * w), w fixed weights 1 + (i mod 7) / 8 of out's shape (a
// plain sum gives exactly-zero gradients through softmax and layer_norm, and two dtypes'
// rounding noise cannot be compared).
Tensor weighted_sum(const Tensor& out) {
  std::vector<double> w(static_cast<std::size_t>(out.numel()));
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = 1.0 + double(i % 7) / 8.0;
  return sum(out * Tensor::from_vector(w, out.sizes()).to(out.dtype()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes in{data, size};
  const DType dt = in.pick(4) == 0 ? DType::f64 : DType::f32;
  const int op = in.pick(kOps);
  const bool backward = in.pick(2);
  const Bytes start = in;  // the rest, read again for the reference
  Operands x;
  try {
    x = operands(in, dt, backward, nullptr);
  } catch (const Error&) {
    return 0;  // a view the tensor does not allow
  }
  const int dim = in.pick(9) - 4;  // -4..4: some out of range
  const bool keep = in.pick(2);
  Tensor got;
  try {
    got = apply(op, in, x.a, x.b, dim, keep);
    if (backward && got.requires_grad()) weighted_sum(got).backward();
  } catch (const Error&) {
    return 0;
  }
  if (dt != DType::f32) return 0;
  Bytes replay = start;
  const Operands r = operands(replay, DType::f64, backward, &x);
  (void)replay.pick(9), (void)replay.pick(2);  // dim, keep
  Tensor ref;
  try {
    ref = apply(op, replay, r.a, r.b, dim, keep);
    if (backward && ref.requires_grad()) weighted_sum(ref).backward();
  } catch (const Error&) {
    __builtin_trap();  // f32 accepted what f64 refuses
  }
  if (std::getenv("TG_FUZZ_VERBOSE")) {  // what a finding did, for whoever reads it
    auto show = [](const char* what, const Tensor& t) {
      std::fprintf(stderr, "%s %s:", what, t.defined() ? t.shape().str().c_str() : "undefined");
      if (t.defined())
        for (double v : t.to_vector<double>()) std::fprintf(stderr, " %.9g", v);
      std::fprintf(stderr, "\n");
    };
    std::fprintf(stderr, "op %d dim %d keep %d backward %d\n", op, dim, int(keep), int(backward));
    show("a", x.a), show("b", x.b), show("got", got), show("ref", ref);
    show("grad a", x.base_a.grad()), show("ref grad a", r.base_a.grad());
    show("grad b", x.base_b.grad()), show("ref grad b", r.base_b.grad());
  }
  // Finite inputs past 1e15 make products beyond the float range (1e30 * 1e30), where
  // f32 rightly gives inf or a masked -inf score and f64 a number: compared only for
  // crashes. (Rows of them through layer_norm, which should survive, have their own
  // test in test_layer_norm.)
  auto in_float_range = [](const Tensor& t) {
    for (double v : t.to_vector<double>())
      if (std::isfinite(v) && std::fabs(v) > 1e15) return false;
    return true;
  };
  if (!in_float_range(x.base_a) || !in_float_range(x.base_b)) return 0;
  // The absolute floor: a result near 0 formed from terms near 1 (a confident row's
  // cross-entropy, log(1 + 7e-6), from a sum of exponentials near 1) carries float's
  // rounding of those terms, ~1e-7 each. Such terms come from inputs of size 1 and more;
  // smaller inputs make proportionally smaller terms, so the floor follows them down.
  double input_scale = 0;
  for (const Tensor* t : {&x.base_a, &x.base_b})
    for (double v : t->to_vector<double>())
      if (std::isfinite(v)) input_scale = std::max(input_scale, std::fabs(v));
  if (!same_values(got.detach(), ref.detach(), 1e-6 * std::min(1.0, input_scale))) __builtin_trap();
  // Gradients are compared where every input is ordinary (finite, |x| <= 8): with
  // +-100 and beyond, sums like the attention's dP - D cancel terms of 10^4 and float's
  // rounding of them is no longer small against the result (the backward still runs,
  // for ASan and UBSan).
  auto ordinary = [](const Tensor& t) {
    for (double v : t.to_vector<double>())
      if (!(std::fabs(v) <= 8)) return false;
    return true;
  };
  const bool compare_grads = backward && ordinary(x.base_a) && ordinary(x.base_b);
  for (const auto& [mine, theirs] : {std::pair{x.base_a, r.base_a}, std::pair{x.base_b, r.base_b}}) {
    if (!compare_grads) break;
    if (mine.grad().defined() != theirs.grad().defined()) __builtin_trap();
    // (The floor: sums over broadcast positions and normalizations cancel to rounding noise
    // of terms up to ~100, rstd 1/sqrt(eps) times the weights.)
    if (mine.grad().defined() && !same_values(mine.grad(), theirs.grad(), 1e-4)) __builtin_trap();
  }
  return 0;
}
