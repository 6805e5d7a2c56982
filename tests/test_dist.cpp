// dist::ProcessGroup under `mpirun -np N` (CTest runs it with N = 2): every collective,
// every dtype, sizes 0, 1, odd and 10^6, against references each rank computes for all
// ranks from the seeds the ranks share; asynchronous handles completed out of order;
// mismatched arguments across ranks and a rank that arrives late, as errors on every
// rank instead of hangs.
//
// Every rank runs every test and makes the same collectives in the same order whatever
// its assertions find (EXPECT, never an early return between collectives), so one rank's
// failure cannot leave the other waiting.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/testing.hpp"
#include "tilegrad/autograd/modes.hpp"
#include "tilegrad/autograd/ops.hpp"
#include "tilegrad/autograd/tensor.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/dist/checkpoint.hpp"
#include "tilegrad/dist/data_parallel.hpp"
#include "tilegrad/dist/process_group.hpp"
#include "tilegrad/dist/sharded_optimizer.hpp"
#include "tilegrad/nn/layers.hpp"
#include "tilegrad/nn/checkpoint.hpp"
#include "tilegrad/nn/loss.hpp"
#include "tilegrad/nn/optim.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/half.hpp"

namespace tg {
namespace {

using dist::ProcessGroup;
using dist::ReduceOp;
using dist::Work;

// The collectives' tests run twice (DistCollectives below): with the caller driving MPI's
// progress, and on a group with a progress thread. Every other test uses the first.
bool g_progress_thread = false;

ProcessGroup& group() {
  static ProcessGroup pg = ProcessGroup::world({std::chrono::seconds(60), true});
  if (g_progress_thread) {
    static ProcessGroup threaded = pg.duplicate({std::chrono::seconds(60), true, true});
    return threaded;
  }
  return pg;
}

class DistCollectives : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    group();  // both groups made in the same order on every rank
    g_progress_thread = GetParam();
  }
  void TearDown() override { g_progress_thread = false; }
};

// One seed for the test on every rank: rank 0's, broadcast.
std::uint64_t shared_seed() {
  testing::Rng rng = testing::Rng::for_current_test();
  Tensor s = make_tensor(std::vector<index_t>{1}, DType::i64, Device::cpu());
  s.data<std::int64_t>()[0] = std::int64_t(rng.seed() >> 1);
  group().broadcast(s, 0);
  return std::uint64_t(s.data<std::int64_t>()[0]);
}

// Rank r's data for a draw: values from (seed, r), as doubles, rounded to the dtype.
std::vector<double> values(std::uint64_t seed, int r, index_t n, DType t) {
  testing::Rng rng(seed * 7919 + std::uint64_t(r) * 104729 + std::uint64_t(n));
  std::vector<double> v(static_cast<std::size_t>(n));
  for (double& x : v) {
    x = rng.uniform(-4, 4);
    if (t == DType::f32) x = double(float(x));
    if (t == DType::bf16) x = double(float_from_bf16_bits(bf16_bits_from_float(float(x))));
    if (t == DType::f16) x = double(float_from_f16_bits(f16_bits_from_float(float(x))));
    if (t == DType::i64) x = std::round(x * 1000);
  }
  return v;
}

Tensor tensor_of(const std::vector<double>& v, DType t) {
  Tensor x = make_tensor(std::vector<index_t>{index_t(v.size())}, t, Device::cpu());
  for (std::size_t i = 0; i < v.size(); ++i) {
    switch (t) {
      case DType::f32: x.data<float>()[i] = float(v[i]); break;
      case DType::f64: x.data<double>()[i] = v[i]; break;
      case DType::bf16: static_cast<std::uint16_t*>(x.raw_data())[i] = bf16_bits_from_float(float(v[i])); break;
      case DType::f16: static_cast<std::uint16_t*>(x.raw_data())[i] = f16_bits_from_float(float(v[i])); break;
      case DType::i64: x.data<std::int64_t>()[i] = std::int64_t(v[i]); break;
    }
  }
  return x;
}

double at(const Tensor& x, index_t i) {
  switch (x.dtype()) {
    case DType::f32: return double(x.data<float>()[i]);
    case DType::f64: return x.data<double>()[i];
    case DType::bf16: return double(float_from_bf16_bits(static_cast<const std::uint16_t*>(x.raw_data())[i]));
    case DType::f16: return double(float_from_f16_bits(static_cast<const std::uint16_t*>(x.raw_data())[i]));
    case DType::i64: return double(x.data<std::int64_t>()[i]);
  }
  return 0;
}

// All bits set: NaN in every floating dtype, -1 in i64.
Tensor poisoned(index_t n, DType t) {
  Tensor x = make_tensor(std::vector<index_t>{n}, t, Device::cpu());
  if (n > 0) std::memset(x.raw_data(), 0xff, std::size_t(n) * dtype_size(t));
  return x;
}

// The unit roundoff of a dtype's sums.
double unit(DType t) { return t == DType::f64 ? 0x1p-53 : t == DType::f32 ? 0x1p-24 : 0x1p-8; }

// Checks got[i] against the exact sum (or mean) over ranks of their data at element
// base + i, within the error of N - 1 rounded additions (any order) plus the division.
// Returns the number of elements out of bounds.
index_t mismatches(const Tensor& got, std::uint64_t seed, index_t n_per_rank, index_t base, DType t, ReduceOp op) {
  const int N = group().size();
  std::vector<std::vector<double>> all;
  for (int r = 0; r < N; ++r) all.push_back(values(seed, r, n_per_rank, t));
  index_t bad = 0;
  for (index_t i = 0; i < got.numel(); ++i) {
    double exact = 0, mag = 0;
    for (int r = 0; r < N; ++r) {
      const double v = all[std::size_t(r)][std::size_t(base + i)];
      exact += v, mag += std::fabs(v);
    }
    double tol = double(N) * unit(t) * mag;
    if (op == ReduceOp::avg) exact /= N, tol = tol / N + 2 * unit(t) * std::fabs(exact);
    const double g = at(got, i);
    if (!(std::fabs(g - exact) <= tol)) ++bad;
  }
  return bad;
}

