// The CPU op templates at width 16 in plain C++ (simd::P16, cpu/vmath/vec_wide.hpp): a
// table with the AVX-512 path's algorithms (16-lane tails, masks, cross-lane
// reductions) that runs on any CPU, so that the tests exercise them where the machine
// has no AVX-512. Its GEMM is the portable one (the 12x32 micro-kernel is intrinsics
// only and waits for the hardware).
#pragma once

#include <string>
#include <vector>

#include "tilegrad/cpu/activation.hpp"
#include "tilegrad/kernels/ops.hpp"

namespace tg::testing {

const OpTable& wide16_ops();
// The vector math functions at width 16 (cpu::math_array_* at P16).
void math_array_wide16(cpu::MathFn fn, index_t n, const float* x, float* y);

// Every CPU table a test should run: each path this CPU supports (scalar, avx2, avx512;
// scalar and neon on aarch64) and the portable 16-lane table (not under an emulator,
// testing::emulated()).
std::vector<const OpTable*> cpu_tables();

// One implementation a CPU kernel test runs: a table of cpu_tables() at a thread count.
// The kernel tests (activation, gemm, layer_norm, softmax, ...) loop over these, one
// test body for every path.
struct CpuImpl {
  std::string name;
  const TypedOps<float>* ops;
  int threads;
};
// Every table of cpu_tables() at 1 and 2 threads (1 under an emulator); without the 16-lane table when
// `with_wide16` is false (its GEMM is the portable one, already in the list).
std::vector<CpuImpl> cpu_implementations(bool with_wide16 = true);

}  // namespace tg::testing
