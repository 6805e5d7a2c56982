// The activation kernels' loops, written once over a lane type V (simd::Z16 in
// activation_avx512.cpp, simd::F8 in activation_avx2.cpp, simd::F1 in activation.cpp).
// Not a public header.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "tilegrad/cpu/activation.hpp"
#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/cpu/parallel.hpp"
#include "tilegrad/cpu/vmath/vec_pair.hpp"
#include "tilegrad/cpu/vmath/vec_scalar.hpp"
#include "tilegrad/cpu/vmath/vmath.hpp"

namespace tg::cpu {
namespace {  // internal linkage: one copy per path's unit (docs/design.md)
namespace act_impl {

inline constexpr index_t kParallelElems = index_t(1) << 15;

// The transcendental kinds run two vectors at a time where the lane type pairs
// (vec_pair.hpp); relu and leaky_relu are a few operations, bound by memory.
template <class V, Act kKind>
inline constexpr bool kPaired = !std::is_same_v<typename simd::Paired<V>::type, V> &&
                                kKind != Act::none && kKind != Act::relu && kKind != Act::leaky_relu;

// One row segment: y = f(x + bias). kStream: non-temporal stores once y is aligned.
template <class V, Act kKind, bool kBias, bool kStream>
void forward_segment(index_t n, const float* x, const float* bias, float* y, V slope, float slope_f) {
  constexpr int L = V::kLanes;
  index_t j = 0;
  if constexpr (kStream) {  // one lane at a time up to the vector's alignment (32 or 64 bytes)
    for (; j < n && (reinterpret_cast<std::uintptr_t>(y + j) & (L * sizeof(float) - 1)) != 0; ++j) {
      const float b = kBias ? bias[j] : 0.0f;
      y[j] = vmath::activate<kKind>(simd::F1(x[j] + b), simd::F1(slope_f)).v;
    }
  }
  // The paired loop and the single one are written out apart: one generic lambda over
  // the lane type ran gelu_tanh and silu 8-15% slower on 2 threads (Zen 4, avx512), GCC
  // spilling four zmm registers a step in the paired loop.
  if constexpr (kPaired<V, kKind>) {
    using W = typename simd::Paired<V>::type;
    constexpr int LW = W::kLanes;
    const W slope_w(slope_f);
    for (; j + LW <= n; j += LW) {
      prefetch_ahead(x + j);
      prefetch_ahead(x + j + L);
      W v = W::load(x + j);
      if constexpr (kBias) v = v + W::load(bias + j);
      v = vmath::activate<kKind>(v, slope_w);
      if constexpr (kStream) {
        simd::store_stream(y + j, v);
      } else {
        v.store(y + j);
      }
    }
  }
  for (; j + L <= n; j += L) {
    prefetch_ahead(x + j);
    V v = V::load(x + j);
    if constexpr (kBias) v = v + V::load(bias + j);
    v = vmath::activate<kKind>(v, slope);
    if constexpr (kStream) {
      simd::store_stream(y + j, v);
    } else {
      v.store(y + j);
    }
  }
  if (j < n) {
    const int r = int(n - j);
    V v = V::load_partial(x + j, r);
    if constexpr (kBias) v = v + V::load_partial(bias + j, r);
    simd::store_partial(y + j, vmath::activate<kKind>(v, slope), r);
  }
}

// One row segment: dx = dy f'(x + bias). kStream: non-temporal stores once dx is aligned
// (as the forward's y).
template <class V, Act kKind, bool kBias, bool kStream>
void backward_segment(index_t n, const float* x, const float* bias, const float* dy, float* dx, V slope,
                      float slope_f) {
  constexpr int L = V::kLanes;
  index_t j = 0;
  if constexpr (kStream) {  // one lane at a time up to the vector's alignment (32 or 64 bytes)
    for (; j < n && (reinterpret_cast<std::uintptr_t>(dx + j) & (L * sizeof(float) - 1)) != 0; ++j) {
      const float b = kBias ? bias[j] : 0.0f;
      dx[j] = (simd::F1(dy[j]) * vmath::activate_grad<kKind>(simd::F1(x[j] + b), simd::F1(slope_f))).v;
    }
  }
  auto put = [&](auto g) {
    if constexpr (kStream) {
      simd::store_stream(dx + j, g);
    } else {
      g.store(dx + j);
    }
  };
  if constexpr (kPaired<V, kKind>) {
    using W = typename simd::Paired<V>::type;
    const W slope_w(slope_f);
    for (; j + W::kLanes <= n; j += W::kLanes) {
      prefetch_ahead(x + j);
      prefetch_ahead(x + j + L);
      prefetch_ahead(dy + j);
      prefetch_ahead(dy + j + L);
      W v = W::load(x + j);
      if constexpr (kBias) v = v + W::load(bias + j);
      put(W::load(dy + j) * vmath::activate_grad<kKind>(v, slope_w));
    }
  }
  for (; j + L <= n; j += L) {
    prefetch_ahead(x + j);
    prefetch_ahead(dy + j);
    V v = V::load(x + j);
    if constexpr (kBias) v = v + V::load(bias + j);
    put(V::load(dy + j) * vmath::activate_grad<kKind>(v, slope));
  }
  if (j < n) {
    const int r = int(n - j);
    V v = V::load_partial(x + j, r);
    if constexpr (kBias) v = v + V::load_partial(bias + j, r);
    simd::store_partial(dx + j, V::load_partial(dy + j, r) * vmath::activate_grad<kKind>(v, slope), r);
  }
}

// Non-temporal stores skip the read-for-ownership of the output's lines, but also leave
// it out of cache: worth it only when it would not stay there anyway (more than half of
// L3). Measured (2 threads, relu forward): on Zen 4 (32 MB L3), 16M floats 1.3-2x faster
// streamed, 4M floats (16 MB) 54 GB/s streamed against 82-102 cached. The L3 counted is
// at most 64 MiB: a larger one is a hypervisor describing a whole socket's cache, which a
// VM shares with other tenants (a 2-vCPU Sapphire Rapids-class VM reports 480 MiB):
// there, 16M floats ran 1.2x (relu), 1.05-1.1x (sigmoid, silu) and 1.2-1.3x (tanh)
// faster streamed, 4M floats 6-18% slower.
inline bool stream_output(index_t elems) {
  const std::size_t l3 = std::min<std::size_t>(cache_sizes().l3, std::size_t(64) << 20);
  return std::size_t(elems) * sizeof(float) > l3 / 2;
}

template <class V, Act kKind>
void forward(index_t rows, index_t cols, const float* x, index_t ldx, const float* bias, float* y,
             index_t ldy, float slope) {
  const bool stream = stream_output(rows * cols);
  const V s(slope);
  for_each_range(rows, cols, kParallelElems, [&](index_t i, index_t j0, index_t j1) {
    const float* xi = x + i * ldx + j0;
    float* yi = y + i * ldy + j0;
    const float* bi = bias ? bias + j0 : nullptr;
    if (bias) {
      stream ? forward_segment<V, kKind, true, true>(j1 - j0, xi, bi, yi, s, slope)
             : forward_segment<V, kKind, true, false>(j1 - j0, xi, bi, yi, s, slope);
    } else {
      stream ? forward_segment<V, kKind, false, true>(j1 - j0, xi, bi, yi, s, slope)
             : forward_segment<V, kKind, false, false>(j1 - j0, xi, bi, yi, s, slope);
    }
  });
  if (stream) V::stream_fence();
}

template <class V, Act kKind>
void backward(index_t rows, index_t cols, const float* x, index_t ldx, const float* bias,
              const float* dy, index_t lddy, float* dx, index_t lddx, float slope) {
  const bool stream = stream_output(rows * cols);
  const V s(slope);
  for_each_range(rows, cols, kParallelElems, [&](index_t i, index_t j0, index_t j1) {
    const float *bi = bias ? bias + j0 : nullptr, *xi = x + i * ldx + j0, *dyi = dy + i * lddy + j0;
    float* dxi = dx + i * lddx + j0;
    if (bias) {
      stream ? backward_segment<V, kKind, true, true>(j1 - j0, xi, bi, dyi, dxi, s, slope)
             : backward_segment<V, kKind, true, false>(j1 - j0, xi, bi, dyi, dxi, s, slope);
    } else {
      stream ? backward_segment<V, kKind, false, true>(j1 - j0, xi, bi, dyi, dxi, s, slope)
             : backward_segment<V, kKind, false, false>(j1 - j0, xi, bi, dyi, dxi, s, slope);
    }
  });
  if (stream) V::stream_fence();
}

// The kind chosen once, outside every loop.
template <class V>
void forward_any(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                 const float* bias, float* y, index_t ldy) {
  switch (act.kind) {
#define TG_CASE(k) \
  case Act::k: return forward<V, Act::k>(rows, cols, x, ldx, bias, y, ldy, float(act.slope));
    TG_CASE(none) TG_CASE(relu) TG_CASE(leaky_relu) TG_CASE(gelu_erf) TG_CASE(gelu_tanh)
    TG_CASE(silu) TG_CASE(sigmoid) TG_CASE(tanh)
#undef TG_CASE
  }
}

template <class V>
void backward_any(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,
                  const float* bias, const float* dy, index_t lddy, float* dx, index_t lddx) {
  switch (act.kind) {
#define TG_CASE(k) \
  case Act::k: return backward<V, Act::k>(rows, cols, x, ldx, bias, dy, lddy, dx, lddx, float(act.slope));
    TG_CASE(none) TG_CASE(relu) TG_CASE(leaky_relu) TG_CASE(gelu_erf) TG_CASE(gelu_tanh)
    TG_CASE(silu) TG_CASE(sigmoid) TG_CASE(tanh)
#undef TG_CASE
  }
}

template <class V>
void math_array(MathFn fn, index_t n, const float* x, float* y) {
  for_each_range(1, n, kParallelElems, [&](index_t, index_t j0, index_t j1) {
    constexpr int L = V::kLanes;
    auto apply = [fn](V v) {
      switch (fn) {
        case MathFn::exp: return vmath::exp(v);
        case MathFn::log: return vmath::log(v);
        case MathFn::tanh: return vmath::tanh(v);
        case MathFn::sigmoid: return vmath::sigmoid(v);
        case MathFn::erf: return vmath::erf(v);
        case MathFn::exp2_nonpositive: return vmath::exp2_nonpositive(-abs(v));
      }
      return v;
    };
    index_t j = j0;
    for (; j + L <= j1; j += L) apply(V::load(x + j)).store(y + j);
    if (j < j1) simd::store_partial(y + j, apply(V::load_partial(x + j, int(j1 - j))), int(j1 - j));
  });
}

}  // namespace act_impl
}  // namespace
}  // namespace tg::cpu

// A path's entries of cpu/activation.hpp over the lane type V, defined by one line in
// namespace tg::cpu of each path's translation unit (activation.cpp,
// activation_avx2.cpp, activation_avx512.cpp).
#define TG_ACTIVATION_PATH(path, V)                                                                       \
  void act_forward_##path(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,         \
                          const float* bias, float* y, index_t ldy) {                                     \
    act_impl::forward_any<V>(act, rows, cols, x, ldx, bias, y, ldy);                                      \
  }                                                                                                       \
  void act_backward_##path(Activation act, index_t rows, index_t cols, const float* x, index_t ldx,        \
                           const float* bias, const float* dy, index_t lddy, float* dx, index_t lddx) {   \
    act_impl::backward_any<V>(act, rows, cols, x, ldx, bias, dy, lddy, dx, lddx);                         \
  }                                                                                                       \
  void math_array_##path(MathFn fn, index_t n, const float* x, float* y) { act_impl::math_array<V>(fn, n, x, y); }
