// The FMA peak probe on aarch64: 16 independent chains of 128-bit FMLAs per thread.
// Neoverse V1 and V2 issue four FMLAs a cycle at a 4-cycle latency, so 16 chains fill
// them. 4 floats x 2 FLOPs per FMLA. Not yet run on an ARM machine.
#include <arm_neon.h>

#include <chrono>

namespace tg::bench {

double fma_neon_gflops_one_thread(long iterations) {
  volatile float seed = 1.0f;
  const float32x4_t m = vdupq_n_f32(0.9999999f * seed);
  const float32x4_t a = vdupq_n_f32(1e-7f * seed);
  // Sixteen named chains, not an array: GCC kept an array's elements in memory (a store
  // per pair of FMLAs), a probe of the store port as much as of the FMA pipes.
  float32x4_t c0 = vdupq_n_f32(0.0f * seed), c1 = vdupq_n_f32(1.0f * seed), c2 = vdupq_n_f32(2.0f * seed),
              c3 = vdupq_n_f32(3.0f * seed), c4 = vdupq_n_f32(4.0f * seed), c5 = vdupq_n_f32(5.0f * seed),
              c6 = vdupq_n_f32(6.0f * seed), c7 = vdupq_n_f32(7.0f * seed), c8 = vdupq_n_f32(8.0f * seed),
              c9 = vdupq_n_f32(9.0f * seed), c10 = vdupq_n_f32(10.0f * seed), c11 = vdupq_n_f32(11.0f * seed),
              c12 = vdupq_n_f32(12.0f * seed), c13 = vdupq_n_f32(13.0f * seed), c14 = vdupq_n_f32(14.0f * seed),
              c15 = vdupq_n_f32(15.0f * seed);
  const auto t0 = std::chrono::steady_clock::now();
  for (long it = 0; it < iterations; ++it) {  // c += a m: FMLA accumulates into c
    c0 = vfmaq_f32(c0, a, m), c1 = vfmaq_f32(c1, a, m), c2 = vfmaq_f32(c2, a, m), c3 = vfmaq_f32(c3, a, m);
    c4 = vfmaq_f32(c4, a, m), c5 = vfmaq_f32(c5, a, m), c6 = vfmaq_f32(c6, a, m), c7 = vfmaq_f32(c7, a, m);
    c8 = vfmaq_f32(c8, a, m), c9 = vfmaq_f32(c9, a, m), c10 = vfmaq_f32(c10, a, m), c11 = vfmaq_f32(c11, a, m);
    c12 = vfmaq_f32(c12, a, m), c13 = vfmaq_f32(c13, a, m), c14 = vfmaq_f32(c14, a, m), c15 = vfmaq_f32(c15, a, m);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Keep the result alive so the loop is not removed.
  const float32x4_t sum = vaddq_f32(vaddq_f32(vaddq_f32(vaddq_f32(c0, c1), vaddq_f32(c2, c3)),
                                              vaddq_f32(vaddq_f32(c4, c5), vaddq_f32(c6, c7))),
                                    vaddq_f32(vaddq_f32(vaddq_f32(c8, c9), vaddq_f32(c10, c11)),
                                              vaddq_f32(vaddq_f32(c12, c13), vaddq_f32(c14, c15))));
  seed = vgetq_lane_f32(sum, 0);
  return double(iterations) * 16 * 8 / s / 1e9;
}

}  // namespace tg::bench