const std::vector<index_t> kSizes = {0, 1, 1001, 1000000};

TEST_P(DistCollectives, AllReduceEveryDtypeSizeAndOp) {
  const std::uint64_t seed = shared_seed();
  for (DType t : {DType::f32, DType::f64, DType::bf16})
    for (index_t n : kSizes)
      for (ReduceOp op : {ReduceOp::sum, ReduceOp::avg}) {
        Tensor x = tensor_of(values(seed, group().rank(), n, t), t);
        const std::uint64_t v0 = x.version();
        group().all_reduce(x, op);
        EXPECT_GT(x.version(), v0);
        EXPECT_EQ(mismatches(x, seed, n, 0, t, op), 0) << "n " << n << " dtype " << int(t) << " op " << int(op);
      }
}

TEST_P(DistCollectives, AllReduceGivesTheSameBitsOnEveryRank) {
  const std::uint64_t seed = shared_seed();
  const index_t n = 4099;
  Tensor x = tensor_of(values(seed, group().rank(), n, DType::f32), DType::f32);
  group().all_reduce(x);
  // Every rank's result, gathered: all equal to rank 0's.
  Tensor all = poisoned(n * group().size(), DType::f32);
  group().all_gather(all, x);
  index_t differ = 0;
  for (int r = 1; r < group().size(); ++r)
    differ += index_t(std::memcmp(all.data<float>(), all.data<float>() + r * n, std::size_t(n) * 4) != 0);
  EXPECT_EQ(differ, 0);
}

TEST_P(DistCollectives, BroadcastEveryDtypeFromEveryRoot) {
  const std::uint64_t seed = shared_seed();
  for (DType t : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i64})
    for (index_t n : kSizes)
      for (int root = 0; root < group().size(); ++root) {
        Tensor x = tensor_of(values(seed, group().rank(), n, t), t);
        group().broadcast(x, root);
        const std::vector<double> want = values(seed, root, n, t);
        index_t bad = 0;
        for (index_t i = 0; i < n; ++i) bad += at(x, i) != want[std::size_t(i)];
        EXPECT_EQ(bad, 0) << "n " << n << " root " << root;
      }
}

TEST_P(DistCollectives, AllGatherEveryDtypeAndInPlace) {
  const std::uint64_t seed = shared_seed();
  const int N = group().size(), me = group().rank();
  for (DType t : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i64})
    for (index_t n : kSizes)
      for (bool in_place : {false, true}) {
        Tensor out = poisoned(n * N, t);
        Tensor in = tensor_of(values(seed, me, n, t), t);
        if (in_place) {  // this rank's block of out, as a view
          Tensor block = make_view(out, Shape{n}, n * me);
          if (n > 0) std::memcpy(block.raw_data(), in.raw_data(), std::size_t(n) * dtype_size(t));
          in = block;
        }
        group().all_gather(out, in);
        index_t bad = 0;
        for (int r = 0; r < N; ++r) {
          const std::vector<double> want = values(seed, r, n, t);
          for (index_t i = 0; i < n; ++i) bad += at(out, r * n + i) != want[std::size_t(i)];
        }
        EXPECT_EQ(bad, 0) << "n " << n << (in_place ? " in place" : "");
      }
}

TEST_P(DistCollectives, ReduceScatterEveryDtypeSizeAndOp) {
  const std::uint64_t seed = shared_seed();
  const int N = group().size(), me = group().rank();
  for (DType t : {DType::f32, DType::f64, DType::bf16})
    for (index_t n : kSizes)
      for (ReduceOp op : {ReduceOp::sum, ReduceOp::avg}) {
        Tensor in = tensor_of(values(seed, me, n * N, t), t);
        Tensor out = poisoned(n, t);
        group().reduce_scatter(out, in, op);
        EXPECT_EQ(mismatches(out, seed, n * N, n * me, t, op), 0) << "n " << n;
      }
}

TEST_P(DistCollectives, AsyncHandlesCompleteInAnyOrder) {
  const std::uint64_t seed = shared_seed();
  const int N = group().size(), me = group().rank();
  const index_t n = 100003;
  Tensor a = tensor_of(values(seed, me, n, DType::f32), DType::f32);
  Tensor b = tensor_of(values(seed + 1, me, n, DType::f64), DType::f64);
  Tensor g_in = tensor_of(values(seed + 2, me, n, DType::f32), DType::f32), g_out = poisoned(n * N, DType::f32);
  Work wa = group().all_reduce(a, ReduceOp::sum, true);
  Work wb = group().all_reduce(b, ReduceOp::avg, true);
  Work wg = group().all_gather(g_out, g_in, true);
  // Driven by test() on the last one, then waited on in reverse order.
  while (!wg.test()) {
  }
  wb.wait();
  wa.wait();
  wa.wait();  // again: returns at once
  EXPECT_TRUE(wa.completed() && wb.completed() && wg.completed());
  EXPECT_EQ(mismatches(a, seed, n, 0, DType::f32, ReduceOp::sum), 0);
  EXPECT_EQ(mismatches(b, seed + 1, n, 0, DType::f64, ReduceOp::avg), 0);
  index_t bad = 0;
  for (int r = 0; r < N; ++r) {
    const std::vector<double> want = values(seed + 2, r, n, DType::f32);
    for (index_t i = 0; i < n; ++i) bad += at(g_out, r * n + i) != want[std::size_t(i)];
  }
  EXPECT_EQ(bad, 0);
}

// The error's op and argument, or "no error".
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.op() + " " + e.arg();
  }
  return "no error";
}

