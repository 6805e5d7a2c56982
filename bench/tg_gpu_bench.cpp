// The GPU benchmarks that run without Google Benchmark (the GPU machine has none): our
// CUDA SGEMM (cuda/gemm.cu) against cuBLAS on the same device pointers, square shapes
// and all four transposes at 4096, timed with CUDA events (one warm-up, then the median
// of 10 calls on random operands; the inputs stay the same, so L2 (60 MB) holds what
// fits: 1024^3's 12 MiB does, the larger shapes' 48-768 MiB do not). Prints a table with the ratio to cuBLAS and writes
// Google Benchmark-style JSON rows (gemm/<impl>/<M>x<N>x<K>/<tt>/device:<d>, FLOPS).
// Then the memory-bound kernels on 1 GiB operands against the device-to-device copy
// (activations, softmax, layer norm, reductions, binary ops, cross-entropy, Adam), and the
// MLP 784-256-256-10 training step at batch 1024 through autograd on the device, and
// the CUDA-graph replay of small training steps against their eager launches.
//
//   build/bench/tg_gpu_bench [--out FILE.json] [--quick]
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bench/peers/peers.hpp"
#include "tilegrad/autograd/autograd.hpp"
#include "tilegrad/cuda/activation.hpp"
#include "tilegrad/cuda/cross_entropy.hpp"
#include "tilegrad/cuda/gemm.hpp"
#include "tilegrad/cuda/ops.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/cuda/softmax.hpp"
#include "tilegrad/kernels/half.hpp"
#include "tilegrad/nn/nn.hpp"

