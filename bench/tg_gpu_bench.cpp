// The GPU benchmarks that run without Google Benchmark (the GPU machine has none): our
// CUDA SGEMM (cuda/gemm.cu) against cuBLAS on the same device pointers, square shapes
// and all four transposes at 4096, timed with CUDA events (one warm-up, then the median
// of 10 calls; the inputs stay the same, so L2 holds what fits: at these sizes the
// operands are 64-768 MiB and do not). Prints a table with the ratio to cuBLAS and writes
// Google Benchmark-style JSON rows (gemm/<impl>/<M>x<N>x<K>/<tt>/device:<d>, FLOPS).
//
//   build/bench/tg_gpu_bench [--out FILE.json] [--quick]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "bench/peers/peers.hpp"
#include "cuda/gemm.hpp"
#include "cuda/kernels.hpp"
#include "cuda/runtime.hpp"

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

double median_ms(const std::function<void()>& f, int reps) {
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  f();  // warm-up
  CHECK(cudaDeviceSynchronize());
  std::vector<float> ms;
  for (int r = 0; r < reps; ++r) {
    CHECK(cudaEventRecord(a));
    f();
    CHECK(cudaEventRecord(b));
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

  const index_t max_elems = index_t(1) << 28;  // 8192^2 floats for GEMM, 1 GiB for the memory-bound rows
  float *a = nullptr, *b = nullptr, *c = nullptr;
  CHECK(cudaMalloc(&a, std::size_t(max_elems) * sizeof(float)));
  CHECK(cudaMalloc(&b, std::size_t(max_elems) * sizeof(float)));
  CHECK(cudaMalloc(&c, std::size_t(max_elems) * sizeof(float)));
  CHECK(cudaMemset(a, 0, std::size_t(max_elems) * sizeof(float)));
  CHECK(cudaMemset(b, 0, std::size_t(max_elems) * sizeof(float)));
  const tg::cuda::DeviceInfo dev = tg::cuda::device_info(0);
  std::printf("tg_gpu_bench: %s; SGEMM, median of 10 calls\n", dev.name.c_str());
  std::printf("%-22s %4s %12s %12s %8s\n", "shape", "op", "tilegrad", "cuBLAS", "ratio");
  std::string json = "{\"context\": {\"tg_gpu\": \"" + dev.name + "\"}, \"benchmarks\": [";
  bool first = true;
  for (const Case& cs : cases) {
    const index_t lda = cs.ta == Trans::N ? cs.k : cs.m, ldb = cs.tb == Trans::N ? cs.n : cs.k, ldc = cs.n;
    const double flop = 2.0 * double(cs.m) * double(cs.n) * double(cs.k);
    const double ours = median_ms([&] { tg::cuda::gemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc); }, 10);
    const double theirs = median_ms(
        [&] { tg::peers::cublas_sgemm_rowmajor(cs.ta, cs.tb, cs.m, cs.n, cs.k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc); }, 10);
    const std::string shape = std::to_string(cs.m) + "x" + std::to_string(cs.n) + "x" + std::to_string(cs.k);
    const std::string tt = std::string(cs.ta == Trans::N ? "n" : "t") + (cs.tb == Trans::N ? "n" : "t");
    std::printf("%-22s %4s %8.1f TF/s %8.1f TF/s %7.2fx\n", shape.c_str(), tt.c_str(), flop / ours / 1e9,
                theirs > 0 ? flop / theirs / 1e9 : 0.0, theirs > 0 ? theirs / ours : 0.0);
    for (int impl = 0; impl < 2; ++impl) {
      const double ms = impl == 0 ? ours : theirs;
      json += std::string(first ? "" : ",") + "\n {\"name\": \"gemm/" + (impl == 0 ? "tilegrad" : "cublas") + "/" +
              shape + "/" + tt + "/device:0\", \"run_type\": \"iteration\", \"real_time\": " + std::to_string(ms) +
              ", \"time_unit\": \"ms\", \"FLOPS\": " + std::to_string(ms > 0 ? flop / ms * 1e3 : 0.0) + "}";
      first = false;
    }
  }
  // Memory-bound kernels on 1 GiB: GB/s (bytes read + written) against the
  // device-to-device copy of the same run.
  const double copy = tg::cuda::measure_copy_gbs(0);
  std::printf("\n%-30s %12s %10s   (copy %.0f GB/s)\n", "memory-bound", "GB/s", "of copy", copy);
  struct Mem {
    std::string name;
    double bytes;
    std::function<void()> run;
  };
  const index_t n = 1 << 28;  // 1 GiB of floats per operand
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
  };
  for (const Mem& m : mems) {
    const double ms = median_ms(m.run, 10), gbs = m.bytes / (ms * 1e-3) / 1e9;
    std::printf("%-30s %12.0f %9.0f%%\n", m.name.c_str(), gbs, copy > 0 ? 100 * gbs / copy : 0.0);
    json += ",\n {\"name\": \"" + m.name.substr(0, m.name.find('/')) + "/tilegrad" + m.name.substr(m.name.find('/')) +
            "/device:0\", \"run_type\": \"iteration\", \"real_time\": " + std::to_string(ms) +
            ", \"time_unit\": \"ms\", \"bytes_per_second\": " + std::to_string(gbs * 1e9) + "}";
  }
  json += "\n]}\n";
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  if (!out.empty()) {
    std::ofstream f(out + ".tmp");
    f << json;
    f.close();
    std::rename((out + ".tmp").c_str(), out.c_str());
  }
  return 0;
}
