// Every differentiable op through gradcheck (central differences in double against the
// backward pass), on random shapes with broadcasting and non-contiguous views inside
// the function; second derivatives through gradgradcheck for the ops whose backward is
// written with differentiable ops; the fused ops' refusal of create_graph.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "tilegrad/autograd/autograd.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct Case {
  std::string name;
  std::vector<std::vector<index_t>> shapes;
  double lo, hi;  // input range (kept away from kinks and poles where the op has them)
  Fn f;
  bool second_order = false;
};

std::vector<Tensor> leaves(testing::Rng& rng, const Case& c) {
  std::vector<Tensor> in;
  for (const auto& s : c.shapes) {
    index_t n = 1;
    for (index_t v : s) n *= v;
    std::vector<double> data(static_cast<std::size_t>(n));
    for (double& d : data) {
      d = rng.uniform(c.lo, c.hi);
      if (rng.coin() && c.lo >= 0) continue;
      if (c.lo < 0 && c.hi > 0 && std::fabs(d) < 0.05) d += d < 0 ? -0.1 : 0.1;  // away from 0
    }
    in.push_back(Tensor::from_vector(data, s, TensorOptions().with_requires_grad()));
  }
  return in;
}


std::vector<Case> cases() {
  using V = std::vector<Tensor>;
  std::vector<Case> c;
  // elementwise with broadcasting
  c.push_back({"add broadcast", {{3, 1, 4}, {5, 4}}, -2, 2, [](const V& x) { return x[0] + x[1]; }, true});
  c.push_back({"sub scalar", {{2, 3}, {}}, -2, 2, [](const V& x) { return x[0] - x[1]; }, true});
  c.push_back({"mul broadcast transposed", {{4, 3}, {3}}, -2, 2, [](const V& x) { return x[0].t() * x[1].unsqueeze(1); }, true});
  c.push_back({"div", {{2, 5}, {2, 1}}, 0.5, 2, [](const V& x) { return x[0] / x[1]; }, true});
  c.push_back({"maximum", {{6}, {6}}, -2, 2, [](const V& x) { return maximum(x[0], x[1]); }});
  c.push_back({"neg and scalars", {{3, 2}}, -2, 2, [](const V& x) { return 3.0 - (-x[0] * 2.0 + 1.0) / 4.0; }, true});
  c.push_back({"exp", {{2, 3}}, -2, 2, [](const V& x) { return exp(x[0]); }, true});
  c.push_back({"log", {{7}}, 0.2, 3, [](const V& x) { return log(x[0]); }, true});
  c.push_back({"sqrt", {{7}}, 0.2, 3, [](const V& x) { return sqrt(x[0]); }, true});
  c.push_back({"abs", {{9}}, -2, 2, [](const V& x) { return abs(x[0]); }, true});
  c.push_back({"pow", {{5}}, 0.3, 2, [](const V& x) { return pow(x[0], 3) + pow(x[0], 0.5) + pow(x[0], -1); }, true});
  c.push_back({"clamp", {{11}}, -2, 2, [](const V& x) { return clamp(x[0], -0.98, 1.03); }, true});
  c.push_back({"where", {{4, 3}, {4, 3}}, -2, 2, [](const V& x) {
                 const Tensor cond = gt(x[0].detach(), Tensor::zeros({}, TensorOptions().with_dtype(DType::f64)));
                 return where(cond, x[0] * x[1], x[1]);
               }, true});
  // reductions
  c.push_back({"sum dims", {{2, 3, 4}}, -1, 1, [](const V& x) { return sum(x[0], {0, 2}); }, true});
  c.push_back({"sum keepdim of a view", {{3, 4}}, -1, 1, [](const V& x) { return sum(x[0].t(), {1}, true) * x[0].t(); }, true});
  c.push_back({"mean all", {{3, 5}}, -1, 1, [](const V& x) { return mean(x[0] * x[0]); }, true});
  c.push_back({"max dim", {{4, 6}}, -1, 1, [](const V& x) { return max(x[0], {1}) * 2.0; }, true});
  c.push_back({"max all", {{7}}, -1, 1, [](const V& x) { return max(x[0]); }});
  c.push_back({"sum_to", {{2, 3, 4}}, -1, 1, [](const V& x) { const index_t s[] = {3, 1}; return sum_to(x[0] * x[0], s); }, true});
  // linear algebra
  c.push_back({"matmul 2-D", {{3, 4}, {4, 5}}, -1, 1, [](const V& x) { return matmul(x[0], x[1]); }, true});
  c.push_back({"matmul transposed operands", {{4, 3}, {5, 4}}, -1, 1, [](const V& x) { return matmul(x[0].t(), x[1].t()); }, true});
  c.push_back({"matmul batched broadcast", {{2, 1, 3, 4}, {3, 4, 2}}, -1, 1, [](const V& x) { return matmul(x[0], x[1]); }, true});
  c.push_back({"matmul vectors", {{4}, {4, 3}, {3}}, -1, 1, [](const V& x) { return matmul(matmul(x[0], x[1]), x[2]); }, true});
  c.push_back({"linear", {{5, 4}, {3, 4}, {3}}, -1, 1, [](const V& x) { return linear(x[0], x[1], x[2]); }, true});
  c.push_back({"linear 3-D no bias", {{2, 3, 4}, {6, 4}}, -1, 1, [](const V& x) { return linear(x[0], x[1], {}); }, true});
  c.push_back({"linear relu", {{5, 4}, {3, 4}, {3}}, -1, 1, [](const V& x) { return linear(x[0], x[1], x[2], {Act::relu}); }});
  c.push_back({"linear gelu", {{5, 4}, {3, 4}, {3}}, -1, 1, [](const V& x) { return linear(x[0], x[1], x[2], {Act::gelu_erf}); }});
  // activations
  c.push_back({"relu", {{3, 4}}, -2, 2, [](const V& x) { return relu(x[0]); }, true});
  c.push_back({"leaky_relu", {{3, 4}}, -2, 2, [](const V& x) { return leaky_relu(x[0], 0.1); }, true});
  c.push_back({"gelu erf", {{13}}, -4, 4, [](const V& x) { return gelu(x[0]); }});
  c.push_back({"gelu tanh", {{13}}, -4, 4, [](const V& x) { return gelu(x[0], true); }});
  c.push_back({"silu", {{13}}, -4, 4, [](const V& x) { return silu(x[0]); }, true});
  c.push_back({"sigmoid", {{13}}, -4, 4, [](const V& x) { return sigmoid(x[0]); }, true});
  c.push_back({"tanh of a view", {{3, 5}}, -2, 2, [](const V& x) { return tanh(x[0].t()); }, true});
  // normalizations, attention
  c.push_back({"softmax", {{2, 3, 5}}, -3, 3, [](const V& x) { return softmax(x[0]); }, true});
  c.push_back({"log_softmax of a view", {{5, 4}}, -3, 3, [](const V& x) { return log_softmax(x[0].t()); }, true});
  c.push_back({"softmax of a computed input", {{3, 4}, {3, 4}}, -2, 2,
               [](const V& x) { return softmax(x[0] * x[1]) * x[1]; }, true});
  c.push_back({"layer_norm affine", {{4, 6}, {6}, {6}}, -2, 2, [](const V& x) { return layer_norm(x[0], x[1], x[2]); },
               true});
  c.push_back({"layer_norm plain", {{3, 7}}, -2, 2, [](const V& x) { return layer_norm(x[0], {}, {}, 1e-3); }, true});
  c.push_back({"layer_norm weight only, 3-D, of a view", {{2, 5, 3}, {3}}, -2, 2,
               [](const V& x) { return layer_norm(tanh(x[0]).transpose(0, 1), x[1], {}); }, true});
  c.push_back({"attention", {{1, 2, 3, 4}, {1, 2, 5, 4}, {1, 2, 5, 4}}, -1, 1,
               [](const V& x) { return scaled_dot_product_attention(x[0], x[1], x[2]); }});
  c.push_back({"attention causal gqa", {{2, 4, 5, 3}, {2, 2, 5, 3}, {2, 2, 5, 3}}, -1, 1,
               [](const V& x) { return scaled_dot_product_attention(x[0], x[1], x[2], {}, true); }});
  c.push_back({"attention mask layout", {{1, 3, 2, 4}, {1, 3, 4, 4}, {1, 3, 4, 4}}, -1, 1, [](const V& x) {
                 const Tensor mask = Tensor::from_vector(std::vector<double>{0, -1, 0.5, -1e9, 0, 0, 0.25, 1}, {2, 4});
                 // q in (B, S, H, D) memory order, seen as (B, H, S, D): strides, no copy
                 return scaled_dot_product_attention(x[0].permute({0, 2, 1, 3}).contiguous().permute({0, 2, 1, 3}),
                                                     x[1], x[2], mask, false, 0.7);
               }});
  c.push_back({"dropout", {{6, 5}}, -1, 1, [](const V& x) {
                 Generator g(3);
                 return dropout(x[0], 0.4, true, &g);
               }});
  // losses
  c.push_back({"cross_entropy smoothing ignore", {{5, 4}}, -2, 2, [](const V& x) {
                 const Tensor t = Tensor::from_vector(std::vector<std::int64_t>{0, 3, -100, 1, 2}, {5});
                 return cross_entropy(x[0], t, Reduction::mean, -100, 0.1);
               }});
  c.push_back({"cross_entropy none", {{3, 6}}, -2, 2, [](const V& x) {
                 const Tensor t = Tensor::from_vector(std::vector<std::int64_t>{5, 0, 2}, {3});
                 return cross_entropy(x[0], t, Reduction::none);
               }});
  c.push_back({"mse_loss", {{4, 3}, {4, 3}}, -2, 2, [](const V& x) { return mse_loss(x[0], x[1]); }, true});
  c.push_back({"mse_loss sum, broadcast target", {{5, 2}, {2}}, -2, 2,
               [](const V& x) { return mse_loss(x[0], x[1], Reduction::sum); }, true});
  c.push_back({"mse_loss none, of a computed input", {{3, 4}, {3, 4}}, -2, 2,
               [](const V& x) { return mse_loss(tanh(x[0]) * x[1], x[1], Reduction::none); }, true});
  // views and joining
  c.push_back({"views", {{2, 3, 4}}, -1, 1, [](const V& x) {
                 return x[0].permute({2, 0, 1}).slice(0, 1, 4, 2).reshape({2, 6}).unsqueeze(0).expand({3, 2, 6}) * 1.5;
               }, true});
  c.push_back({"select and squeeze", {{3, 1, 4}}, -1, 1, [](const V& x) { return x[0].squeeze(1).select(0, -1) * x[0].select(0, 0).squeeze(); }, true});
  c.push_back({"cat", {{2, 3}, {4, 3}}, -1, 1, [](const V& x) { return cat({x[0], x[1] * 2.0}, 0); }, true});
  c.push_back({"stack", {{3}, {3}}, -1, 1, [](const V& x) { return stack({x[0], x[1]}, 1); }, true});
  return c;
}

