// The FMA peak probe where there are no x86 vector units (aarch64 and others): 16
// independent chains of 4-float fused multiply-adds in plain C++, which the compiler
// turns into the target's vector FMAs (fmla on aarch64's 128-bit NEON registers). No
// path uses it yet beyond the portable one, for which tg_info reports no peak; it is
// here so that the probes build and run on every target.
#include <chrono>
#include <cmath>

namespace tg::bench {

namespace {
double chains(long iterations) {
  volatile float seed = 1.0f;
  const float m = 0.9999999f * seed, a = 1e-7f * seed;
  float acc[16][4];
  for (int i = 0; i < 16; ++i)
    for (int l = 0; l < 4; ++l) acc[i][l] = float(i * 4 + l) * seed;
  const auto t0 = std::chrono::steady_clock::now();
  for (long it = 0; it < iterations; ++it)
    for (auto& chain : acc)
      for (float& x : chain) x = std::fma(x, m, a);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  float sum = 0;
  for (auto& chain : acc)
    for (float x : chain) sum += x;
  seed = sum;  // keeps the loop
  return double(iterations) * 16 * 4 * 2 / s / 1e9;
}
}  // namespace

double fma_gflops_one_thread(long iterations) { return chains(iterations); }
double fma512_gflops_one_thread(long iterations) { return chains(iterations); }

}  // namespace tg::bench
