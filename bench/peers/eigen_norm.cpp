// Eigen array expressions for the activation, softmax and layer-norm benchmarks,
// compiled for AVX2/FMA (Eigen's vectorized exp, tanh, erf, logistic then apply).
// Eigen does not thread array expressions: OpenMP splits the work, as a user would.
#include <Eigen/Core>
#include <omp.h>
#include <unsupported/Eigen/SpecialFunctions>  // erf

#include <cmath>

#include "bench/peers/peers.hpp"

namespace tg::peers {

namespace {

using Arr = Eigen::Array<float, Eigen::Dynamic, 1>;
using CMap = Eigen::Map<const Arr>;
using MMap = Eigen::Map<Arr>;
constexpr float kK = 0.7978845608028654f, kC = 0.044715f;  // gelu_tanh

template <class F>
void chunks(index_t n, F&& f) {
  const index_t chunk = 1 << 14;
#pragma omp parallel for schedule(static)
  for (index_t c = 0; c < (n + chunk - 1) / chunk; ++c) f(c * chunk, std::min(chunk, n - c * chunk));
}

void act_fwd(Activation act, index_t n, const float* xp, float* yp) {
  chunks(n, [&](index_t o, index_t m) {
    CMap x(xp + o, m);
    MMap y(yp + o, m);
    switch (act.kind) {
      case Act::none: y = x; break;
      case Act::relu: y = x.max(0.0f); break;
      case Act::leaky_relu: y = (x >= 0.0f).select(x, act.slope * x); break;
      case Act::gelu_erf: y = 0.5f * x * (1.0f + (x * float(M_SQRT1_2)).erf()); break;
      case Act::gelu_tanh: y = 0.5f * x * (1.0f + (kK * (x + kC * x.cube())).tanh()); break;
      case Act::silu: y = x * x.logistic(); break;
      case Act::sigmoid: y = x.logistic(); break;
      case Act::tanh: y = x.tanh(); break;
    }
  });
}

void act_bwd(Activation act, index_t n, const float* xp, const float* dyp, float* dxp) {
  chunks(n, [&](index_t o, index_t m) {
    CMap x(xp + o, m), dy(dyp + o, m);
    MMap dx(dxp + o, m);
    switch (act.kind) {
      case Act::none: dx = dy; break;
      case Act::relu: dx = (x > 0.0f).select(dy, 0.0f); break;
      case Act::leaky_relu: dx = (x > 0.0f).select(dy, act.slope * dy); break;
      case Act::gelu_erf:
        dx = dy * (0.5f * (1.0f + (x * float(M_SQRT1_2)).erf()) + x * (-0.5f * x.square()).exp() * 0.3989422804f);
        break;
      case Act::gelu_tanh: {
        const Arr t = (kK * (x + kC * x.cube())).tanh();
        dx = dy * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t.square()) * kK * (1.0f + 3.0f * kC * x.square()));
        break;
      }
      case Act::silu: {
        const Arr s = x.logistic();
        dx = dy * s * (1.0f + x * (1.0f - s));
        break;
      }
      case Act::sigmoid: {
        const Arr s = x.logistic();
        dx = dy * s * (1.0f - s);
        break;
      }
      case Act::tanh: dx = dy * (1.0f - x.tanh().square()); break;
    }
  });
}

template <class F>
void rows_parallel(index_t rows, F&& f) {
#pragma omp parallel for schedule(static)
  for (index_t i = 0; i < rows; ++i) f(i);
}

void softmax_fwd(bool log, index_t rows, index_t cols, const float* xp, float* yp) {
  rows_parallel(rows, [&](index_t i) {
    CMap x(xp + i * cols, cols);
    MMap y(yp + i * cols, cols);
    const float m = x.maxCoeff();
    if (log) {
      y = x - (m + std::log((x - m).exp().sum()));
    } else {
      y = (x - m).exp();
      y /= y.sum();
    }
  });
}

void softmax_bwd(bool log, index_t rows, index_t cols, const float* yp, const float* dyp, float* dxp) {
  rows_parallel(rows, [&](index_t i) {
    CMap y(yp + i * cols, cols), dy(dyp + i * cols, cols);
    MMap dx(dxp + i * cols, cols);
    if (log) {
      dx = dy - y.exp() * dy.sum();
    } else {
      dx = y * (dy - (dy * y).sum());
    }
  });
}

void layer_norm_fwd(index_t rows, index_t cols, const float* xp, float eps, float* yp, float* mean, float* rstd) {
  rows_parallel(rows, [&](index_t i) {
    CMap x(xp + i * cols, cols);
    MMap y(yp + i * cols, cols);
    const float mu = x.mean();
    y = x - mu;
    const float r = 1.0f / std::sqrt(y.square().mean() + eps);
    y *= r;
    mean[i] = mu;
    rstd[i] = r;
  });
}

void layer_norm_bwd(index_t rows, index_t cols, const float* xp, const float* dyp, const float* mean,
                    const float* rstd, float* dxp) {
  rows_parallel(rows, [&](index_t i) {
    CMap x(xp + i * cols, cols), dy(dyp + i * cols, cols);
    MMap dx(dxp + i * cols, cols);
    const Arr xh = (x - mean[i]) * rstd[i];
    dx = rstd[i] * (dy - dy.mean() - xh * (dy * xh).mean());
  });
}

}  // namespace

// Eigen's casts (vectorized packet conversions where Eigen has them), bits reinterpreted.
template <class H>
void cast_chunks(bool encode, index_t n, const void* src, void* dst) {
  using HArr = Eigen::Array<H, Eigen::Dynamic, 1>;
  chunks(n, [&](index_t o, index_t m) {
    if (encode)
      Eigen::Map<HArr>(static_cast<H*>(dst) + o, m) = CMap(static_cast<const float*>(src) + o, m).template cast<H>();
    else
      MMap(static_cast<float*>(dst) + o, m) = Eigen::Map<const HArr>(static_cast<const H*>(src) + o, m).template cast<float>();
  });
}
void convert(DType from, DType to, index_t n, const void* src, void* dst) {
  const DType h = from == DType::f32 ? to : from;
  if (h == DType::bf16) cast_chunks<Eigen::bfloat16>(from == DType::f32, n, src, dst);
  else cast_chunks<Eigen::half>(from == DType::f32, n, src, dst);
}

NormPeer eigen_norm_peer() {
  return {"eigen", &act_fwd, &act_bwd, &softmax_fwd, &softmax_bwd, &layer_norm_fwd, &layer_norm_bwd, &convert};
}

}  // namespace tg::peers