TEST_P(DistCollectives, ArgumentsThatDifferAcrossRanksFailOnEveryRank) {
  const int me = group().rank();
  // Element counts: 5 on rank 0, 6 elsewhere.
  Tensor x = make_tensor(std::vector<index_t>{me == 0 ? 5 : 6}, DType::f32, Device::cpu());
  x.fill_(1);
  EXPECT_EQ(error_of([&] { group().all_reduce(x); }), "dist.all_reduce tensor");
  // Dtypes.
  Tensor y = make_tensor(std::vector<index_t>{4}, me == 0 ? DType::f32 : DType::f64, Device::cpu());
  y.fill_(1);
  EXPECT_EQ(error_of([&] { group().all_reduce(y); }), "dist.all_reduce dtype");
  // Roots.
  Tensor z = make_tensor(std::vector<index_t>{4}, DType::f32, Device::cpu());
  EXPECT_EQ(error_of([&] { group().broadcast(z, me == 0 ? 0 : group().size() - 1); }),
            group().size() > 1 ? "dist.broadcast root" : "no error");
  // Different collectives.
  EXPECT_EQ(error_of([&] {
              if (me == 0) {
                group().all_reduce(z);
              } else {
                group().broadcast(z, 0);
              }
            }),
            group().size() > 1 ? std::string(me == 0 ? "dist.all_reduce" : "dist.broadcast") + " collective"
                               : "no error");
  // Blocking on rank 0, asynchronous elsewhere: MPI would never match them. A progress
  // thread makes both as the blocking call, so there they match.
  EXPECT_EQ(error_of([&] { group().all_reduce(z, ReduceOp::sum, me != 0).wait(); }),
            group().size() > 1 && !GetParam() ? "dist.all_reduce collective" : "no error");
  // And the group still works afterwards.
  z.fill_(1);
  group().all_reduce(z);
  EXPECT_EQ(at(z, 3), double(group().size()));
}

TEST_P(DistCollectives, LocalArgumentErrorsNameTheArgument) {
  Tensor x = make_tensor(std::vector<index_t>{4, 6}, DType::f32, Device::cpu());
  x.fill_(1);
  EXPECT_EQ(error_of([&] { group().all_reduce(x.transpose(0, 1)); }), "dist.all_reduce tensor");
  Tensor i = make_tensor(std::vector<index_t>{4}, DType::i64, Device::cpu());
  EXPECT_EQ(error_of([&] { group().all_reduce(i); }), "dist.all_reduce tensor");
  EXPECT_EQ(error_of([&] { group().broadcast(x, group().size()); }), "dist.broadcast root");
  Tensor small = make_tensor(std::vector<index_t>{3}, DType::f32, Device::cpu());
  EXPECT_EQ(error_of([&] { group().all_gather(small, x); }), "dist.all_gather out");
  EXPECT_EQ(error_of([&] { group().reduce_scatter(x, x); }),
            group().size() == 1 ? "dist.reduce_scatter out" : "dist.reduce_scatter in");
  EXPECT_EQ(error_of([&] { group().all_reduce(Tensor()); }), "dist.all_reduce tensor");
  Tensor w = make_tensor(std::vector<index_t>{4}, DType::f32, Device::cpu());
  w.fill_(0);
  w.requires_grad_(true);
  EXPECT_EQ(error_of([&] { group().broadcast(w, 0); }), "dist.broadcast tensor");
  {
    NoGradGuard no_grad;
    EXPECT_EQ(error_of([&] { group().broadcast(w, 0); }), "no error");
  }
}

TEST_P(DistCollectives, ARankThatArrivesLateTimesOutThenCompletes) {
  // On a group of its own with a short timeout: rank 0 starts an all-reduce the others
  // join only after a barrier on the main group, which rank 0 reaches after its wait
  // has timed out. The timed-out collective then completes when waited on again.
  ProcessGroup g = group().duplicate({std::chrono::milliseconds(200), false, GetParam()});
  const int me = group().rank();
  Tensor x = make_tensor(std::vector<index_t>{1000}, DType::f32, Device::cpu());
  x.fill_(1);
  if (me == 0) {
    Work w = g.all_reduce(x, ReduceOp::sum, true);
    const std::string e = error_of([&] { w.wait(); });
    EXPECT_EQ(e, group().size() > 1 ? "dist.all_reduce timeout" : "no error");
    group().barrier();
    w.wait();
  } else {
    group().barrier();
    g.all_reduce(x, ReduceOp::sum, true).wait();  // asynchronous too: MPI matches like with like
  }
  EXPECT_EQ(at(x, 999), double(group().size()));
}

INSTANTIATE_TEST_SUITE_P(, DistCollectives, ::testing::Bool(), [](const ::testing::TestParamInfo<bool>& i) {
  return i.param ? "progress_thread" : "caller";
});

// A progress thread completes an asynchronous collective while its caller makes no MPI
// call at all. Rank 0 starts an all-reduce of 4 MiB (past the size MPI sends eagerly, so
// no rank can finish it alone) and then only watches the file system, with no MPI call,
// until rank 1 has waited the all-reduce to its end and left a marker file. Without the
// thread, rank 1's wait would not return until rank 0 entered MPI again (the test fails
// then, at its 30 s deadline).
TEST(DistProgressThread, CompletesACollectiveWhileTheCallerMakesNoMpiCall) {
  const std::uint64_t seed = shared_seed();
  ProcessGroup g = group().duplicate({std::chrono::seconds(60), true, true});
  const int me = group().rank(), N = group().size();
  const std::string marker = "/tmp/tg_test_dist_progress_" + std::to_string(seed);
  const index_t n = index_t(1) << 20;
  Tensor x = tensor_of(values(seed, me, n, DType::f32), DType::f32);
  Work w = g.all_reduce(x, ReduceOp::sum, true);
  bool seen = N < 2;
  if (me == 0) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!seen && std::chrono::steady_clock::now() < deadline) {
      if (std::FILE* f = std::fopen(marker.c_str(), "r")) {
        std::fclose(f);
        seen = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  } else if (me == 1) {
    w.wait();
    if (std::FILE* f = std::fopen(marker.c_str(), "w")) std::fclose(f);
  }
  EXPECT_TRUE(me != 0 || seen) << "rank 1 did not finish the all-reduce while rank 0 made no MPI call";
  w.wait();
  EXPECT_EQ(mismatches(x, seed, n, 0, DType::f32, ReduceOp::sum), 0);
  group().barrier();
  if (me == 0) std::remove(marker.c_str());
}

