// Reference scaled dot-product attention: every score row materialized in double, the
// softmax taken with the row maximum subtracted, the backward recomputing the
// probabilities from Q, K and the mask (it reads neither O nor lse). O(B H Sq Sk D).
#include <cmath>
#include <limits>
#include <vector>

#include "tilegrad/kernels/attention.hpp"

namespace tg {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The probabilities of query row (b, h, i) into p (Sk entries); returns lse, -inf for a
// fully masked row (p all zero then), NaN when a score is NaN (p all NaN then).
template <class Args>
double row_probs(const Args& a, index_t b, index_t h, index_t i, std::vector<double>& p) {
  const AttentionDims& d = a.dims;
  const index_t kh = h / (d.heads / d.kv_heads);
  const index_t last_visible = i + (d.seq_k - d.seq_q);  // bottom-right causal alignment
  double m = -kInf;
  bool nan = false;
  for (index_t j = 0; j < d.seq_k; ++j) {
    double s = -kInf;
    if (!a.causal || j <= last_visible) {
      double dot = 0;
      for (index_t c = 0; c < d.head_dim; ++c)
        dot += double(a.q.at(b, h, i, c)) * double(a.k.at(b, kh, j, c));
      s = double(a.scale) * dot;
      if (a.mask.data) s += double(a.mask.at(b, h, i, j));
    }
    nan |= s != s;
    if (s > m) m = s;
    p[j] = s;
  }
  if (nan) {
    for (double& v : p) v = std::numeric_limits<double>::quiet_NaN();
    return std::numeric_limits<double>::quiet_NaN();
  }
  if (m == -kInf) {
    for (double& v : p) v = 0;
    return -kInf;
  }
  double sum = 0;
  for (double& v : p) sum += (v = std::exp(v - m));
  for (double& v : p) v /= sum;
  return m + std::log(sum);
}

}  // namespace

template <class T>
void attention_forward_ref(const AttentionForwardArgs<T>& a) {
  const AttentionDims& d = a.dims;
  std::vector<double> p(d.seq_k), o(d.head_dim);
  for (index_t b = 0; b < d.batch; ++b)
    for (index_t h = 0; h < d.heads; ++h) {
      const index_t kh = h / (d.heads / d.kv_heads);
      for (index_t i = 0; i < d.seq_q; ++i) {
        const double lse = row_probs(a, b, h, i, p);
        for (index_t c = 0; c < d.head_dim; ++c) o[c] = 0;
        // Every key, masked ones included (p = 0): an infinite or NaN value row makes
        // the output NaN through 0 * inf, as the fused kernels' products do.
        if (lse != -kInf)
          for (index_t j = 0; j < d.seq_k; ++j)
            for (index_t c = 0; c < d.head_dim; ++c) o[c] += p[j] * double(a.v.at(b, kh, j, c));
        for (index_t c = 0; c < d.head_dim; ++c) a.o.at(b, h, i, c) = T(o[c]);
        if (a.lse) a.lse[(b * d.heads + h) * d.seq_q + i] = T(lse);
      }
    }
}

template <class T>
void attention_backward_ref(const AttentionBackwardArgs<T>& a) {
  const AttentionDims& d = a.dims;
  const index_t D = d.head_dim;
  // dK and dV gather from every query head of their group: accumulate in double.
  std::vector<double> dk(std::size_t(d.batch * d.kv_heads * d.seq_k * D), 0.0);
  std::vector<double> dv(dk.size(), 0.0);
  auto kv_index = [&](index_t b, index_t kh, index_t j) { return ((b * d.kv_heads + kh) * d.seq_k + j) * D; };
  std::vector<double> p(d.seq_k), dp(d.seq_k), dq(D);
  for (index_t b = 0; b < d.batch; ++b)
    for (index_t h = 0; h < d.heads; ++h) {
      const index_t kh = h / (d.heads / d.kv_heads);
      for (index_t i = 0; i < d.seq_q; ++i) {
        row_probs(a, b, h, i, p);
        double D_i = 0;
        for (index_t j = 0; j < d.seq_k; ++j) {
          double s = 0;
          for (index_t c = 0; c < D; ++c) s += double(a.d_o.at(b, h, i, c)) * double(a.v.at(b, kh, j, c));
          dp[j] = s;
          D_i += p[j] * s;
        }
        for (index_t c = 0; c < D; ++c) dq[c] = 0;
        for (index_t j = 0; j < d.seq_k; ++j) {
          if (p[j] == 0) continue;  // masked: no gradient flows (and no 0 * inf)
          const double ds = p[j] * (dp[j] - D_i) * double(a.scale);
          double* dkj = &dk[kv_index(b, kh, j)];
          double* dvj = &dv[kv_index(b, kh, j)];
          for (index_t c = 0; c < D; ++c) {
            dq[c] += ds * double(a.k.at(b, kh, j, c));
            dkj[c] += ds * double(a.q.at(b, h, i, c));
            dvj[c] += p[j] * double(a.d_o.at(b, h, i, c));
          }
        }
        for (index_t c = 0; c < D; ++c) a.dq.at(b, h, i, c) = T(dq[c]);
      }
    }
  for (index_t b = 0; b < d.batch; ++b)
    for (index_t kh = 0; kh < d.kv_heads; ++kh)
      for (index_t j = 0; j < d.seq_k; ++j)
        for (index_t c = 0; c < D; ++c) {
          a.dk.at(b, kh, j, c) = T(dk[kv_index(b, kh, j) + c]);
          a.dv.at(b, kh, j, c) = T(dv[kv_index(b, kh, j) + c]);
        }
}

template void attention_forward_ref(const AttentionForwardArgs<float>&);
template void attention_forward_ref(const AttentionForwardArgs<double>&);
template void attention_backward_ref(const AttentionBackwardArgs<float>&);
template void attention_backward_ref(const AttentionBackwardArgs<double>&);

}  // namespace tg
