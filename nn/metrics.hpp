// Metrics on predictions (CPU tensors or vectors), in double.
//   regression:      MSE, MAE, R^2 = 1 - SS_res / SS_tot
//   classification:  accuracy; precision, recall and F1 per class, their macro mean
//                    and their support-weighted mean; the confusion matrix
// A class with no prediction (precision) or no example (recall) scores 0, as
// scikit-learn does with zero_division = 0.
#pragma once

#include <string>
#include <vector>

#include "tilegrad/autograd/autograd.hpp"

namespace tg::nn {

double mse(const Tensor& pred, const Tensor& target);
double mae(const Tensor& pred, const Tensor& target);
double r2_score(const Tensor& pred, const Tensor& target);

struct ConfusionMatrix {
  index_t classes = 0;
  std::vector<index_t> counts;  // counts[true * classes + predicted]
  index_t at(index_t truth, index_t predicted) const { return counts[std::size_t(truth * classes + predicted)]; }
  std::string str(const std::vector<std::string>& names = {}) const;  // aligned rows, a header
};

struct ClassReport {
  double accuracy = 0;
  std::vector<double> precision, recall, f1;
  std::vector<index_t> support;  // examples of each class
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
  double weighted_precision = 0, weighted_recall = 0, weighted_f1 = 0;
  ConfusionMatrix confusion;
};

// predicted and truth: class indices in [0, classes) (i64 tensors or vectors).
ConfusionMatrix confusion_matrix(const std::vector<index_t>& truth, const std::vector<index_t>& predicted,
                                 index_t classes);
ClassReport classification_report(const std::vector<index_t>& truth, const std::vector<index_t>& predicted,
                                   index_t classes);
// The arg-max of each row of (N, C) logits or probabilities.
std::vector<index_t> argmax_rows(const Tensor& scores);

}  // namespace tg::nn
