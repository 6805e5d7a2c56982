// The GEMM's cache blocking (blocking_for, cpu/gemm/gemm_impl.hpp) and the fused
// attention's tile sizes (attn_impl::tiles_for, cpu/attention_impl.hpp) on the cache
// descriptions of real CPUs, for every micro-kernel shape: the invariants the loops rely
// on, not the numbers themselves (those follow from the models and may be retuned).
#include <gtest/gtest.h>

#include <numeric>
#include <string>

#include "tilegrad/cpu/attention_impl.hpp"
#include "tilegrad/cpu/gemm/gemm_impl.hpp"
#include "tilegrad/cpu/isa.hpp"

namespace tg::cpu {
namespace {

struct Machine {
  const char* name;
  CacheSizes caches;
};

// Per-core L1d and L2, the whole L3 and how many logical CPUs share it (vendors' data
// sheets; cpuid leaf 4 / 0x8000001D report the same).
CacheSizes caches(std::size_t l1k, int l1w, std::size_t l2k, int l2w, std::size_t l3m, int shared) {
  CacheSizes c{l1k << 10, l2k << 10, l3m << 20};
  c.l1_ways = l1w;
  c.l2_ways = l2w;
  c.l3_shared_by = shared;
  return c;
}

const Machine kMachines[] = {
    {"Zen 3 (EPYC 7B13)", caches(32, 8, 512, 8, 32, 16)},
    {"Zen 4 (EPYC 9004)", caches(32, 8, 1024, 8, 32, 16)},
    {"Ice Lake SP (Xeon 8375C)", caches(48, 12, 1280, 20, 54, 64)},
    {"Sapphire Rapids (Xeon 8480+)", caches(48, 12, 2048, 16, 105, 112)},
    {"Skylake SP (Xeon 8175M)", caches(32, 8, 1024, 16, 33, 48)},
    {"a 2-vCPU VM reporting a 256 MiB L3", caches(48, 12, 2048, 16, 256, 2)},
};

struct Kernel {
  int mr, nr;
  std::size_t elem;
};
const Kernel kKernels[] = {{6, 16, 4}, {6, 64, 4}, {12, 32, 4}, {4, 8, 4}, {4, 8, 8}};

TEST(GemmBlocking, PanelsFitTheirCacheLevelsOnRealCpus) {
  for (const Machine& m : kMachines)
    for (const Kernel& k : kKernels) {
      SCOPED_TRACE(std::string(m.name) + ", " + std::to_string(k.mr) + "x" + std::to_string(k.nr) + ", " +
                   std::to_string(k.elem) + "-byte elements");
      const gemm_impl::Blocking b = gemm_impl::blocking_for(m.caches, k.mr, k.nr, k.elem);
      const std::size_t S = k.elem, kc = std::size_t(b.kc), mc = std::size_t(b.mc), nc = std::size_t(b.nc);
      EXPECT_GT(b.kc, 0);
      EXPECT_EQ(b.mc % k.mr, 0) << "MC = " << b.mc;
      EXPECT_EQ(b.nc % k.nr, 0) << "NC = " << b.nc;
      EXPECT_GE(b.mc, k.mr);
      EXPECT_GE(b.nc, k.nr);
      const std::size_t way1 = m.caches.l1 / std::size_t(m.caches.l1_ways);
      if (kc * std::size_t(k.mr + k.nr) * S <= m.caches.l1 - way1) {
        // L1: the B micro-panel and one A micro-panel, with a way to spare for C's
        // lines, and the B micro-panel takes most of it (the model is not degenerate).
        EXPECT_GE(kc * std::size_t(k.nr) * S, m.caches.l1 / 4) << "KC = " << b.kc;
      } else {
        // A wide block: the B micro-panel in at most 1/16 of L2, the A micro-panel in
        // half of L1, and KC deep enough that C's passes are amortized.
        EXPECT_LE(kc * std::size_t(k.nr) * S, m.caches.l2 / 16) << "KC = " << b.kc;
        EXPECT_LE(kc * std::size_t(k.mr) * S, m.caches.l1 / 2) << "KC = " << b.kc;
        EXPECT_GE(b.kc, 128);
      }
      // L2: the A block and the B micro-panel, at most 3/4 of L2 for A.
      EXPECT_LE(mc * kc * S, m.caches.l2 * 3 / 4) << "MC = " << b.mc;
      EXPECT_LE(mc * kc * S + kc * std::size_t(k.nr) * S, m.caches.l2) << "MC = " << b.mc;
      // L3: the B block in half of this core's share (unless one panel is already more).
      if (nc > std::size_t(k.nr)) {
        EXPECT_LE(kc * nc * S, m.caches.l3_per_core() / 2) << "NC = " << b.nc;
      }
    }
}

TEST(GemmBlocking, LargerCachesNeverGiveAShallowerKc) {
  for (const Kernel& k : kKernels) {
    const auto small = gemm_impl::blocking_for(kMachines[0].caches, k.mr, k.nr, k.elem);
    const auto large = gemm_impl::blocking_for(kMachines[3].caches, k.mr, k.nr, k.elem);
    EXPECT_LE(small.kc, large.kc) << k.mr << "x" << k.nr;
  }
  // The 4x8 double block on Zen 3's 8-way 32 KiB L1 against a 12-way 48 KiB one: deeper.
  EXPECT_LT(gemm_impl::blocking_for(kMachines[0].caches, 4, 8, 8).kc,
            gemm_impl::blocking_for(kMachines[3].caches, 4, 8, 8).kc);
}

TEST(AttentionTiles, TilesFitTheirCacheLevelsOnRealCpus) {
  for (const Machine& m : kMachines)
    for (const Kernel& k : kKernels) {
      if (k.elem != 4) continue;  // the fused attention is float
      for (index_t D : {1, 16, 64, 128, 256}) {
        SCOPED_TRACE(std::string(m.name) + ", " + std::to_string(k.mr) + "x" + std::to_string(k.nr) + ", head dim " +
                     std::to_string(D));
        const attn_impl::Tiles t = attn_impl::tiles_for(m.caches, k.mr, k.nr, D);
        const index_t l1 = index_t(m.caches.l1 / 4), l2 = index_t(m.caches.l2 / 4), way = l1 / m.caches.l1_ways;
        EXPECT_EQ(t.br % k.mr, 0) << "br = " << t.br;
        EXPECT_GE(t.br, k.mr);
        EXPECT_EQ(t.bc % k.nr, 0) << "bc = " << t.bc;  // whole packed panels
        EXPECT_EQ(t.bc % 16, 0) << "bc = " << t.bc;    // whole vectors of the widest lane type
        EXPECT_LE(t.bc, 512);
        const index_t step = std::lcm<index_t>(k.nr, 16);
        const index_t panel = D * k.nr <= l1 / 2 ? D * k.nr : 0;  // larger ones stream from L2
        if (2 * step * t.br + panel <= l1 - way) {
          // L1 holds a tile two micro-panels wide beside the K panel: the tile as wide as fits.
          EXPECT_LE(t.br * t.bc + panel, l1 - way) << "bc = " << t.bc;
          EXPECT_GT((t.bc + step) * t.br + panel, l1 - way) << "bc = " << t.bc << " could grow";
        } else if (t.bc > step) {
          // It does not: the block sized for L2, the K and V blocks in an eighth of it.
          EXPECT_LE(2 * t.bc * D, l2 / 8) << "bc = " << t.bc;
          if (t.bc < 512 / step * step) {
            EXPECT_GT(2 * (t.bc + step) * D, l2 / 8) << "bc = " << t.bc << " could grow";
          }
        }
        EXPECT_EQ(t.bro % t.br, 0) << "bro = " << t.bro;
        EXPECT_GE(t.bro, t.br);
        if (t.bro > t.br) {
          EXPECT_LE(2 * t.bro * D + 2 * t.bc * D, l2 / 2) << "bro = " << t.bro;
        }
        EXPECT_EQ(t.brb % k.mr, 0) << "brb = " << t.brb;
        EXPECT_GE(t.brb, k.mr);
        if (t.brb > k.mr) {
          EXPECT_LE(2 * t.brb * t.bc + 4 * t.brb * D, l2 / 2) << "brb = " << t.brb;
        }
      }
    }
  // Where the tiles were first tuned by hand (Zen 4, the AVX2 6x16 micro-kernel, head
  // dim 64: 48-row score tiles, 128-key blocks) and on the Sapphire Rapids-class Xeon
  // with the 6x64 one (where 48 x 128 measured the same as 96 x 128 and 48 x 256): the
  // model gives those. Units: as many score tiles as half of L2 holds, at most 32
  // (Zen 4's 1 MiB: 18 tiles, 864 rows; the Xeon's 2 MiB: the 32, 1536 rows). And Zen 4
  // with the 6x64 one, whose 16 KiB K panel leaves a 32 KiB L1 one 64-key panel of
  // tile: 256-key blocks from L2 (measured there: 128 to 512 keys within a few percent
  // of each other, all 4-7% ahead of 64 in the forward), 16 tiles a unit.
  for (auto [machine, kernel, bc, bro] :
       {std::tuple<int, int, index_t, index_t>{1, 0, 128, 864}, {3, 1, 128, 1536}, {1, 1, 256, 768}}) {
    const attn_impl::Tiles t = attn_impl::tiles_for(kMachines[machine].caches, kKernels[kernel].mr, kKernels[kernel].nr, 64);
    EXPECT_EQ(t.br, 48) << kMachines[machine].name;
    EXPECT_EQ(t.bc, bc) << kMachines[machine].name;
    EXPECT_EQ(t.bro, bro) << kMachines[machine].name;
    EXPECT_EQ(t.brb, 96) << kMachines[machine].name;
  }
}

TEST(AttentionTiles, UnitsSplitTheQueryRowsEvenlyAndFeedEveryThread) {
  const attn_impl::Tiles t{48, 128, 1536, 96};
  for (index_t sq : {1, 47, 48, 49, 512, 1000, 1536, 1537, 2048, 4096, 16384})
    for (index_t slices : {1, 2, 8, 64})
      for (int threads : {1, 2, 16}) {
        SCOPED_TRACE("sq " + std::to_string(sq) + ", slices " + std::to_string(slices) + ", threads " +
                     std::to_string(threads));
        const index_t rows = attn_impl::unit_rows(t, sq, slices, threads);
        EXPECT_EQ(rows % t.br, 0) << "rows = " << rows;
        EXPECT_GE(rows, t.br);
        EXPECT_LE(rows, t.bro);
        const index_t parts = (sq + rows - 1) / rows;
        // Equal parts: the last one is not a sliver of the others.
        EXPECT_GT(sq - (parts - 1) * rows, rows - parts * t.br) << "rows = " << rows;
        // Four units a thread wherever the rows allow it.
        if (threads > 1 && rows > t.br) {
          EXPECT_GE(slices * parts, std::min<index_t>(4 * threads, slices * ((sq + t.br - 1) / t.br)));
        }
        // One thread: the fewest units bro allows, nothing split for parallelism.
        if (threads == 1) {
          EXPECT_EQ(parts, (sq + t.bro - 1) / t.bro) << "rows = " << rows;
        }
      }
}

TEST(GemmBlocking, TheMachineItRunsOnIsDescribedSanely) {
  const CacheSizes& c = cache_sizes();
  EXPECT_GE(c.l1, std::size_t(16) << 10);
  EXPECT_GE(c.l2, c.l1);
  EXPECT_GE(c.l3, c.l2);
  EXPECT_GE(c.l1_ways, 2);
  EXPECT_GE(c.l2_ways, 2);
  EXPECT_GE(c.l3_shared_by, 1);
  EXPECT_EQ(c.l1 % std::size_t(c.l1_ways), 0u);
}

}  // namespace
}  // namespace tg::cpu
