// The fused optimizer steps (kernels/optimizer.hpp) over all parameter slots, compiled
// per path (optimizer.cpp portable, optimizer_avx2.cpp with AVX2/FMA). Each slot is cut
// into chunks of kChunk elements and the chunks of every slot are shared among the
// threads (one parallel region for the whole model, none below kParallelElems). The
// arithmetic is in T, the bias corrections in double, as PyTorch's CPU kernels do.
// Not a public header.
#pragma once

#include "tilegrad/cpu/omp.hpp"

#include <cmath>
#include <span>
#include <vector>

#include "tilegrad/kernels/optimizer.hpp"

namespace tg::cpu {
namespace {  // internal linkage: one copy per path's unit (docs/design.md)
namespace optim_impl {

inline constexpr index_t kChunk = index_t(1) << 14;
inline constexpr index_t kParallelElems = index_t(1) << 16;

template <class T, class Body>
void for_each_chunk(std::span<const ParamSlot<T>> slots, Body&& body) {
  index_t total = 0;
  for (const ParamSlot<T>& s : slots) total += s.n;
  if (total < kParallelElems || omp_in_parallel() || omp_get_max_threads() == 1) {
    // No OpenMP at all: even a one-thread parallel region costs a small model's step.
    for (const ParamSlot<T>& s : slots) body(s, index_t(0), s.n);
    return;
  }
  struct Piece {
    const ParamSlot<T>* slot;
    index_t begin, end;
  };
  std::vector<Piece> pieces;
  for (const ParamSlot<T>& s : slots)
    for (index_t b = 0; b < s.n; b += kChunk) pieces.push_back({&s, b, std::min(s.n, b + kChunk)});
#pragma omp parallel for schedule(static)
  for (std::size_t k = 0; k < pieces.size(); ++k) body(*pieces[k].slot, pieces[k].begin, pieces[k].end);
}

template <class T>
void sgd(const SgdConfig& config, std::span<const ParamSlot<T>> slots) {
  const SgdConfig c = read_live(config);
  const T lr = T(c.lr), wd = T(c.weight_decay), mom = T(c.momentum), keep = T(1 - c.dampening);
  for_each_chunk<T>(slots, [=](const ParamSlot<T>& s, index_t b, index_t e) {  // by value: see adam
    T* __restrict p = s.param;
    const T* __restrict g = s.grad;
    T* __restrict m = s.m;
    if (c.momentum == 0) {
      for (index_t i = b; i < e; ++i) p[i] -= lr * (g[i] + wd * p[i]);
    } else if (c.first_step) {
      for (index_t i = b; i < e; ++i) {
        const T gi = g[i] + wd * p[i];
        m[i] = gi;
        p[i] -= lr * (c.nesterov ? gi + mom * gi : gi);
      }
    } else {
      for (index_t i = b; i < e; ++i) {
        const T gi = g[i] + wd * p[i];
        const T bi = mom * m[i] + keep * gi;
        m[i] = bi;
        p[i] -= lr * (c.nesterov ? gi + mom * bi : bi);
      }
    }
  });
}

template <class T>
void adam(const AdamConfig& config, std::span<const ParamSlot<T>> slots) {
  const AdamConfig c = read_live(config);
  const double bc1 = 1 - std::pow(c.beta1, double(c.step)), bc2 = 1 - std::pow(c.beta2, double(c.step));
  const T b1 = T(c.beta1), b2 = T(c.beta2), ob1 = T(1 - c.beta1), ob2 = T(1 - c.beta2), eps = T(c.eps);
  const T step_size = T(c.lr / bc1), inv_sqrt_bc2 = T(1 / std::sqrt(bc2));
  const T decay = T(1 - c.lr * c.weight_decay), wd = T(c.weight_decay);
  const bool decoupled = c.decoupled;
  // The constants are copied into the chunk's own locals (by value): read through the
  // lambda's references they are reloaded per element and the loop stays scalar.
  for_each_chunk<T>(slots, [=](const ParamSlot<T>& s, index_t b, index_t e) {
    T* __restrict p = s.param;
    const T* __restrict g = s.grad;
    T* __restrict m = s.m;
    T* __restrict v = s.v;
    auto update = [&](index_t i, T pi, T gi) {
      const T mi = b1 * m[i] + ob1 * gi, vi = b2 * v[i] + ob2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = pi - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
    };
    if (decoupled) {
      for (index_t i = b; i < e; ++i) update(i, p[i] * decay, g[i]);
    } else {
      for (index_t i = b; i < e; ++i) update(i, p[i], g[i] + wd * p[i]);
    }
  });
}

}  // namespace optim_impl
}  // namespace
}  // namespace tg::cpu

// A path's entries of cpu/optimizer.hpp (float and double), defined by one line in
// namespace tg::cpu of each path's translation unit.
#define TG_OPTIMIZER_PATH(path)                                                                           \
  void sgd_step_##path(const SgdConfig& c, std::span<const ParamSlot<float>> s) { optim_impl::sgd<float>(c, s); } \
  void sgd_step_##path(const SgdConfig& c, std::span<const ParamSlot<double>> s) { optim_impl::sgd<double>(c, s); } \
  void adam_step_##path(const AdamConfig& c, std::span<const ParamSlot<float>> s) { optim_impl::adam<float>(c, s); } \
  void adam_step_##path(const AdamConfig& c, std::span<const ParamSlot<double>> s) { optim_impl::adam<double>(c, s); }
