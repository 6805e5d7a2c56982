// The caching allocator behind Buffers on cuda:N: after the first training step, a step
// asks the driver for nothing (cudaMalloc and cudaFree synchronize the device and cost
// tens of microseconds each; PyTorch's CUDACachingAllocator exists for the same reason).
//
// Memory comes from the driver in segments and is handed out in blocks carved from them:
//   - sizes are rounded up to 512 bytes (every block 512-byte aligned: 128-bit loads and
//     cp.async need 16, a whole L2 sector group is 128);
//   - small requests (<= 1 MiB) share 2 MiB segments; a large request gets a segment of
//     its size rounded up to 2 MiB;
//   - free blocks sit in two free lists (small pool, large pool) ordered by (stream, size,
//     address): a request takes the smallest free block of its pool and stream that fits
//     (best fit), and splits it when the remainder is worth keeping (>= 512 bytes in the
//     small pool, > 1 MiB in the large one);
//   - a freed block merges with its free neighbours in the segment and goes back to the
//     free list, never to the driver; empty_cache() returns the wholly free segments;
//   - a block is reused only on the stream it was allocated on: work queued on one stream
//     runs in order, so a block freed by the host while a kernel of that stream still
//     reads it is safe to hand to the next kernel of the same stream. Sharing a buffer
//     across streams needs the caller's event (cuda/runtime.hpp: Stream).
//   - when the driver is out of memory, the cache is emptied and the request retried once;
//     then tg::Error names the request and the allocator's statistics.
//   - pools: a CUDA graph allocates from a private pool (its own segments, never handed to
//     another pool) that is pinned while the graph lives, so that the addresses baked into
//     the graph stay valid and belong to nobody else; empty_cache skips pinned pools.
//
// The policy is plain C++ over two raw functions (the driver's, or malloc in the tests of
// tests/test_caching_allocator.cpp), so it is tested on every machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

namespace tg::cuda {

struct AllocatorStats {
  std::size_t allocated = 0;       // bytes in blocks handed out (rounded sizes)
  std::size_t reserved = 0;        // bytes in segments held from the driver
  std::size_t cached = 0;          // reserved - allocated: free for reuse
  std::size_t peak_allocated = 0;
  std::size_t peak_reserved = 0;
  std::size_t live_blocks = 0;
  std::size_t segments = 0;
  std::uint64_t allocations = 0;     // calls to allocate
  std::uint64_t driver_allocations = 0;  // raw allocations (segments made)
  std::uint64_t driver_frees = 0;        // raw frees (segments returned)
  std::uint64_t splits = 0, merges = 0;
  std::uint64_t oom_retries = 0;     // driver failures answered by emptying the cache
  std::string str() const;
};

class CachingAllocator {
 public:
  static constexpr std::size_t kRound = 512;
  static constexpr std::size_t kSmallRequest = std::size_t(1) << 20;  // <= this: small pool
  static constexpr std::size_t kSmallSegment = std::size_t(2) << 20;
  static constexpr std::size_t kLargeRound = std::size_t(2) << 20;

  // raw_alloc returns nullptr when out of memory (and must not throw for that);
  // raw_free releases what raw_alloc returned.
  struct Raw {
    void* (*alloc)(std::size_t bytes, void* context) = nullptr;
    void (*free)(void* ptr, void* context) = nullptr;
    void* context = nullptr;
  };

  explicit CachingAllocator(Raw raw, std::string name = "cuda");
  ~CachingAllocator();  // returns every segment (blocks still live are leaked by their owners)
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block of at least `bytes` (0 gives nullptr) for work on `stream` (an opaque handle:
  // cudaStream_t, 0 for the default stream) from `pool` (0: the shared one). tg::Error
  // when the driver cannot supply it.
  void* allocate(std::size_t bytes, std::uintptr_t stream = 0, std::uint64_t pool = 0);
  // A pinned pool keeps its segments through empty_cache and out-of-memory retries.
  void pin_pool(std::uint64_t pool);
  void unpin_pool(std::uint64_t pool);  // and returns its wholly free segments
  // Returns a block from allocate; nullptr is ignored; a pointer it did not hand out (or
  // one freed twice) is a tg::Error.
  void deallocate(void* ptr);
  // Returns every wholly free segment to the driver.
  void empty_cache();

  AllocatorStats stats() const;
  void reset_peaks();
  // Checks the internal invariants (segments tiled by their blocks, neighbours never both
  // free, the free lists and the counters consistent); "" when they hold, else what broke.
  std::string validate() const;

 private:
  struct Block {
    char* ptr = nullptr;
    std::size_t size = 0;
    std::uint64_t pool = 0;
    std::uintptr_t stream = 0;
    bool small = false;  // size class (small or large free list)
    bool free = true;
    Block* prev = nullptr;  // neighbours in the same segment
    Block* next = nullptr;
  };
  struct Order {  // (pool, stream, size, address): best fit per pool and stream
    bool operator()(const Block* a, const Block* b) const;
  };
  using FreeList = std::set<Block*, Order>;

  Block* find_free(FreeList& list, std::size_t size, std::uintptr_t stream, std::uint64_t pool);
  Block* new_segment(std::size_t segment_bytes, bool small, std::uintptr_t stream, std::uint64_t pool);
  // With the lock held: returns wholly free segments of unpinned pools (or only of `pool`).
  void release_free_segments(const std::uint64_t* only_pool = nullptr);
  FreeList& free_list(bool small) { return small ? small_free_ : large_free_; }
  const FreeList& free_list(bool small) const { return small ? small_free_ : large_free_; }

  Raw raw_;
  std::string op_;  // "cuda:0 allocator": the op its errors name
  mutable std::mutex mutex_;
  FreeList small_free_, large_free_;
  std::unordered_map<void*, Block*> live_;            // handed-out blocks by pointer
  std::map<char*, std::unique_ptr<Block>> blocks_;    // every block, by address
  AllocatorStats stats_;
  std::set<std::uint64_t> pinned_;
};

}  // namespace tg::cuda
