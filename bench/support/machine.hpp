// The measured ceilings of this machine, which every benchmark quotes its fraction of:
// the FP32 FMA peak (GFLOP/s) and the STREAM-style copy bandwidth (GB/s, bytes read +
// bytes written), each on 1 thread and on all threads. Measured, not taken from a
// datasheet: on a shared VM the datasheet is fiction.
#pragma once

#include <string>

#include "tilegrad/cpu/isa.hpp"

namespace tg::bench {

struct Ceilings {
  int threads = 1;              // threads of the "all threads" figures
  // The FMA peak of the path tilegrad runs (cpu::selected_isa(): 512-bit FMAs on avx512,
  // 256-bit on avx2; 0 on scalar, which has no probe): peak_frac is a fraction of this.
  const char* fma_isa = "scalar";
  double fma_gflops_1t = 0;
  double fma_gflops = 0;
  // The same for the widest path this CPU has (equal to the above unless TG_ISA chose
  // a narrower one): what a peer running that path may reach.
  const char* widest_isa = "scalar";
  double widest_gflops_1t = 0;
  double widest_gflops = 0;
  double copy_gbs_1t = 0;
  double copy_gbs = 0;
};

// Runs the probes (about a second in all); the result is cached for the process.
const Ceilings& ceilings();

// FMA throughput of `threads` threads, each running independent chains of FMAs of the
// path's width: 512 bits for avx512 (fma_avx512.cpp), 256 for avx2 (fma_avx2.cpp); 0
// for scalar or a path the CPU lacks.
double measure_fma_gflops(int threads, cpu::Isa isa);
// Copy of two 128 MiB arrays (far beyond L3) by `threads` threads; best of a few runs.
double measure_copy_gbs(int threads);

// One line per fact, "key: value", for people; the same facts go into the JSON context.
std::string machine_summary();

}  // namespace tg::bench
