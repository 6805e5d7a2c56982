// Gradient checking (as torch.autograd.gradcheck / gradgradcheck) and grad(), the
// gradients of an output with respect to chosen inputs without touching their .grad.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tilegrad/autograd/tensor.hpp"

namespace tg {

// d(output)/d(inputs) given grad_output (default ones for a scalar), returned instead of
// accumulated: the inputs' .grad are left as they were. Inputs must be leaves that
// require grad. create_graph: the results carry a graph (for higher derivatives).
std::vector<Tensor> grad(const Tensor& output, const std::vector<Tensor>& inputs, const Tensor& grad_output = {},
                         bool create_graph = false);

struct GradcheckResult {
  bool ok = true;
  std::string report;  // the worst mismatch, or a summary of what was checked
  explicit operator bool() const { return ok; }
};

struct GradcheckOptions {
  double eps = 1e-6;   // central-difference step
  double atol = 1e-5;  // |analytic - numeric| <= atol + rtol |numeric|
  double rtol = 1e-3;
  std::uint64_t seed = 1;  // of the random projection
};

// f maps the inputs (f64 leaves that require grad) to one tensor y. With a random
// projection w of y's shape, L = sum(w y): its gradient by backward must match central
// differences of L in every element of every input.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                          GradcheckOptions opts = {});
// The same check on the gradient itself: with random v, h(x) = sum_i (v_i . dL/dx_i)
// computed with create_graph; its gradient by backward must match central differences.
GradcheckResult gradgradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                              const std::vector<Tensor>& inputs, GradcheckOptions opts = {});

}  // namespace tg
