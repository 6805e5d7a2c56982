// Optimizer steps: the fused multi-tensor Adam(W) and SGD with momentum (cpu/optimizer.hpp)
// over a model's worth of parameters split into 64 tensors; PyTorch's foreach
// implementations come from scripts/peers/torch-bench optimizer.
//
// Rows (bytes = every array read and written once: Adam 7 n floats, SGD 5 n):
//   adamw_step/tilegrad/<n>/threads:<t>      n = 1M (its state fits in L3) and 16M (DRAM)
//   sgd_momentum_step/tilegrad/<n>/threads:<t>
//   copy/stream/<n>/threads:<t>              the floor: a copy of n floats
//
//   build/bench/bench_optimizer --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench/support/bench.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/kernels/optimizer.hpp"

namespace tg::bench {
namespace {

constexpr index_t kTensors = 64;

struct Model {
  std::vector<float> p, g, m, v;
  std::vector<ParamSlot<float>> slots;
  explicit Model(index_t n) : p(std::size_t(n)), g(p.size()), m(p.size()), v(p.size()) {
    fill_uniform(p.data(), n, 1, -1, 1);
    fill_uniform(g.data(), n, 2, -1e-2f, 1e-2f);
    fill_uniform(m.data(), n, 3, -1e-3f, 1e-3f);
    fill_uniform(v.data(), n, 4, 0, 1e-4f);
    const index_t each = n / kTensors;
    for (index_t t = 0; t < kTensors; ++t) {
      const std::size_t o = std::size_t(t * each);
      const index_t len = t + 1 == kTensors ? n - t * each : each;
      slots.push_back({p.data() + o, g.data() + o, m.data() + o, v.data() + o, len});
    }
  }
};

void adamw(benchmark::State& state, index_t n, int threads) {
  set_threads(threads);
  Model model(n);
  AdamConfig c;
  c.weight_decay = 1e-2, c.decoupled = true;
  const auto& ops = cpu::ops().f32;
  for (auto _ : state) {
    ops.adam_step(c, model.slots);
    ++c.step;
    benchmark::ClobberMemory();
  }
  set_rates(state, 0, 7.0 * 4 * double(n), threads);
}

void sgd_momentum(benchmark::State& state, index_t n, int threads) {
  set_threads(threads);
  Model model(n);
  SgdConfig c;
  c.momentum = 0.9, c.first_step = false;
  const auto& ops = cpu::ops().f32;
  for (auto _ : state) {
    ops.sgd_step(c, model.slots);
    benchmark::ClobberMemory();
  }
  set_rates(state, 0, 5.0 * 4 * double(n), threads);
}

const bool kRegistered = [] {
  for (int t : {1, 2})
    for (index_t n : {index_t(1) << 20, index_t(1) << 24}) {
      const std::string shape = std::to_string(n), th = "/threads:" + std::to_string(t);
      benchmark::RegisterBenchmark(("adamw_step/tilegrad/" + shape + th).c_str(),
                                   [n, t](benchmark::State& s) { adamw(s, n, t); })
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("sgd_momentum_step/tilegrad/" + shape + th).c_str(),
                                   [n, t](benchmark::State& s) { sgd_momentum(s, n, t); })
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
      register_copy_floor(shape, n, t);
    }
  return true;
}();

}  // namespace
}  // namespace tg::bench
