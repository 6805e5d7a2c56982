// Activation benchmarks, forward and backward, against oneDNN's eltwise primitives, Eigen
// array expressions, a plain libm loop, and the copy floor, all in one run; and the
// f32 <-> bf16/f16 conversions (cpu::convert: autocast's casts) against Eigen's casts
// and our own scalar path.
//
// Rows: <act>_<fwd|bwd>/<impl>/<shape>/threads:<n>, shapes 16777216 (contiguous) and the
// matrices 4096x1024, 65536x64, 64x65536; copy/stream/<shape>/threads:<n> is the floor.
// Bytes: forward reads x and writes y (8 per element), backward reads x and dy and
// writes dx (12). Each row checks 4096 sampled outputs against the double reference
// before timing.
//
// Conversion rows: convert_<from>_<to>/<impl>/16777216/threads:<n>, bytes read + written
// (6 per element); each checks 4096 sampled outputs bit for bit against kernels/half.hpp.
//
//   build/bench/bench_eltwise --benchmark_filter='gelu_tanh_fwd/.*/16777216'
//   build/bench/bench_eltwise --benchmark_filter='convert_'
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/peers/peers.hpp"
#include "bench/support/bench.hpp"
#include "tilegrad/cpu/activation.hpp"
#include "tilegrad/cpu/convert.hpp"
#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tilegrad/kernels/half.hpp"
#ifdef TG_PEER_ONEDNN
#include "bench/peers/onednn_prims.hpp"
#endif

