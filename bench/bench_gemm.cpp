// GEMM benchmarks: tilegrad and every peer on the same shapes in one run, so ratios are
// taken between rows measured side by side (scripts/bench-summary prints them).
//
// Rows: gemm/<impl>/MxNxK/<nn|nt|tn|tt>[_bias_relu]/threads:<n>
//   square 64 .. 2048 (4096 with TG_BENCH_SLOW=1), nn;
//   the MLP training shapes and the attention shapes, all four transposes;
//   each layer shape with a bias + ReLU epilogue: tilegrad fused in the GEMM, every peer
//   as its GEMM followed by a separate bias + ReLU pass over C (what a user of it writes);
//   naive: the reference kernel (double accumulation, no blocking), on small shapes only.
//   gemm_ukernel/tilegrad/MRxNRxKC/<path>/threads:1: the micro-kernel alone, called in a
//     loop on packed panels that stay in cache (KC from the machine's blocking and 256),
//     C = A B with no epilogue: the ceiling the blocked GEMM's packing, edges and
//     passes over C are measured against (cpu/gemm/NOTES.md).
// Every row checks its result once before timing (C x against op(A) (op(B) x)).
//
//   build/bench/bench_gemm --benchmark_filter='/512x' --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench/peers/peers.hpp"
#include "bench/support/bench.hpp"
#include "tilegrad/cpu/gemm.hpp"
#include "tilegrad/cpu/gemm/gemm_impl.hpp"
#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/kernels/buffer.hpp"

