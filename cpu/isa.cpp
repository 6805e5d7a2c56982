#include "tilegrad/cpu/isa.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <span>
#include <string>
#include <string_view>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define TG_X86 1
#endif
#include <unistd.h>
#if defined(_OPENMP)
#include "tilegrad/cpu/omp.hpp"
#endif

#include "tilegrad/kernels/error.hpp"

namespace tg::cpu {

namespace {

CpuInfo read_cpu_info() {
  CpuInfo info;
#ifdef TG_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return info;
  const unsigned max_leaf = a;
  char vendor[13] = {};
  std::memcpy(vendor + 0, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  info.vendor = vendor;

  __get_cpuid(1, &a, &b, &c, &d);
  info.family = int((a >> 8) & 0xf);
  info.model_number = int((a >> 4) & 0xf);
  if (info.family == 0xf) info.family += int((a >> 20) & 0xff);
  if (info.family == 0x6 || info.family >= 0xf) info.model_number += int((a >> 16) & 0xf) << 4;
  const bool osxsave = c & (1u << 27);
  info.sse42 = c & (1u << 20);
  const bool avx = c & (1u << 28);
  const bool fma = c & (1u << 12);
  const bool f16c = c & (1u << 29);
  if (osxsave) {
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    info.os_ymm = (xcr0_lo & 0x6) == 0x6;
    info.os_zmm = info.os_ymm && (xcr0_lo & 0xe0) == 0xe0;
  }
  bool avx2 = false, avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  if (max_leaf >= 7) {
    __get_cpuid_count(7, 0, &a, &b, &c, &d);
    avx2 = b & (1u << 5);
    avx512f = b & (1u << 16);
    avx512dq = b & (1u << 17);
    avx512bw = b & (1u << 30);
    avx512vl = b & (1u << 31);
  }
  // A feature counts only when the OS saves the registers it uses.
  info.avx = avx && info.os_ymm;
  info.avx2 = avx2 && info.os_ymm;
  info.fma = fma && info.os_ymm;
  info.f16c = f16c && info.os_ymm;
  info.avx512f = avx512f && info.os_zmm;
  info.avx512bw = avx512bw && info.os_zmm;
  info.avx512dq = avx512dq && info.os_zmm;
  info.avx512vl = avx512vl && info.os_zmm;

  unsigned ext = __get_cpuid_max(0x80000000u, nullptr);
  if (ext >= 0x80000004u) {
    char brand[49] = {};
    for (unsigned leaf = 0; leaf < 3; ++leaf) {
      __get_cpuid(0x80000002u + leaf, &a, &b, &c, &d);
      std::memcpy(brand + 16 * leaf + 0, &a, 4);
      std::memcpy(brand + 16 * leaf + 4, &b, 4);
      std::memcpy(brand + 16 * leaf + 8, &c, 4);
      std::memcpy(brand + 16 * leaf + 12, &d, 4);
    }
    std::string_view s(brand);
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.remove_suffix(1);
    info.model = std::string(s);
  }
#endif
#if defined(__aarch64__)
  // Advanced SIMD is part of AArch64's baseline; the model from the kernel's cpuinfo
  // (the MIDR fields: "CPU implementer" 0x41 is Arm, part 0xd40 Neoverse V1, 0xd4f V2).
  info.neon = true;
  info.vendor = "aarch64";
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, implementer, part;
  auto field = [&](std::string_view key, std::string& out) {
    const std::size_t colon = line.find(':');
    if (out.empty() && line.rfind(key, 0) == 0 && colon != std::string::npos) out = line.substr(colon + 1);
  };
  while ((implementer.empty() || part.empty()) && std::getline(cpuinfo, line)) {
    field("CPU implementer", implementer);
    field("CPU part", part);
  }
  if (!implementer.empty()) info.model = "aarch64 CPU (implementer" + implementer + ", part" + part + ")";
#endif
  if (info.model.empty()) info.model = "unknown CPU";
  return info;
}

}  // namespace

std::string CpuInfo::features() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(sse42, "sse4.2");
  add(avx, "avx");
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512dq, "avx512dq");
  add(avx512vl, "avx512vl");
  add(neon, "neon");
  return s.empty() ? "none" : s;
}

const CpuInfo& cpu_info() {
  static const CpuInfo info = read_cpu_info();
  return info;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::neon: return "neon";
  }
  return "?";
}

namespace {

// The features each path needs, in one list that both isa_supported and isa_missing read.
struct Feature {
  bool CpuInfo::*have;
  const char* name;
};
constexpr Feature kAvx2Needs[] = {{&CpuInfo::avx2, "avx2"}, {&CpuInfo::fma, "fma"}};
constexpr Feature kAvx512Needs[] = {{&CpuInfo::avx2, "avx2"},         {&CpuInfo::fma, "fma"},
                                    {&CpuInfo::f16c, "f16c"},         {&CpuInfo::avx512f, "avx512f"},
                                    {&CpuInfo::avx512bw, "avx512bw"}, {&CpuInfo::avx512dq, "avx512dq"},
                                    {&CpuInfo::avx512vl, "avx512vl"}};
constexpr Feature kNeonNeeds[] = {{&CpuInfo::neon, "neon"}};

std::span<const Feature> needs(Isa isa) {
  switch (isa) {
    case Isa::scalar: return {};
    case Isa::avx2: return kAvx2Needs;
    case Isa::avx512: return kAvx512Needs;
    case Isa::neon: return kNeonNeeds;
  }
  return {};
}

}  // namespace

bool isa_supported(Isa isa) {
  for (const Feature& f : needs(isa))
    if (!(cpu_info().*f.have)) return false;
  return true;
}

