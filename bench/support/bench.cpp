#include "bench/support/bench.hpp"

#include <vector>

#include "tilegrad/cpu/isa.hpp"

namespace tg::bench {

void set_rates(benchmark::State& state, double flops, double bytes, int threads) {
  const Ceilings& c = ceilings();
  const double iters = double(state.iterations());
  const double peak = (threads <= 1 ? c.fma_gflops_1t : c.fma_gflops) * 1e9;
  const double bw = (threads <= 1 ? c.copy_gbs_1t : c.copy_gbs) * 1e9;
  using benchmark::Counter;
  if (flops > 0) {
    state.counters["FLOPS"] = Counter(flops * iters, Counter::kIsRate);
    if (peak > 0) state.counters["peak_frac"] = Counter(flops * iters / peak, Counter::kIsRate);
  }
  if (bytes > 0) {
    state.SetBytesProcessed(int64_t(bytes * iters));
    if (bw > 0) state.counters["bw_frac"] = Counter(bytes * iters / bw, Counter::kIsRate);
  }
}

void set_threads(int threads) { cpu::set_num_threads(threads); }

void fill_uniform(float* p, std::int64_t n, std::uint64_t seed, float lo, float hi) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    // splitmix64 of (seed, i): independent of the thread count
    std::uint64_t z = seed + 0x9e3779b97f4a7c15ull * std::uint64_t(i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    p[i] = lo + (hi - lo) * float(z >> 40) * 0x1p-24f;
  }
}

void register_copy_floor(const std::string& shape, std::int64_t n, int threads) {
  benchmark::RegisterBenchmark(("copy/stream/" + shape + "/threads:" + std::to_string(threads)).c_str(),
                               [n, threads](benchmark::State& state) {
                                 set_threads(threads);
                                 std::vector<float> a(static_cast<std::size_t>(n)), b(static_cast<std::size_t>(n));
                                 fill_uniform(a.data(), n, 1, -1, 1);
                                 fill_uniform(b.data(), n, 2, -1, 1);
                                 for (auto _ : state) {
#pragma omp parallel for schedule(static) num_threads(threads)
                                   for (std::int64_t i = 0; i < n; ++i) b[std::size_t(i)] = a[std::size_t(i)];
                                   benchmark::ClobberMemory();
                                 }
                                 set_rates(state, 0, 8.0 * double(n), threads);
                                 state.SetItemsProcessed(state.iterations() * n);
                               })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace tg::bench
