// The caching allocator's policy (cuda/caching_allocator.hpp) with host memory as its
// "driver", so that it is tested on every machine: rounding, reuse, best fit, splitting
// and merging, streams kept apart, empty_cache, the out-of-memory retry, misuse as a
// tg::Error, a random stress run whose live blocks must never overlap (each is filled
// with its own tag and checked before it is freed) with the invariants validated along
// the way, and the steady state of a repeated step: no driver call after the first.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "tilegrad/cuda/caching_allocator.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tests/support/guards.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using cuda::CachingAllocator;
constexpr std::size_t KiB = 1024, MiB = 1024 * 1024;

// Host memory with a capacity, standing in for a device.
struct FakeDevice {
  std::size_t capacity = std::size_t(1) << 40;
  std::size_t used = 0;
  std::map<void*, std::size_t> live;

  static void* alloc(std::size_t bytes, void* context) {
    auto* d = static_cast<FakeDevice*>(context);
    if (d->used + bytes > d->capacity) return nullptr;
    void* p = std::aligned_alloc(512, bytes);
    if (!p) return nullptr;
    d->used += bytes;
    d->live[p] = bytes;
    return p;
  }
  static void free(void* p, void* context) {
    auto* d = static_cast<FakeDevice*>(context);
    auto it = d->live.find(p);
    ASSERT_NE(it, d->live.end()) << "the allocator freed a pointer the device never gave";
    d->used -= it->second;
    d->live.erase(it);
    std::free(p);
  }
  CachingAllocator::Raw raw() { return {&FakeDevice::alloc, &FakeDevice::free, this}; }
};

TEST(CachingAllocator, RoundsTo512AndReusesAFreedBlock) {
  FakeDevice dev;
  CachingAllocator a(dev.raw());
  EXPECT_EQ(a.allocate(0), nullptr);
  void* p = a.allocate(1000);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 512, 0u);
  EXPECT_EQ(a.stats().allocated, 1024u);
  EXPECT_EQ(a.stats().reserved, 2 * MiB);  // a small request opens a 2 MiB segment
  a.deallocate(p);
  EXPECT_EQ(a.stats().allocated, 0u);
  EXPECT_EQ(a.stats().cached, 2 * MiB);
  void* q = a.allocate(900);
  EXPECT_EQ(q, p);  // best fit: the lowest address of the smallest fitting block
  EXPECT_EQ(a.stats().driver_allocations, 1u);
  a.deallocate(q);
  EXPECT_EQ(a.validate(), "");
}

TEST(CachingAllocator, SmallRequestsShareASegmentAndMergeBackWhenFreed) {
  FakeDevice dev;
  CachingAllocator a(dev.raw());
  std::vector<void*> blocks;
  for (int i = 0; i < 400; ++i) blocks.push_back(a.allocate(4 * KiB));  // 1.6 MiB in one segment
  EXPECT_EQ(a.stats().driver_allocations, 1u);
  EXPECT_EQ(a.stats().live_blocks, 400u);
  EXPECT_EQ(a.validate(), "");
  // Free every other block, then the rest: each free merges with its free neighbours.
  for (std::size_t i = 0; i < blocks.size(); i += 2) a.deallocate(blocks[i]);
  EXPECT_EQ(a.validate(), "");
  for (std::size_t i = 1; i < blocks.size(); i += 2) a.deallocate(blocks[i]);
  EXPECT_EQ(a.validate(), "");
  EXPECT_EQ(a.stats().allocated, 0u);
  // One free block spans the segment again, so a 2 MiB-sized small request... cannot be
  // small (> 1 MiB), but a 1 MiB one fits without the driver.
  void* big = a.allocate(MiB);
  EXPECT_EQ(a.stats().driver_allocations, 1u);
  a.deallocate(big);
  a.empty_cache();
  EXPECT_EQ(a.stats().reserved, 0u);
  EXPECT_EQ(a.stats().driver_frees, 1u);
  EXPECT_TRUE(dev.live.empty());
}

