#include "tilegrad/autograd/gradcheck.hpp"

#include <cmath>
#include <sstream>

#include "tilegrad/autograd/node.hpp"
#include "tilegrad/autograd/ops.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg {

std::vector<Tensor> grad(const Tensor& output, const std::vector<Tensor>& inputs, const Tensor& grad_output,
                         bool create_graph) {
  std::vector<Tensor> saved;
  if (!output.requires_grad()) {  // no graph: the output does not depend on the inputs
    for (const Tensor& t : inputs) saved.push_back(Tensor::zeros(t.sizes(), TensorOptions().with_dtype(t.dtype())));
    return saved;
  }
  for (const Tensor& t : inputs) {
    TG_CHECK(t.defined() && t.is_leaf() && t.requires_grad(), "grad", "inputs",
             "expected leaves that require grad");
    saved.push_back(t.grad());
    Tensor(t).set_grad(Tensor());
  }
  std::vector<Tensor> out;
  try {
    output.backward(grad_output, /*retain_graph=*/true, create_graph);
  } catch (...) {
    for (std::size_t i = 0; i < inputs.size(); ++i) Tensor(inputs[i]).set_grad(saved[i]);
    throw;
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    Tensor g = inputs[i].grad();
    out.push_back(g.defined() ? g : Tensor::zeros(inputs[i].sizes(), TensorOptions().with_dtype(inputs[i].dtype())));
    Tensor(inputs[i]).set_grad(saved[i]);
  }
  return out;
}

namespace {

// Checks dL/dx of a scalar function L of the inputs against central differences.
GradcheckResult check_scalar(const std::function<Tensor(const std::vector<Tensor>&)>& L,
                             const std::vector<Tensor>& inputs, const GradcheckOptions& o, const char* what) {
  for (const Tensor& t : inputs)
    TG_CHECK(t.dtype() == DType::f64 && t.requires_grad() && t.is_leaf() && t.is_contiguous(), what, "inputs",
             "expected contiguous f64 leaves that require grad (finite differences need double)");
  const std::vector<Tensor> analytic = grad(L(inputs), inputs);
  GradcheckResult r;
  double worst = 0;
  std::ostringstream report;
  index_t checked = 0;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    double* x = inputs[k].data<double>();
    const std::vector<double> a = analytic[k].to_vector<double>();
    for (index_t i = 0; i < inputs[k].numel(); ++i) {
      const double keep = x[i];
      double num = 0;
      {
        NoGradGuard no_grad;
        x[i] = keep + o.eps;
        const double up = L(inputs).item();
        x[i] = keep - o.eps;
        const double down = L(inputs).item();
        x[i] = keep;
        num = (up - down) / (2 * o.eps);
      }
      ++checked;
      const double err = std::fabs(a[std::size_t(i)] - num), bound = o.atol + o.rtol * std::fabs(num);
      if (!(err <= bound) && (r.ok || err / bound > worst)) {
        worst = err / bound;
        r.ok = false;
        report.str("");
        report << what << ": input " << k << " element " << i << ": analytic " << a[std::size_t(i)] << ", numeric "
               << num << " (|diff| " << err << " > " << bound << ")";
      }
    }
  }
  if (r.ok) report << what << ": " << checked << " elements of " << inputs.size() << " inputs agree";
  r.report = report.str();
  return r;
}

Tensor projection_like(const Tensor& y, Generator& gen) {
  return Tensor::randn(y.sizes(), TensorOptions().with_dtype(y.dtype()), &gen);
}

}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                          GradcheckOptions opts) {
  Generator gen(opts.seed);
  Tensor w;
  {
    NoGradGuard no_grad;
    w = projection_like(f(inputs), gen);
  }
  auto L = [&](const std::vector<Tensor>& x) { return sum(f(x) * w); };
  return check_scalar(L, inputs, opts, "gradcheck");
}

GradcheckResult gradgradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                              const std::vector<Tensor>& inputs, GradcheckOptions opts) {
  Generator gen(opts.seed);
  Tensor w;
  std::vector<Tensor> v;
  {
    NoGradGuard no_grad;
    w = projection_like(f(inputs), gen);
    for (const Tensor& x : inputs) v.push_back(projection_like(x, gen));
  }
  auto h = [&](const std::vector<Tensor>& x) {
    const bool graph = grad_enabled();
    GradModeGuard on(true);  // the first gradient needs its graph even for the numeric side
    const std::vector<Tensor> g = grad(sum(f(x) * w), x, {}, /*create_graph=*/graph);
    Tensor total;
    for (std::size_t i = 0; i < g.size(); ++i) {
      const Tensor term = sum(g[i] * v[i]);
      total = total.defined() ? total + term : term;
    }
    return graph ? total : total.detach();
  };
  return check_scalar(h, inputs, opts, "gradgradcheck");
}

}  // namespace tg
