// dist/ under mpirun: our all_reduce against the bare MPI_Allreduce of the same bytes
// (the peer: our layer should add nothing), and the data-parallel MLP step.
//
// Rows (every rank runs every row with the same fixed iteration count, so their
// collectives match; rank 0 reports):
//   allreduce/<impl>/<bytes>/ranks:<n>     impl tilegrad (dist::ProcessGroup, f32 sum, the
//                                          argument check on) or mpi; bytes 4 KiB - 256 MiB;
//                                          bus_GBps = bytes 2 (n - 1) / n / time (NCCL's
//                                          bus bandwidth)
//   ddp_step/mlp784/<b>/ranks:<n>/bucket_mib:<m>   MLP 784-256-256-10, global batch b split
//                                          over the ranks, forward + backward + synchronize
//                                          + AdamW; one OpenMP thread a rank
//   ddp_step/mlp784/<b>/ranks:<n>/bucket_mib:<m>/progress_thread   the same over a group
//                                          with a progress thread (the buckets' all-reduces
//                                          run on it while backward goes on)
//   ddp_step/mlp784/<b>/nosync/ranks:<n>   the same without communication (no_sync): what
//                                          the step would cost if all-reduce were free
//   zero_step/mlp784/<b>/ranks:<n>         the same step with dist::ShardedOptimizer (AdamW's
//                                          state sharded: reduce-scatter after backward,
//                                          the shard's update, all-gather) instead of DDP
//   local_step/mlp784/<b>/threads:1       the whole batch on rank 0 alone on one thread
//                                          (the other ranks wait), the single-process peer
//
//   OMP_NUM_THREADS=1 mpirun -np 2 build/bench/bench_dist --benchmark_repetitions=3
#include <benchmark/benchmark.h>
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tilegrad/autograd/modes.hpp"
#include "tilegrad/autograd/ops.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/dist/data_parallel.hpp"
#include "tilegrad/dist/sharded_optimizer.hpp"
#include "tilegrad/nn/layers.hpp"
#include "tilegrad/nn/loss.hpp"
#include "tilegrad/nn/optim.hpp"