TEST(CachingAllocator, LargeRequestsGetTheirOwnSegmentsAndSplitOnlyBigRemainders) {
  FakeDevice dev;
  CachingAllocator a(dev.raw());
  void* p = a.allocate(3 * MiB);  // a 4 MiB segment; the 1 MiB tail is not worth a block
  EXPECT_EQ(a.stats().reserved, 4 * MiB);
  EXPECT_EQ(a.stats().allocated, 4 * MiB);
  EXPECT_EQ(a.stats().splits, 0u);
  a.deallocate(p);
  void* q = a.allocate(10 * MiB);  // the free 4 MiB block is too small: a new segment
  EXPECT_EQ(a.stats().driver_allocations, 2u);
  a.deallocate(q);
  void* r = a.allocate(5 * MiB + 1);  // best fit: the 10 MiB block, split (rest > 1 MiB)
  EXPECT_EQ(a.stats().driver_allocations, 2u);
  EXPECT_EQ(a.stats().splits, 1u);
  EXPECT_EQ(a.stats().allocated, 5 * MiB + 512);
  EXPECT_EQ(a.validate(), "");
  a.deallocate(r);
  EXPECT_EQ(a.stats().merges, 1u);
  a.empty_cache();
  EXPECT_EQ(a.stats().reserved, 0u);
  EXPECT_EQ(a.stats().peak_reserved, 14 * MiB);
}

TEST(CachingAllocator, KeepsStreamsApart) {
  FakeDevice dev;
  CachingAllocator a(dev.raw());
  void* p = a.allocate(64 * KiB, /*stream=*/1);
  a.deallocate(p);
  void* q = a.allocate(64 * KiB, /*stream=*/2);  // the cached block belongs to stream 1
  EXPECT_EQ(a.stats().driver_allocations, 2u);
  void* r = a.allocate(64 * KiB, /*stream=*/1);
  EXPECT_EQ(r, p);
  a.deallocate(q);
  a.deallocate(r);
  EXPECT_EQ(a.validate(), "");
}

TEST(CachingAllocator, PrivatePoolsAreKeptApartAndPinnedPoolsSurviveEmptyCache) {
  FakeDevice dev;
  CachingAllocator a(dev.raw());
  const std::uint64_t graph = 7;
  a.pin_pool(graph);
  void* g1 = a.allocate(64 * KiB, 1, graph);
  a.deallocate(g1);
  void* shared = a.allocate(64 * KiB, 1);  // the pool's free block is not the shared pool's
  EXPECT_NE(shared, g1);
  EXPECT_EQ(a.stats().driver_allocations, 2u);
  void* g2 = a.allocate(64 * KiB, 1, graph);  // but the pool reuses its own
  EXPECT_EQ(g2, g1);
  a.deallocate(g2);
  a.deallocate(shared);
  a.empty_cache();  // the shared segment goes, the pinned pool's stays
  EXPECT_EQ(a.stats().segments, 1u);
  EXPECT_EQ(a.allocate(64 * KiB, 1, graph), g1);
  a.deallocate(g1);
  a.unpin_pool(graph);  // the graph is gone: its free segments go back to the driver
  EXPECT_EQ(a.stats().segments, 0u);
  EXPECT_TRUE(dev.live.empty());
  EXPECT_EQ(a.validate(), "");
}

TEST(CachingAllocator, AnOutOfMemoryRetryLeavesPinnedPoolsAlone) {
  FakeDevice dev;
  dev.capacity = 16 * MiB;
  CachingAllocator a(dev.raw());
  a.pin_pool(3);
  a.deallocate(a.allocate(8 * MiB, 0, 3));  // 8 MiB cached, pinned
  EXPECT_NE(testing::error_of([&] { a.allocate(10 * MiB); }).find("out of device memory"), std::string::npos);
  EXPECT_EQ(a.stats().reserved, 8 * MiB);  // still there for the graph
  a.unpin_pool(3);
  void* p = a.allocate(10 * MiB);
  EXPECT_NE(p, nullptr);
  a.deallocate(p);
  EXPECT_EQ(a.validate(), "");
}