TEST(AutogradOps, EveryOpPassesGradcheck) {
  TG_TEST_RNG(rng);
  for (const Case& c : cases()) {
    try {
      const std::vector<Tensor> in = leaves(rng, c);
      const GradcheckResult r = gradcheck(c.f, in);
      EXPECT_TRUE(r.ok) << c.name << ": " << r.report;
    } catch (const std::exception& e) {
      ADD_FAILURE() << c.name << ": " << e.what();
    }
  }
}

TEST(AutogradOps, SecondDerivativesPassGradgradcheck) {
  TG_TEST_RNG(rng);
  for (const Case& c : cases()) {
    if (!c.second_order) continue;
    try {
      const std::vector<Tensor> in = leaves(rng, c);
      const GradcheckResult r = gradgradcheck(c.f, in);
      EXPECT_TRUE(r.ok) << c.name << ": " << r.report;
    } catch (const std::exception& e) {
      ADD_FAILURE() << c.name << ": " << e.what();
    }
  }
}

TEST(AutogradOps, FusedOpsRefuseCreateGraphByName) {
  const Tensor x = Tensor::rand({3, 4}, TensorOptions().with_dtype(DType::f64).with_requires_grad());
  for (auto f : std::vector<std::function<Tensor(const Tensor&)>>{
           [](const Tensor& t) { return gelu(t); }, [](const Tensor& t) { return gelu(t, true); },
           [](const Tensor& t) {
             const Tensor q = t.reshape({1, 1, 3, 4});
             return scaled_dot_product_attention(q, q, q).reshape({3, 4});
           }}) {
    const Tensor y = sum(f(x) * f(x));
    try {
      (void)grad(y, {x}, {}, /*create_graph=*/true);
      ADD_FAILURE() << "no error for create_graph through a fused op";
    } catch (const Error& e) {
      EXPECT_EQ(e.arg(), "create_graph") << e.what();
    }
  }
}

