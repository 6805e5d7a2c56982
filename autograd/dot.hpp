// The recorded graph behind a tensor as Graphviz DOT: one box per op (its backward
// node's name, output shape and dtype, the bytes it saved for backward), one ellipse
// per leaf that requires grad (its name if it has one: parameters do, shape, dtype),
// arrows in the direction data flowed. Render with `dot -Tpng graph.dot -o graph.png`.
#pragma once

#include <string>

#include "tilegrad/autograd/tensor.hpp"

namespace tg {

std::string to_dot(const Tensor& t);

}  // namespace tg