// ---- DataParallel ----

std::shared_ptr<nn::Module> small_mlp(std::uint64_t seed) {
  Generator gen(seed);
  return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(16, 32, true, Activation{Act::relu}, &gen),
      std::make_shared<nn::Linear>(32, 31, true, Activation{Act::gelu_tanh}, &gen),  // an odd parameter count: the shards pad
      std::make_shared<nn::Linear>(31, 4, true, Activation{}, &gen)});
}

// Rows [r0, r1) of a row-major rows x cols draw, as a tensor.
Tensor rows_of(const std::vector<double>& v, index_t cols, index_t r0, index_t r1) {
  Tensor t = make_tensor(std::vector<index_t>{r1 - r0, cols}, DType::f32, Device::cpu());
  for (index_t i = 0; i < (r1 - r0) * cols; ++i) t.data<float>()[i] = float(v[std::size_t(r0 * cols + i)]);
  return t;
}

enum class Opt { sgd, adamw, sgd_plain };

std::unique_ptr<nn::Optimizer> make_opt(Opt o, const std::vector<Tensor>& params) {
  if (o == Opt::sgd) return std::make_unique<nn::SGD>(params, 0.05, 0.9);
  if (o == Opt::sgd_plain) return std::make_unique<nn::SGD>(params, 0.05);  // no momentum, no decay
  return std::make_unique<nn::AdamW>(params, 1e-3);
}

// The largest |a - b| / max|b| over the parameters.
double max_rel_diff(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  double diff = 0, mag = 0;
  for (std::size_t p = 0; p < a.size(); ++p)
    for (index_t i = 0; i < a[p].numel(); ++i) {
      diff = std::max(diff, std::fabs(double(a[p].data<float>()[i]) - double(b[p].data<float>()[i])));
      mag = std::max(mag, std::fabs(double(b[p].data<float>()[i])));
    }
  return diff / mag;
}

// 20 steps: `ref` on the whole global batch of each step (on the CPU), and this rank's
// half through `ddp` (its model on `dev`), as one micro-batch or, with `accumulate`, two
// of which the first runs under no_sync.
void train_ddp(std::uint64_t seed, nn::Module& ref, nn::Optimizer& ref_opt, dist::DataParallel& ddp, nn::Optimizer& opt,
               bool accumulate, Device dev) {
  const int N = group().size(), me = group().rank();
  const index_t per = 32, batch = per * N;  // 64 on two ranks
  nn::MSELoss mse;
  for (int step = 0; step < 20; ++step) {
    const std::vector<double> x = values(seed + 100 + std::uint64_t(step), 0, batch * 16, DType::f32);
    const std::vector<double> y = values(seed + 200 + std::uint64_t(step), 0, batch * 4, DType::f32);
    ref_opt.zero_grad();
    mse(ref(rows_of(x, 16, 0, batch)), rows_of(y, 4, 0, batch)).backward();
    ref_opt.step();

    opt.zero_grad();
    auto part = [&](index_t a, index_t b, double weight) {
      (mse(ddp(rows_of(x, 16, a, b).to(dev)), rows_of(y, 4, a, b).to(dev)) * weight).backward();
    };
    const index_t r0 = me * per;
    if (accumulate) {
      {
        auto no_sync = ddp.no_sync();
        part(r0, r0 + per / 2, 0.5);
      }
      part(r0 + per / 2, r0 + per, 0.5);
    } else {
      part(r0, r0 + per, 1.0);
    }
    ddp.synchronize();
    opt.step();
  }
}

// Two ranks training on disjoint halves of each global batch of 64 end where one process
// training on the whole batch does: the ranks' mean gradients averaged are the whole
// batch's mean gradient, up to float summation order (the GEMMs sum 32 rows where the
// single process sums 64, then the halves are added): a few ulp a step, 1.2e-7 to 2.4e-7
// of the parameters' size after 20 steps in the runs so far, against a bound of 1e-6.
// With accumulation each rank's half goes as two micro-batches of 16, the first under
// no_sync. Over a group with a progress thread as well (the buckets' all-reduces then run
// on it).
TEST(DistDataParallel, TwoRanksOnHalvesMatchOneProcessOnTheWholeBatch) {
  const std::uint64_t seed = shared_seed();
  const int me = group().rank();
  for (bool threaded : {false, true})
    for (Opt o : {Opt::sgd, Opt::adamw})
      for (bool accumulate : {false, true}) {
        auto ref = small_mlp(seed);
        // Rank 0's model starts as the reference; the others differ until the broadcast.
        auto model = small_mlp(me == 0 ? seed : seed + 1 + std::uint64_t(me));
        const ProcessGroup pg = threaded ? group().duplicate({std::chrono::seconds(60), true, true}) : group();
        dist::DataParallel ddp(model, pg, {0.002, true});  // small buckets: several of them
        auto ref_opt = make_opt(o, ref->parameters()), opt = make_opt(o, model->parameters());
        train_ddp(seed, *ref, *ref_opt, ddp, *opt, accumulate, Device::cpu());
        const double d = max_rel_diff(model->parameters(), ref->parameters());
        EXPECT_LT(d, 1e-6) << (o == Opt::sgd ? "SGD" : "AdamW") << (accumulate ? " with no_sync" : "")
                           << (threaded ? " with a progress thread" : "");
        EXPECT_GT(ddp.buckets().size(), 2u);
      }
}

