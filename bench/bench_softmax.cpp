// softmax, log_softmax and layer_norm benchmarks, forward and backward, against oneDNN's
// primitives, Eigen array expressions, plain libm loops and the copy floor, in one run.
//
// Rows: <op>/<impl>/<shape>/threads:<n> with op softmax_fwd, softmax_bwd,
// log_softmax_fwd, log_softmax_bwd, layer_norm_fwd, layer_norm_bwd over (rows x cols)
// 4096x1024, 65536x64, 64x65536 and one row of 1048576; copy/stream/<shape> is the
// floor. Bytes: forward 8 per element (read x, write y), backward 12 (read two, write
// one). Each row checks a few output rows against the double reference before timing.
//
// cross_entropy_fwd and cross_entropy_bwd/tilegrad/<rows>x<classes> time the fused
// cross-entropy (the CPU op table's kernel) at the MLP's 1024x10, 4096x1024 and a
// vocabulary-sized 256x32000; bytes: forward 4 per logit, backward 8. PyTorch's
// F.cross_entropy is the peer (scripts/peers/torch-bench softmax).
//
//   build/bench/bench_softmax --benchmark_filter='softmax_fwd/.*/4096x1024'
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/peers/peers.hpp"
#include "bench/support/bench.hpp"
#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/cpu/layer_norm.hpp"
#include "tilegrad/cpu/softmax.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tilegrad/kernels/cross_entropy.hpp"
#include "tilegrad/kernels/layer_norm.hpp"
#include "tilegrad/kernels/softmax.hpp"
#ifdef TG_PEER_ONEDNN
#include "bench/peers/onednn_prims.hpp"
#endif

