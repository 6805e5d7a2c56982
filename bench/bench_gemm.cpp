// GEMM benchmarks: every implementation on the same shapes in one run, so ratios are
// taken between rows measured side by side. Rows: gemm/<impl>/MxNxK/<nn|nt|tn|tt>/threads:<n>.
// Each row checks its result once before timing (C x against A (B x), in double).
//
//   build/bench/bench_gemm --benchmark_filter='gemm/.*/256x' --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "bench/peers/peers.hpp"
#include "bench/support/bench.hpp"
#include "cpu/isa.hpp"
#include "kernels/buffer.hpp"
#include "kernels/gemm.hpp"

namespace tg::bench {
namespace {

struct Problem {
  index_t M, N, K;
  Buffer a, b, c;
  Problem(index_t m, index_t n, index_t k)
      : M(m), N(n), K(k),
        a(std::size_t(m * k) * sizeof(float)),
        b(std::size_t(k * n) * sizeof(float)),
        c(std::size_t(m * n) * sizeof(float)) {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> u(-1, 1);
    for (index_t i = 0; i < m * k; ++i) a.as<float>()[i] = u(rng);
    for (index_t i = 0; i < k * n; ++i) b.as<float>()[i] = u(rng);
  }
};

// ||C x - A (B x)|| / ||A (B x)|| for a random x: O(MN + NK + MK), no reference GEMM.
double probe_error(const Problem& p) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> x(p.N), bx(p.K, 0.0), abx(p.M, 0.0), cx(p.M, 0.0);
  for (double& v : x) v = u(rng);
  const float* A = p.a.as<float>();
  const float* B = p.b.as<float>();
  const float* C = p.c.as<float>();
  for (index_t k = 0; k < p.K; ++k)
    for (index_t j = 0; j < p.N; ++j) bx[k] += double(B[k * p.N + j]) * x[j];
  double num = 0, den = 0;
  for (index_t i = 0; i < p.M; ++i) {
    for (index_t k = 0; k < p.K; ++k) abx[i] += double(A[i * p.K + k]) * bx[k];
    for (index_t j = 0; j < p.N; ++j) cx[i] += double(C[i * p.N + j]) * x[j];
    num += (cx[i] - abx[i]) * (cx[i] - abx[i]);
    den += abx[i] * abx[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

template <class Gemm>
void run_gemm(benchmark::State& state, index_t M, index_t N, index_t K, int threads, Gemm gemm) {
  set_threads(threads);
  Problem p(M, N, K);
  gemm(p);
  // fp32 products accumulated over K: a relative error well under 1e-4 for these sizes;
  // a wrong kernel (or a peer called with the wrong layout) is off by O(1).
  if (const double err = probe_error(p); !(err < 1e-4)) {
    state.SkipWithError(("result check failed: relative error " + std::to_string(err)).c_str());
    return;
  }
  for (auto _ : state) {
    gemm(p);
    benchmark::ClobberMemory();
  }
  set_rates(state, 2.0 * double(M) * double(N) * double(K),
            4.0 * double(M * K + K * N + 2 * M * N), threads);
}

std::string row(const char* impl, index_t M, index_t N, index_t K, int threads) {
  return "gemm/" + std::string(impl) + "/" + std::to_string(M) + "x" + std::to_string(N) + "x" +
         std::to_string(K) + "/nn/threads:" + std::to_string(threads);
}

const bool kRegistered = [] {
  const int max_threads = cpu::num_threads();
  std::vector<int> thread_counts{1};
  if (max_threads > 1) thread_counts.push_back(max_threads);

  // The reference kernel (double accumulation, no blocking): the floor every kernel beats.
  for (index_t n : {64, 128, 256})
    benchmark::RegisterBenchmark(row("naive", n, n, n, 1).c_str(),
                                 [n](benchmark::State& s) {
                                   run_gemm(s, n, n, n, 1, [](Problem& p) {
                                     gemm_ref<float>(Trans::N, Trans::N, p.M, p.N, p.K, 1.0f,
                                                     p.a.as<float>(), p.K, p.b.as<float>(), p.N,
                                                     0.0f, p.c.as<float>(), p.N);
                                   });
                                 })
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);

  for (const peers::SgemmPeer& peer : peers::sgemm_peers())
    for (int t : thread_counts)
      for (index_t n : {64, 128, 256, 512, 1024})
        benchmark::RegisterBenchmark(row(peer.name, n, n, n, t).c_str(),
                                     [n, t, peer](benchmark::State& s) {
                                       peer.set_threads(t);
                                       run_gemm(s, n, n, n, t, [&](Problem& p) {
                                         peer.sgemm(Trans::N, Trans::N, p.M, p.N, p.K, 1.0f,
                                                    p.a.as<float>(), p.K, p.b.as<float>(), p.N,
                                                    0.0f, p.c.as<float>(), p.N);
                                       });
                                     })
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
  return true;
}();

}  // namespace
}  // namespace tg::bench