namespace tg::bench {
namespace {

struct Shape {
  index_t M, N, K;
};

struct Problem {
  Trans ta, tb;
  index_t M, N, K, lda, ldb, ldc;
  Buffer a, b, c, bias;
  Problem(Trans ta_, Trans tb_, index_t m, index_t n, index_t k)
      : ta(ta_), tb(tb_), M(m), N(n), K(k),
        lda(ta_ == Trans::N ? k : m), ldb(tb_ == Trans::N ? n : k), ldc(n),
        a(std::size_t(m * k) * sizeof(float)), b(std::size_t(k * n) * sizeof(float)),
        c(std::size_t(m * n) * sizeof(float)), bias(std::size_t(n) * sizeof(float)) {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> u(-1, 1);
    for (index_t i = 0; i < m * k; ++i) a.as<float>()[i] = u(rng);
    for (index_t i = 0; i < k * n; ++i) b.as<float>()[i] = u(rng);
    for (index_t i = 0; i < n; ++i) bias.as<float>()[i] = u(rng);
  }
  float opa(index_t i, index_t p) const { return ta == Trans::N ? a.as<float>()[i * lda + p] : a.as<float>()[p * lda + i]; }
  float opb(index_t p, index_t j) const { return tb == Trans::N ? b.as<float>()[p * ldb + j] : b.as<float>()[j * ldb + p]; }
};

// ||C x - f(op(A) (op(B) x))|| / ||...|| for a random x, in double; with the epilogue
// the check is on the pre-activation, recovered where relu passed it (C > 0).
double probe_error(const Problem& p, bool epilogue) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> x(p.N), bx(p.K, 0.0);
  for (double& v : x) v = u(rng);
  for (index_t k = 0; k < p.K; ++k)
    for (index_t j = 0; j < p.N; ++j) bx[k] += double(p.opb(k, j)) * x[j];
  const float* C = p.c.as<float>();
  double num = 0, den = 0;
  for (index_t i = 0; i < p.M; ++i) {
    if (epilogue) {  // rows are checked element by element: relu is not linear
      for (index_t j = 0; j < std::min<index_t>(p.N, 8); ++j) {
        double s = p.bias.as<float>()[j];
        for (index_t k = 0; k < p.K; ++k) s += double(p.opa(i, k)) * double(p.opb(k, j));
        s = s < 0 ? 0 : s;
        num += (C[i * p.ldc + j] - s) * (C[i * p.ldc + j] - s);
        den += s * s + 1e-30;
      }
      continue;
    }
    double abx = 0, cx = 0;
    for (index_t k = 0; k < p.K; ++k) abx += double(p.opa(i, k)) * bx[k];
    for (index_t j = 0; j < p.N; ++j) cx += double(C[i * p.ldc + j]) * x[j];
    num += (cx - abx) * (cx - abx);
    den += abx * abx;
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

using Run = std::function<void(Problem&)>;

void run_gemm(benchmark::State& state, Trans ta, Trans tb, Shape s, int threads, bool epilogue, const Run& gemm) {
  set_threads(threads);
  Problem p(ta, tb, s.M, s.N, s.K);
  gemm(p);
  // fp32 sums of K products: relative error ~ sqrt(K) 2^-24; 1e-4 catches any wrong
  // kernel or layout (off by O(1)) with a wide margin.
  if (const double err = probe_error(p, epilogue); !(err < 1e-4)) {
    state.SkipWithError(("result check failed: relative error " + std::to_string(err)).c_str());
    return;
  }
  for (auto _ : state) {
    gemm(p);
    benchmark::ClobberMemory();
  }
  const double M = double(s.M), N = double(s.N), K = double(s.K);
  set_rates(state, 2 * M * N * K, 4 * (M * K + K * N + 2 * M * N), threads);
}

// What a peer's user writes for a Linear layer: the GEMM, then bias + ReLU over C.
void bias_relu_pass(Problem& p) {
  float* C = p.c.as<float>();
  const float* bias = p.bias.as<float>();
  for (index_t i = 0; i < p.M; ++i)
    for (index_t j = 0; j < p.N; ++j) {
      const float v = C[i * p.ldc + j] + bias[j];
      C[i * p.ldc + j] = v < 0 ? 0 : v;
    }
}

std::string row(const std::string& impl, Shape s, Trans ta, Trans tb, bool epilogue, int threads) {
  std::string v = std::string(ta == Trans::N ? "n" : "t") + (tb == Trans::N ? "n" : "t");
  if (epilogue) v += "_bias_relu";
  return "gemm/" + impl + "/" + std::to_string(s.M) + "x" + std::to_string(s.N) + "x" + std::to_string(s.K) +
         "/" + v + "/threads:" + std::to_string(threads);
}

void add(const std::string& impl, Shape s, Trans ta, Trans tb, bool epilogue, int threads, Run gemm) {
  benchmark::RegisterBenchmark(row(impl, s, ta, tb, epilogue, threads).c_str(),
                               [=](benchmark::State& st) { run_gemm(st, ta, tb, s, threads, epilogue, gemm); })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

void add_all(Shape s, Trans ta, Trans tb, bool epilogue, const std::vector<int>& thread_counts) {
  for (int t : thread_counts) {
    add("tilegrad", s, ta, tb, epilogue, t, [epilogue](Problem& p) {
      GemmEpilogue<float> ep;
      if (epilogue) ep = {p.bias.as<float>(), {Act::relu}};
      cpu::gemm(p.ta, p.tb, p.M, p.N, p.K, 1.0f, p.a.as<float>(), p.lda, p.b.as<float>(), p.ldb, 0.0f,
                p.c.as<float>(), p.ldc, ep);
    });
    for (const peers::SgemmPeer& peer : peers::sgemm_peers()) {
      if (t > peers::max_threads(peer.name)) continue;
      add(peer.name, s, ta, tb, epilogue, t, [peer, t, epilogue](Problem& p) {
        peer.set_threads(t);
        peer.sgemm(p.ta, p.tb, p.M, p.N, p.K, 1.0f, p.a.as<float>(), p.lda, p.b.as<float>(), p.ldb, 0.0f,
                   p.c.as<float>(), p.ldc);
        if (epilogue) bias_relu_pass(p);
      });
    }
  }
  // The reference: one thread, and only where it finishes in tens of milliseconds.
  if (double(s.M) * double(s.N) * double(s.K) <= 32.0 * 1024 * 1024)
    add("naive", s, ta, tb, epilogue, 1, [epilogue](Problem& p) {
      GemmEpilogue<float> ep;
      if (epilogue) ep = {p.bias.as<float>(), {Act::relu}};
      gemm_ref<float>(p.ta, p.tb, p.M, p.N, p.K, 1.0f, p.a.as<float>(), p.lda, p.b.as<float>(), p.ldb, 0.0f,
                      p.c.as<float>(), p.ldc, ep);
    });
}

// The micro-kernel of one path on kc-deep panels of ones, against 2 mr nr kc FLOPs a call.
void add_ukernel(cpu::Isa isa, const cpu::gemm_impl::Arch<float>& arch, index_t kc) {
  const std::string name = "gemm_ukernel/tilegrad/" + std::to_string(arch.mr) + "x" + std::to_string(arch.nr) + "x" +
                           std::to_string(kc) + "/" + cpu::isa_name(isa) + "/threads:1";
  benchmark::RegisterBenchmark(name.c_str(), [&arch, kc](benchmark::State& state) {
    const index_t mr = arch.mr, nr = arch.nr;
    // Buffers are 64-byte aligned, as the GEMM's packing buffers are (the AVX2 kernel
    // loads B panels with aligned moves).
    Buffer ab(std::size_t(mr * kc) * sizeof(float)), bb(std::size_t(kc * nr) * sizeof(float)),
        cb(std::size_t(mr * nr) * sizeof(float));
    float *a = ab.as<float>(), *b = bb.as<float>(), *c = cb.as<float>();
    std::fill(a, a + mr * kc, 1.0f);
    std::fill(b, b + kc * nr, 0.5f);
    const cpu::gemm_impl::TileEpilogue<float> e{};
    arch.kernel(kc, a, 1, mr, b, c, nr, int(mr), int(nr), e);
    if (c[mr * nr - 1] != 0.5f * float(kc)) {
      state.SkipWithError("the micro-kernel's result is wrong");
      return;
    }
    for (auto _ : state) {
      arch.kernel(kc, a, 1, mr, b, c, nr, int(mr), int(nr), e);
      benchmark::ClobberMemory();
    }
    set_rates(state, 2.0 * double(mr) * double(nr) * double(kc), 0, 1);
  })->UseRealTime();
}

const bool kRegistered = [] {
  for (cpu::Isa isa : cpu::supported_isas()) {
    if (isa == cpu::Isa::scalar) continue;
#if TG_X86_PATHS
    const auto& arch = isa == cpu::Isa::avx512 ? cpu::gemm_impl::arch_avx512_f32() : cpu::gemm_impl::arch_avx2_f32();
#elif TG_NEON_PATHS
    const auto& arch = cpu::gemm_impl::arch_neon_f32();
#else
    const auto& arch = cpu::gemm_impl::arch_portable_f32();  // not reached: scalar is skipped
#endif
    const index_t kc = arch.blocking().kc;
    add_ukernel(isa, arch, kc);
    if (kc != 256) add_ukernel(isa, arch, 256);
  }

  std::vector<int> threads{1};
  if (cpu::num_threads() > 1) threads.push_back(cpu::num_threads());
  const bool slow = std::getenv("TG_BENCH_SLOW") && std::getenv("TG_BENCH_SLOW")[0] == '1';

  std::vector<index_t> squares{64, 128, 256, 512, 1024, 2048};
  if (slow) squares.push_back(4096);
  for (index_t n : squares) add_all({n, n, n}, Trans::N, Trans::N, false, threads);

  // MLP training shapes (784-256-... layers at batch 128, a 1024-wide layer, a long
  // batch of a narrow layer, the tiny seed MLP) and attention's QK^T and PV.
  const Shape mlp[] = {{128, 256, 784}, {128, 784, 256}, {784, 256, 128}, {256, 1024, 1024},
                       {2048, 64, 64},  {10, 10, 1},     {10, 1, 10}};
  const Shape attention[] = {{512, 512, 64}, {512, 64, 512}};
  for (const Shape* list : {&mlp[0], &attention[0]}) {
    const int count = list == &mlp[0] ? 7 : 2;
    for (int i = 0; i < count; ++i)
      for (Trans ta : {Trans::N, Trans::T})
        for (Trans tb : {Trans::N, Trans::T}) add_all(list[i], ta, tb, false, threads);
  }
  // The 784-256-256-10 MLP step at batch 1024, in the layouts a Linear layer calls:
  // the 10-wide output layer's forward (X W^T, a narrow C) and the first layer's weight
  // gradient (dZ^T X).
  add_all({1024, 10, 256}, Trans::N, Trans::T, false, threads);
  add_all({256, 784, 1024}, Trans::T, Trans::N, false, threads);
  // Linear layers' forward: fused epilogue against GEMM + a separate pass.
  for (const Shape& s : mlp) add_all(s, Trans::N, Trans::N, true, threads);
  return true;
}();

}  // namespace
}  // namespace tg::bench