// The overlap is real: with small buckets, the buckets of the last layers start their
// all-reduce from backward's hooks while the first layers' gradients are still to come.
TEST(DistDataParallel, BucketsStartDuringBackward) {
  const std::uint64_t seed = shared_seed();
  auto model = small_mlp(seed);
  dist::DataParallel ddp(model, group(), {0.002, true});
  // Buckets hold the parameters in reverse registration order.
  const std::vector<std::vector<int>> b = ddp.buckets();
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(b.front().front(), int(model->parameters().size()) - 1);
  EXPECT_EQ(b.back().back(), 0);
  const std::vector<double> x = values(seed, group().rank(), 8 * 16, DType::f32);
  nn::MSELoss mse;
  Tensor out = ddp(rows_of(x, 16, 0, 8));
  mse(out, out.detach() * 0.5).backward();
  ddp.synchronize();
  EXPECT_GT(ddp.started_during_backward(), 0);
  EXPECT_LT(ddp.started_during_backward(), int(b.size()));  // the last ones start when backward ends
}

// A parameter that gets no gradient on one rank (an unused branch) contributes zeros:
// its .grad is the other ranks' sum over the rank count.
TEST(DistDataParallel, AParameterUnusedOnOneRankAveragesWithZeros) {
  const int N = group().size(), me = group().rank();
  auto model = std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(3, 2, false), std::make_shared<nn::Linear>(3, 2, false)});
  dist::DataParallel ddp(model, group());
  auto* first = dynamic_cast<nn::Linear*>(model->named_children()[0].second.get());
  auto* second = dynamic_cast<nn::Linear*>(model->named_children()[1].second.get());
  ASSERT_TRUE(first && second);
  Tensor x = Tensor::ones(std::vector<index_t>{1, 3});
  // Every rank uses the first layer; only rank 0 the second.
  Tensor loss = sum((*first)(x));
  if (me == 0) loss = loss + sum((*second)(x));
  loss.backward();
  ddp.synchronize();
  const Tensor g1 = model->parameters()[0].grad(), g2 = model->parameters()[1].grad();
  ASSERT_TRUE(g1.defined() && g2.defined());
  EXPECT_DOUBLE_EQ(double(g1.data<float>()[0]), 1.0);
  EXPECT_EQ(g2.data<float>()[0], float(1.0 / N));  // the sum 1 over N, rounded once
}

TEST(DistDataParallel, ParametersThatDifferInShapeAcrossRanksAreAnError) {
  const int me = group().rank();
  auto model = std::make_shared<nn::Linear>(4, me == 0 ? 3 : 5);
  const std::string e = error_of([&] { dist::DataParallel ddp(model, group()); });
  EXPECT_EQ(e, group().size() > 1 ? "dist.DataParallel module" : "no error");
}


// ---- ShardedOptimizer ----

dist::ShardedOptimizer::Factory factory(Opt o) {
  return [o](std::vector<Tensor> shard) { return make_opt(o, shard); };
}

// One rank's step of the sharded run on its half of a global batch of 64 (the test above's
// data), against one process on the whole batch.
struct ShardedRun {
  std::shared_ptr<nn::Module> model;
  std::unique_ptr<dist::ShardedOptimizer> opt;
};

void train_steps(std::uint64_t seed, int from, int to, nn::Module& ref, nn::Optimizer* ref_opt, double clip,
                 ShardedRun* run) {
  const int N = group().size(), me = group().rank();
  const index_t per = 32, batch = per * N;  // 64 on two ranks
  nn::MSELoss mse;
  for (int step = from; step < to; ++step) {
    const std::vector<double> x = values(seed + 100 + std::uint64_t(step), 0, batch * 16, DType::f32);
    const std::vector<double> y = values(seed + 200 + std::uint64_t(step), 0, batch * 4, DType::f32);
    if (ref_opt) {
      ref_opt->zero_grad();
      mse(ref(rows_of(x, 16, 0, batch)), rows_of(y, 4, 0, batch)).backward();
      if (clip > 0) nn::clip_grad_norm(ref.parameters(), clip);
      ref_opt->step();
    }
    if (run) {
      run->opt->zero_grad();
      const index_t r0 = me * per;
      mse((*run->model)(rows_of(x, 16, r0, r0 + per)), rows_of(y, 4, r0, r0 + per)).backward();
      run->opt->step();
    }
  }
}

// The sharded optimizer ends where one process on the whole batch does (the same bound
// and reason as DataParallel's: float summation order), for SGD with momentum, AdamW,
// and AdamW with the averaged gradients clipped by their global norm (set low enough to
// clip every step).
TEST(DistShardedOptimizer, TwoRanksOnHalvesMatchOneProcessOnTheWholeBatch) {
  const std::uint64_t seed = shared_seed();
  const int me = group().rank();
  for (int variant = 0; variant < 3; ++variant) {
    const Opt o = variant == 0 ? Opt::sgd : Opt::adamw;
    const double clip = variant == 2 ? 0.05 : 0;
    auto ref = small_mlp(seed);
    auto ref_opt = make_opt(o, ref->parameters());
    ShardedRun run{small_mlp(me == 0 ? seed : seed + 1 + std::uint64_t(me)), nullptr};
    run.opt = std::make_unique<dist::ShardedOptimizer>(run.model->parameters(), group(), factory(o));
    if (clip > 0) run.opt->set_max_grad_norm(clip);
    train_steps(seed, 0, 20, *ref, ref_opt.get(), clip, &run);
    EXPECT_LT(max_rel_diff(run.model->parameters(), ref->parameters()), 1e-6) << "variant " << variant;
    if (clip > 0) {
      EXPECT_GT(run.opt->last_grad_norm(), clip);  // it did clip
    }
    EXPECT_EQ(run.opt->steps(), 20);
  }
}