namespace {

using tg::index_t;
using tg::Trans;

#define CHECK(call)                                                                          \
  do {                                                                                       \
    const cudaError_t e_ = (call);                                                           \
    if (e_ != cudaSuccess) {                                                                 \
      std::fprintf(stderr, "tg_gpu_bench: %s failed: %s\n", #call, cudaGetErrorString(e_));   \
      std::exit(1);                                                                          \
    }                                                                                        \
  } while (0)

// The median over `reps` calls of f, timed by events on `stream` (where f queues its
// work; 0: the default stream), after one warm-up call.
double median_ms(const std::function<void()>& f, int reps, cudaStream_t stream = nullptr) {
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  f();  // warm-up
  CHECK(cudaDeviceSynchronize());
  std::vector<float> ms;
  for (int r = 0; r < reps; ++r) {
    CHECK(cudaEventRecord(a, stream));
    f();
    CHECK(cudaEventRecord(b, stream));
    CHECK(cudaEventSynchronize(b));
    float t = 0;
    CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return double(ms[ms.size() / 2]);
}


}  // namespace

int main(int argc, char** argv) {
  std::string out;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--out") == 0 && i + 1 < argc) out = argv[++i];
    else if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    else {
      std::fprintf(stderr, "usage: %s [--out FILE.json] [--quick]\n", argv[0]);
      return 2;
    }
  }
  if (tg::cuda::device_count() == 0) {
    std::printf("tg_gpu_bench: no CUDA device (%s): nothing to time\n", tg::cuda::unavailable_reason().c_str());
    return 0;
  }
  struct Case {
    index_t m, n, k;
    Trans ta, tb;
  };
  std::vector<Case> cases;
  for (index_t s : quick ? std::vector<index_t>{1024, 4096} : std::vector<index_t>{1024, 2048, 4096, 8192})
    cases.push_back({s, s, s, Trans::N, Trans::N});
  for (Trans ta : {Trans::N, Trans::T})
    for (Trans tb : {Trans::N, Trans::T})
      if (ta == Trans::T || tb == Trans::T) cases.push_back({4096, 4096, 4096, ta, tb});
  // The MLP layers of the examples at batch 8192: forward and the weight gradient.
  cases.push_back({8192, 256, 784, Trans::N, Trans::T});
  cases.push_back({256, 784, 8192, Trans::T, Trans::N});
  // And at batch 1024 (the training-step target), where 128 x 128 tiles leave most SMs
  // idle (auto takes tile64): the first layer's forward, its input gradient and its
  // weight gradient (split-K).
  cases.push_back({1024, 256, 784, Trans::N, Trans::T});
  cases.push_back({1024, 784, 256, Trans::N, Trans::N});
  cases.push_back({256, 784, 1024, Trans::T, Trans::N});

  const index_t max_elems = index_t(1) << 28;  // 8192^2 floats for GEMM, 1 GiB for the memory-bound rows
  float *a = nullptr, *b = nullptr, *c = nullptr;
  CHECK(cudaMalloc(&a, std::size_t(max_elems) * sizeof(float)));
  CHECK(cudaMalloc(&b, std::size_t(max_elems) * sizeof(float)));
  CHECK(cudaMalloc(&c, std::size_t(max_elems) * sizeof(float)));
  // Random operands, never zeros (which can run faster than real data, and hide wrong
  // indexing): uniform in [-1, 1).
  auto fill_uniform = [&](std::uint64_t seed) {
    tg::cuda::random(tg::Random::uniform, max_elems, a, -1.0, 1.0, seed, 0);
    tg::cuda::random(tg::Random::uniform, max_elems, b, -1.0, 1.0, seed + 1, 0);
    CHECK(cudaMemset(c, 0, std::size_t(max_elems) * sizeof(float)));
    CHECK(cudaDeviceSynchronize());
  };
  fill_uniform(11);
  const tg::cuda::DeviceInfo dev = tg::cuda::device_info(0);
  std::printf("tg_gpu_bench: %s; SGEMM, median of 10 calls\n", dev.name.c_str());
  std::printf("%-22s %4s %12s %12s %12s %12s %12s %8s %8s\n", "shape", "op", "tile128", "warp", "warp_async", "tile64",
              "cuBLAS", "auto", "best/cuBLAS");
  std::string json = "{\"context\": {\"tg_gpu\": \"" + dev.name + "\"}, \"benchmarks\": [";
  bool first = true;
  // The JSON so far, rewritten after each section: a section that fails (the newest
  // kernels run last) leaves the earlier rows on disk.
  auto flush = [&] {
    if (out.empty()) return;
    {
      std::ofstream f(out + ".tmp");
      f << json << "\n]}\n";
    }
    std::rename((out + ".tmp").c_str(), out.c_str());
  };
  auto row = [&](const std::string& impl, const std::string& shape, const std::string& variant, double ms, double flop) {
    json += std::string(first ? "" : ",") + "\n {\"name\": \"gemm/" + impl + "/" + shape + "/" + variant +
            "/device:0\", \"run_type\": \"iteration\", \"real_time\": " + std::to_string(ms) +
            ", \"time_unit\": \"ms\", \"FLOPS\": " + std::to_string(ms > 0 ? flop / ms * 1e3 : 0.0) + "}";
    first = false;
  };
  for (const Case& cs : cases) {
    const index_t lda = cs.ta == Trans::N ? cs.k : cs.m, ldb = cs.tb == Trans::N ? cs.n : cs.k, ldc = cs.n;
    const double flop = 2.0 * double(cs.m) * double(cs.n) * double(cs.k);
    // Every kernel configuration (cuda/gemm.hpp), then cuBLAS on the same pointers.
    double ms[tg::cuda::kGemmKernels];
    for (int k = 0; k < tg::cuda::kGemmKernels; ++k)
      ms[k] = median_ms([&] {
        tg::cuda::gemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc, {}, tg::cuda::GemmKernel(k));
      }, 10);
    const double theirs = median_ms(
        [&] { tg::peers::cublas_sgemm_rowmajor(cs.ta, cs.tb, cs.m, cs.n, cs.k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc); }, 10);
    const double best = *std::min_element(ms, ms + tg::cuda::kGemmKernels);
    const std::string shape = std::to_string(cs.m) + "x" + std::to_string(cs.n) + "x" + std::to_string(cs.k);
    const std::string tt = std::string(cs.ta == Trans::N ? "n" : "t") + (cs.tb == Trans::N ? "n" : "t");
    // The configuration gemm() takes for this shape is "tilegrad" (the default);
    // each configuration has its own variant row.
    const tg::cuda::GemmKernel chosen = tg::cuda::gemm_kernel_for(cs.m, cs.n, cs.k);
    std::printf("%-22s %4s %7.1f TF/s %7.1f TF/s %7.1f TF/s %7.1f TF/s %7.1f TF/s %8s %7.2fx\n", shape.c_str(),
                tt.c_str(), flop / ms[0] / 1e9, flop / ms[1] / 1e9, flop / ms[2] / 1e9, flop / ms[3] / 1e9,
                theirs > 0 ? flop / theirs / 1e9 : 0.0, tg::cuda::gemm_kernel_name(chosen),
                theirs > 0 ? theirs / best : 0.0);
    row("tilegrad", shape, tt, ms[int(chosen)], flop);
    for (int k = 0; k < tg::cuda::kGemmKernels; ++k)
      row("tilegrad", shape, tt + "_" + tg::cuda::gemm_kernel_name(tg::cuda::GemmKernel(k)), ms[k], flop);
    row("cublas", shape, tt, theirs, flop);
  }
  flush();
  // TF32 tensor cores (opt-in precision): ours against cuBLAS's TF32 on the same shapes.
  for (index_t sz : {index_t(4096), index_t(8192)}) {
    const double flop = 2.0 * double(sz) * double(sz) * double(sz);
    const double ours = median_ms([&] { tg::cuda::gemm_tf32(Trans::N, Trans::N, sz, sz, sz, 1.0f, a, sz, b, sz, 0.0f, c, sz); }, 10);
    const double theirs = median_ms(
        [&] { tg::peers::cublas_sgemm_tf32_rowmajor(Trans::N, Trans::N, sz, sz, sz, 1.0f, a, sz, b, sz, 0.0f, c, sz); }, 10);
    const std::string shape = std::to_string(sz) + "x" + std::to_string(sz) + "x" + std::to_string(sz);
    std::printf("%-22s %4s %7.1f TF/s (tf32)   cuBLAS tf32 %7.1f TF/s %7.2fx\n", shape.c_str(), "nn", flop / ours / 1e9,
                flop / theirs / 1e9, theirs / ours);
    row("tilegrad", shape, "nn_tf32", ours, flop);
    row("cublas", shape, "nn_tf32", theirs, flop);
  }
  flush();
  // BF16 tensor cores, C (FP32) = A B^T: ours against cuBLAS (cublasGemmEx) on the same bits:
  // A and B are 8192^2 bf16 values uniform in [-1, 1) at the front of a and b.
  auto fill_bf16 = [&] {
    std::vector<std::uint16_t> h(std::size_t(8192) * 8192);
    std::uint64_t state = 0x9e3779b97f4a7c15ull;
    for (float* dst : {a, b}) {
      for (std::uint16_t& v : h) {
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;  // xorshift64
        v = tg::bf16_bits_from_float(float(double(state >> 11) * 0x1.0p-53 * 2.0 - 1.0));
      }
      CHECK(cudaMemcpy(dst, h.data(), h.size() * sizeof(std::uint16_t), cudaMemcpyHostToDevice));
    }
  };
  fill_bf16();
  for (index_t sz : {index_t(4096), index_t(8192)}) {
    const double flop = 2.0 * double(sz) * double(sz) * double(sz);
    const auto* ha = reinterpret_cast<const std::uint16_t*>(a);
    const auto* hb = reinterpret_cast<const std::uint16_t*>(b);
    const double ours = median_ms([&] { tg::cuda::gemm_bf16(sz, sz, sz, 1.0f, ha, sz, hb, sz, 0.0f, c, sz); }, 10);
    const double ring = median_ms([&] {
      tg::cuda::gemm_bf16(sz, sz, sz, 1.0f, ha, sz, hb, sz, 0.0f, c, sz, {}, tg::cuda::HalfGemmPath::mma_sync_ring);
    }, 10);
    const double theirs = median_ms([&] { tg::peers::cublas_gemm_bf16_nt(sz, sz, sz, ha, sz, hb, sz, c, sz); }, 10);
    const std::string shape = std::to_string(sz) + "x" + std::to_string(sz) + "x" + std::to_string(sz);
    std::printf("%-22s %4s %7.1f TF/s (bf16), ring %7.1f TF/s   cuBLAS bf16 %7.1f TF/s %7.2fx\n", shape.c_str(), "nt",
                flop / ours / 1e9, flop / ring / 1e9, flop / theirs / 1e9, theirs / std::min(ours, ring));
    row("tilegrad", shape, "nt_bf16", ours, flop);
    row("tilegrad", shape, "nt_bf16_ring", ring, flop);
    row("cublas", shape, "nt_bf16", theirs, flop);
  }
  flush();
  fill_uniform(21);  // floats again
  // A Linear layer's forward with the bias and ReLU fused: our epilogue against
  // cublasLt's RELU_BIAS epilogue (C = relu(A B^T + bias)).
  const index_t linear_shapes[][3] = {{8192, 256, 784}, {4096, 4096, 4096}};
  for (const auto& sh : linear_shapes) {
    const index_t M = sh[0], N = sh[1], K = sh[2];
    const double flop = 2.0 * double(M) * double(N) * double(K);
    const tg::GemmEpilogue<float> ep{b, tg::Activation{tg::Act::relu}};
    const double ours = median_ms([&] { tg::cuda::gemm(Trans::N, Trans::T, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N, ep); }, 10);
    bool lt_ok = true;
    const double theirs = median_ms([&] { lt_ok = tg::peers::cublaslt_linear_relu(M, N, K, a, b, b, c) && lt_ok; }, 10);
    const std::string shape = std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K);
    std::printf("%-22s %4s %8.1f TF/s %8.1f TF/s %7.2fx  (bias+relu; cublasLt %s)\n", shape.c_str(), "nt",
                flop / ours / 1e9, lt_ok ? flop / theirs / 1e9 : 0.0, lt_ok ? theirs / ours : 0.0,
                lt_ok ? "RELU_BIAS" : "failed");
    for (int impl = 0; impl < (lt_ok ? 2 : 1); ++impl) {
      const double ms = impl == 0 ? ours : theirs;
      json += std::string(",\n {\"name\": \"gemm/") + (impl == 0 ? "tilegrad" : "cublaslt") + "/" + shape +
              "/nt_bias_relu/device:0\", \"run_type\": \"iteration\", \"real_time\": " + std::to_string(ms) +
              ", \"time_unit\": \"ms\", \"FLOPS\": " + std::to_string(flop / ms * 1e3) + "}";
    }
  }
  flush();
  // Memory-bound kernels on 1 GiB: GB/s (bytes read + written) against the
  // device-to-device copy of the same run.
  const double copy = tg::cuda::measure_copy_gbs(0);
  std::printf("\n%-30s %12s %10s   (copy %.0f GB/s)\n", "memory-bound", "GB/s", "of copy", copy);
  json += ",\n {\"name\": \"copy/cuda/device_to_device/device:0\", \"run_type\": \"iteration\", \"bytes_per_second\": " +
          std::to_string(copy * 1e9) + "}";  // the ceiling the rows below are held to (scripts/gpu-targets)
  struct Mem {
    std::string name;
    double bytes;
    std::function<void()> run;
  };
  const index_t n = 1 << 28;  // 1 GiB of floats per operand
  index_t* targets = nullptr;  // cross-entropy's class indices, valid ones
  {
    std::vector<index_t> h(65536);
    for (std::size_t i = 0; i < h.size(); ++i) h[i] = index_t((i * 2654435761u) % 4096);
    CHECK(cudaMalloc(&targets, h.size() * sizeof(index_t)));
    CHECK(cudaMemcpy(targets, h.data(), h.size() * sizeof(index_t), cudaMemcpyHostToDevice));
  }
  const std::vector<Mem> mems = {
      {"gelu_erf_fwd/268435456", 8.0 * double(n),
       [&] { tg::cuda::act_forward({tg::Act::gelu_erf}, 1, n, a, n, nullptr, c, n); }},
      {"gelu_erf_bwd/268435456", 12.0 * double(n),
       [&] { tg::cuda::act_backward({tg::Act::gelu_erf}, 1, n, a, n, nullptr, b, n, c, n); }},
      {"softmax_fwd/262144x1024", 8.0 * double(n),
       [&] { tg::cuda::softmax_forward(false, 262144, 1024, a, 1024, c, 1024); }},
      {"softmax_fwd/8192x32768", 8.0 * double(n),
       [&] { tg::cuda::softmax_forward(false, 8192, 32768, a, 32768, c, 32768); }},
      {"softmax_fwd/1024x262144", 8.0 * double(n),
       [&] { tg::cuda::softmax_forward(false, 1024, 262144, a, 262144, c, 262144); }},
      {"softmax_bwd/262144x1024", 12.0 * double(n),
       [&] { tg::cuda::softmax_backward(false, 262144, 1024, a, 1024, b, 1024, c, 1024); }},
      {"softmax_bwd/8192x32768", 12.0 * double(n),
       [&] { tg::cuda::softmax_backward(false, 8192, 32768, a, 32768, b, 32768, c, 32768); }},
      {"softmax_bwd/1024x262144", 12.0 * double(n),
       [&] { tg::cuda::softmax_backward(false, 1024, 262144, a, 262144, b, 262144, c, 262144); }},
      {"log_softmax_fwd/8192x32768", 8.0 * double(n),
       [&] { tg::cuda::softmax_forward(true, 8192, 32768, a, 32768, c, 32768); }},
      // Layer norm: x read, y written (gamma, beta and the statistics are noise); the
      // backward reads x and dy and writes dx, then reads them again for dgamma / dbeta
      // (counted once: the bytes a fused kernel would need).
      {"layer_norm_fwd/262144x1024", 8.0 * double(n),
       [&] { tg::cuda::layer_norm_forward(262144, 1024, a, 1024, b, b + 1024, 1e-5f, c, 1024, b + 2048, b + 2048 + 262144); }},
      {"layer_norm_bwd/131072x1024", 12.0 * double(n / 2),
       [&] {
         tg::cuda::layer_norm_backward(131072, 1024, a, 1024, a + (index_t(1) << 27), 1024, b, b + 1024, b + 1024 + 131072,
                                       1e-5f, c, 1024, b + (index_t(1) << 20), b + (index_t(1) << 20) + 1024);
       }},
      {"sum_rows/262144x1024", 4.0 * double(n),
       [&] { tg::cuda::reduce(tg::Reduce::sum, 262144, 1024, 1, a, 1024, 1, 1, c, 1, 1); }},
      {"sum_cols/262144x1024", 4.0 * double(n),
       [&] { tg::cuda::reduce(tg::Reduce::sum, 1, 262144, 1024, a, 0, 1024, 1, c, 0, 1); }},
      {"add/268435456", 12.0 * double(n),
       [&] {
         const tg::Shape s({n});
         tg::cuda::binary(tg::Binary::add, s, a, s, b, s, c);
       }},
      {"add_bias/262144x1024", 8.0 * double(n),
       [&] {
         const index_t sz[] = {262144, 1024}, bst[] = {0, 1};
         const tg::Shape s(sz), bs(sz, bst);
         tg::cuda::binary(tg::Binary::add, s, a, bs, b, s, c);
       }},
      {"cross_entropy_fwd/65536x4096", 4.0 * double(n),
       [&] {
         tg::cuda::cross_entropy_forward(65536, 4096, a, 4096, targets, -100, 0.0, c, c + 65536);
       }},
      // Adam over 64 Mi parameters: p, g, m, v read, p, m, v written.
      {"adam/67108864", 28.0 * double(n / 4),
       [&] {
         const tg::ParamSlot<float> slot{a, a + n / 4, a + n / 2, a + 3 * (n / 4), n / 4};
         tg::AdamConfig cfg;
         tg::cuda::adam_step(cfg, std::span<const tg::ParamSlot<float>>(&slot, 1));
       }},
  };
  for (const Mem& m : mems) {
    const double ms = median_ms(m.run, 10), gbs = m.bytes / (ms * 1e-3) / 1e9;
    std::printf("%-30s %12.0f %9.0f%%\n", m.name.c_str(), gbs, copy > 0 ? 100 * gbs / copy : 0.0);
    json += ",\n {\"name\": \"" + m.name.substr(0, m.name.find('/')) + "/tilegrad" + m.name.substr(m.name.find('/')) +
            "/device:0\", \"run_type\": \"iteration\", \"real_time\": " + std::to_string(ms) +
            ", \"time_unit\": \"ms\", \"bytes_per_second\": " + std::to_string(gbs * 1e9) + "}";
  }
  flush();
  // Fused attention forward, FP32 (cuda/attention.cu), against our own unfused form
  // (per head: SGEMM Q K^T, row softmax, SGEMM P V) on the same inputs; FLOPs 4 B H S^2 D,
  // halved when causal. Inputs (B, H, S, D) contiguous in the 1 GiB buffers.
  {
    std::printf("\n%-34s %10s %10s %8s\n", "attention_fwd (B 4, H 16, fp32)", "fused", "unfused", "ratio");
    const index_t B = 4, H = 16;
    for (index_t S : {index_t(1024), index_t(4096)})
      for (index_t D : {index_t(64), index_t(128)})
        for (bool causal : {false, true}) {
          const index_t head = S * D;  // elements of one head's Q (K, V, O alike)
          float *q = a, *k = a + B * H * head, *v = b, *o = c, *scores = b + B * H * head;
          tg::AttentionForwardArgs<float> fa;
          fa.dims = {B, H, H, S, S, D};
          fa.scale = 1.0f / std::sqrt(float(D));
          fa.causal = causal;
          fa.q = {q, H * head, head, D, 1}, fa.k = {k, H * head, head, D, 1}, fa.v = {v, H * head, head, D, 1};
          fa.o = {o, H * head, head, D, 1};
          fa.lse = c + 5 * B * H * head;
          const double fused = median_ms([&] { tg::cuda::attention_forward(fa); }, 10);
          // The backward (2.5x the forward's FLOPs) from this forward's O and lse.
          tg::AttentionBackwardArgs<float> ba;
          ba.dims = fa.dims, ba.scale = fa.scale, ba.causal = causal, ba.q = fa.q, ba.k = fa.k, ba.v = fa.v;
          ba.o = {o, H * head, head, D, 1}, ba.lse = fa.lse;
          ba.d_o = {c + B * H * head, H * head, head, D, 1};
          ba.dq = {c + 2 * B * H * head, H * head, head, D, 1}, ba.dk = {c + 3 * B * H * head, H * head, head, D, 1};
          ba.dv = {c + 4 * B * H * head, H * head, head, D, 1};
          const double backward = median_ms([&] { tg::cuda::attention_backward(ba); }, 5);
          double unfused = 0;
          if (!causal)  // (the unfused form has no causal skipping to compare with)
            unfused = median_ms([&] {
              for (index_t i = 0; i < B * H; ++i) {
                tg::cuda::gemm(Trans::N, Trans::T, S, S, D, float(fa.scale), q + i * head, D, k + i * head, D, 0.0f, scores, S);
                tg::cuda::softmax_forward(false, S, S, scores, S, scores, S);
                tg::cuda::gemm(Trans::N, Trans::N, S, D, S, 1.0f, scores, S, v + i * head, D, 0.0f, o + i * head, D);
              }
            }, 5);
          const double flop = 4.0 * double(B * H) * double(S) * double(S) * double(D) / (causal ? 2 : 1);
          const std::string name = "attention_fwd/tilegrad/" + std::to_string(B) + "x" + std::to_string(H) + "x" +
                                   std::to_string(S) + "x" + std::to_string(D) + (causal ? "/causal" : "");
          std::printf("%-34s %7.1f TF/s %7.1f TF/s %7.2fx   backward %7.1f TF/s\n", name.substr(name.find('/') + 10).c_str(),
                      flop / fused / 1e9, unfused > 0 ? flop / unfused / 1e9 : 0.0, unfused > 0 ? unfused / fused : 0.0,
                      2.5 * flop / backward / 1e9);
          json += ",\n {\"name\": \"attention_bwd/tilegrad/" + name.substr(name.find("/tilegrad/") + 10) +
                  "/device:0\", \"run_type\": \"iteration\", \"real_time\": " + std::to_string(backward) +
                  ", \"time_unit\": \"ms\", \"FLOPS\": " + std::to_string(2.5 * flop / backward * 1e3) + "}";
          json += ",\n {\"name\": \"" + name + "/device:0\", \"run_type\": \"iteration\", \"real_time\": " +
                  std::to_string(fused) + ", \"time_unit\": \"ms\", \"FLOPS\": " + std::to_string(flop / fused * 1e3) + "}";
          if (unfused > 0)
            json += ",\n {\"name\": \"attention_fwd/tilegrad-unfused/" + name.substr(name.find("/tilegrad/") + 10) +
                    "/device:0\", \"run_type\": \"iteration\", \"real_time\": " + std::to_string(unfused) +
                    ", \"time_unit\": \"ms\", \"FLOPS\": " + std::to_string(flop / unfused * 1e3) + "}";
        }
  }
  flush();
  // The MLP 784-256-256-10 AdamW training step at batch 1024 (the target:
  // faster than PyTorch's step on the same GPU; scripts/peers/torch_gpu_step.py times
  // that): 7 warm-up steps, then the median over 10 runs of 20 steps, CUDA events.
  {
    using namespace tg;
    Generator g(5), gd(6);
    const auto model = nn::mlp({784, 256, 256, 10}, Activation{Act::relu}, &g);
    model->to(Device::cuda(0));
    const Tensor x = Tensor::randn({1024, 784}, TensorOptions().with_device(Device::cuda(0)), &gd);
    std::vector<std::int64_t> labels(1024);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = std::int64_t(i % 10);
    const index_t rows[] = {1024};
    const Tensor y = Tensor::from_vector(labels, rows, TensorOptions().with_device(Device::cuda(0)));
    nn::AdamW opt(model->parameters(), 1e-3, 0.9, 0.999, 1e-8, 1e-4);
    auto step = [&] {
      Tensor loss = cross_entropy((*model)(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
    };
    for (int i = 0; i < 6; ++i) step();
    const double ms = median_ms([&] { for (int i = 0; i < 20; ++i) step(); }, 10) / 20;
    const double flop = 6.0 * 1024 * (784.0 * 256 + 256.0 * 256 + 256.0 * 10);
    std::printf("\n%-30s %9.3f ms  %6.2f TF/s\n", "mlp_step/784-256-256-10/b1024", ms, flop / ms / 1e9);
    json += ",\n {\"name\": \"train_step/tilegrad/mlp784-256-256-10/b1024/device:0\", \"run_type\": \"iteration\", "
            "\"real_time\": " + std::to_string(ms) + ", \"time_unit\": \"ms\", \"FLOPS\": " +
            std::to_string(flop / ms * 1e3) + "}";
  }
  flush();
  // CUDA graphs: one replay of a captured training step against the same step launched
  // op by op, on one stream, with SGD (momentum 0.9) and with AdamW (its rate and step
  // count live on the device: each replay corrects for its own step). The seed MLP
  // 1-10-1 (MSE, batch 10) is all launch overhead; 784-256-256-10 at batch 128
  // (cross-entropy) partly.
  {
    using namespace tg;
    tg::cuda::Stream stream(0);
    tg::cuda::StreamGuard on(stream);
    const cudaStream_t cs = static_cast<cudaStream_t>(stream.handle());
    struct Net {
      const char* name;
      std::vector<index_t> widths;
      index_t batch;
    };
    const Net nets[] = {{"mlp1-10-1/b10", {1, 10, 1}, 10}, {"mlp784-256-256-10/b128", {784, 256, 256, 10}, 128}};
    for (const Net& net : nets) {
      for (const std::string optimizer : {"sgd", "adamw"}) {
        Generator g(1);
        const auto model = nn::mlp(net.widths, Activation{Act::relu}, &g);
        model->to(Device::cuda(0));
        const TensorOptions on_gpu = TensorOptions().with_device(Device::cuda(0));
        const Tensor x = Tensor::randn({net.batch, net.widths.front()}, on_gpu, &g);
        const bool classify = net.widths.back() > 1;
        std::vector<std::int64_t> labels(std::size_t(net.batch));
        for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = std::int64_t(i % 10);
        const index_t rows[] = {net.batch};
        const Tensor y = classify ? Tensor::from_vector(labels, rows, on_gpu) : Tensor::randn({net.batch, 1}, on_gpu, &g);
        std::unique_ptr<nn::Optimizer> opt;
        if (optimizer == "sgd") opt = std::make_unique<nn::SGD>(model->parameters(), 0.01, 0.9);
        else opt = std::make_unique<nn::AdamW>(model->parameters(), 1e-3);
        Tensor loss;
        auto step = [&] {
          loss = classify ? cross_entropy((*model)(x), y) : mse_loss((*model)(x), y);
          opt->zero_grad();
          loss.backward();
          opt->step();
        };
        for (int i = 0; i < 3; ++i) step();
        const double eager = median_ms([&] { for (int i = 0; i < 20; ++i) step(); }, 10, cs) / 20;
        tg::cuda::Graph graph(stream);
        graph.capture(step);
        const double replay = median_ms([&] { for (int i = 0; i < 20; ++i) graph.replay(); }, 10, cs) / 20;
        const std::string name = std::string(net.name) + "/" + optimizer;
        std::printf("%-36s eager %8.1f us  graph %8.1f us  %5.2fx  (%zu nodes)\n", ("graph_step/" + name).c_str(),
                    eager * 1e3, replay * 1e3, eager / replay, graph.node_count());
        for (int impl = 0; impl < 2; ++impl)
          json += ",\n {\"name\": \"train_step/tilegrad/" + name + (impl ? "/graph" : "/eager") +
                  "/device:0\", \"run_type\": \"iteration\", \"real_time\": " + std::to_string(impl ? replay : eager) +
                  ", \"time_unit\": \"ms\"}";
      }
    }
  }
  flush();
  // The newest kernels last, so that a fault there costs no other row: the Hopper path of
  // the BF16 GEMM (wgmma + TMA, sm_90a) against the mma.sync kernel and cuBLAS, then the
  // BF16 tensor-core attention forward.
  fill_bf16();
  if (tg::cuda::half_gemm_wgmma_available()) {
    // TF32 first (it needs the float operands: random floats are in a and b's first
    // 256 MiB until fill_bf16 overwrites the front), then bf16.
    fill_uniform(41);
    for (index_t sz : {index_t(4096), index_t(8192)}) {
      const double flop = 2.0 * double(sz) * double(sz) * double(sz);
      const double hopper = median_ms([&] {
        tg::cuda::gemm_tf32(Trans::N, Trans::T, sz, sz, sz, 1.0f, a, sz, b, sz, 0.0f, c, sz, {},
                            tg::cuda::HalfGemmPath::wgmma);
      }, 10);
      const double mma = median_ms([&] {
        tg::cuda::gemm_tf32(Trans::N, Trans::T, sz, sz, sz, 1.0f, a, sz, b, sz, 0.0f, c, sz, {},
                            tg::cuda::HalfGemmPath::mma_sync);
      }, 10);
      const double theirs = median_ms(
          [&] { tg::peers::cublas_sgemm_tf32_rowmajor(Trans::N, Trans::T, sz, sz, sz, 1.0f, a, sz, b, sz, 0.0f, c, sz); },
          10);
      const std::string shape = std::to_string(sz) + "x" + std::to_string(sz) + "x" + std::to_string(sz);
      std::printf("%-22s %4s %7.1f TF/s (tf32 wgmma), mma.sync %7.1f TF/s, cuBLAS tf32 %7.1f TF/s %7.2fx\n",
                  shape.c_str(), "nt", flop / hopper / 1e9, flop / mma / 1e9, flop / theirs / 1e9, theirs / hopper);
      row("tilegrad", shape, "nt_tf32_wgmma", hopper, flop);
      row("tilegrad", shape, "nt_tf32", mma, flop);
      row("cublas", shape, "nt_tf32", theirs, flop);
    }
    fill_bf16();
    std::printf("\n%-22s %4s %12s %12s %12s %12s %12s %12s %8s\n", "bf16 GEMM (A B^T)", "op", "wgmma", "step 3",
                "step 2", "step 1", "mma.sync", "cuBLAS", "wgmma/cuBLAS");
    for (index_t sz : {index_t(4096), index_t(8192)}) {
      const double flop = 2.0 * double(sz) * double(sz) * double(sz);
      const auto* ha = reinterpret_cast<const std::uint16_t*>(a);
      const auto* hb = reinterpret_cast<const std::uint16_t*>(b);
      const tg::GemmEpilogue<float> none{};
      const double hopper = median_ms([&] {
        tg::cuda::gemm_bf16(sz, sz, sz, 1.0f, ha, sz, hb, sz, 0.0f, c, sz, none, tg::cuda::HalfGemmPath::wgmma);
      }, 10);
      const double step3 = median_ms([&] {
        tg::cuda::gemm_bf16(sz, sz, sz, 1.0f, ha, sz, hb, sz, 0.0f, c, sz, none, tg::cuda::HalfGemmPath::wgmma_cluster);
      }, 10);
      const double step2 = median_ms([&] {
        tg::cuda::gemm_bf16(sz, sz, sz, 1.0f, ha, sz, hb, sz, 0.0f, c, sz, none, tg::cuda::HalfGemmPath::wgmma_128x256);
      }, 10);
      const double step1 = median_ms([&] {
        tg::cuda::gemm_bf16(sz, sz, sz, 1.0f, ha, sz, hb, sz, 0.0f, c, sz, none, tg::cuda::HalfGemmPath::wgmma_128x128);
      }, 10);
      const double mma = median_ms([&] {
        tg::cuda::gemm_bf16(sz, sz, sz, 1.0f, ha, sz, hb, sz, 0.0f, c, sz, none, tg::cuda::HalfGemmPath::mma_sync);
      }, 10);
      const double theirs = median_ms([&] { tg::peers::cublas_gemm_bf16_nt(sz, sz, sz, ha, sz, hb, sz, c, sz); }, 10);
      const std::string shape = std::to_string(sz) + "x" + std::to_string(sz) + "x" + std::to_string(sz);
      std::printf("%-22s %4s %7.1f TF/s %7.1f TF/s %7.1f TF/s %7.1f TF/s %7.1f TF/s %7.1f TF/s %7.2fx\n",
                  shape.c_str(), "nt", flop / hopper / 1e9, flop / step3 / 1e9, flop / step2 / 1e9, flop / step1 / 1e9,
                  flop / mma / 1e9, flop / theirs / 1e9, theirs / hopper);
      row("tilegrad", shape, "nt_bf16_wgmma", hopper, flop);
      row("tilegrad", shape, "nt_bf16_wgmma_cluster", step3, flop);
      row("tilegrad", shape, "nt_bf16_wgmma_128x256", step2, flop);
      row("tilegrad", shape, "nt_bf16_wgmma_128x128", step1, flop);
    }
  } else {
    std::printf("\nbf16 GEMM, wgmma path: not available on this device (needs compute capability 9.0)\n");
  }
  flush();
  {
    // The mma.sync forward, then both backward paths from its O and lse, a shape at a time
    // (flushed after each: a fault in the newer kernels costs only the rows after it), then
    // the Hopper forward on the same shapes last.
    std::printf("\n%-34s %10s %14s %14s\n", "attention (B 4, H 16, bf16)", "forward", "backward", "bwd atomic dQ");
    const index_t B = 4, H = 16;
    auto* qa = reinterpret_cast<tg::bfloat16*>(a);
    auto* vb = reinterpret_cast<tg::bfloat16*>(b);
    auto* oc = reinterpret_cast<tg::bfloat16*>(c);
    struct Shape {
      index_t S, D;
      bool causal;
    };
    std::vector<Shape> shapes;
    for (index_t S : {index_t(1024), index_t(4096)})
      for (index_t D : {index_t(64), index_t(128)})
        for (bool causal : {false, true}) shapes.push_back({S, D, causal});
    auto forward_args = [&](const Shape& sh) {
      const index_t head = sh.S * sh.D;  // 2^25 bf16 values per tensor at most: q and k fill a's 8192^2
      tg::AttentionForwardArgs<tg::bfloat16> fa;
      fa.dims = {B, H, H, sh.S, sh.S, sh.D};
      fa.scale = 1.0f / std::sqrt(float(sh.D));
      fa.causal = sh.causal;
      fa.q = {qa, H * head, head, sh.D, 1}, fa.k = {qa + B * H * head, H * head, head, sh.D, 1};
      fa.v = {vb, H * head, head, sh.D, 1}, fa.o = {oc, H * head, head, sh.D, 1};
      return fa;
    };
    auto name_of = [&](const Shape& sh) {
      return std::to_string(B) + "x" + std::to_string(H) + "x" + std::to_string(sh.S) + "x" + std::to_string(sh.D) +
             (sh.causal ? "/causal" : "");
    };
    auto flop_of = [&](const Shape& sh) {
      return 4.0 * double(B * H) * double(sh.S) * double(sh.S) * double(sh.D) / (sh.causal ? 2 : 1);
    };
    auto add_row = [&](const char* kind, const std::string& shape, double ms, double flop) {
      json += std::string(",\n {\"name\": \"") + kind + "/tilegrad-bf16/" + shape +
              "/device:0\", \"run_type\": \"iteration\", \"real_time\": " + std::to_string(ms) +
              ", \"time_unit\": \"ms\", \"FLOPS\": " + std::to_string(flop / ms * 1e3) + "}";
    };
    for (const Shape& sh : shapes) {
      const tg::AttentionForwardArgs<tg::bfloat16> fa = forward_args(sh);
      const index_t head = sh.S * sh.D;
      float* lse = c + B * H * head;  // past O's bytes
      const double ms = median_ms(
          [&] { tg::cuda::attention_forward_bf16(fa, lse, tg::cuda::AttentionForwardPath::mma_sync); }, 10);
      // The backward from this forward's O and lse; dO, dQ, dK, dV in b and c past O.
      tg::AttentionBackwardArgs<tg::bfloat16> ba;
      ba.dims = fa.dims, ba.scale = fa.scale, ba.causal = sh.causal, ba.q = fa.q, ba.k = fa.k, ba.v = fa.v;
      ba.o = {oc, H * head, head, sh.D, 1}, ba.d_o = {vb + B * H * head, H * head, head, sh.D, 1};
      auto* grads = reinterpret_cast<tg::bfloat16*>(c + 2 * B * H * head);  // past O and lse
      ba.dq = {grads, H * head, head, sh.D, 1}, ba.dk = {grads + B * H * head, H * head, head, sh.D, 1};
      ba.dv = {grads + 2 * B * H * head, H * head, head, sh.D, 1};
      const double back = median_ms([&] { tg::cuda::attention_backward_bf16(ba, lse); }, 5);
      const double flop = flop_of(sh);
      const std::string shape = name_of(sh);
      add_row("attention_fwd", shape, ms, flop);
      add_row("attention_bwd", shape, back, 2.5 * flop);
      flush();
      const double back_atomic = median_ms(
          [&] { tg::cuda::attention_backward_bf16(ba, lse, tg::cuda::AttentionBackwardPath::atomic_dq); }, 5);
      add_row("attention_bwd_atomic_dq", shape, back_atomic, 2.5 * flop);
      flush();
      std::printf("%-34s %7.1f TF/s %11.1f TF/s %11.1f TF/s\n", shape.c_str(), flop / ms / 1e9, 2.5 * flop / back / 1e9,
                  2.5 * flop / back_atomic / 1e9);
    }
    if (tg::cuda::half_gemm_wgmma_available()) {
      std::printf("\n%-34s %10s %14s\n", "attention fwd on wgmma (bf16)", "forward", "vs mma.sync");
      for (const Shape& sh : shapes) {
        const tg::AttentionForwardArgs<tg::bfloat16> fa = forward_args(sh);
        float* lse = c + B * H * sh.S * sh.D;
        const double ms = median_ms(
            [&] { tg::cuda::attention_forward_bf16(fa, lse, tg::cuda::AttentionForwardPath::wgmma); }, 10);
        const double mma = median_ms(
            [&] { tg::cuda::attention_forward_bf16(fa, lse, tg::cuda::AttentionForwardPath::mma_sync); }, 10);
        const double flop = flop_of(sh);
        add_row("attention_fwd_wgmma", name_of(sh), ms, flop);
        flush();
        std::printf("%-34s %7.1f TF/s %11.2fx\n", name_of(sh).c_str(), flop / ms / 1e9, mma / ms);
      }
    } else {
      std::printf("\nattention fwd on wgmma: not available on this device (needs compute capability 9.0)\n");
    }
  }
  flush();
  cudaFree(targets);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  return 0;
}
