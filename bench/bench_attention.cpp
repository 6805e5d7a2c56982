// Attention: the fused CPU kernels (cpu/attention.hpp) against the materialized form
// built from our own GEMM and softmax and from the Kokkos peer's (S <= 1024, the
// threads Kokkos has), and our GEMM at 1024^3 for the FLOP-rate ratio;
// PyTorch's rows come from scripts/peers/torch-bench attention.
//
// Rows (Sq = Sk = S; layout (b, h, s, d)):
//   attention_fwd/<impl>/BxHxSxSxD[/causal]/threads:<n>      impl: tilegrad, unfused, kokkos
//   attention_fwdbwd/<impl>/BxHxSxSxD[/causal]/threads:<n>   forward, then backward
//   gemm/tilegrad/1024x1024x1024/nn/threads:<n>              the rate to compare with
// Long sequences: B = 1, H = 8, D = 64, S = 256, 512, 1024, 2048; with TG_BENCH_SLOW=1
// also 4096, 8192 and a fused-only 1x8x16384x16384x64 forward (its scores would need
// 8 GiB). Small models' batches of short sequences, causal: 16x4x64x64x16 (the
// character transformer of examples/tiny_transformer: batch 16, 4 heads of 16, context
// 64) and 8x6x256x256x64 (a character GPT of 6 heads of 64 over a context of 256).
//
// FLOP convention: 4 S_q S_k D per head for the forward (two products of 2 S_q S_k D),
// 14 S_q S_k D for forward + backward (the backward's five products, the FlashAttention
// count with the recomputed S); causal rows count only the (i, j) pairs the mask leaves
// visible, S (S + 1) / 2 of S^2, whatever an implementation computes. Counters:
// FLOPS, peak_frac, and work_MiB: what the implementation allocates beyond its inputs
// and outputs (the fused workspace, or the materialized scores and probabilities).
//
//   build/bench/bench_attention --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "bench/peers/peers.hpp"
#include "bench/support/bench.hpp"
#include "tilegrad/cpu/attention.hpp"
#include "tilegrad/cpu/gemm.hpp"
#include "tilegrad/cpu/softmax.hpp"

namespace tg::bench {
namespace {

// Batch, heads, sequence length (queries and keys), head dim.
struct Geometry {
  index_t B, H, S, D;
  index_t heads() const { return B * H; }
  std::string name() const {
    return std::to_string(B) + "x" + std::to_string(H) + "x" + std::to_string(S) + "x" + std::to_string(S) + "x" +
           std::to_string(D);
  }
};

struct Data {
  Geometry g;  // its S and D are the sequence length and head dimension of every array
  std::vector<float> q, k, v, o, d_o, dq, dk, dv, lse;
  explicit Data(const Geometry& geo)
      : g(geo), q(std::size_t(geo.heads() * geo.S * geo.D)), k(q.size()), v(q.size()), o(q.size()), d_o(q.size()),
        dq(q.size()), dk(q.size()), dv(q.size()), lse(std::size_t(geo.heads() * geo.S)) {
    fill_uniform(q.data(), std::int64_t(q.size()), 1, -1, 1);
    fill_uniform(k.data(), std::int64_t(q.size()), 2, -1, 1);
    fill_uniform(v.data(), std::int64_t(q.size()), 3, -1, 1);
    fill_uniform(d_o.data(), std::int64_t(q.size()), 4, -1, 1);
  }
  template <class T>
  View4<T> view(T* p) const {
    return {p, g.H * g.S * g.D, g.S * g.D, g.D, 1};
  }
  AttentionForwardArgs<float> fwd(bool causal) {
    AttentionForwardArgs<float> a;
    a.dims = {g.B, g.H, g.H, g.S, g.S, g.D};
    a.scale = float(1 / std::sqrt(double(g.D)));
    a.causal = causal;
    a.q = view<const float>(q.data()), a.k = view<const float>(k.data()), a.v = view<const float>(v.data());
    a.o = view(o.data());
    a.lse = lse.data();
    return a;
  }
  AttentionBackwardArgs<float> bwd(bool causal) {
    AttentionBackwardArgs<float> a;
    a.dims = {g.B, g.H, g.H, g.S, g.S, g.D};
    a.scale = float(1 / std::sqrt(double(g.D)));
    a.causal = causal;
    a.q = view<const float>(q.data()), a.k = view<const float>(k.data()), a.v = view<const float>(v.data());
    a.o = view<const float>(o.data()), a.d_o = view<const float>(d_o.data());
    a.lse = lse.data();
    a.dq = view(dq.data()), a.dk = view(dk.data()), a.dv = view(dv.data());
    return a;
  }
};

double visible_pairs(index_t S, bool causal) { return causal ? double(S) * double(S + 1) / 2 : double(S) * double(S); }

// The materialized form: per head S = scale Q K^T (S x S, -inf above the diagonal when
// causal), P = softmax(S), O = P V; the backward dV = P^T dO, dP = dO V^T,
// dS = softmax_backward(P, dP), dQ = scale dS K, dK = scale dS^T Q. Built from our own
// GEMM and softmax ("unfused"), or from the Kokkos peer's team-policy GEMM and
// team-reduction softmax ("kokkos": the portable composition).
struct Backend {
  peers::SgemmFn gemm;
  void (*softmax_fwd)(index_t rows, index_t cols, const float* x, float* y);
  void (*softmax_bwd)(index_t rows, index_t cols, const float* y, const float* dy, float* dx);
};

void ours_gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda,
               const float* B, index_t ldb, float beta, float* C, index_t ldc) {
  cpu::gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, {});
}
const Backend kOurs{&ours_gemm, [](index_t r, index_t c, const float* x, float* y) { cpu::softmax_forward(r, c, x, c, y, c); },
                    [](index_t r, index_t c, const float* y, const float* dy, float* dx) {
                      cpu::softmax_backward(r, c, y, c, dy, c, dx, c);
                    }};

