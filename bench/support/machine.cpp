#include "bench/support/machine.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/cuda/runtime.hpp"

namespace tg::bench {

#if TG_X86_PATHS
double fma_gflops_one_thread(long iterations);     // fma_avx2.cpp
double fma512_gflops_one_thread(long iterations);  // fma_avx512.cpp
#endif
#if TG_NEON_PATHS
double fma_neon_gflops_one_thread(long iterations);  // fma_neon.cpp
#endif

namespace {

template <class F>
double best_of(int runs, F&& f) {
  double best = 0;
  for (int r = 0; r < runs; ++r) best = std::max(best, f());
  return best;
}

}  // namespace

double measure_fma_gflops(int threads, cpu::Isa isa) {
  // Each vector path's probe and how long it runs: 30-40 ms a thread.
  double (*probe)(long) = nullptr;
  long iterations = 0;
#if TG_X86_PATHS
  if (isa == cpu::Isa::avx2) probe = fma_gflops_one_thread, iterations = 20'000'000;       // 3.8 GFLOP
  if (isa == cpu::Isa::avx512) probe = fma512_gflops_one_thread, iterations = 10'000'000;  // 5.1 GFLOP
#endif
#if TG_NEON_PATHS
  if (isa == cpu::Isa::neon) probe = fma_neon_gflops_one_thread, iterations = 10'000'000;  // 1.3 GFLOP
#endif
  // The portable path has no peak of its own; a path this CPU lacks is not probed.
  if (probe == nullptr || !cpu::isa_supported(isa)) return 0;
  return best_of(3, [&] {
    double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      total += probe(iterations);
    }
    return total;
  });
}

double measure_copy_gbs(int threads) {
  constexpr std::size_t kN = std::size_t(32) << 20;  // 32M floats = 128 MiB per array
  std::unique_ptr<float[]> a(new float[kN]), b(new float[kN]);
  const long n = long(kN);
  // First touch by the threads that will copy, so pages sit where they are used.
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long i = 0; i < n; ++i) {
    a[i] = float(i & 1023);
    b[i] = 0;
  }
  float* pa = a.get();
  float* pb = b.get();
  return best_of(4, [&] {
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long i = 0; i < n; ++i) pb[i] = pa[i];
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return 2.0 * double(kN) * sizeof(float) / s / 1e9;
  });
}

const Ceilings& ceilings() {
  static const Ceilings c = [] {
    Ceilings r;
    r.threads = cpu::num_threads();
    const cpu::Isa chosen = cpu::selected_isa(), widest = cpu::supported_isas().back();
    r.fma_isa = cpu::isa_name(chosen);
    r.widest_isa = cpu::isa_name(widest);
    r.widest_gflops_1t = measure_fma_gflops(1, widest);
    r.widest_gflops = r.threads == 1 ? r.widest_gflops_1t : measure_fma_gflops(r.threads, widest);
    if (chosen == widest) {
      r.fma_gflops_1t = r.widest_gflops_1t;
      r.fma_gflops = r.widest_gflops;
    } else {
      r.fma_gflops_1t = measure_fma_gflops(1, chosen);
      r.fma_gflops = r.threads == 1 ? r.fma_gflops_1t : measure_fma_gflops(r.threads, chosen);
    }
    r.copy_gbs_1t = measure_copy_gbs(1);
    r.copy_gbs = r.threads == 1 ? r.copy_gbs_1t : measure_copy_gbs(r.threads);
    return r;
  }();
  return c;
}

std::string machine_summary() {
  const cpu::CpuInfo& info = cpu::cpu_info();
  const Ceilings& c = ceilings();
  std::ostringstream os;
  char line[160];
  os << "cpu:          " << info.model << " (" << info.vendor << ", family " << info.family << " model "
     << info.model_number << ")\n";
  os << "isa features: " << info.features() << "\n";
  os << "cpu path:     " << cpu::isa_name(cpu::selected_isa()) << " (TG_ISA forces one)\n";
  os << "threads:      " << c.threads << " (OpenMP)\n";
  std::snprintf(line, sizeof line, "fma peak:     %.1f GFLOP/s on 1 thread, %.1f on %d (%s, the chosen path)\n",
                c.fma_gflops_1t, c.fma_gflops, c.threads, c.fma_isa);
  os << line;
  if (std::string(c.widest_isa) != c.fma_isa) {
    std::snprintf(line, sizeof line, "widest peak:  %.1f GFLOP/s on 1 thread, %.1f on %d (%s, the widest path)\n",
                  c.widest_gflops_1t, c.widest_gflops, c.threads, c.widest_isa);
    os << line;
  }
  std::snprintf(line, sizeof line, "copy:         %.1f GB/s on 1 thread, %.1f on %d (read + write)\n",
                c.copy_gbs_1t, c.copy_gbs, c.threads);
  os << line;
  os << "cuda:         " << cuda::version_string() << "\n";
  const int n = cuda::device_count();
  if (n == 0) os << "cuda devices: none (" << cuda::unavailable_reason() << ")\n";
  for (int i = 0; i < n; ++i) {
    const cuda::DeviceInfo d = cuda::device_info(i);
    std::snprintf(line, sizeof line, "cuda:%d:       %s, sm_%d%d, %d SMs, %.1f GiB, copy %.0f GB/s (device to device)\n",
                  i, d.name.c_str(), d.cc_major, d.cc_minor, d.sm_count, double(d.total_memory) / double(1 << 30),
                  cuda::measure_copy_gbs(i));
    os << line;
  }
  return os.str();
}

}  // namespace tg::bench