namespace tg::bench {
namespace {

dist::ProcessGroup& group() {
  static dist::ProcessGroup pg = dist::ProcessGroup::world();
  return pg;
}

index_t iterations_for(std::size_t bytes) { return index_t(std::max<std::size_t>(5, (std::size_t(1) << 27) / bytes)); }

void set_bus(benchmark::State& st, std::size_t bytes) {
  const int n = group().size();
  const double bus = double(bytes) * 2.0 * double(n - 1) / double(n);
  st.counters["bus_GBps"] =
      benchmark::Counter(bus * double(st.iterations()), benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  st.SetBytesProcessed(std::int64_t(bytes) * st.iterations());
}

void allreduce_tilegrad(benchmark::State& st) {
  const auto bytes = std::size_t(st.range(0));
  Tensor t = Tensor::ones(std::vector<index_t>{index_t(bytes / 4)});
  for (auto _ : st) group().all_reduce(t);
  set_bus(st, bytes);
}

void allreduce_mpi(benchmark::State& st) {
  const auto bytes = std::size_t(st.range(0));
  std::vector<float> v(bytes / 4, 1.0f);
  for (auto _ : st) MPI_Allreduce(MPI_IN_PLACE, v.data(), int(v.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  set_bus(st, bytes);
}

std::shared_ptr<nn::Module> mlp(Generator* g) {
  return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(784, 256, true, Activation{Act::relu}, g),
      std::make_shared<nn::Linear>(256, 256, true, Activation{Act::relu}, g),
      std::make_shared<nn::Linear>(256, 10, true, Activation{}, g)});
}

struct Batch {
  Tensor x, y;
};
Batch batch_of(index_t rows) {
  Generator g(7);
  Tensor x = Tensor::rand(std::vector<index_t>{rows, 784}, {}, &g);
  Tensor y = make_tensor(std::vector<index_t>{rows}, DType::i64, Device::cpu());
  for (index_t i = 0; i < rows; ++i) y.data<std::int64_t>()[i] = i % 10;
  return {x, y};
}

// The data-parallel step; range(0) the global batch, range(1) the bucket size in KiB,
// range(2) 1 for no_sync, range(3) 1 for a group with a progress thread.
void ddp_step(benchmark::State& st) {
  const index_t global = st.range(0), local = global / group().size();
  Generator g(1);
  auto model = mlp(&g);
  dist::Options options = group().options();
  options.progress_thread = st.range(3) != 0;
  dist::DataParallel ddp(model, group().duplicate(options), {double(st.range(1)) / 1024.0, true});
  nn::AdamW opt(model->parameters(), 1e-3);
  const Batch b = batch_of(local);
  const bool nosync = st.range(2) != 0;
  int hidden_buckets = 0;
  for (auto _ : st) {
    opt.zero_grad();
    if (nosync) {
      auto guard = ddp.no_sync();
      cross_entropy(ddp(b.x), b.y).backward();
    } else {
      cross_entropy(ddp(b.x), b.y).backward();
      ddp.synchronize();
      hidden_buckets = ddp.started_during_backward();
    }
    opt.step();
  }
  st.counters["buckets"] = double(ddp.buckets().size());
  st.counters["started_in_backward"] = double(hidden_buckets);
  st.SetItemsProcessed(global * st.iterations());
}

// The step with the optimizer state sharded (ZeRO-1): no hooks, no overlap; the
// reduce-scatter and all-gather after backward.
void zero_step(benchmark::State& st) {
  const index_t global = st.range(0), local = global / group().size();
  Generator g(1);
  auto model = mlp(&g);
  dist::ShardedOptimizer opt(model->parameters(), group(), [](std::vector<Tensor> shard) {
    return std::make_unique<nn::AdamW>(std::move(shard), 1e-3);
  });
  const Batch b = batch_of(local);
  for (auto _ : st) {
    opt.zero_grad();
    cross_entropy((*model)(b.x), b.y).backward();
    opt.step();
  }
  st.counters["state_elems"] = double(opt.shard_end() - opt.shard_begin());
  st.SetItemsProcessed(global * st.iterations());
}

// The whole batch on rank 0 with range(1) threads; the other ranks wait in an
// asynchronous all-reduce that rank 0 joins at the end, testing it once a millisecond
// and sleeping between (a blocking MPI call would spin on a core rank 0's threads need).
void local_step(benchmark::State& st) {
  const index_t global = st.range(0);
  const int threads = int(st.range(1));
  const bool me = group().rank() == 0;
  Generator g(1);
  auto model = mlp(&g);
  nn::AdamW opt(model->parameters(), 1e-3);
  const Batch b = batch_of(global);
  const int saved = cpu::num_threads();
  cpu::set_num_threads(threads);
  for (auto _ : st) {
    if (me) {
      opt.zero_grad();
      cross_entropy((*model)(b.x), b.y).backward();
      opt.step();
    }
  }
  cpu::set_num_threads(saved);
  Tensor done = Tensor::ones(std::vector<index_t>{1});
  dist::Work w = group().all_reduce(done, dist::ReduceOp::sum, true);
  while (!w.test()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  st.SetItemsProcessed(global * st.iterations());
}

void register_all() {
  const int n = group().size();
  const std::string ranks = "/ranks:" + std::to_string(n);
  for (std::size_t bytes = 4096; bytes <= (std::size_t(256) << 20); bytes *= 4) {
    const std::string b = std::to_string(bytes);
    benchmark::RegisterBenchmark(("allreduce/tilegrad/" + b + ranks).c_str(), allreduce_tilegrad)
        ->Arg(std::int64_t(bytes))->Iterations(iterations_for(bytes))->UseRealTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("allreduce/mpi/" + b + ranks).c_str(), allreduce_mpi)
        ->Arg(std::int64_t(bytes))->Iterations(iterations_for(bytes))->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
  for (std::int64_t batch : {128, 1024}) {
    const std::string bs = std::to_string(batch);
    const index_t iters = batch == 128 ? 200 : 50;
    for (std::int64_t kib : {25 * 1024, 256}) {
      const std::string mib = std::to_string(double(kib) / 1024).substr(0, 5);
      benchmark::RegisterBenchmark(("ddp_step/mlp784/" + bs + ranks + "/bucket_mib:" + mib).c_str(), ddp_step)
          ->Args({batch, kib, 0, 0})
          ->Iterations(iters)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(
          ("ddp_step/mlp784/" + bs + ranks + "/bucket_mib:" + mib + "/progress_thread").c_str(), ddp_step)
          ->Args({batch, kib, 0, 1})
          ->Iterations(iters)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark(("ddp_step/mlp784/" + bs + "/nosync" + ranks).c_str(), ddp_step)
        ->Args({batch, 25 * 1024, 1, 0})
        ->Iterations(iters)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("zero_step/mlp784/" + bs + ranks).c_str(), zero_step)
        ->Args({batch})->Iterations(iters)->UseRealTime()->Unit(benchmark::kMillisecond);
    // One thread only: under mpirun a rank is bound to one core (OpenMPI's default for
    // two ranks), and unbound, its second thread competed with the waiting rank (21 ms
    // at batch 1024 against 12 on one thread). The two-thread single process is
    // bench_train's train_step row, outside mpirun.
    benchmark::RegisterBenchmark(("local_step/mlp784/" + bs + "/threads:1").c_str(), local_step)
        ->Args({batch, 1})->Iterations(iters)->UseRealTime()->Unit(benchmark::kMillisecond);
  }
}

}  // namespace
}  // namespace tg::bench

// Every rank runs the same rows; rank 0 reports to the console and the JSON file, the
// others to nothing.
class Silent : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

int main(int argc, char** argv) {
  const bool report = tg::bench::group().rank() == 0;  // MPI up before the flags are read
  // Only rank 0 writes --benchmark_out: the others drop the flag.
  std::vector<char*> args(argv, argv + argc);
  if (!report)
    std::erase_if(args, [](const char* a) { return std::string(a).rfind("--benchmark_out", 0) == 0; });
  int n = int(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&n, args.data());
  tg::bench::register_all();
  if (report) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    Silent silent;
    benchmark::RunSpecifiedBenchmarks(&silent);
  }
  benchmark::Shutdown();
  return 0;
}