// Each rank keeps 1/N of the state: the inner optimizer's buffers are one shard long, and
// the shards tile the flat layout.
TEST(DistShardedOptimizer, EachRankHoldsOneShardOfTheState) {
  const std::uint64_t seed = shared_seed();
  const int N = group().size(), me = group().rank();
  auto model = small_mlp(seed);
  dist::ShardedOptimizer opt(model->parameters(), group(), factory(Opt::adamw));
  index_t n = 0;
  for (const Tensor& p : model->parameters()) n += p.numel();
  EXPECT_EQ(opt.total_elements(), n);
  const index_t shard = (n + N - 1) / N;
  EXPECT_EQ(opt.shard_begin(), me * shard);
  EXPECT_EQ(opt.shard_end(), (me + 1) * shard);
  nn::MSELoss mse;
  opt.zero_grad();
  mse((*model)(Tensor::ones(std::vector<index_t>{2, 16})), Tensor::zeros(std::vector<index_t>{2, 4})).backward();
  opt.step();
  const nn::StateDict inner = opt.inner().state_dict();
  ASSERT_TRUE(inner.count("state.0.exp_avg") && inner.count("state.0.exp_avg_sq"));
  EXPECT_EQ(inner.at("state.0.exp_avg").numel(), shard);
  EXPECT_EQ(inner.at("state.0.exp_avg_sq").numel(), shard);
}

// state_dict() gathers the shards into an unsharded optimizer's state (its keys and
// shapes, within the equivalence bound of the unsharded run's own state); a fresh
// ShardedOptimizer that loads it, and a plain AdamW that loads it, continue as the
// original does: the sharded resume bit for bit.
TEST(DistShardedOptimizer, StateDictGathersAndReshards) {
  const std::uint64_t seed = shared_seed();
  const int me = group().rank();
  auto ref = small_mlp(seed);
  auto ref_opt = make_opt(Opt::adamw, ref->parameters());
  ShardedRun run{small_mlp(me == 0 ? seed : seed + 7), nullptr};
  run.opt = std::make_unique<dist::ShardedOptimizer>(run.model->parameters(), group(), factory(Opt::adamw));
  train_steps(seed, 0, 5, *ref, ref_opt.get(), 0, &run);

  const nn::StateDict sd = run.opt->state_dict();
  const nn::StateDict want = ref_opt->state_dict();
  ASSERT_EQ(sd.size(), want.size());
  for (const auto& [key, t] : want) {
    ASSERT_TRUE(sd.count(key)) << key;
    const auto got = sd.at(key).sizes(), expected = t.sizes();
    ASSERT_EQ(std::vector<index_t>(got.begin(), got.end()), std::vector<index_t>(expected.begin(), expected.end()))
        << key;
    if (key.rfind("state.", 0) == 0) {
      EXPECT_LT(max_rel_diff({sd.at(key)}, {t}), 1e-5) << key;  // the moments, through the same steps
    }
  }
  EXPECT_EQ(sd.at("steps").item(), 5.0);

  // A resumed copy: the model's parameters and the gathered state, re-sharded.
  ShardedRun resumed{small_mlp(seed + 99), nullptr};
  resumed.opt = std::make_unique<dist::ShardedOptimizer>(resumed.model->parameters(), group(), factory(Opt::adamw));
  resumed.model->load_state_dict(run.model->state_dict());
  resumed.opt->load_state_dict(sd);
  // The same state in a plain AdamW on one process's copy of the model.
  auto plain = small_mlp(seed + 5);
  plain->load_state_dict(run.model->state_dict());
  auto plain_opt = make_opt(Opt::adamw, plain->parameters());
  plain_opt->load_state_dict(sd);

  train_steps(seed, 5, 10, *plain, plain_opt.get(), 0, &run);
  train_steps(seed, 5, 10, *plain, nullptr, 0, &resumed);
  const std::vector<Tensor> a = run.model->parameters(), b = resumed.model->parameters();
  for (std::size_t p = 0; p < a.size(); ++p)
    EXPECT_EQ(std::memcmp(a[p].raw_data(), b[p].raw_data(), std::size_t(a[p].numel()) * sizeof(float)), 0)
        << "parameter " << p;
  EXPECT_LT(max_rel_diff(plain->parameters(), run.model->parameters()), 1e-6);
}

// A parameter with no gradient in a step adds zeros, whatever the flat layout held before
// (the last step's gathered parameters): under plain SGD it does not move.
TEST(DistShardedOptimizer, AParameterWithoutAGradientStaysPut) {
  auto model = std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(3, 5, true), std::make_shared<nn::Linear>(3, 7, true)});
  dist::ShardedOptimizer opt(model->parameters(), group(), factory(Opt::sgd_plain));
  auto* first = dynamic_cast<nn::Linear*>(model->named_children()[0].second.get());
  auto* second = dynamic_cast<nn::Linear*>(model->named_children()[1].second.get());
  ASSERT_TRUE(first && second);
  const Tensor x = Tensor::ones(std::vector<index_t>{2, 3});
  opt.zero_grad();
  (sum((*first)(x)) + sum((*second)(x))).backward();
  opt.step();  // both used: the flat layout now holds every parameter
  const std::vector<double> before = second->weight.to_vector<double>();
  opt.zero_grad();
  sum((*first)(x)).backward();  // the second layer gets no gradient
  opt.step();
  EXPECT_EQ(second->weight.to_vector<double>(), before);
  EXPECT_FALSE(second->weight.grad().defined());
}

