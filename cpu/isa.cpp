#include "cpu/isa.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <unistd.h>
#define TG_X86 1
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif

#include "kernels/error.hpp"

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
  bool avx2 = false, avx512f = false;
  if (max_leaf >= 7) {
    __get_cpuid_count(7, 0, &a, &b, &c, &d);
    avx2 = b & (1u << 5);
    avx512f = b & (1u << 16);
  }
  // A feature counts only when the OS saves the registers it uses.
  info.avx = avx && info.os_ymm;
  info.avx2 = avx2 && info.os_ymm;
  info.fma = fma && info.os_ymm;
  info.f16c = f16c && info.os_ymm;
  info.avx512f = avx512f && info.os_zmm;

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
  }
  return "?";
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return cpu_info().avx2 && cpu_info().fma;
  }
  return false;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> v{Isa::scalar};
  if (isa_supported(Isa::avx2)) v.push_back(Isa::avx2);
  return v;
}

Isa selected_isa() {
  const char* forced = std::getenv("TG_ISA");
  if (forced == nullptr || *forced == '\0') return supported_isas().back();
  for (Isa isa : {Isa::scalar, Isa::avx2}) {
    if (std::string_view(forced) != isa_name(isa)) continue;
    TG_CHECK(isa_supported(isa), "TG_ISA", "TG_ISA", "this CPU (", cpu_info().model,
             ") cannot run the ", forced, " path; it has: ", cpu_info().features());
    return isa;
  }
  detail::throw_error("TG_ISA", "TG_ISA", "expected scalar or avx2, got \"", forced, "\"");
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
}  // namespace

const CacheSizes& cache_sizes() {
  static const CacheSizes c = [] {
    auto pick = [](long v, std::size_t fallback) { return v > 0 ? std::size_t(v) : fallback; };
    CacheSizes r{pick(sysconf(_SC_LEVEL1_DCACHE_SIZE), 32 << 10), pick(sysconf(_SC_LEVEL2_CACHE_SIZE), 512 << 10),
                 sysfs_cache_bytes(3)};
    if (r.l3 == 0) r.l3 = pick(sysconf(_SC_LEVEL3_CACHE_SIZE), 8 << 20);
    r.l1 = std::clamp<std::size_t>(r.l1, 16 << 10, 128 << 10);
    r.l2 = std::clamp<std::size_t>(r.l2, 256 << 10, 4 << 20);
    r.l3 = std::clamp<std::size_t>(r.l3, 2 << 20, 256 << 20);
    return r;
  }();
  return c;
}

}  // namespace tg::cpu