TEST(AutogradOps, FloatGradientsMatchDoubleOnAnMlp) {
  // The same small MLP in f32 and f64: gradients agree to float precision.
  TG_TEST_RNG(rng);
  Generator g(rng.seed());
  const Tensor x64 = Tensor::randn({16, 8}, TensorOptions().with_dtype(DType::f64), &g);
  const Tensor w1 = Tensor::randn({32, 8}, TensorOptions().with_dtype(DType::f64), &g) * 0.3;
  const Tensor w2 = Tensor::randn({4, 32}, TensorOptions().with_dtype(DType::f64), &g) * 0.3;
  const Tensor t = Tensor::from_vector(std::vector<std::int64_t>{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3}, {16});
  std::vector<std::vector<double>> grads[2];
  for (DType dt : {DType::f64, DType::f32}) {
    Tensor a = w1.to(dt).detach(), b = w2.to(dt).detach();
    a.requires_grad_(), b.requires_grad_();
    const Tensor loss = cross_entropy(linear(linear(x64.to(dt), a, {}, {Act::gelu_tanh}), b, {}), t);
    loss.backward();
    grads[dt == DType::f32].push_back(a.grad().to_vector<double>());
    grads[dt == DType::f32].push_back(b.grad().to_vector<double>());
  }
  for (int k = 0; k < 2; ++k)
    EXPECT_TRUE(testing::rel_close(grads[1][std::size_t(k)], grads[0][std::size_t(k)], 1e-5)) << "weight " << k;
}