TEST(DistShardedOptimizer, BadArgumentsAreErrors) {
  std::vector<Tensor> mixed = {
      Tensor::ones(std::vector<index_t>{3}, TensorOptions().with_requires_grad()),
      Tensor::ones(std::vector<index_t>{2}, TensorOptions().with_dtype(DType::f64).with_requires_grad())};
  EXPECT_EQ(error_of([&] { dist::ShardedOptimizer opt(mixed, group(), factory(Opt::sgd)); }),
            "dist.ShardedOptimizer params");
  std::vector<Tensor> one = {Tensor::ones(std::vector<index_t>{3}, TensorOptions().with_requires_grad())};
  EXPECT_EQ(error_of([&] { dist::ShardedOptimizer opt(one, group(), nullptr); }), "dist.ShardedOptimizer make");
  dist::ShardedOptimizer opt(one, group(), factory(Opt::sgd));
  EXPECT_EQ(error_of([&] { opt.set_max_grad_norm(-1); }), "dist.ShardedOptimizer max_norm");
  nn::StateDict bad = {{"lr", Tensor::ones(std::vector<index_t>{1})},
                       {"steps", Tensor::zeros(std::vector<index_t>{1})},
                       {"state.4.momentum", Tensor::ones(std::vector<index_t>{3})}};
  EXPECT_EQ(error_of([&] { opt.load_state_dict(bad); }), "dist.ShardedOptimizer state");
}

// dist::save_checkpoint: rank 0 writes the gathered state and every rank resumes from it;
// a file rank 0 cannot write is an error on every rank, not a hang.
TEST(DistCheckpoint, RankZeroWritesEveryRankResumesAndFailuresReachEveryRank) {
  const std::uint64_t seed = shared_seed();
  const int me = group().rank();
  ShardedRun run{small_mlp(seed), nullptr};
  run.opt = std::make_unique<dist::ShardedOptimizer>(run.model->parameters(), group(), factory(Opt::adamw));
  train_steps(seed, 0, 3, *run.model, nullptr, 0, &run);
  // One directory for every rank: rank 0's name, broadcast.
  Tensor tag = make_tensor(std::vector<index_t>{1}, DType::i64, Device::cpu());
  tag.data<std::int64_t>()[0] = std::int64_t(seed % 1000000007);
  group().broadcast(tag, 0);
  const std::string path = ::testing::TempDir() + "tg_dist_ck_" + std::to_string(tag.data<std::int64_t>()[0]) + ".safetensors";
  dist::save_checkpoint(group(), path, {run.model.get(), run.opt.get(), nullptr, nullptr}, {{"step", 3.0}});

  ShardedRun resumed{small_mlp(seed + 3), nullptr};
  resumed.opt = std::make_unique<dist::ShardedOptimizer>(resumed.model->parameters(), group(), factory(Opt::adamw));
  const auto extra = nn::load_checkpoint(path, {resumed.model.get(), resumed.opt.get(), nullptr, nullptr});
  EXPECT_EQ(extra.at("step"), 3.0);
  EXPECT_EQ(resumed.opt->steps(), 3);
  train_steps(seed, 3, 6, *run.model, nullptr, 0, &run);
  train_steps(seed, 3, 6, *resumed.model, nullptr, 0, &resumed);
  EXPECT_EQ(max_rel_diff(resumed.model->parameters(), run.model->parameters()), 0.0);
  group().barrier();  // every rank has read the file
  if (me == 0) std::remove(path.c_str());

  const std::string e = error_of([&] {
    dist::save_checkpoint(group(), "/nonexistent-dir/ck.safetensors", {run.model.get(), run.opt.get(), nullptr, nullptr});
  });
  EXPECT_NE(e, "no error");
  if (me != 0) {
    EXPECT_EQ(e, "dist.save_checkpoint path");
  }
}

// ---- CUDA tensors (NCCL) ----

// Every collective on CUDA tensors against the same references as the CPU's, where every
// rank has a device of its own (NCCL refuses two ranks on one device): rank r on device
// r mod the devices it sees. The decision to skip is the same on every rank (the fewest
// devices any rank sees). Stream-ordered: the copies back to the host come after the
// collectives on the current stream.
// Why a CUDA test skips: fewer devices on some rank than ranks ("" when every rank has
// one of its own). Every rank learns the same answer (an all-gather of the counts).
std::string no_device_per_rank() {
  const int N = group().size();
  Tensor mine = tensor_of({double(cuda::device_count())}, DType::f64), counts = poisoned(N, DType::f64);
  group().all_gather(counts, mine);
  int fewest = cuda::device_count();
  for (int r = 0; r < N; ++r) fewest = std::min(fewest, int(at(counts, r)));
  if (fewest >= N) return "";
  return "a device per rank needed: " + std::to_string(N) + " ranks, " + std::to_string(fewest) + " devices (" +
         (cuda::device_count() == 0 ? cuda::unavailable_reason() : std::string("too few")) + ")";
}

TEST(DistNccl, CollectivesOnCudaTensorsMatchTheReference) {
  const int N = group().size(), me = group().rank();
  if (const std::string why = no_device_per_rank(); !why.empty()) GTEST_SKIP() << why;
  const Device dev = Device::cuda(me % cuda::device_count());
  const Device host = Device::cpu();
  const std::uint64_t seed = shared_seed();
  for (DType t : {DType::f32, DType::f64, DType::bf16})
    for (index_t n : kSizes)
      for (ReduceOp op : {ReduceOp::sum, ReduceOp::avg}) {
        Tensor x = tensor_of(values(seed, me, n, t), t).to(dev);
        group().all_reduce(x, op);
        EXPECT_EQ(mismatches(x.to(host), seed, n, 0, t, op), 0) << "all_reduce n " << n;
        Tensor in = tensor_of(values(seed, me, n * N, t), t).to(dev), out = poisoned(n, t).to(dev);
        group().reduce_scatter(out, in, op);
        EXPECT_EQ(mismatches(out.to(host), seed, n * N, n * me, t, op), 0) << "reduce_scatter n " << n;
      }
  for (index_t n : kSizes) {
    Tensor b = tensor_of(values(seed, me, n, DType::f32), DType::f32).to(dev);
    group().broadcast(b, N - 1);
    const Tensor got = b.to(host);
    const std::vector<double> want = values(seed, N - 1, n, DType::f32);
    index_t bad = 0;
    for (index_t i = 0; i < n; ++i) bad += at(got, i) != want[std::size_t(i)];
    EXPECT_EQ(bad, 0) << "broadcast n " << n;
    Tensor out = poisoned(n * N, DType::f32).to(dev), in = tensor_of(values(seed + 1, me, n, DType::f32), DType::f32);
    Work w = group().all_gather(out, in.to(dev), true);
    w.wait();  // the current stream waits
    const Tensor all = out.to(host);
    bad = 0;
    for (int r = 0; r < N; ++r) {
      const std::vector<double> v = values(seed + 1, r, n, DType::f32);
      for (index_t i = 0; i < n; ++i) bad += at(all, r * n + i) != v[std::size_t(i)];
    }
    EXPECT_EQ(bad, 0) << "all_gather n " << n;
  }
}