namespace tg::bench {
namespace {

struct Shape {
  std::string name;
  index_t rows, cols;
};

// One implementation of one direction: run(x, dy, out) over rows x cols, contiguous.
using Run = std::function<void(const float* x, const float* dy, float* out)>;
using Make = std::function<Run(Activation act, bool backward, const Shape& s)>;

bool check(Activation act, bool backward, index_t n, const float* x, const float* dy, const float* out,
           std::string& why) {
  for (index_t k = 0; k < 4096; ++k) {
    const index_t i = (k * 2654435761ll) % n;
    const double ref = backward ? double(dy[i]) * act_derivative(act, x[i]) : act_value(act, x[i]);
    if (!(std::fabs(double(out[i]) - ref) <= 1e-4 * std::max(1.0, std::fabs(ref)))) {
      why = "result check failed at " + std::to_string(i) + ": " + std::to_string(out[i]) + " vs " + std::to_string(ref);
      return false;
    }
  }
  return true;
}

void run_row(benchmark::State& state, Activation act, bool backward, const Shape& s, int threads, const Make& make) {
  set_threads(threads);
  const index_t n = s.rows * s.cols;
  Buffer x(std::size_t(n) * 4), dy(std::size_t(n) * 4), out(std::size_t(n) * 4);
  fill_uniform(x.as<float>(), n, 11, -6, 6);
  fill_uniform(dy.as<float>(), n, 12, -1, 1);
  fill_uniform(out.as<float>(), n, 13, -1, 1);
  Run run;
  try {
    run = make(act, backward, s);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  run(x.as<float>(), dy.as<float>(), out.as<float>());
  std::string why;
  if (!check(act, backward, n, x.as<float>(), dy.as<float>(), out.as<float>(), why)) {
    state.SkipWithError(why.c_str());
    return;
  }
  for (auto _ : state) {
    run(x.as<float>(), dy.as<float>(), out.as<float>());
    benchmark::ClobberMemory();
  }
  set_rates(state, 0, (backward ? 12.0 : 8.0) * double(n), threads);
  state.SetItemsProcessed(state.iterations() * n);
}

// ---- f32 <-> bf16 / f16 ----

using Convert = std::function<void(DType from, DType to, index_t n, const void* src, void* dst)>;

void convert_row(benchmark::State& state, DType from, DType to, int threads, const Convert& convert) {
  set_threads(threads);
  const index_t n = 16777216;
  Buffer f(std::size_t(n) * 4), h(std::size_t(n) * 2), out(std::size_t(n) * 4);
  fill_uniform(f.as<float>(), n, 21, -70000, 70000);  // past f16's range too
  for (index_t i = 0; i < n; ++i)
    h.as<std::uint16_t>()[i] = from == DType::f16 ? f16_bits_from_float(f.as<float>()[i] / 4096)
                                                  : bf16_bits_from_float(f.as<float>()[i]);
  const void* src = from == DType::f32 ? static_cast<const void*>(f.as<float>()) : h.as<std::uint16_t>();
  convert(from, to, n, src, out.data());
  for (index_t k = 0; k < 4096; ++k) {
    const index_t i = (k * 2654435761ll) % n;
    const std::uint16_t hi = h.as<std::uint16_t>()[i];
    const float fi = f.as<float>()[i];
    std::uint32_t got = 0, want = 0;
    if (to == DType::f32) {
      const float w = from == DType::bf16 ? float_from_bf16_bits(hi) : float_from_f16_bits(hi);
      std::memcpy(&want, &w, 4), std::memcpy(&got, out.as<float>() + i, 4);
    } else {
      want = to == DType::bf16 ? bf16_bits_from_float(fi) : f16_bits_from_float(fi);
      got = out.as<std::uint16_t>()[i];
    }
    if (got != want) {
      const std::string why = "result check failed at " + std::to_string(i) + ": bits " + std::to_string(got) +
                              " vs " + std::to_string(want);
      state.SkipWithError(why.c_str());
      return;
    }
  }
  for (auto _ : state) {
    convert(from, to, n, src, out.data());
    benchmark::ClobberMemory();
  }
  set_rates(state, 0, 6.0 * double(n), threads);
  state.SetItemsProcessed(state.iterations() * n);
}

void register_conversions(const std::vector<int>& threads) {
  std::vector<std::pair<std::string, Convert>> impls;
  impls.push_back({"tilegrad", [](DType a, DType b, index_t n, const void* s, void* d) { cpu::convert(a, b, n, s, d); }});
  impls.push_back({"scalar", [](DType a, DType b, index_t n, const void* s, void* d) {
                     cpu::convert(cpu::Isa::scalar, a, b, n, s, d);
                   }});
  for (const peers::NormPeer& peer : peers::norm_peers())
    if (peer.convert) impls.push_back({peer.name, peer.convert});
  const std::pair<DType, DType> pairs[] = {
      {DType::f32, DType::bf16}, {DType::bf16, DType::f32}, {DType::f32, DType::f16}, {DType::f16, DType::f32}};
  for (const auto& pair : pairs)
    for (int t : threads)
      for (const auto& impl : impls) {
        // Plain names, not structured bindings: clang's OpenMP mode cannot capture those.
        const DType from = pair.first, to = pair.second;
        const auto& name = impl.first;
        const auto& convert = impl.second;
        if (t > peers::max_threads(name)) continue;
        const std::string row = std::string("convert_") + dtype_name(from) + "_" + dtype_name(to) + "/" + name +
                                "/16777216/threads:" + std::to_string(t);
        benchmark::RegisterBenchmark(row.c_str(), [=](benchmark::State& st) {
          convert_row(st, from, to, t, convert);
        })->UseRealTime()->Unit(benchmark::kMicrosecond);
      }
}

const bool kRegistered = [] {
  std::vector<int> threads{1};
  if (cpu::num_threads() > 1) threads.push_back(cpu::num_threads());
  const std::vector<Shape> shapes = {{"16777216", 1, 16777216}, {"4096x1024", 4096, 1024},
                                     {"65536x64", 65536, 64},   {"64x65536", 64, 65536}};
  const Act acts[] = {Act::relu, Act::leaky_relu, Act::gelu_erf, Act::gelu_tanh, Act::silu, Act::sigmoid, Act::tanh};

  std::vector<std::pair<std::string, Make>> impls;
  impls.push_back({"tilegrad", [](Activation act, bool backward, const Shape& s) -> Run {
                     if (backward)
                       return [=](const float* x, const float* dy, float* dx) {
                         cpu::act_backward(act, s.rows, s.cols, x, s.cols, nullptr, dy, s.cols, dx, s.cols);
                       };
                     return [=](const float* x, const float*, float* y) {
                       cpu::act_forward(act, s.rows, s.cols, x, s.cols, nullptr, y, s.cols);
                     };
                   }});
#ifdef TG_PEER_ONEDNN
  impls.push_back({"onednn", [](Activation act, bool backward, const Shape& s) -> Run {
                     using K = peers::OnednnPrimitive::Kind;
                     auto prim = std::make_shared<peers::OnednnPrimitive>(backward ? K::eltwise_bwd : K::eltwise_fwd,
                                                                          s.rows, s.cols, act);
                     return [prim](const float* x, const float* dy, float* out) { prim->run(x, dy, out); };
                   }});
#endif
  for (const peers::NormPeer& peer : peers::norm_peers())
    impls.push_back({peer.name, [peer](Activation act, bool backward, const Shape& s) -> Run {
                       const index_t n = s.rows * s.cols;
                       if (backward)
                         return [=](const float* x, const float* dy, float* dx) { peer.act_bwd(act, n, x, dy, dx); };
                       return [=](const float* x, const float*, float* y) { peer.act_fwd(act, n, x, y); };
                     }});

  for (const Shape& s : shapes)
    for (int t : threads) register_copy_floor(s.name, s.rows * s.cols, t);
  register_conversions(threads);
  for (Act a : acts)
    for (bool backward : {false, true})
      for (const Shape& s : shapes)
        for (int t : threads)
          for (const auto& [name, make] : impls) {
            if (t > peers::max_threads(name)) continue;
            const std::string row = std::string(act_name(a)) + (backward ? "_bwd/" : "_fwd/") + name + "/" + s.name +
                                    "/threads:" + std::to_string(t);
            benchmark::RegisterBenchmark(row.c_str(), [=, make = make](benchmark::State& st) {
              run_row(st, {a, 0.1f}, backward, s, t, make);
            })->UseRealTime()->Unit(benchmark::kMicrosecond);
          }
  return true;
}();

}  // namespace
}  // namespace tg::bench
