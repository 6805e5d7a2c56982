#include "bench/support/bench.hpp"

#include "cpu/isa.hpp"

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

}  // namespace tg::bench
