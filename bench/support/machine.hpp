// The measured ceilings of this machine, which every benchmark quotes its fraction of:
// the FP32 FMA peak (GFLOP/s) and the STREAM-style copy bandwidth (GB/s, bytes read +
// bytes written), each on 1 thread and on all threads. Measured, not taken from a
// datasheet: on a shared VM the datasheet is fiction.
#pragma once

#include <string>

namespace tg::bench {

struct Ceilings {
  int threads = 1;              // threads of the "all threads" figures
  double fma_gflops_1t = 0;     // 0 when the FMA probe cannot run (no AVX2/FMA)
  double fma_gflops = 0;
  double copy_gbs_1t = 0;
  double copy_gbs = 0;
};

// Runs the probes (about a second in all); the result is cached for the process.
const Ceilings& ceilings();

// FMA throughput of `threads` threads, each running independent chains of 256-bit FMAs
// (fma_avx2.cpp); 0 when the CPU has no AVX2+FMA.
double measure_fma_gflops(int threads);
// Copy of two 128 MiB arrays (far beyond L3) by `threads` threads; best of a few runs.
double measure_copy_gbs(int threads);

// One line per fact, "key: value", for people; the same facts go into the JSON context.
std::string machine_summary();

}  // namespace tg::bench
