// Plain loops over libm for the activation, softmax and layer-norm benchmarks: the
// baseline a user without a kernel library writes. Compiled at -O3 with no vector ISA
// flags (the compiler vectorizes what it can for baseline x86-64; libm calls stay
// scalar), OpenMP over chunks or rows.
#include <omp.h>

#include <cmath>

#include "bench/peers/peers.hpp"

namespace tg::peers {

namespace {

constexpr float kK = 0.7978845608028654f, kC = 0.044715f;

float fwd1(Act a, float slope, float x) {
  switch (a) {
    case Act::none: return x;
    case Act::relu: return x < 0 ? 0.0f : x;
    case Act::leaky_relu: return x >= 0 ? x : slope * x;
    case Act::gelu_erf: return 0.5f * x * (1.0f + std::erf(x * float(M_SQRT1_2)));
    case Act::gelu_tanh: return 0.5f * x * (1.0f + std::tanh(kK * (x + kC * x * x * x)));
    case Act::silu: return x / (1.0f + std::exp(-x));
    case Act::sigmoid: return 1.0f / (1.0f + std::exp(-x));
    case Act::tanh: return std::tanh(x);
  }
  return x;
}

float bwd1(Act a, float slope, float x) {
  switch (a) {
    case Act::none: return 1.0f;
    case Act::relu: return x > 0 ? 1.0f : 0.0f;
    case Act::leaky_relu: return x > 0 ? 1.0f : slope;
    case Act::gelu_erf:
      return 0.5f * (1.0f + std::erf(x * float(M_SQRT1_2))) + x * std::exp(-0.5f * x * x) * 0.3989422804f;
    case Act::gelu_tanh: {
      const float t = std::tanh(kK * (x + kC * x * x * x));
      return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kK * (1.0f + 3.0f * kC * x * x);
    }
    case Act::silu: {
      const float s = 1.0f / (1.0f + std::exp(-x));
      return s * (1.0f + x * (1.0f - s));
    }
    case Act::sigmoid: {
      const float s = 1.0f / (1.0f + std::exp(-x));
      return s * (1.0f - s);
    }
    case Act::tanh: {
      const float t = std::tanh(x);
      return 1.0f - t * t;
    }
  }
  return 1.0f;
}

void act_fwd(Activation act, index_t n, const float* x, float* y) {
#pragma omp parallel for schedule(static)
  for (index_t i = 0; i < n; ++i) y[i] = fwd1(act.kind, float(act.slope), x[i]);
}

void act_bwd(Activation act, index_t n, const float* x, const float* dy, float* dx) {
#pragma omp parallel for schedule(static)
  for (index_t i = 0; i < n; ++i) dx[i] = dy[i] * bwd1(act.kind, float(act.slope), x[i]);
}

void softmax_fwd(bool log, index_t rows, index_t cols, const float* x, float* y) {
#pragma omp parallel for schedule(static)
  for (index_t i = 0; i < rows; ++i) {
    const float* xi = x + i * cols;
    float* yi = y + i * cols;
    float m = -INFINITY;
    for (index_t j = 0; j < cols; ++j) m = std::fmax(m, xi[j]);
    float s = 0;
    for (index_t j = 0; j < cols; ++j) s += std::exp(xi[j] - m);
    if (log) {
      const float c = m + std::log(s);
      for (index_t j = 0; j < cols; ++j) yi[j] = xi[j] - c;
    } else {
      for (index_t j = 0; j < cols; ++j) yi[j] = std::exp(xi[j] - m) / s;
    }
  }
}

void softmax_bwd(bool log, index_t rows, index_t cols, const float* y, const float* dy, float* dx) {
#pragma omp parallel for schedule(static)
  for (index_t i = 0; i < rows; ++i) {
    const float* yi = y + i * cols;
    const float* di = dy + i * cols;
    float* oi = dx + i * cols;
    float acc = 0;
    for (index_t j = 0; j < cols; ++j) acc += log ? di[j] : di[j] * yi[j];
    for (index_t j = 0; j < cols; ++j) oi[j] = log ? di[j] - std::exp(yi[j]) * acc : yi[j] * (di[j] - acc);
  }
}

void layer_norm_fwd(index_t rows, index_t cols, const float* x, float eps, float* y, float* mean, float* rstd) {
#pragma omp parallel for schedule(static)
  for (index_t i = 0; i < rows; ++i) {
    const float* xi = x + i * cols;
    float* yi = y + i * cols;
    float s = 0;
    for (index_t j = 0; j < cols; ++j) s += xi[j];
    const float mu = s / float(cols);
    float v = 0;
    for (index_t j = 0; j < cols; ++j) v += (xi[j] - mu) * (xi[j] - mu);
    const float r = 1.0f / std::sqrt(v / float(cols) + eps);
    for (index_t j = 0; j < cols; ++j) yi[j] = (xi[j] - mu) * r;
    mean[i] = mu;
    rstd[i] = r;
  }
}

void layer_norm_bwd(index_t rows, index_t cols, const float* x, const float* dy, const float* mean,
                    const float* rstd, float* dx) {
#pragma omp parallel for schedule(static)
  for (index_t i = 0; i < rows; ++i) {
    const float* xi = x + i * cols;
    const float* di = dy + i * cols;
    float* oi = dx + i * cols;
    float mg = 0, mgx = 0;
    for (index_t j = 0; j < cols; ++j) {
      mg += di[j];
      mgx += di[j] * (xi[j] - mean[i]) * rstd[i];
    }
    mg /= float(cols);
    mgx /= float(cols);
    for (index_t j = 0; j < cols; ++j) oi[j] = rstd[i] * (di[j] - mg - (xi[j] - mean[i]) * rstd[i] * mgx);
  }
}

}  // namespace

NormPeer libm_norm_peer() {
  return {"libm", &act_fwd, &act_bwd, &softmax_fwd, &softmax_bwd, &layer_norm_fwd, &layer_norm_bwd};
}

}  // namespace tg::peers
