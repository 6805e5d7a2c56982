// Losses as callables (torch.nn.MSELoss and friends): loss(input, target) with a
// reduction (mean, sum, none).
//   MSELoss:            (x - t)^2
//   L1Loss:             |x - t|                     (gradient sign(x - t), 0 at 0)
//   CrossEntropyLoss:   fused log-softmax + NLL over (N, C) logits and (N) i64 classes,
//                       label smoothing, ignore_index (mean over the targets not ignored)
//   BCEWithLogitsLoss:  max(x, 0) - x t + log(1 + e^-|x|), gradient sigmoid(x) - t
#pragma once

#include "tilegrad/autograd/autograd.hpp"

namespace tg::nn {

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        Reduction reduction = Reduction::mean);

struct MSELoss {
  Reduction reduction = Reduction::mean;
  Tensor operator()(const Tensor& x, const Tensor& t) const { return mse_loss(x, t, reduction); }
};
struct L1Loss {
  Reduction reduction = Reduction::mean;
  Tensor operator()(const Tensor& x, const Tensor& t) const { return l1_loss(x, t, reduction); }
};
struct CrossEntropyLoss {
  Reduction reduction = Reduction::mean;
  index_t ignore_index = -100;
  double label_smoothing = 0.0;
  Tensor operator()(const Tensor& logits, const Tensor& target) const {
    return cross_entropy(logits, target, reduction, ignore_index, label_smoothing);
  }
};
struct BCEWithLogitsLoss {
  Reduction reduction = Reduction::mean;
  Tensor operator()(const Tensor& x, const Tensor& t) const { return binary_cross_entropy_with_logits(x, t, reduction); }
};

}  // namespace tg::nn
