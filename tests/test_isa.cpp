// cpuid, the TG_ISA override and the CPU op tables.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <sstream>
#include <string>

#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::cpu {
namespace {

// Sets TG_ISA for the scope of one test and restores what was there.
class ScopedIsaEnv {
 public:
  explicit ScopedIsaEnv(const char* value) {
    if (const char* old = std::getenv("TG_ISA")) saved_ = old, had_ = true;
    ::setenv("TG_ISA", value, 1);
  }
  ~ScopedIsaEnv() { had_ ? (void)::setenv("TG_ISA", saved_.c_str(), 1) : (void)::unsetenv("TG_ISA"); }

 private:
  std::string saved_;
  bool had_ = false;
};

TEST(Isa, ReadsTheCpuConsistently) {
  const CpuInfo& info = cpu_info();
  EXPECT_FALSE(info.model.empty());
  EXPECT_TRUE(!info.avx2 || info.avx);
  EXPECT_TRUE(!(info.avx2 || info.fma) || info.os_ymm);
  EXPECT_TRUE(!info.avx512f || info.os_zmm);
  EXPECT_EQ(supported_isas().front(), Isa::scalar);
  EXPECT_EQ(isa_supported(Isa::avx2), info.avx2 && info.fma);
  EXPECT_EQ(isa_supported(Isa::avx512),
            isa_supported(Isa::avx2) && info.f16c && info.avx512f && info.avx512bw && info.avx512dq && info.avx512vl);
  EXPECT_TRUE(!(info.avx512bw || info.avx512dq || info.avx512vl) || info.os_zmm);
  // NEON is aarch64's baseline: there on every aarch64 build, never on x86.
#if defined(__aarch64__)
  EXPECT_TRUE(info.neon);
#else
  EXPECT_FALSE(info.neon);
#endif
  EXPECT_EQ(isa_supported(Isa::neon), info.neon);
  EXPECT_FALSE(info.neon && isa_supported(Isa::avx2));
  // What isa_missing names is absent from the usable features, and an unsupported path
  // names something.
  std::set<std::string> have;
  std::istringstream features(info.features());
  for (std::string name; features >> name;) have.insert(name);
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon}) {
    const std::string missing = isa_missing(isa);
    EXPECT_EQ(missing.empty(), isa_supported(isa)) << isa_name(isa) << ": " << missing;
    std::istringstream names(missing);
    for (std::string name; names >> name;)
      EXPECT_EQ(have.count(name), 0u) << name << " is missing yet listed in " << info.features();
  }
  // The best path is the default.
  EXPECT_EQ(supported_isas().back(), isa_supported(Isa::avx512) ? Isa::avx512
                                     : isa_supported(Isa::avx2) ? Isa::avx2
                                     : isa_supported(Isa::neon) ? Isa::neon
                                                                : Isa::scalar);
}

TEST(Isa, TgIsaForcesAPathAndRejectsNonsense) {
  {
    ScopedIsaEnv env("scalar");
    EXPECT_EQ(selected_isa(), Isa::scalar);
  }
  // Each SIMD path: chosen when the CPU has it, else refused with an error naming it.
  for (Isa isa : {Isa::avx2, Isa::avx512, Isa::neon}) {
    ScopedIsaEnv env(isa_name(isa));
    if (isa_supported(isa)) {
      EXPECT_EQ(selected_isa(), isa);
      continue;
    }
    try {
      selected_isa();
      ADD_FAILURE() << "TG_ISA=" << isa_name(isa) << " accepted on a CPU without it";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(isa_name(isa)), std::string::npos) << e.what();
    }
  }
  {
    ScopedIsaEnv env("avx9000");
    EXPECT_THROW(selected_isa(), Error);
  }
}

TEST(CpuOps, EveryPathHasACompleteTable) {
  for (Isa isa : supported_isas()) {
    const OpTable& t = ops(isa);
    EXPECT_TRUE(t.complete()) << t.name;
    EXPECT_NE(std::string(t.name).find(isa_name(isa)), std::string::npos) << t.name;
  }
  EXPECT_TRUE(ops().complete());
  EXPECT_TRUE(reference_ops().complete());
}

// No CPU path serves the tensor cores' 16-bit entries: autograd widens 16-bit operands
// to f32 where they are null (kernels/ops.hpp's HalfOps).
TEST(CpuOps, NoPathServesTheSixteenBitEntries) {
  for (Isa isa : supported_isas()) {
    const OpTable& t = ops(isa);
    int set = 0;
#define TG_COUNT_HALF(name) set += t.half.name != nullptr ? 1 : 0;
    TG_HALF_OPS(TG_COUNT_HALF)
#undef TG_COUNT_HALF
    EXPECT_EQ(set, 0) << t.name;
  }
}

TEST(Threads, SetAndQuery) {
  const int before = num_threads();
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  set_num_threads(before);
  EXPECT_THROW(set_num_threads(0), Error);
}

}  // namespace
}  // namespace tg::cpu
