// The FMA peak probe: 12 independent chains of 256-bit FMAs per thread. Zen 3 has two
// FMA pipes with 4-cycle latency, so 8 chains fill them and 12 leave slack for other
// cores (Haswell, 5-cycle latency, needs 10). 8 floats x 2 FLOPs per FMA.
#include <immintrin.h>

#include <chrono>

namespace tg::bench {

double fma_gflops_one_thread(long iterations) {
  volatile float seed = 1.0f;
  const __m256 m = _mm256_set1_ps(0.9999999f * seed);
  const __m256 a = _mm256_set1_ps(1e-7f * seed);
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(float(i) * seed);
  const auto t0 = std::chrono::steady_clock::now();
  for (long it = 0; it < iterations; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Keep the result alive so the loop is not removed.
  __m256 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm256_add_ps(sum, acc[i]);
  alignas(32) float out[8];
  _mm256_store_ps(out, sum);
  seed = out[0];
  return double(iterations) * 12 * 16 / s / 1e9;
}

}  // namespace tg::bench