// f64 ops keep their double parameters whole: leaky_relu's slope, layer_norm's eps,
// attention's scale (the default 1/sqrt(d) and an explicit one). Rounded to float they
// moved f64 results by ~1e-9 relative; computed here in plain double loops, the results
// agree to a few ulps.
TEST(AutogradOps, F64OpsKeepTheirParametersInDouble) {
  TG_TEST_RNG(rng);
  Generator g(rng.seed());
  const TensorOptions f64 = TensorOptions().with_dtype(DType::f64);
  auto close = [](const std::vector<double>& got, const std::vector<double>& want, double tol) {
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i])), scale = std::max(scale, std::fabs(want[i]));
    return ::testing::AssertionResult(worst <= tol * scale) << "max error " << worst << " against scale " << scale;
  };
  {  // leaky_relu, slope 0.1 (not a float)
    const Tensor x = Tensor::randn({5, 9}, f64, &g);
    const std::vector<double> xv = x.to_vector<double>();
    std::vector<double> want(xv.size());
    for (std::size_t i = 0; i < xv.size(); ++i) want[i] = xv[i] >= 0 ? xv[i] : xv[i] * 0.1;
    EXPECT_TRUE(close(leaky_relu(x, 0.1).to_vector<double>(), want, 1e-15)) << "leaky_relu";
  }
  {  // layer_norm with a spread (1e-3) small enough that eps = 1e-5 dominates the variance
    const index_t rows = 4, cols = 11;
    const Tensor x = Tensor::randn({rows, cols}, f64, &g) * 1e-3;
    const std::vector<double> xv = x.to_vector<double>();
    std::vector<double> want(xv.size());
    for (index_t i = 0; i < rows; ++i) {
      double mean = 0, var = 0;
      for (index_t j = 0; j < cols; ++j) mean += xv[std::size_t(i * cols + j)] / double(cols);
      for (index_t j = 0; j < cols; ++j) var += std::pow(xv[std::size_t(i * cols + j)] - mean, 2) / double(cols);
      for (index_t j = 0; j < cols; ++j)
        want[std::size_t(i * cols + j)] = (xv[std::size_t(i * cols + j)] - mean) / std::sqrt(var + 1e-5);
    }
    EXPECT_TRUE(close(layer_norm(x, {}, {}, 1e-5).to_vector<double>(), want, 1e-13)) << "layer_norm";
  }
  for (const double scale : {0.0, 0.1}) {  // 0: the default, 1/sqrt(3)
    const index_t S = 5, D = 3;
    const Tensor q = Tensor::randn({1, 1, S, D}, f64, &g), k = Tensor::randn({1, 1, S, D}, f64, &g),
                 v = Tensor::randn({1, 1, S, D}, f64, &g);
    const std::vector<double> qv = q.to_vector<double>(), kv = k.to_vector<double>(), vv = v.to_vector<double>();
    const double sc = scale == 0 ? 1 / std::sqrt(double(D)) : scale;
    std::vector<double> want(std::size_t(S * D), 0.0);
    for (index_t i = 0; i < S; ++i) {
      std::vector<double> p(static_cast<std::size_t>(S));
      double m = -INFINITY, sum = 0;
      for (index_t j = 0; j < S; ++j) {
        double dot = 0;
        for (index_t c = 0; c < D; ++c) dot += qv[std::size_t(i * D + c)] * kv[std::size_t(j * D + c)];
        p[std::size_t(j)] = sc * dot, m = std::max(m, sc * dot);
      }
      for (double& e : p) e = std::exp(e - m), sum += e;
      for (index_t j = 0; j < S; ++j)
        for (index_t c = 0; c < D; ++c) want[std::size_t(i * D + c)] += p[std::size_t(j)] / sum * vv[std::size_t(j * D + c)];
    }
    const Tensor o = scale == 0 ? scaled_dot_product_attention(q, k, v) : scaled_dot_product_attention(q, k, v, {}, false, scale);
    EXPECT_TRUE(close(o.to_vector<double>(), want, 1e-13)) << "attention, scale " << sc;
  }
}

}  // namespace
}  // namespace tg