namespace tg::bench {
namespace {

enum class Op { softmax_fwd, softmax_bwd, log_softmax_fwd, log_softmax_bwd, layer_norm_fwd, layer_norm_bwd };
const char* op_name(Op op) {
  switch (op) {
    case Op::softmax_fwd: return "softmax_fwd";
    case Op::softmax_bwd: return "softmax_bwd";
    case Op::log_softmax_fwd: return "log_softmax_fwd";
    case Op::log_softmax_bwd: return "log_softmax_bwd";
    case Op::layer_norm_fwd: return "layer_norm_fwd";
    case Op::layer_norm_bwd: return "layer_norm_bwd";
  }
  return "?";
}
bool is_backward(Op op) { return op == Op::softmax_bwd || op == Op::log_softmax_bwd || op == Op::layer_norm_bwd; }
bool is_log(Op op) { return op == Op::log_softmax_fwd || op == Op::log_softmax_bwd; }
constexpr float kEps = 1e-5f;

struct Shape {
  std::string name;
  index_t rows, cols;
};

// in0: x (forward, layer_norm backward) or y (softmax backward); in1: dy; the statistics
// of layer_norm travel in mean/rstd.
struct Args {
  const float* in0;
  const float* in1;
  float* out;
  float* mean;
  float* rstd;
};
using Run = std::function<void(const Args&)>;
using Make = std::function<Run(Op op, const Shape& s)>;

// The double reference for rows [0, 4) and the last row.
bool check(Op op, const Shape& s, const Args& a, std::string& why) {
  const index_t c = s.cols;
  std::vector<float> ref(static_cast<std::size_t>(c)), mean(1), rstd(1);
  for (index_t i : {index_t(0), std::min<index_t>(1, s.rows - 1), s.rows - 1}) {
    const float* in0 = a.in0 + i * c;
    const float* in1 = a.in1 + i * c;
    switch (op) {
      case Op::softmax_fwd: softmax_forward_ref<float>(1, c, in0, c, ref.data(), c); break;
      case Op::log_softmax_fwd: log_softmax_forward_ref<float>(1, c, in0, c, ref.data(), c); break;
      case Op::softmax_bwd: softmax_backward_ref<float>(1, c, in0, c, in1, c, ref.data(), c); break;
      case Op::log_softmax_bwd: log_softmax_backward_ref<float>(1, c, in0, c, in1, c, ref.data(), c); break;
      case Op::layer_norm_fwd:
        layer_norm_forward_ref<float>(1, c, in0, c, nullptr, nullptr, kEps, ref.data(), c, mean.data(), rstd.data());
        break;
      case Op::layer_norm_bwd:
        layer_norm_backward_ref<float>(1, c, in0, c, in1, c, nullptr, nullptr, nullptr, kEps, ref.data(), c, nullptr,
                                       nullptr);
        break;
    }
    double num = 0, den = 0;
    for (index_t j = 0; j < c; ++j) {
      const double d = double(a.out[i * c + j]) - ref[std::size_t(j)];
      num += d * d;
      den += double(ref[std::size_t(j)]) * ref[std::size_t(j)];
    }
    const double err = std::sqrt(num / std::max(den, 1e-30));
    if (!(err < 1e-3)) {
      why = "result check failed on row " + std::to_string(i) + ": relative error " + std::to_string(err);
      return false;
    }
  }
  return true;
}

void run_row(benchmark::State& state, Op op, const Shape& s, int threads, const Make& make) {
  set_threads(threads);
  const index_t n = s.rows * s.cols;
  Buffer in0(std::size_t(n) * 4), in1(std::size_t(n) * 4), out(std::size_t(n) * 4);
  Buffer mean(std::size_t(s.rows) * 4), rstd(std::size_t(s.rows) * 4);
  fill_uniform(in0.as<float>(), n, 21, -4, 4);
  fill_uniform(in1.as<float>(), n, 22, -1, 1);
  // Backward passes start from what their forward made: y = softmax(x), or x with its
  // layer_norm statistics.
  if (op == Op::softmax_bwd) cpu::softmax_forward(s.rows, s.cols, in0.as<float>(), s.cols, in0.as<float>(), s.cols);
  if (op == Op::log_softmax_bwd)
    cpu::log_softmax_forward(s.rows, s.cols, in0.as<float>(), s.cols, in0.as<float>(), s.cols);
  if (op == Op::layer_norm_bwd)
    cpu::layer_norm_forward(s.rows, s.cols, in0.as<float>(), s.cols, nullptr, nullptr, kEps, out.as<float>(), s.cols,
                            mean.as<float>(), rstd.as<float>());
  const Args args{in0.as<float>(), in1.as<float>(), out.as<float>(), mean.as<float>(), rstd.as<float>()};
  Run run;
  try {
    run = make(op, s);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  run(args);
  std::string why;
  if (!check(op, s, args, why)) {
    state.SkipWithError(why.c_str());
    return;
  }
  for (auto _ : state) {
    run(args);
    benchmark::ClobberMemory();
  }
  set_rates(state, 0, (is_backward(op) ? 12.0 : 8.0) * double(n), threads);
  state.SetItemsProcessed(state.iterations() * n);
}

Run tilegrad(Op op, const Shape& s) {
  const index_t r = s.rows, c = s.cols;
  switch (op) {
    case Op::softmax_fwd: return [=](const Args& a) { cpu::softmax_forward(r, c, a.in0, c, a.out, c); };
    case Op::log_softmax_fwd: return [=](const Args& a) { cpu::log_softmax_forward(r, c, a.in0, c, a.out, c); };
    case Op::softmax_bwd: return [=](const Args& a) { cpu::softmax_backward(r, c, a.in0, c, a.in1, c, a.out, c); };
    case Op::log_softmax_bwd:
      return [=](const Args& a) { cpu::log_softmax_backward(r, c, a.in0, c, a.in1, c, a.out, c); };
    case Op::layer_norm_fwd:
      return [=](const Args& a) {
        cpu::layer_norm_forward(r, c, a.in0, c, nullptr, nullptr, kEps, a.out, c, a.mean, a.rstd);
      };
    case Op::layer_norm_bwd:
      return [=](const Args& a) {
        cpu::layer_norm_backward(r, c, a.in0, c, a.in1, c, nullptr, a.mean, a.rstd, kEps, a.out, c, nullptr, nullptr);
      };
  }
  return {};
}

// The fused cross-entropy: logits U(-4, 4), targets i mod classes, no smoothing; the
// forward's loss and lse, and the backward's first and last rows, checked against the
// double reference before timing.
void cross_entropy_row(benchmark::State& state, bool backward, index_t rows, index_t classes, int threads) {
  set_threads(threads);
  const index_t n = rows * classes;
  Buffer z(std::size_t(n) * 4), dz(std::size_t(n) * 4), ref_dz(std::size_t(n) * 4);
  fill_uniform(z.as<float>(), n, 23, -4, 4);
  std::vector<index_t> target(static_cast<std::size_t>(rows));
  for (index_t i = 0; i < rows; ++i) target[std::size_t(i)] = i % classes;
  std::vector<float> loss(static_cast<std::size_t>(rows)), lse(2 * loss.size()), dloss(loss.size(), 1.0f / float(rows));
  std::vector<float> ref_loss(loss), ref_lse(lse);  // lse: (max, log sum) pairs
  const auto& ops = cpu::ops().f32;
  ops.cross_entropy_forward(rows, classes, z.as<float>(), classes, target.data(), -100, 0.0, loss.data(), lse.data());
  ops.cross_entropy_backward(rows, classes, z.as<float>(), classes, target.data(), -100, 0.0, lse.data(), dloss.data(),
                             dz.as<float>(), classes);
  cross_entropy_forward_ref<float>(rows, classes, z.as<float>(), classes, target.data(), -100, 0.0, ref_loss.data(),
                                   ref_lse.data());
  cross_entropy_backward_ref<float>(rows, classes, z.as<float>(), classes, target.data(), -100, 0.0, lse.data(),
                                    dloss.data(), ref_dz.as<float>(), classes);
  double worst = 0;
  for (index_t i = 0; i < rows; ++i) {
    worst = std::max(worst, std::fabs(double(loss[std::size_t(i)]) - ref_loss[std::size_t(i)]) /
                                std::max(1.0, std::fabs(double(ref_loss[std::size_t(i)]))));
    const std::size_t k = 2 * std::size_t(i);
    const double l = double(lse[k]) + lse[k + 1], ref_l = double(ref_lse[k]) + ref_lse[k + 1];
    worst = std::max(worst, std::fabs(l - ref_l) / std::max(1.0, std::fabs(ref_l)));
  }
  for (index_t k : {index_t(0), n - classes})
    for (index_t j = 0; j < classes; ++j)
      worst = std::max(worst, std::fabs(double(dz.as<float>()[k + j]) - ref_dz.as<float>()[k + j]) * double(rows));
  if (!(worst < 1e-4)) {
    state.SkipWithError(("result check failed: error " + std::to_string(worst)).c_str());
    return;
  }
  for (auto _ : state) {
    if (backward)
      ops.cross_entropy_backward(rows, classes, z.as<float>(), classes, target.data(), -100, 0.0, lse.data(),
                                 dloss.data(), dz.as<float>(), classes);
    else
      ops.cross_entropy_forward(rows, classes, z.as<float>(), classes, target.data(), -100, 0.0, loss.data(),
                                lse.data());
    benchmark::ClobberMemory();
  }
  set_rates(state, 0, (backward ? 8.0 : 4.0) * double(n), threads);
  state.SetItemsProcessed(state.iterations() * n);
}

const bool kCrossEntropyRegistered = [] {
  std::vector<int> threads{1};
  if (cpu::num_threads() > 1) threads.push_back(cpu::num_threads());
  for (bool backward : {false, true})
    for (const auto& shape : {std::pair<index_t, index_t>{1024, 10}, {4096, 1024}, {256, 32000}})
      for (int t : threads) {
        // Plain names, not structured bindings: clang's OpenMP mode cannot capture those.
        const index_t rows = shape.first, classes = shape.second;
        const std::string row = std::string(backward ? "cross_entropy_bwd" : "cross_entropy_fwd") + "/tilegrad/" +
                                std::to_string(rows) + "x" + std::to_string(classes) + "/threads:" + std::to_string(t);
        benchmark::RegisterBenchmark(row.c_str(), [=](benchmark::State& st) {
          cross_entropy_row(st, backward, rows, classes, t);
        })->UseRealTime()->Unit(benchmark::kMicrosecond);
      }
  return true;
}();

const bool kRegistered = [] {
  std::vector<int> threads{1};
  if (cpu::num_threads() > 1) threads.push_back(cpu::num_threads());
  const std::vector<Shape> shapes = {{"4096x1024", 4096, 1024}, {"65536x64", 65536, 64},
                                     {"64x65536", 64, 65536},   {"1x1048576", 1, 1048576}};
  const Op ops[] = {Op::softmax_fwd,     Op::softmax_bwd,    Op::log_softmax_fwd,
                    Op::log_softmax_bwd, Op::layer_norm_fwd, Op::layer_norm_bwd};

  std::vector<std::pair<std::string, Make>> impls;
  impls.push_back({"tilegrad", &tilegrad});
#ifdef TG_PEER_ONEDNN
  impls.push_back({"onednn", [](Op op, const Shape& s) -> Run {
                     using K = peers::OnednnPrimitive::Kind;
                     const K kinds[] = {K::softmax_fwd,     K::softmax_bwd,    K::log_softmax_fwd,
                                        K::log_softmax_bwd, K::layer_norm_fwd, K::layer_norm_bwd};
                     auto prim = std::make_shared<peers::OnednnPrimitive>(kinds[int(op)], s.rows, s.cols);
                     return [prim](const Args& a) { prim->run(a.in0, a.in1, a.out); };
                   }});
#endif
  for (const peers::NormPeer& p : peers::norm_peers())
    impls.push_back({p.name, [p](Op op, const Shape& s) -> Run {
                       const index_t r = s.rows, c = s.cols;
                       const bool log = is_log(op);
                       switch (op) {
                         case Op::softmax_fwd:
                         case Op::log_softmax_fwd:
                           return [=](const Args& a) { p.softmax_fwd(log, r, c, a.in0, a.out); };
                         case Op::softmax_bwd:
                         case Op::log_softmax_bwd:
                           return [=](const Args& a) { p.softmax_bwd(log, r, c, a.in0, a.in1, a.out); };
                         case Op::layer_norm_fwd:
                           return [=](const Args& a) { p.layer_norm_fwd(r, c, a.in0, kEps, a.out, a.mean, a.rstd); };
                         case Op::layer_norm_bwd:
                           return [=](const Args& a) { p.layer_norm_bwd(r, c, a.in0, a.in1, a.mean, a.rstd, a.out); };
                       }
                       return {};
                     }});

  for (const Shape& s : shapes)
    for (int t : threads) register_copy_floor(s.name, s.rows * s.cols, t);
  for (Op op : ops)
    for (const Shape& s : shapes)
      for (int t : threads)
        for (const auto& [name, make] : impls) {
          if (t > peers::max_threads(name)) continue;
          const std::string row = std::string(op_name(op)) + "/" + name + "/" + s.name + "/threads:" + std::to_string(t);
          benchmark::RegisterBenchmark(row.c_str(), [=, make = make](benchmark::State& st) { run_row(st, op, s, t, make); })
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
        }
  return true;
}();

}  // namespace
}  // namespace tg::bench
