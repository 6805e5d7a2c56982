// Reference fused cross-entropy, in double per row (kernels/cross_entropy.hpp).
#include <algorithm>
#include <cmath>
#include <limits>

#include "tilegrad/kernels/cross_entropy.hpp"

namespace tg {

template <class T>
void cross_entropy_forward_ref(index_t rows, index_t classes, const T* logits, index_t ld,
                               const index_t* target, index_t ignore_index, double smoothing, T* loss,
                               T* lse) {
  for (index_t i = 0; i < rows; ++i) {
    const T* z = logits + i * ld;
    double m = -std::numeric_limits<double>::infinity(), dev = 0;
    for (index_t j = 0; j < classes; ++j) m = std::max(m, double(z[j]));
    double s = 0;
    for (index_t j = 0; j < classes; ++j) {
      s += std::exp(double(z[j]) - m);
      dev += m - double(z[j]);
    }
    const double log_s = std::log(s);
    lse[2 * i] = T(m), lse[2 * i + 1] = T(log_s);
    const index_t t = target[i];
    if (t == ignore_index) {
      loss[i] = T(0);
      continue;
    }
    // Relative to the maximum: loss = log s + (1 - eps)(m - z_t) + eps/C sum_j (m - z_j).
    // (m + log s) - z_t would lose log s to m's rounding for logits near 1e30. Without
    // smoothing the deviations are not a term (a masked class, -inf, would make 0 * inf
    // = NaN of it).
    const double smooth = smoothing != 0 ? smoothing / double(classes) * dev : 0.0;
    loss[i] = T(log_s + (1.0 - smoothing) * (m - double(z[t])) + smooth);
  }
}

template <class T>
void cross_entropy_backward_ref(index_t rows, index_t classes, const T* logits, index_t ld,
                                const index_t* target, index_t ignore_index, double smoothing, const T* lse,
                                const T* dloss, T* dlogits, index_t ldd) {
  for (index_t i = 0; i < rows; ++i) {
    const T* z = logits + i * ld;
    T* dz = dlogits + i * ldd;
    const index_t t = target[i];
    if (t == ignore_index) {
      std::fill(dz, dz + classes, T(0));
      continue;
    }
    const double g = double(dloss[i]), m = double(lse[2 * i]), ls = double(lse[2 * i + 1]);
    const double u = smoothing / double(classes);
    for (index_t j = 0; j < classes; ++j)
      dz[j] = T(g * (std::exp((double(z[j]) - m) - ls) - (j == t ? 1.0 - smoothing : 0.0) - u));
  }
}

#define TG_INSTANTIATE(T)                                                                             \
  template void cross_entropy_forward_ref<T>(index_t, index_t, const T*, index_t, const index_t*, index_t, \
                                             double, T*, T*);                                          \
  template void cross_entropy_backward_ref<T>(index_t, index_t, const T*, index_t, const index_t*,      \
                                              index_t, double, const T*, const T*, T*, index_t);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE

}  // namespace tg