std::string isa_missing(Isa isa) {
  std::string s;
  for (const Feature& f : needs(isa)) {
    if (cpu_info().*f.have) continue;
    if (!s.empty()) s += ' ';
    s += f.name;
  }
  return s;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> v{Isa::scalar};
  if (isa_supported(Isa::avx2)) v.push_back(Isa::avx2);
  if (isa_supported(Isa::avx512)) v.push_back(Isa::avx512);
  if (isa_supported(Isa::neon)) v.push_back(Isa::neon);
  return v;
}

Isa selected_isa() {
  const char* forced = std::getenv("TG_ISA");
  if (forced == nullptr || *forced == '\0') return supported_isas().back();
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon}) {
    if (std::string_view(forced) != isa_name(isa)) continue;
    TG_CHECK(isa_supported(isa), "TG_ISA", "TG_ISA", "this CPU (", cpu_info().model, ") cannot run the ", forced,
             " path: it lacks ", isa_missing(isa), " (it has ", cpu_info().features(), ")");
    return isa;
  }
  detail::throw_error("TG_ISA", "TG_ISA", "expected scalar, avx2, avx512 or neon, got \"", forced, "\"");
}

int num_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) {
  TG_CHECK(n >= 1, "set_num_threads", "n", "expected n >= 1, got ", n);
#if defined(_OPENMP)
  omp_set_num_threads(n);
#endif
}

namespace {

std::size_t sysfs_cache_bytes(int index) {
  std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size");
  std::string s;
  if (!(f >> s) || s.empty()) return 0;
  std::size_t v = std::strtoull(s.c_str(), nullptr, 10);
  if (s.back() == 'K') v <<= 10;
  if (s.back() == 'M') v <<= 20;
  return v;
}

struct CacheLeaf {
  std::size_t bytes = 0;
  int ways = 0, shared_by = 0;
};

// Data or unified cache of `level` from cpuid's deterministic cache parameters: leaf 4
// (Intel) or 0x8000001D (AMD, with topology extensions). Same layout in both: EAX type
// (bits 0-4: 1 data, 3 unified) and level (5-7), sharing CPUs - 1 (14-25); EBX line - 1
// (0-11), partitions - 1 (12-21), ways - 1 (22-31); ECX sets - 1.
CacheLeaf cpuid_cache(int level) {
  CacheLeaf r;
#ifdef TG_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  unsigned leaf = 0;
  const std::string& vendor = cpu_info().vendor;
  if (vendor == "GenuineIntel") {
    if (__get_cpuid_max(0, nullptr) >= 4) leaf = 4;
  } else if (vendor == "AuthenticAMD" || vendor == "HygonGenuine") {
    if (__get_cpuid_max(0x80000000u, nullptr) >= 0x8000001Du) {
      __get_cpuid(0x80000001u, &a, &b, &c, &d);
      if (c & (1u << 22)) leaf = 0x8000001Du;  // topology extensions
    }
  }
  if (leaf == 0) return r;
  for (unsigned sub = 0; sub < 16; ++sub) {
    __get_cpuid_count(leaf, sub, &a, &b, &c, &d);
    const unsigned type = a & 0x1f;
    if (type == 0) break;
    if ((type != 1 && type != 3) || int((a >> 5) & 7) != level) continue;
    const int line = int(b & 0xfff) + 1;
    const int partitions = int((b >> 12) & 0x3ff) + 1;
    r.ways = int((b >> 22) & 0x3ff) + 1;
    r.bytes = std::size_t(r.ways) * std::size_t(partitions) * std::size_t(line) * (std::size_t(c) + 1);
    r.shared_by = int((a >> 14) & 0xfff) + 1;
    return r;
  }
#else
  (void)level;
#endif
  return r;
}

}  // namespace

CacheSizes read_cache_sizes() {
  auto pick = [](long v, std::size_t fallback) { return v > 0 ? std::size_t(v) : fallback; };
  const CacheLeaf c1 = cpuid_cache(1), c2 = cpuid_cache(2), c3 = cpuid_cache(3);
  CacheSizes r{};
  r.l1 = c1.bytes ? c1.bytes : pick(sysconf(_SC_LEVEL1_DCACHE_SIZE), 32 << 10);
  r.l2 = c2.bytes ? c2.bytes : pick(sysconf(_SC_LEVEL2_CACHE_SIZE), 512 << 10);
  r.l3 = c3.bytes ? c3.bytes : sysfs_cache_bytes(3);
  if (r.l3 == 0) r.l3 = pick(sysconf(_SC_LEVEL3_CACHE_SIZE), 8 << 20);
  r.l1_ways = c1.ways ? c1.ways : int(pick(sysconf(_SC_LEVEL1_DCACHE_ASSOC), 8));
  r.l2_ways = c2.ways ? c2.ways : int(pick(sysconf(_SC_LEVEL2_CACHE_ASSOC), 8));
  r.l3_shared_by = c3.shared_by ? c3.shared_by : 1;
  r.l1 = std::clamp<std::size_t>(r.l1, 16 << 10, 128 << 10);
  r.l2 = std::clamp<std::size_t>(r.l2, 256 << 10, 4 << 20);
  r.l3 = std::clamp<std::size_t>(r.l3, 2 << 20, 256 << 20);
  r.l1_ways = std::clamp(r.l1_ways, 2, 32);
  r.l2_ways = std::clamp(r.l2_ways, 2, 32);
  r.l3_shared_by = std::clamp(r.l3_shared_by, 1, 1024);
  return r;
}

const CacheSizes& cache_sizes() {
  static const CacheSizes c = read_cache_sizes();
  return c;
}

}  // namespace tg::cpu
