// The cross-entropy kernels' loops (cpu/cross_entropy.hpp), written once over a lane type
// V (simd::Z16 in cross_entropy_avx512.cpp, simd::F8 in cross_entropy_avx2.cpp,
// simd::F1 in cross_entropy.cpp). Not a public header.
#pragma once

#include <cmath>
#include <limits>

#include "tilegrad/cpu/cross_entropy.hpp"
#include "tilegrad/cpu/parallel.hpp"
#include "tilegrad/cpu/softmax_impl.hpp"
#include "tilegrad/cpu/vmath/vec_scalar.hpp"
#include "tilegrad/cpu/vmath/vmath.hpp"

namespace tg::cpu {
namespace {  // internal linkage: one copy per path's unit (docs/design.md)
namespace ce_impl {

// Fewer elements than this run on the calling thread: waking a second one costs more
// than a 1024 x 10 batch takes.
inline constexpr index_t kParallelElems = index_t(1) << 12;

// sum_j (m - x_j) over x[0, n): float lanes per block of 256, the blocks in double.
template <class V>
double deviation_sum(index_t n, const float* x, float m) {
  constexpr int L = V::kLanes;
  const V mv(m);
  double total = 0;
  for (index_t b0 = 0; b0 < n; b0 += softmax_impl::kBlock) {
    const index_t len = std::min(softmax_impl::kBlock, n - b0);
    V acc(0.0f);
    index_t j = 0;
    for (; j + L <= len; j += L) acc = acc + (mv - V::load(x + b0 + j));
    if (j < len) acc = acc + (mv - V::load_partial_fill(x + b0 + j, int(len - j), m));  // fill: adds 0
    total += double(simd::reduce_add(acc));
  }
  return total;
}

template <class V>
void forward(index_t rows, index_t classes, const float* logits, index_t ld, const index_t* target,
             index_t ignore_index, double smoothing, float* loss, float* lse) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for_each_rows(rows, classes, kParallelElems, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      const float* z = logits + i * ld;
      const index_t t = target[i];
      const softmax_impl::Partial p = softmax_impl::pass1<V, false>(classes, z, nullptr, nullptr);
      // A NaN, a +inf, or a row of -inf: NaN, as the reference gives (e^(inf - inf)).
      if (softmax_impl::special(p)) {
        lse[2 * i] = lse[2 * i + 1] = nan;
        loss[i] = t == ignore_index ? 0.0f : nan;
        continue;
      }
      // s is in [1, classes]: its log in float is within 2 ulp, below the rounding of
      // e^(z - m) that s already carries.
      const double log_s = double(vmath::log(simd::F1(float(p.s))).v), m = double(p.m);
      lse[2 * i] = p.m, lse[2 * i + 1] = float(log_s);
      if (t == ignore_index) {
        loss[i] = 0.0f;
        continue;
      }
      double l = log_s + (1.0 - smoothing) * (m - double(z[t]));
      if (smoothing != 0) l += smoothing / double(classes) * deviation_sum<V>(classes, z, p.m);
      loss[i] = float(l);
    }
  });
}

template <class V>
void backward(index_t rows, index_t classes, const float* logits, index_t ld, const index_t* target,
              index_t ignore_index, double smoothing, const float* lse, const float* dloss, float* dlogits,
              index_t ldd) {
  constexpr int L = V::kLanes;
  const float u = float(smoothing / double(classes)), hit = float(1.0 - smoothing);
  for_each_rows(rows, classes, kParallelElems, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      const float* z = logits + i * ld;
      float* dz = dlogits + i * ldd;
      const index_t t = target[i];
      if (t == ignore_index) {
        std::fill(dz, dz + classes, 0.0f);
        continue;
      }
      // e^((z - m) - log s): z - m exact where it matters (kernels/cross_entropy.hpp).
      const float g = dloss[i], m = lse[2 * i], ls = lse[2 * i + 1];
      const V gv(g), mv(m), lv(ls), uv(u);
      index_t j = 0;
      for (; j + L <= classes; j += L) {
        prefetch_ahead(z + j);  // an exp per element: the loads need help to run ahead (cpu/parallel.hpp)
        (gv * (vmath::exp((V::load(z + j) - mv) - lv) - uv)).store(dz + j);
      }
      if (j < classes) {
        const int r = int(classes - j);
        simd::store_partial(dz + j, gv * (vmath::exp((V::load_partial(z + j, r) - mv) - lv) - uv), r);
      }
      // The target's element: e - (1 - eps) before the smoothing term, so that a
      // confident row (e ~ 1) cancels exactly.
      const float e = vmath::exp(simd::F1((z[t] - m) - ls)).v;
      dz[t] = g * ((e - hit) - u);
    }
  });
}

}  // namespace ce_impl
}  // namespace
}  // namespace tg::cpu

// A path's entries of cpu/cross_entropy.hpp over the lane type V, defined by one line in
// namespace tg::cpu of each path's translation unit.
#define TG_CROSS_ENTROPY_PATH(path, V)                                                                       \
  void cross_entropy_forward_##path(index_t rows, index_t classes, const float* logits, index_t ld,         \
                                    const index_t* target, index_t ignore_index, double smoothing,           \
                                    float* loss, float* lse) {                                               \
    ce_impl::forward<V>(rows, classes, logits, ld, target, ignore_index, smoothing, loss, lse);              \
  }                                                                                                          \
  void cross_entropy_backward_##path(index_t rows, index_t classes, const float* logits, index_t ld,        \
                                     const index_t* target, index_t ignore_index, double smoothing,          \
                                     const float* lse, const float* dloss, float* dlogits, index_t ldd) {    \
    ce_impl::backward<V>(rows, classes, logits, ld, target, ignore_index, smoothing, lse, dloss, dlogits,    \
                         ldd);                                                                               \
  }
