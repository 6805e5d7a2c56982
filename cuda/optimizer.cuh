// CUDA optimizer steps, SGD (momentum, Nesterov, weight decay) and Adam / AdamW: a
// multi-tensor apply, up to 24 parameters per launch, blocks assigned to 4096-element
// chunks of them.
//
// The kernels live here, apart from their launches (cuda/optimizer.cu), with the host-side
// plans the launches and the SIMT emulator's tests (tests/test_simt_*.cpp) both follow,
// so that the emulator runs the same source on the CPU.
#pragma once

#ifndef TG_SIMT_HOST  // the host SIMT emulator (tests/simt) stands in for CUDA
#include <cuda_runtime.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>

#include "tilegrad/kernels/optimizer.hpp"

namespace tg::cuda::optimizer_kernels {

using i64 = std::int64_t;

constexpr int kSlots = 24;
constexpr i64 kChunk = 4096;  // elements per block

struct Pack {
  float* p[kSlots];
  const float* g[kSlots];
  float* m[kSlots];
  float* v[kSlots];
  i64 n[kSlots];
  int first_block[kSlots + 1];
  int count;
};

struct AdamParams {
  float lr, beta1, beta2, eps, wd, inv_bc1, inv_bc2;
  double beta1_d, beta2_d;  // the bias corrections from a live step count, in double
  bool decoupled;
};
struct SgdParams {
  float lr, momentum, dampening, wd;
  bool nesterov, first_step, has_m;
};

// The kernels' constants from a step's configuration (Adam's bias corrections in double).
inline AdamParams adam_params(const AdamConfig& c) {
  const double bc1 = 1 - std::pow(c.beta1, double(c.step)), bc2 = 1 - std::pow(c.beta2, double(c.step));
  return {float(c.lr), float(c.beta1), float(c.beta2), float(c.eps), float(c.weight_decay), float(1 / bc1),
          float(1 / bc2), c.beta1, c.beta2, c.decoupled};
}
inline SgdParams sgd_params(const SgdConfig& c) {
  return {float(c.lr), float(c.momentum), float(c.dampening), float(c.weight_decay), c.nesterov, c.first_step,
          c.momentum != 0};
}

// This block's slot and element range.
__device__ __forceinline__ bool my_chunk(const Pack& pk, int& slot, i64& lo, i64& hi) {
  const int b = int(blockIdx.x);
  slot = 0;
  while (slot + 1 < pk.count && pk.first_block[slot + 1] <= b) ++slot;
  lo = i64(b - pk.first_block[slot]) * kChunk;
  hi = min(pk.n[slot], lo + kChunk);
  return lo < hi;
}

// `live`: null, or [lr, t] on the device (kernels/optimizer.hpp), read in place of the
// host's values (a replayed graph's rate and step count); the corrections as the host's.
__global__ void adam_kernel(Pack pk, AdamParams c, const float* live) {
  int k;
  i64 lo, hi;
  if (!my_chunk(pk, k, lo, hi)) return;
  if (live) {
    const double t = double(live[1]);
    c.lr = live[0];
    c.inv_bc1 = float(1 / (1 - pow(c.beta1_d, t)));
    c.inv_bc2 = float(1 / (1 - pow(c.beta2_d, t)));
  }
  float *p = pk.p[k], *m = pk.m[k], *v = pk.v[k];
  const float* g = pk.g[k];
  for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    float pi = p[i], gi = g[i];
    if (c.decoupled) pi *= 1.0f - c.lr * c.wd;
    else gi += c.wd * pi;
    const float mi = c.beta1 * m[i] + (1.0f - c.beta1) * gi;
    const float vi = c.beta2 * v[i] + (1.0f - c.beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - c.lr * (mi * c.inv_bc1) / (sqrtf(vi * c.inv_bc2) + c.eps);
  }
}

__global__ void sgd_kernel(Pack pk, SgdParams c, const float* live) {  // live: null or [lr]
  int k;
  i64 lo, hi;
  if (!my_chunk(pk, k, lo, hi)) return;
  if (live) c.lr = live[0];
  float *p = pk.p[k], *m = pk.m[k];
  const float* g = pk.g[k];
  for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    float gi = g[i] + c.wd * p[i];
    if (c.has_m) {
      const float b = c.first_step ? gi : c.momentum * m[i] + (1.0f - c.dampening) * gi;
      m[i] = b;
      gi = c.nesterov ? gi + c.momentum * b : b;
    }
    p[i] -= c.lr * gi;
  }
}

// Packs the non-empty slots into launches of up to kSlots parameters (and 2^31 - 1
// blocks): launch(pack, blocks) once per pack.
template <class Launch>
void multi_tensor(std::span<const ParamSlot<float>> slots, Launch launch) {
  Pack pk{};
  int blocks = 0;
  auto flush = [&] {
    if (pk.count == 0) return;
    pk.first_block[pk.count] = blocks;
    if (blocks > 0) launch(pk, blocks);
    pk = Pack{};
    blocks = 0;
  };
  for (const ParamSlot<float>& s : slots) {
    if (s.n == 0) continue;
    const i64 chunks = (s.n + kChunk - 1) / kChunk;
    if (pk.count == kSlots || blocks + chunks > i64(INT32_MAX)) flush();
    pk.p[pk.count] = s.param, pk.g[pk.count] = s.grad, pk.m[pk.count] = s.m, pk.v[pk.count] = s.v;
    pk.n[pk.count] = s.n;
    pk.first_block[pk.count] = blocks;
    blocks += int(chunks);
    ++pk.count;
  }
  flush();
}

}  // namespace tg::cuda::optimizer_kernels
