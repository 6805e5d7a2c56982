// tg_info: prints this machine as tilegrad sees it (CPU model, ISA features, the chosen
// CPU path, threads, the measured FMA peak and copy bandwidth, CUDA devices) and the
// peers compiled in. The first half of scripts/run's output.
#include <cstdio>
#include <string>

#include "bench/peers/peers.hpp"
#include "bench/support/machine.hpp"
#include "tilegrad/cuda/runtime.hpp"

int main() {
  try {
    std::printf("tilegrad machine\n%s", tg::bench::machine_summary().c_str());
    std::printf("peers:\n");
    for (const tg::peers::SgemmPeer& p : tg::peers::sgemm_peers())
      std::printf("  %-9s %s\n", p.name, p.describe().c_str());
    // On a GPU: one kernel launched and checked per device (y = 2x + 1 over 1M floats).
    int failures = 0;
    for (int i = 0; i < tg::cuda::device_count(); ++i) {
      const std::string why = tg::cuda::launch_check(i);
      std::printf("cuda:%d launch check: %s\n", i, why.empty() ? "ok" : why.c_str());
      failures += !why.empty();
      const double cublas = tg::peers::cublas_sgemm_gflops(i);
      if (cublas > 0) std::printf("cuda:%d cuBLAS SGEMM 4096^3: %.0f GFLOP/s\n", i, cublas);
    }
    return failures == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tg_info: %s\n", e.what());
    return 1;
  }
}
