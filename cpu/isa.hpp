// What this CPU can do, and which code path the CPU kernels take.
//
// The path is chosen once at run time from cpuid (and the OS's saved vector state, via
// xgetbv): avx2 when AVX2 and FMA are there, scalar otherwise. TG_ISA=scalar|avx2 in the
// environment forces one, so that tests reach every path (BLIS's BLIS_ARCH_TYPE); forcing
// a path the CPU lacks throws tg::Error instead of dying on an illegal instruction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tg::cpu {

enum class Isa : std::uint8_t { scalar, avx2 };

struct CpuInfo {
  std::string vendor;  // "AuthenticAMD", "GenuineIntel", ...
  std::string model;   // the brand string, e.g. "AMD EPYC 7B13 64-Core Processor"
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false, avx512f = false;
  bool os_ymm = false;  // the OS saves YMM state (XCR0 bits 1 and 2)
  bool os_zmm = false;  // ... and ZMM state (XCR0 bits 5-7)
  std::string features() const;  // "sse4.2 avx avx2 fma f16c" (what is usable)
};

const CpuInfo& cpu_info();           // read once, cached
const char* isa_name(Isa isa);       // "scalar", "avx2"
bool isa_supported(Isa isa);
std::vector<Isa> supported_isas();   // every path this CPU can run, scalar first
Isa selected_isa();                  // TG_ISA if set (checked), else the best supported

// Data cache sizes in bytes (per core for L1 and L2; L3 as one core sees it). L1 and L2
// from sysconf (glibc reads cpuid); L3 from sysfs, because under some hypervisors glibc
// reports it tenfold (320 MiB on a 32 MiB Zen 4 VM, seen here). Read once; clamped to
// sane ranges with conservative fallbacks when unknown.
struct CacheSizes {
  std::size_t l1, l2, l3;
};
const CacheSizes& cache_sizes();

// OpenMP threads the CPU kernels use (1 when built without OpenMP).
int num_threads();
void set_num_threads(int n);  // n >= 1, else tg::Error

}  // namespace tg::cpu
