// Reference softmax and log_softmax: per row, in double, with the special rows of
// kernels/softmax.hpp (all -inf, +inf present, NaN present) decided before any exp.
#include <cmath>
#include <limits>

#include "tilegrad/kernels/softmax.hpp"

namespace tg {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <class T>
void forward_row(bool log, index_t n, const T* x, T* y) {
  double m = -kInf;
  index_t pos_inf = 0;
  bool nan = false;
  for (index_t j = 0; j < n; ++j) {
    const double v = x[j];
    nan |= v != v;
    pos_inf += v == kInf;
    if (v > m) m = v;
  }
  if (nan) {
    for (index_t j = 0; j < n; ++j) y[j] = T(kNaN);
    return;
  }
  if (m == -kInf) {  // fully masked (or empty) row
    for (index_t j = 0; j < n; ++j) y[j] = T(log ? -kInf : 0.0);
    return;
  }
  if (pos_inf > 0) {  // the limit puts all mass on the +inf entries, evenly
    const double c = double(pos_inf);
    for (index_t j = 0; j < n; ++j) {
      const bool hit = double(x[j]) == kInf;
      y[j] = T(log ? (hit ? -std::log(c) : -kInf) : (hit ? 1 / c : 0.0));
    }
    return;
  }
  double sum = 0;
  for (index_t j = 0; j < n; ++j) sum += std::exp(double(x[j]) - m);
  const double log_sum = std::log(sum);
  // Read x[j] before writing y[j]: in place is allowed.
  for (index_t j = 0; j < n; ++j) {
    const double d = double(x[j]) - m;
    y[j] = T(log ? d - log_sum : std::exp(d) / sum);
  }
}

template <class T>
void backward_row(bool log, index_t n, const T* y, const T* dy, T* dx) {
  if (log) {
    bool masked = true;
    double sum_dy = 0;
    for (index_t j = 0; j < n; ++j) {
      masked = masked && double(y[j]) == -kInf;
      sum_dy += double(dy[j]);
    }
    for (index_t j = 0; j < n; ++j)
      dx[j] = masked ? T(0) : T(double(dy[j]) - std::exp(double(y[j])) * sum_dy);
  } else {
    double dot = 0;
    for (index_t j = 0; j < n; ++j) dot += double(dy[j]) * double(y[j]);
    for (index_t j = 0; j < n; ++j) dx[j] = T(double(y[j]) * (double(dy[j]) - dot));
  }
}

}  // namespace

template <class T>
void softmax_forward_ref(index_t rows, index_t cols, const T* x, index_t ldx, T* y, index_t ldy) {
  for (index_t i = 0; i < rows; ++i) forward_row(false, cols, x + i * ldx, y + i * ldy);
}

template <class T>
void log_softmax_forward_ref(index_t rows, index_t cols, const T* x, index_t ldx, T* y,
                             index_t ldy) {
  for (index_t i = 0; i < rows; ++i) forward_row(true, cols, x + i * ldx, y + i * ldy);
}

template <class T>
void softmax_backward_ref(index_t rows, index_t cols, const T* y, index_t ldy, const T* dy,
                          index_t lddy, T* dx, index_t lddx) {
  for (index_t i = 0; i < rows; ++i)
    backward_row(false, cols, y + i * ldy, dy + i * lddy, dx + i * lddx);
}

template <class T>
void log_softmax_backward_ref(index_t rows, index_t cols, const T* y, index_t ldy, const T* dy,
                              index_t lddy, T* dx, index_t lddx) {
  for (index_t i = 0; i < rows; ++i)
    backward_row(true, cols, y + i * ldy, dy + i * lddy, dx + i * lddx);
}

#define TG_INSTANTIATE(T)                                                                      \
  template void softmax_forward_ref(index_t, index_t, const T*, index_t, T*, index_t);         \
  template void log_softmax_forward_ref(index_t, index_t, const T*, index_t, T*, index_t);     \
  template void softmax_backward_ref(index_t, index_t, const T*, index_t, const T*, index_t,   \
                                     T*, index_t);                                             \
  template void log_softmax_backward_ref(index_t, index_t, const T*, index_t, const T*,        \
                                         index_t, T*, index_t);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE

}  // namespace tg