struct Unfused {
  const Backend& be;
  std::vector<float> p, dp;
  Unfused(const Backend& b, const Geometry& g) : be(b), p(std::size_t(g.heads() * g.S * g.S)), dp(std::size_t(g.S * g.S)) {}
  void forward(Data& d, bool causal) {
    const index_t S = d.g.S, D = d.g.D;
    const float scale = float(1 / std::sqrt(double(D)));
    for (index_t h = 0; h < d.g.heads(); ++h) {
      float* ph = p.data() + h * S * S;
      const float *q = d.q.data() + h * S * D, *k = d.k.data() + h * S * D, *v = d.v.data() + h * S * D;
      be.gemm(Trans::N, Trans::T, S, S, D, scale, q, D, k, D, 0.0f, ph, S);
      if (causal)
        for (index_t i = 0; i < S; ++i)
          for (index_t j = i + 1; j < S; ++j) ph[i * S + j] = -std::numeric_limits<float>::infinity();
      be.softmax_fwd(S, S, ph, ph);
      be.gemm(Trans::N, Trans::N, S, D, S, 1.0f, ph, S, v, D, 0.0f, d.o.data() + h * S * D, D);
    }
  }
  void backward(Data& d) {
    const index_t S = d.g.S, D = d.g.D;
    const float scale = float(1 / std::sqrt(double(D)));
    for (index_t h = 0; h < d.g.heads(); ++h) {
      const float* ph = p.data() + h * S * S;
      const index_t off = h * S * D;
      be.gemm(Trans::T, Trans::N, S, D, S, 1.0f, ph, S, d.d_o.data() + off, D, 0.0f, d.dv.data() + off, D);
      be.gemm(Trans::N, Trans::T, S, S, D, 1.0f, d.d_o.data() + off, D, d.v.data() + off, D, 0.0f, dp.data(),
              S);
      be.softmax_bwd(S, S, ph, dp.data(), dp.data());
      be.gemm(Trans::N, Trans::N, S, D, S, scale, dp.data(), S, d.k.data() + off, D, 0.0f, d.dq.data() + off,
              D);
      be.gemm(Trans::T, Trans::N, S, D, S, scale, dp.data(), S, d.q.data() + off, D, 0.0f, d.dk.data() + off,
              D);
    }
  }
  double bytes() const { return double(p.size() + dp.size()) * sizeof(float); }
};

