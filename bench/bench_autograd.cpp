// Autograd overhead: what one op and one backward cost when the arithmetic is nothing,
// and a small MLP's training step where it is little. PyTorch's rows come from
// scripts/peers/torch-bench autograd (same rows, same shapes).
//
// Rows:
//   add_fwd/tilegrad/1/threads:1          c = a + b on 1-element tensors that require grad
//                                         (the node is recorded, as in training)
//   add_fwd/tilegrad/1/no_grad/threads:1  the same under NoGradGuard
//   add_fwd/tilegrad/1/profiled/threads:1 the first row with a tg::Profiler recording
//                                         (the recording restarted, untimed, every 65536
//                                         ops so its event list stays small): the
//                                         difference to the first row is the cost of
//                                         recording one op
//   chain10_fwdbwd/tilegrad/1/threads:1   10 ops (mul, add alternating) on 1-element
//                                         tensors, then backward into the leaf's .grad
//   mlp_step/tilegrad/1x10x1_b10/threads:1  forward, backward and an SGD update of
//                                         Linear(1,10)-ReLU-Linear(10,1) on a batch of 10
// Counters: items_per_second = ops (or steps) per second; time per row is the overhead.
//
//   build/bench/bench_autograd --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <optional>

#include "tilegrad/autograd/autograd.hpp"
#include "bench/support/bench.hpp"

namespace tg::bench {
namespace {

TensorOptions grad_opts() { return TensorOptions().with_requires_grad(); }

void add_fwd(benchmark::State& state, bool no_grad, bool profiled = false) {
  set_threads(1);
  const Tensor a = Tensor::full({1}, 1.0, grad_opts()), b = Tensor::full({1}, 2.0, grad_opts());
  if ((a + b).item() != 3.0) state.SkipWithError("1 + 2 is not 3");
  std::optional<Profiler> prof;
  if (profiled) prof.emplace();
  std::int64_t recorded = 0;
  for (auto _ : state) {
    if (profiled && ++recorded % 65536 == 0) {
      state.PauseTiming();
      prof.reset();
      prof.emplace();
      state.ResumeTiming();
    }
    if (no_grad) {
      NoGradGuard guard;
      benchmark::DoNotOptimize(a + b);
    } else {
      benchmark::DoNotOptimize(a + b);
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void chain10(benchmark::State& state) {
  set_threads(1);
  Tensor x = Tensor::full({1}, 1.5, grad_opts());
  const Tensor c = Tensor::full({1}, 1.01), d = Tensor::full({1}, 0.5);
  auto step = [&] {
    Tensor y = x;
    for (int i = 0; i < 5; ++i) y = (y * c) + d;
    y.backward(Tensor::ones({1}));
    const double g = x.grad().item();
    x.set_grad({});
    return g;
  };
  if (std::abs(step() - std::pow(1.01, 5)) > 1e-5) state.SkipWithError("d chain / dx is not 1.01^5");
  for (auto _ : state) {
    Tensor y = x;
    for (int i = 0; i < 5; ++i) y = (y * c) + d;
    y.backward(Tensor::ones({1}));
    x.set_grad({});
  }
  state.SetItemsProcessed(state.iterations() * 10);
}

void mlp_step(benchmark::State& state) {
  set_threads(1);
  Generator gen(0);
  Tensor w1 = Tensor::randn({10, 1}, {}, &gen), b1 = Tensor::zeros({10});
  Tensor w2 = Tensor::randn({1, 10}, {}, &gen) * 0.3, b2 = Tensor::zeros({1});
  for (Tensor* p : {&w1, &b1, &w2, &b2}) p->requires_grad_();
  const Tensor x = Tensor::randn({10, 1}, {}, &gen), t = x * 3.0 + 1.0;
  // One step; the timed loop reads no loss (item() is a host read PyTorch's row skips too).
  auto step = [&] {
    Tensor loss = mse_loss(linear(linear(x, w1, b1, {Act::relu}), w2, b2), t);
    loss.backward();
    NoGradGuard no_grad;
    for (Tensor* p : {&w1, &b1, &w2, &b2}) {
      p->add_(p->grad(), -0.01);
      p->set_grad({});
    }
    return loss;
  };
  const double first = step().item();
  for (int i = 0; i < 200; ++i) step();
  if (!(step().item() < first)) state.SkipWithError("the MLP does not train");
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations());
}

const bool kRegistered = [] {
  benchmark::RegisterBenchmark("add_fwd/tilegrad/1/threads:1", [](benchmark::State& s) { add_fwd(s, false); })
      ->Unit(benchmark::kNanosecond);
  benchmark::RegisterBenchmark("add_fwd/tilegrad/1/no_grad/threads:1", [](benchmark::State& s) { add_fwd(s, true); })
      ->Unit(benchmark::kNanosecond);
  benchmark::RegisterBenchmark("add_fwd/tilegrad/1/profiled/threads:1",
                               [](benchmark::State& s) { add_fwd(s, false, true); })
      ->Unit(benchmark::kNanosecond);
  benchmark::RegisterBenchmark("chain10_fwdbwd/tilegrad/1/threads:1", chain10)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("mlp_step/tilegrad/1x10x1_b10/threads:1", mlp_step)->Unit(benchmark::kMicrosecond);
  return true;
}();

}  // namespace
}  // namespace tg::bench
