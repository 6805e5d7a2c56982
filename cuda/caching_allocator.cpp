// The caching allocator's policy (cuda/caching_allocator.hpp). Plain C++: built with and
// without CUDA, tested with malloc as its driver.
#include "tilegrad/cuda/caching_allocator.hpp"

#include <algorithm>
#include <sstream>

#include "tilegrad/kernels/error.hpp"

namespace tg::cuda {

namespace {

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

}  // namespace

std::string AllocatorStats::str() const {
  std::ostringstream s;
  s << "allocated " << allocated << " B (peak " << peak_allocated << "), reserved " << reserved << " B (peak "
    << peak_reserved << ") in " << segments << " segments, cached " << cached << " B, " << live_blocks
    << " live blocks, " << allocations << " allocations, " << driver_allocations << " driver allocations, "
    << driver_frees << " driver frees";
  return s.str();
}

bool CachingAllocator::Order::operator()(const Block* a, const Block* b) const {
  if (a->pool != b->pool) return a->pool < b->pool;
  if (a->stream != b->stream) return a->stream < b->stream;
  if (a->size != b->size) return a->size < b->size;
  return a->ptr < b->ptr;
}

CachingAllocator::CachingAllocator(Raw raw, std::string name) : raw_(raw), op_(std::move(name) + " allocator") {
  TG_CHECK(raw_.alloc != nullptr && raw_.free != nullptr, "CachingAllocator", "raw",
           "expected a raw alloc and free function");
}

CachingAllocator::~CachingAllocator() {
  // Segments whose blocks are all free go back; a live block keeps its segment (its
  // owner may still free it through a dangling allocator: leaking is the safe choice).
  std::lock_guard<std::mutex> lock(mutex_);
  release_free_segments();
}

CachingAllocator::Block* CachingAllocator::find_free(FreeList& list, std::size_t size, std::uintptr_t stream,
                                                     std::uint64_t pool) {
  Block key;
  key.pool = pool;
  key.stream = stream;
  key.size = size;
  key.ptr = nullptr;
  auto it = list.lower_bound(&key);
  if (it == list.end() || (*it)->stream != stream || (*it)->pool != pool) return nullptr;
  Block* b = *it;
  list.erase(it);
  return b;
}

CachingAllocator::Block* CachingAllocator::new_segment(std::size_t segment_bytes, bool small, std::uintptr_t stream,
                                                       std::uint64_t pool) {
  void* p = raw_.alloc(segment_bytes, raw_.context);
  if (p == nullptr) {  // out of memory: give back what is cached, then try once more
    ++stats_.oom_retries;
    release_free_segments();
    p = raw_.alloc(segment_bytes, raw_.context);
    if (p == nullptr) return nullptr;
  }
  auto block = std::make_unique<Block>();
  block->ptr = static_cast<char*>(p);
  block->size = segment_bytes;
  block->pool = pool;
  block->stream = stream;
  block->small = small;
  Block* b = block.get();
  blocks_.emplace(b->ptr, std::move(block));
  ++stats_.driver_allocations;
  ++stats_.segments;
  stats_.reserved += segment_bytes;
  stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  return b;
}

void* CachingAllocator::allocate(std::size_t bytes, std::uintptr_t stream, std::uint64_t pool) {
  if (bytes == 0) return nullptr;
  TG_CHECK(bytes <= (std::size_t(1) << 50), op_.c_str(), "bytes", "expected at most 2^50 bytes, got ", bytes);
  const std::size_t size = round_up(bytes, kRound);
  const bool small = size <= kSmallRequest;
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.allocations;
  Block* b = find_free(free_list(small), size, stream, pool);
  if (b == nullptr) {
    b = new_segment(small ? kSmallSegment : round_up(size, kLargeRound), small, stream, pool);
    if (b == nullptr)
      detail::throw_error(op_.c_str(), "bytes", "out of device memory allocating ", bytes, " bytes (",
                          small ? "small" : "large", " pool) after emptying the cache: ", stats_.str());
  }
  // Split when the rest is worth a block of its own: in the small pool any 512 bytes, in
  // the large pool more than a small request (smaller tails would only fragment it).
  const std::size_t rest = b->size - size;
  if (small ? rest >= kRound : rest > kSmallRequest) {
    auto tail = std::make_unique<Block>();
    tail->ptr = b->ptr + size;
    tail->size = rest;
    tail->pool = pool;
    tail->stream = stream;
    tail->small = small;
    tail->prev = b;
    tail->next = b->next;
    if (b->next) b->next->prev = tail.get();
    b->next = tail.get();
    b->size = size;
    free_list(small).insert(tail.get());
    blocks_.emplace(tail->ptr, std::move(tail));
    ++stats_.splits;
  }
  b->free = false;
  live_.emplace(b->ptr, b);
  stats_.allocated += b->size;
  stats_.cached = stats_.reserved - stats_.allocated;
  stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
  ++stats_.live_blocks;
  return b->ptr;
}

void CachingAllocator::deallocate(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  TG_CHECK(it != live_.end(), op_.c_str(), "ptr", "expected a live block of this allocator, got ", ptr,
           " (freed twice, or never allocated here)");
  Block* b = it->second;
  live_.erase(it);
  stats_.allocated -= b->size;
  --stats_.live_blocks;
  b->free = true;
  FreeList& list = free_list(b->small);
  // Merge with free neighbours: the segment keeps as few, as large free blocks as it can.
  if (Block* n = b->next; n && n->free) {
    list.erase(n);
    b->size += n->size;
    b->next = n->next;
    if (n->next) n->next->prev = b;
    blocks_.erase(n->ptr);
    ++stats_.merges;
  }
  if (Block* p = b->prev; p && p->free) {
    list.erase(p);
    p->size += b->size;
    p->next = b->next;
    if (b->next) b->next->prev = p;
    blocks_.erase(b->ptr);
    b = p;
    ++stats_.merges;
  }
  list.insert(b);
  stats_.cached = stats_.reserved - stats_.allocated;
}

void CachingAllocator::release_free_segments(const std::uint64_t* only_pool) {
  for (FreeList* list : {&small_free_, &large_free_})
    for (auto it = list->begin(); it != list->end();) {
      Block* b = *it;
      const bool wanted = only_pool ? b->pool == *only_pool : !pinned_.count(b->pool);
      if (b->prev != nullptr || b->next != nullptr || !wanted) {  // in use, or kept
        ++it;
        continue;
      }
      it = list->erase(it);
      raw_.free(b->ptr, raw_.context);
      ++stats_.driver_frees;
      --stats_.segments;
      stats_.reserved -= b->size;
      blocks_.erase(b->ptr);
    }
  stats_.cached = stats_.reserved - stats_.allocated;
}

void CachingAllocator::pin_pool(std::uint64_t pool) {
  std::lock_guard<std::mutex> lock(mutex_);
  pinned_.insert(pool);
}

void CachingAllocator::unpin_pool(std::uint64_t pool) {
  std::lock_guard<std::mutex> lock(mutex_);
  pinned_.erase(pool);
  release_free_segments(&pool);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_free_segments();
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peaks() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_allocated = stats_.allocated;
  stats_.peak_reserved = stats_.reserved;
}

std::string CachingAllocator::validate() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream err;
  std::size_t reserved = 0, allocated = 0, segments = 0, live = 0, free_blocks = 0;
  for (const auto& [addr, owned] : blocks_) {
    const Block* b = owned.get();
    if (b->ptr != addr) err << "block keyed at " << static_cast<void*>(addr) << " has ptr " << static_cast<void*>(b->ptr) << "; ";
    if (b->size == 0 || b->size % kRound) err << "block of size " << b->size << "; ";
    if (b->next && b->next->ptr != b->ptr + b->size) err << "a block's next does not start where it ends; ";
    if (b->next && b->next->prev != b) err << "next->prev is not the block; ";
    if (b->free && b->next && b->next->free) err << "two free neighbours were not merged; ";
    if (b->prev == nullptr) {
      ++segments;
      for (const Block* s = b; s; s = s->next) reserved += s->size;
    }
    if (b->free) {
      ++free_blocks;
      if (!free_list(b->small).count(const_cast<Block*>(b))) err << "a free block is missing from its free list; ";
    } else {
      ++live;
      allocated += b->size;
      auto it = live_.find(b->ptr);
      if (it == live_.end() || it->second != b) err << "a live block is missing from the live map; ";
    }
  }
  if (small_free_.size() + large_free_.size() != free_blocks) err << "the free lists hold blocks that are not free; ";
  if (live != live_.size() || live != stats_.live_blocks) err << "live block count " << live << " vs " << live_.size() << "/" << stats_.live_blocks << "; ";
  if (reserved != stats_.reserved) err << "reserved " << reserved << " vs counter " << stats_.reserved << "; ";
  if (allocated != stats_.allocated) err << "allocated " << allocated << " vs counter " << stats_.allocated << "; ";
  if (segments != stats_.segments) err << "segments " << segments << " vs counter " << stats_.segments << "; ";
  if (stats_.cached != stats_.reserved - stats_.allocated) err << "cached counter is not reserved - allocated; ";
  return err.str();
}

}  // namespace tg::cuda
