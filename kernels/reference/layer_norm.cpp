// Reference layer_norm: two passes in double per row (the mean, then the centred sum of
// squares), so the variance carries no cancellation error; rounded once to T.
#include <cmath>
#include <vector>

#include "tilegrad/kernels/layer_norm.hpp"

namespace tg {

namespace {
template <class T>
void row_stats(index_t n, const T* x, double eps, double& mean, double& rstd) {
  double s = 0;
  for (index_t j = 0; j < n; ++j) s += double(x[j]);
  mean = s / double(n);
  double ss = 0;
  for (index_t j = 0; j < n; ++j) {
    const double d = double(x[j]) - mean;
    ss += d * d;
  }
  rstd = 1 / std::sqrt(ss / double(n) + double(eps));
}
}  // namespace

template <class T>
void layer_norm_forward_ref(index_t rows, index_t cols, const T* x, index_t ldx, const T* gamma,
                            const T* beta, double eps, T* y, index_t ldy, T* mean, T* rstd) {
  for (index_t i = 0; i < rows; ++i) {
    const T* xi = x + i * ldx;
    T* yi = y + i * ldy;
    double mu = 0, rs = 0;
    row_stats(cols, xi, eps, mu, rs);
    for (index_t j = 0; j < cols; ++j) {
      const double xhat = (double(xi[j]) - mu) * rs;
      yi[j] = T(xhat * (gamma ? double(gamma[j]) : 1.0) + (beta ? double(beta[j]) : 0.0));
    }
    if (mean) mean[i] = T(mu);
    if (rstd) rstd[i] = T(rs);
  }
}

template <class T>
void layer_norm_backward_ref(index_t rows, index_t cols, const T* x, index_t ldx, const T* dy,
                             index_t lddy, const T* gamma, const T* /*mean*/, const T* /*rstd*/,
                             double eps, T* dx, index_t lddx, T* dgamma, T* dbeta) {
  std::vector<double> dg(dgamma ? cols : 0, 0.0), db(dbeta ? cols : 0, 0.0);
  std::vector<double> g(cols), xhat(cols);
  for (index_t i = 0; i < rows; ++i) {
    const T* xi = x + i * ldx;
    const T* dyi = dy + i * lddy;
    double mu = 0, rs = 0;
    row_stats(cols, xi, eps, mu, rs);
    double mean_g = 0, mean_gx = 0;
    for (index_t j = 0; j < cols; ++j) {
      xhat[j] = (double(xi[j]) - mu) * rs;
      g[j] = double(dyi[j]) * (gamma ? double(gamma[j]) : 1.0);
      mean_g += g[j];
      mean_gx += g[j] * xhat[j];
      if (dgamma) dg[j] += double(dyi[j]) * xhat[j];
      if (dbeta) db[j] += double(dyi[j]);
    }
    mean_g /= double(cols);
    mean_gx /= double(cols);
    T* dxi = dx + i * lddx;
    for (index_t j = 0; j < cols; ++j) dxi[j] = T(rs * (g[j] - mean_g - xhat[j] * mean_gx));
  }
  for (index_t j = 0; j < index_t(dg.size()); ++j) dgamma[j] = T(dg[j]);
  for (index_t j = 0; j < index_t(db.size()); ++j) dbeta[j] = T(db[j]);
}

#define TG_INSTANTIATE(T)                                                                     \
  template void layer_norm_forward_ref(index_t, index_t, const T*, index_t, const T*,          \
                                       const T*, double, T*, index_t, T*, T*);                 \
  template void layer_norm_backward_ref(index_t, index_t, const T*, index_t, const T*, index_t, \
                                        const T*, const T*, const T*, double, T*, index_t, T*, \
                                        T*);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE

}  // namespace tg
