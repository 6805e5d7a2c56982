// The FMA peak probe at 512 bits: 16 independent chains of zmm FMAs per thread. Two FMA
// ports with 4-cycle latency (Skylake-SP through Sapphire Rapids, Zen 4) need 8 chains;
// 16 cover a 6-cycle port too. 16 floats x 2 FLOPs per FMA. Reached only when cpuid
// reports AVX-512 (bench/support/machine.cpp).
#include <immintrin.h>

#include <chrono>

namespace tg::bench {

double fma512_gflops_one_thread(long iterations) {
  volatile float seed = 1.0f;
  const __m512 m = _mm512_set1_ps(0.9999999f * seed);
  const __m512 a = _mm512_set1_ps(1e-7f * seed);
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(float(i) * seed);
  const auto t0 = std::chrono::steady_clock::now();
  for (long it = 0; it < iterations; ++it)
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  __m512 sum = acc[0];
  for (int i = 1; i < 16; ++i) sum = _mm512_add_ps(sum, acc[i]);
  seed = _mm512_reduce_add_ps(sum);
  return double(iterations) * 16 * 32 / s / 1e9;
}

}  // namespace tg::bench
