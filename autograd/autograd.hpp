// tilegrad's autograd, in one include: Tensor, the differentiable ops, grad mode and
// anomaly mode, gradcheck, graph export.
#pragma once

#include "autograd/dot.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "autograd/tensor.hpp"
