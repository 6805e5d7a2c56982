// Training throughput: whole training steps (forward, backward, optimizer) of the
// examples' models, the rows that scripts/peers/torch-bench train times in PyTorch.
//
// Rows (items_per_second = samples per second):
//   train_step/tilegrad/linreg_d10_b10/threads:<n>     Linear(10, 1), MSE, SGD, batch 10
//   train_step/tilegrad/linreg_d10_b1024/threads:<n>   the same at batch 1024
//   train_run/tilegrad/mlp_1x10x1_e100/threads:<n>     the seed MLP's whole run: 72
//                                                       samples, batch 10, Adam, 100 epochs
//   train_step/tilegrad/mlp_784x256x256x10_b128/threads:<n>   Fashion-MNIST's MLP, AdamW,
//   train_step/tilegrad/mlp_784x256x256x10_b1024/threads:<n>  cross-entropy
// Inputs are synthetic (random, fixed seed); the model is checked to learn before timing.
//
//   build/bench/bench_train --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include "bench/support/bench.hpp"
#include "tilegrad/nn/nn.hpp"

namespace tg::bench {
namespace {

using nn::Linear;

void linreg_step(benchmark::State& state, index_t batch, int threads) {
  set_threads(threads);
  const nn::Regression p = nn::make_regression(batch, 10, 1.0, 1);
  const Tensor x = p.data.x(), y = p.data.y();
  Generator g(2);
  Linear model(10, 1, true, {}, &g);
  nn::SGD opt(model.parameters(), 0.01);
  // One step; the timed loop reads no loss (PyTorch's rows do not either).
  auto step = [&] {
    Tensor loss = mse_loss(model(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    return loss;
  };
  const double first = step().item();
  for (int i = 0; i < 50; ++i) step();
  if (!(step().item() < first)) state.SkipWithError("linear regression does not learn");
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * batch);
}

void mlp_seed_run(benchmark::State& state, int threads) {
  set_threads(threads);
  const nn::Regression p = nn::make_regression(72, 1, 10.0, 1);  // the 80% / 90% train part of 100
  double last = 0;
  for (auto _ : state) {
    Generator g(3);
    nn::Sequential model;
    model.add(std::make_shared<Linear>(1, 10, true, Activation{Act::relu}, &g))
        .add(std::make_shared<Linear>(10, 1, true, Activation{}, &g));
    nn::Adam opt(model.parameters(), 1e-3);
    nn::DataLoader loader(p.data, 10, true, 4);
    for (int e = 0; e < 100; ++e)
      for (const nn::Batch& b : loader) {
        const Tensor loss = mse_loss(model(b.x), b.y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        last = loss.item();
      }
  }
  if (!(last > 0)) state.SkipWithError("no loss");
  state.SetItemsProcessed(state.iterations() * 72 * 100);
}

void mlp_fashion_step(benchmark::State& state, index_t batch, int threads) {
  set_threads(threads);
  Generator g(5);
  const Tensor x = Tensor::rand({batch, 784}, {}, &g);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = std::int64_t(i % 10);
  const Tensor y = Tensor::from_vector(labels, {batch});
  nn::Sequential model;
  model.add(std::make_shared<Linear>(784, 256, true, Activation{Act::relu}, &g))
      .add(std::make_shared<Linear>(256, 256, true, Activation{Act::relu}, &g))
      .add(std::make_shared<Linear>(256, 10, true, Activation{}, &g));
  nn::AdamW opt(model.parameters(), 1e-3, 0.9, 0.999, 1e-8, 1e-4);
  // One step; the timed loop reads no loss (PyTorch's rows do not either).
  auto step = [&] {
    Tensor loss = cross_entropy(model(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    return loss;
  };
  const double first = step().item();
  for (int i = 0; i < 20; ++i) step();
  if (!(step().item() < first)) state.SkipWithError("the MLP does not learn");
  for (auto _ : state) step();
  // Samples per second only (PyTorch's rows have no FLOP counter to compare with); the
  // step is 3 GEMMs forward and 5 backward (x needs no gradient):
  // 2 B (784 256 + 256 256 + 256 10) 3 - 2 B 784 256 FLOPs.
  state.SetItemsProcessed(state.iterations() * batch);
}

const bool kRegistered = [] {
  for (int t : {1, 2}) {
    const std::string th = "/threads:" + std::to_string(t);
    for (index_t b : {index_t(10), index_t(1024)})
      benchmark::RegisterBenchmark(("train_step/tilegrad/linreg_d10_b" + std::to_string(b) + th).c_str(),
                                   [b, t](benchmark::State& s) { linreg_step(s, b, t); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    benchmark::RegisterBenchmark(("train_run/tilegrad/mlp_1x10x1_e100" + th).c_str(),
                                 [t](benchmark::State& s) { mlp_seed_run(s, t); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    for (index_t b : {index_t(128), index_t(1024)})
      benchmark::RegisterBenchmark(("train_step/tilegrad/mlp_784x256x256x10_b" + std::to_string(b) + th).c_str(),
                                   [b, t](benchmark::State& s) { mlp_fashion_step(s, b, t); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
  }
  return true;
}();

}  // namespace
}  // namespace tg::bench