// DataParallel on CUDA parameters (buckets on the device, all-reduces over NCCL) ends
// where one process on the CPU training on the whole batch does: 20 steps of SGD with
// momentum, within 1e-5 of the parameters' size (the GPU's GEMMs sum in another order).
TEST(DistNccl, DataParallelOnCudaParametersMatchesOneProcess) {
  const int me = group().rank();
  if (const std::string why = no_device_per_rank(); !why.empty()) GTEST_SKIP() << why;
  const Device dev = Device::cuda(me % cuda::device_count());
  const std::uint64_t seed = shared_seed();
  auto ref = small_mlp(seed);
  auto model = small_mlp(me == 0 ? seed : seed + 1 + std::uint64_t(me));
  model->to(dev);
  dist::DataParallel ddp(model, group(), {0.002, true});
  auto ref_opt = make_opt(Opt::sgd, ref->parameters()), opt = make_opt(Opt::sgd, model->parameters());
  train_ddp(seed, *ref, *ref_opt, ddp, *opt, false, dev);
  std::vector<Tensor> got;
  for (const Tensor& p : model->parameters()) got.push_back(p.detach().to(Device::cpu()));
  EXPECT_LT(max_rel_diff(got, ref->parameters()), 1e-5);
}

// ShardedOptimizer on CUDA parameters (the flat gradients, the shard and its AdamW state
// on the device, reduce-scatter and all-gather over NCCL) ends where one process on the
// CPU training on the whole batch does: 20 steps, with and without the global-norm clip,
// within 1e-5 of the parameters' size (the GPU's GEMMs sum in another order); its state
// dict comes back as CPU tensors of the parameters' sizes.
TEST(DistNccl, ShardedOptimizerOnCudaParametersMatchesOneProcess) {
  const int N = group().size(), me = group().rank();
  if (const std::string why = no_device_per_rank(); !why.empty()) GTEST_SKIP() << why;
  const Device dev = Device::cuda(me % cuda::device_count());
  const std::uint64_t seed = shared_seed();
  for (double clip : {0.0, 0.05}) {
    auto ref = small_mlp(seed);
    auto ref_opt = make_opt(Opt::adamw, ref->parameters());
    auto model = small_mlp(me == 0 ? seed : seed + 1 + std::uint64_t(me));
    model->to(dev);
    dist::ShardedOptimizer opt(model->parameters(), group(), factory(Opt::adamw));
    if (clip > 0) opt.set_max_grad_norm(clip);
    const index_t per = 32, batch = per * N;
    nn::MSELoss mse;
    for (int step = 0; step < 20; ++step) {
      const std::vector<double> x = values(seed + 100 + std::uint64_t(step), 0, batch * 16, DType::f32);
      const std::vector<double> y = values(seed + 200 + std::uint64_t(step), 0, batch * 4, DType::f32);
      ref_opt->zero_grad();
      mse((*ref)(rows_of(x, 16, 0, batch)), rows_of(y, 4, 0, batch)).backward();
      if (clip > 0) nn::clip_grad_norm(ref->parameters(), clip);
      ref_opt->step();
      opt.zero_grad();
      const index_t r0 = me * per;
      mse((*model)(rows_of(x, 16, r0, r0 + per).to(dev)), rows_of(y, 4, r0, r0 + per).to(dev)).backward();
      opt.step();
    }
    std::vector<Tensor> got;
    for (const Tensor& p : model->parameters()) got.push_back(p.detach().to(Device::cpu()));
    EXPECT_LT(max_rel_diff(got, ref->parameters()), 1e-5) << "clip " << clip;
    const nn::StateDict state = opt.state_dict();
    const std::vector<Tensor> params = model->parameters();
    for (std::size_t i = 0; i < params.size(); ++i) {
      const Tensor& m = state.at("state." + std::to_string(i) + ".exp_avg");
      EXPECT_TRUE(m.device().is_cpu());
      EXPECT_EQ(m.numel(), params[i].numel());
    }
  }
}

}  // namespace
}  // namespace tg

// Under mpirun: MPI starts with the first group; every rank runs the same tests, and
// only rank 0 prints progress (a failure prints on the rank that saw it).
int main(int argc, char** argv) {
  // --late-rank (CTest dist_watchdog): rank 0 makes a blocking all-reduce the others never
  // join; its watchdog must end the job with a message after the 1 s timeout.
  if (argc > 1 && std::string(argv[1]) == "--late-rank") {
    tg::dist::ProcessGroup g = tg::dist::ProcessGroup::world({std::chrono::seconds(1), true});
    if (g.rank() == 0) {
      tg::Tensor x = tg::Tensor::ones(std::vector<tg::index_t>{4});
      g.all_reduce(x);
      std::fprintf(stderr, "test_dist: the all-reduce returned without the other ranks\n");
    } else {
      std::this_thread::sleep_for(std::chrono::seconds(60));
    }
    return 0;
  }
  ::testing::InitGoogleTest(&argc, argv);
  const int rank = tg::group().rank();
  if (rank != 0) {
    ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int rc = RUN_ALL_TESTS();
  if (rank != 0 && rc != 0) std::fprintf(stderr, "test_dist: rank %d had failures\n", rank);
  return rc;
}