TEST(CachingAllocator, EmptiesItsCacheAndRetriesWhenTheDeviceIsFull) {
  FakeDevice dev;
  dev.capacity = 16 * MiB;
  CachingAllocator a(dev.raw());
  void* p = a.allocate(12 * MiB);
  a.deallocate(p);  // 12 MiB cached, 4 MiB left on the device
  void* q = a.allocate(14 * MiB);  // does not fit beside the cache: empty it, retry
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(a.stats().oom_retries, 1u);
  EXPECT_EQ(a.stats().reserved, 14 * MiB);
  const std::string msg = testing::error_of([&] { a.allocate(8 * MiB); });
  EXPECT_NE(msg.find("out of device memory allocating 8388608 bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("allocated 14680064 B"), std::string::npos) << msg;
  EXPECT_EQ(a.validate(), "");  // a failed request leaves nothing half done
  a.deallocate(q);
}

TEST(CachingAllocator, ForeignAndDoubleFreesAreAClearError) {
  FakeDevice dev;
  CachingAllocator a(dev.raw(), "cuda:3");
  void* p = a.allocate(100);
  int local = 0;
  EXPECT_NE(testing::error_of([&] { a.deallocate(&local); }).find("cuda:3 allocator"), std::string::npos);
  a.deallocate(p);
  const std::string msg = testing::error_of([&] { a.deallocate(p); });
  EXPECT_NE(msg.find("freed twice"), std::string::npos) << msg;
  a.deallocate(nullptr);  // ignored
  EXPECT_EQ(a.validate(), "");
}

TEST(CachingAllocator, RandomStressNeverOverlapsAndKeepsItsBooks) {
  TG_TEST_RNG(rng);
  FakeDevice dev;
  CachingAllocator a(dev.raw());
  struct Live {
    unsigned char* p;
    std::size_t n;
    unsigned char tag;
  };
  std::vector<Live> live;
  std::size_t peak = 0;
  for (int op = 0; op < 6000; ++op) {
    if (live.empty() || rng.integer(0, 99) < 55) {
      // Sizes from 1 byte to 6 MiB, most of them small, as in a training step.
      const index_t kind = rng.integer(0, 9);
      const std::size_t n = std::size_t(kind < 6 ? rng.integer(1, 4096) : kind < 9 ? rng.integer(4097, 900000)
                                                                          : rng.integer(900001, 6 * 1048576));
      auto* p = static_cast<unsigned char*>(a.allocate(n, std::uintptr_t(rng.integer(0, 1))));
      const auto tag = static_cast<unsigned char>(op);
      std::memset(p, tag, n);
      live.push_back({p, n, tag});
    } else {
      const std::size_t i = std::size_t(rng.integer(0, index_t(live.size()) - 1));
      const Live b = live[i];
      for (std::size_t k = 0; k < b.n; k += 97)  // another block written over this one?
        ASSERT_EQ(b.p[k], b.tag) << "block of " << b.n << " bytes was overwritten at " << k;
      ASSERT_EQ(b.p[b.n - 1], b.tag);
      a.deallocate(b.p);
      live[i] = live.back();
      live.pop_back();
    }
    peak = std::max(peak, a.stats().allocated);
    if (op % 250 == 0) {
      ASSERT_EQ(a.validate(), "") << "after op " << op;
      if (rng.integer(0, 3) == 0) a.empty_cache();
    }
  }
  EXPECT_EQ(a.stats().peak_allocated, peak);
  for (const Live& b : live) a.deallocate(b.p);
  ASSERT_EQ(a.validate(), "");
  a.empty_cache();
  EXPECT_EQ(a.stats().reserved, 0u);
  EXPECT_EQ(a.stats().driver_allocations, a.stats().driver_frees);
  EXPECT_TRUE(dev.live.empty());
}

TEST(CachingAllocator, ARepeatedStepNeedsTheDriverOnlyTheFirstTime) {
  FakeDevice dev;
  CachingAllocator a(dev.raw());
  // One "training step": activations and gradients of an MLP 784-256-256-10 at batch 1024,
  // allocated in the order of a forward and a backward pass and freed in between.
  const std::size_t sizes[] = {1024 * 784 * 4, 1024 * 256 * 4, 1024 * 256 * 4, 1024 * 256 * 4, 1024 * 256 * 4,
                               1024 * 10 * 4,  1024 * 4,       4,              1024 * 10 * 4,  256 * 10 * 4,
                               10 * 4,         1024 * 256 * 4, 256 * 256 * 4,  256 * 4,        1024 * 256 * 4};
  auto step = [&] {
    std::vector<void*> held;
    for (std::size_t i = 0; i < std::size(sizes); ++i) {
      held.push_back(a.allocate(sizes[i]));
      if (i % 3 == 2) {  // some temporaries die early
        a.deallocate(held[held.size() - 2]);
        held.erase(held.end() - 2);
      }
    }
    for (void* p : held) a.deallocate(p);
  };
  step();
  const auto first = a.stats();
  for (int i = 0; i < 5; ++i) step();
  EXPECT_EQ(a.stats().driver_allocations, first.driver_allocations);
  EXPECT_EQ(a.stats().reserved, first.reserved);
  EXPECT_EQ(a.stats().allocations, 6 * first.allocations);
  EXPECT_EQ(a.validate(), "");
}

}  // namespace
}  // namespace tg
