// What this CPU can do, and which code path the CPU kernels take.
//
// The path is chosen once at run time from cpuid (and the OS's saved vector state, via
// xgetbv): avx512 when AVX-512 F, BW, DQ and VL are there and the OS saves the zmm and
// mask registers, else avx2 when AVX2 and FMA are there, else scalar. On aarch64 the
// path is neon (Advanced SIMD is in the baseline ISA, so every such CPU has it).
// TG_ISA=scalar|avx2|avx512|neon in the environment forces one, so that tests reach every path
// (BLIS's BLIS_ARCH_TYPE); forcing a path the CPU lacks throws tg::Error instead of dying
// on an illegal instruction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tg::cpu {

enum class Isa : std::uint8_t { scalar, avx2, avx512, neon };

struct CpuInfo {
  std::string vendor;  // "AuthenticAMD", "GenuineIntel", ...
  std::string model;   // the brand string, e.g. "AMD EPYC 7B13 64-Core Processor"
  int family = 0, model_number = 0;  // cpuid leaf 1, extended fields folded in
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool os_ymm = false;  // the OS saves YMM state (XCR0 bits 1 and 2)
  bool os_zmm = false;  // ... and ZMM and mask state (XCR0 bits 5-7)
  bool neon = false;    // AArch64 Advanced SIMD (always, on an aarch64 build)
  std::string features() const;  // "sse4.2 avx avx2 fma f16c avx512f ..." (what is usable)
};

const CpuInfo& cpu_info();           // read once, cached
const char* isa_name(Isa isa);       // "scalar", "avx2", "avx512", "neon"
bool isa_supported(Isa isa);
std::vector<Isa> supported_isas();   // every path this CPU can run, scalar first
std::string isa_missing(Isa isa);    // the features this CPU lacks for isa ("" when none)
Isa selected_isa();                  // TG_ISA if set (checked), else the best supported

// The data caches one core sees: size in bytes (per core for L1 and L2; L3 whole, with
// the number of logical CPUs that share it) and the associativity of L1 and L2. Read once from
// cpuid's deterministic cache leaf (4 on Intel, 0x8000001D on AMD), falling back to
// sysconf and sysfs; clamped to sane ranges with conservative values where unknown (a
// hypervisor may report an L3 of hundreds of MiB: 480 MiB on a 2-vCPU VM here). The GEMM
// derives its blocking from this (cpu/gemm/gemm_impl.hpp, blocking_for).
struct CacheSizes {
  std::size_t l1, l2, l3;
  int l1_ways = 8, l2_ways = 8;
  int l3_shared_by = 1;  // logical CPUs sharing the L3
  std::size_t l3_per_core() const { return l3 / std::size_t(l3_shared_by < 1 ? 1 : l3_shared_by); }
};
// Reads the caches (from cpuid where it describes them, else the OS), clamped.
CacheSizes read_cache_sizes();
const CacheSizes& cache_sizes();

// OpenMP threads the CPU kernels use (1 when built without OpenMP).
int num_threads();
void set_num_threads(int n);  // n >= 1, else tg::Error

}  // namespace tg::cpu
