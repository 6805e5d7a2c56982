// tilegrad's autograd, in one include: Tensor, the differentiable ops, grad mode and
// anomaly mode, gradcheck, graph export.
#pragma once

#include "tilegrad/autograd/dot.hpp"
#include "tilegrad/autograd/gradcheck.hpp"
#include "tilegrad/autograd/modes.hpp"
#include "tilegrad/autograd/node.hpp"
#include "tilegrad/autograd/ops.hpp"
#include "tilegrad/autograd/profiler.hpp"
#include "tilegrad/autograd/tensor.hpp"
