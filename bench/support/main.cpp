// The main() of every benchmark binary: Google Benchmark's own flags, plus
//   - JSON written to build/bench-results/<binary>.json unless --benchmark_out is given
//     (TG_BENCH_RESULTS=DIR moves it);
//   - the machine in the JSON context: CPU model, ISA, threads, the measured FMA peak and
//     copy bandwidth, CUDA devices, commit, build type and flags.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/support/machine.hpp"
#include "tilegrad/cpu/isa.hpp"
#include "bench/peers/peers.hpp"
#include "tilegrad/cuda/runtime.hpp"

#ifndef TG_BENCH_RESULTS_DIR
#define TG_BENCH_RESULTS_DIR "bench-results"
#endif

namespace {

void add_context() {
  const tg::cpu::CpuInfo& info = tg::cpu::cpu_info();
  const tg::bench::Ceilings& c = tg::bench::ceilings();
  auto num = [](double v) {
    char s[32];
    std::snprintf(s, sizeof s, "%.2f", v);
    return std::string(s);
  };
  benchmark::AddCustomContext("tg_cpu_model", info.model);
  benchmark::AddCustomContext("tg_isa_features", info.features());
  benchmark::AddCustomContext("tg_cpu_path", tg::cpu::isa_name(tg::cpu::selected_isa()));
  benchmark::AddCustomContext("tg_threads", std::to_string(c.threads));
  benchmark::AddCustomContext("tg_fma_peak_gflops_1t", num(c.fma_gflops_1t));
  benchmark::AddCustomContext("tg_fma_peak_gflops", num(c.fma_gflops));
  benchmark::AddCustomContext("tg_fma_peak_isa", c.fma_isa);
  benchmark::AddCustomContext("tg_widest_peak_gflops_1t", num(c.widest_gflops_1t));
  benchmark::AddCustomContext("tg_widest_peak_gflops", num(c.widest_gflops));
  benchmark::AddCustomContext("tg_widest_peak_isa", c.widest_isa);
  benchmark::AddCustomContext("tg_copy_gbs_1t", num(c.copy_gbs_1t));
  benchmark::AddCustomContext("tg_copy_gbs", num(c.copy_gbs));
  std::string cuda = tg::cuda::version_string();
  const int n = tg::cuda::device_count();
  // Per device: its name and the GPU ceilings, measured here: device-to-device copy
  // bandwidth and cuBLAS's SGEMM rate at 4096^3.
  for (int i = 0; i < n; ++i) {
    cuda += "; cuda:" + std::to_string(i) + " " + tg::cuda::device_info(i).name;
    const double copy = tg::cuda::measure_copy_gbs(i), gemm = tg::peers::cublas_sgemm_gflops(i);
    benchmark::AddCustomContext("tg_gpu" + std::to_string(i) + "_copy_gbs", num(copy));
    benchmark::AddCustomContext("tg_gpu" + std::to_string(i) + "_cublas_sgemm_gflops", num(gemm));
  }
  if (n == 0) cuda += "; no device (" + tg::cuda::unavailable_reason() + ")";
  benchmark::AddCustomContext("tg_cuda", cuda);
  benchmark::AddCustomContext("tg_commit", TG_GIT_COMMIT);
  benchmark::AddCustomContext("tg_build_type", TG_BUILD_TYPE);
  benchmark::AddCustomContext("tg_build_flags", TG_BUILD_FLAGS);
  benchmark::AddCustomContext("tg_compiler", __VERSION__);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> extra;
  bool has_out = false;
  for (int i = 1; i < argc; ++i) has_out |= std::string(argv[i]).starts_with("--benchmark_out=");
  if (!has_out) {
    const char* env = std::getenv("TG_BENCH_RESULTS");
    const std::filesystem::path dir = env && *env ? env : TG_BENCH_RESULTS_DIR;
    std::filesystem::create_directories(dir);
    const std::string name = std::filesystem::path(argv[0]).filename().string();
    extra.push_back("--benchmark_out=" + (dir / (name + ".json")).string());
    extra.push_back("--benchmark_out_format=json");
  }
  std::vector<char*> args(argv, argv + argc);
  for (std::string& e : extra) args.push_back(e.data());
  int n = int(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  add_context();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