// The Kokkos peer's composition, when that peer was compiled in.
const Backend* kokkos_backend() {
  static const Backend* b = [] () -> const Backend* {
    const peers::SgemmPeer* g = peers::find_sgemm_peer("kokkos");
    if (!g) return nullptr;
    static peers::NormPeer norm{};
    for (const peers::NormPeer& n : peers::norm_peers())
      if (std::string(n.name) == "kokkos") norm = n;
    static Backend kb{g->sgemm, [](index_t r, index_t c, const float* x, float* y) { norm.softmax_fwd(false, r, c, x, y); },
                      [](index_t r, index_t c, const float* y, const float* dy, float* dx) {
                        norm.softmax_bwd(false, r, c, y, dy, dx);
                      }};
    return norm.softmax_fwd ? &kb : nullptr;
  }();
  return b;
}

void run(benchmark::State& state, const Geometry& g, bool causal, const Backend* unfused, bool backward, int threads) {
  set_threads(threads);
  Data d(g);
  double work = 0;
  if (!unfused) {
    work = double(cpu::attention_workspace_bytes(g.D, threads));
    for (auto _ : state) {
      cpu::attention_forward(d.fwd(causal));
      if (backward) cpu::attention_backward(d.bwd(causal));
      benchmark::ClobberMemory();
    }
  } else {
    Unfused u(*unfused, g);
    work = u.bytes();
    for (auto _ : state) {
      u.forward(d, causal);
      if (backward) u.backward(d);
      benchmark::ClobberMemory();
    }
  }
  const double pairs = double(g.heads()) * visible_pairs(g.S, causal);
  set_rates(state, (backward ? 14.0 : 4.0) * pairs * double(g.D), 0, threads);
  state.counters["work_MiB"] = work / (1 << 20);
}

void gemm_1024(benchmark::State& state, int threads) {
  set_threads(threads);
  const index_t n = 1024;
  std::vector<float> a(std::size_t(n * n)), b(a.size()), c(a.size());
  fill_uniform(a.data(), std::int64_t(a.size()), 5, -1, 1);
  fill_uniform(b.data(), std::int64_t(a.size()), 6, -1, 1);
  for (auto _ : state) {
    cpu::gemm(Trans::N, Trans::N, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n, {});
    benchmark::ClobberMemory();
  }
  set_rates(state, 2.0 * double(n) * double(n) * double(n), 0, threads);
}

const bool kRegistered = [] {
  const bool slow = std::getenv("TG_BENCH_SLOW") != nullptr;
  std::vector<index_t> seqs = {256, 512, 1024, 2048};
  if (slow) seqs.insert(seqs.end(), {4096, 8192});
  for (int t : {1, 2}) {
    const std::string th = "/threads:" + std::to_string(t);
    benchmark::RegisterBenchmark(("gemm/tilegrad/1024x1024x1024/nn" + th).c_str(),
                                 [t](benchmark::State& s) { gemm_1024(s, t); })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    std::vector<std::pair<Geometry, bool>> cases;  // (shape, causal)
    for (index_t S : seqs)
      for (bool causal : {false, true}) cases.push_back({{1, 8, S, 64}, causal});
    cases.push_back({{16, 4, 64, 16}, true});
    cases.push_back({{8, 6, 256, 64}, true});
    for (bool backward : {false, true})
      for (const auto& [g, causal] : cases) {
        std::vector<std::pair<std::string, const Backend*>> impls = {{"tilegrad", nullptr}};
        if (g.S <= 4096) impls.push_back({"unfused", &kOurs});  // 8 x 8192^2 x 4 B = 2 GiB of scores: fused only
        // The portable composition on Kokkos's execution space (Serial in Debian: one
        // thread, and seconds per call past 1024).
        if (kokkos_backend() && g.S <= 1024 && t <= peers::max_threads("kokkos")) impls.push_back({"kokkos", kokkos_backend()});
        for (const auto& [impl, backend] : impls) {
          const std::string name = std::string(backward ? "attention_fwdbwd/" : "attention_fwd/") + impl + "/" +
                                   g.name() + (causal ? "/causal" : "") + th;
          const Backend* be = backend;
          const Geometry geo = g;
          const bool c = causal;
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) { run(s, geo, c, be, backward, t); })
              ->UseRealTime()
              ->Unit(benchmark::kMillisecond);
        }
      }
    if (slow)
      benchmark::RegisterBenchmark(("attention_fwd/tilegrad/1x8x16384x16384x64" + th).c_str(),
                                   [t](benchmark::State& s) { run(s, {1, 8, 16384, 64}, false, nullptr, false, t); })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond)
          ->Iterations(1);
  }
  return true;
}();

}  // namespace
}  // namespace tg::bench
