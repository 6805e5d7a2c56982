// Helpers every benchmark binary shares: rate counters and the machine's ceilings.
//
// Row names follow docs/design.md: <op>/<impl>/<shape>[/<variant>]/threads:<n>. The counters:
//   FLOPS          FLOP/s (Google Benchmark's kIsRate), when the op has a FLOP count
//   bytes_per_second  bytes moved per second (read + written), when it has a byte count
//   peak_frac      FLOP/s over the measured FMA peak for the row's thread count
//   bw_frac        bytes/s over the measured copy bandwidth for the row's thread count
// The ratio to a peer is computed from rows of the same run (scripts/bench-summary).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "bench/support/machine.hpp"

namespace tg::bench {

// Sets the counters above for `state.iterations()` runs of an op doing `flops` FLOPs
// and moving `bytes` bytes per run (either may be 0 to leave its counters out).
void set_rates(benchmark::State& state, double flops, double bytes, int threads);

// Pins the OpenMP thread count for tilegrad's kernels and every peer that has a knob.
void set_threads(int threads);

// Fills p[0, n) with uniform values in [lo, hi), deterministic for a seed, in parallel
// (the memory-bound benchmarks allocate hundreds of MiB per row).
void fill_uniform(float* p, std::int64_t n, std::uint64_t seed, float lo, float hi);

// Registers copy/stream/<shape>/threads:<t>: a copy of n floats on t threads, the
// floor that memory-bound rows quote (bytes = read + written).
void register_copy_floor(const std::string& shape, std::int64_t n, int threads);

}  // namespace tg::bench
