#include "tilegrad/kernels/buffer.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include "tilegrad/kernels/error.hpp"

namespace tg {

namespace {

std::array<std::atomic<const DeviceAllocator*>, 2>& allocators() {
  static std::array<std::atomic<const DeviceAllocator*>, 2> table{};
  return table;
}

struct Counters {
  std::atomic<std::size_t> live_buffers{0}, live_bytes{0}, peak_bytes{0}, total{0};
};
Counters& counters() {
  static Counters c;
  return c;
}

void count_alloc(std::size_t bytes) {
  Counters& c = counters();
  c.live_buffers.fetch_add(1, std::memory_order_relaxed);
  c.total.fetch_add(1, std::memory_order_relaxed);
  std::size_t now = c.live_bytes.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  std::size_t peak = c.peak_bytes.load(std::memory_order_relaxed);
  while (now > peak && !c.peak_bytes.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

void count_free(std::size_t bytes) {
  Counters& c = counters();
  c.live_buffers.fetch_sub(1, std::memory_order_relaxed);
  c.live_bytes.fetch_sub(bytes, std::memory_order_relaxed);
}

// Host blocks up to 32 KiB are kept after release, per thread and per size class
// (64 B << k), and handed out again: autograd makes and drops a few tiny buffers per op,
// and an aligned allocation with its free cost ~900 instructions, more than a 1-element
// op itself. At most kKeep blocks a class (64 x 32 KiB = 2 MiB at worst per thread);
// blocks return to the heap when their thread ends.
constexpr int kClasses = 10;
constexpr std::size_t kKeep = 64;
int size_class(std::size_t bytes) {
  for (int k = 0; k < kClasses; ++k)
    if (bytes <= (std::size_t(64) << k)) return k;
  return -1;
}
struct HostCache {
  std::array<std::vector<void*>, kClasses> blocks;
  ~HostCache();
};
thread_local bool t_cache_gone = false;  // trivially destructible: readable after ~HostCache
thread_local HostCache t_cache;
HostCache::~HostCache() {
  t_cache_gone = true;
  for (auto& v : blocks)
    for (void* p : v) ::operator delete(p, std::align_val_t(Buffer::kAlignment));
}

// Host blocks above 32 KiB: one cache for the process, by size rounded up to whole 4 KiB
// pages; a request takes the smallest cached block of at least its size and at most an
// eighth more. glibc gives large freed blocks back to the system (an mmap'd block at
// once, the heap's top when it trims), and a fresh block costs a page fault per 4 KiB on
// first touch. Whether a training step's blocks come back fresh depends on everything
// else the process allocates: with a profiler's event list growing beside it, the
// Fashion-MNIST MLP's 800 KiB weight gradient faulted its 200 pages in every step inside
// the GEMM that writes it (170 us in the first steps, 470 from the third on;
// examples/NOTES.md). At most kLargeCacheBytes are kept, no single block above
// kLargeBlockMax; release_host_cache() empties it. Never destroyed (a static Buffer may
// be freed after static destructors ran).
constexpr std::size_t kPage = 4096;
constexpr std::size_t kLargeCacheBytes = std::size_t(256) << 20;
constexpr std::size_t kLargeBlockMax = std::size_t(64) << 20;
struct LargeCache {
  std::mutex mu;
  std::multimap<std::size_t, void*> blocks;  // rounded size -> block
  std::size_t bytes = 0;
};
LargeCache& large_cache() {
  static LargeCache* cache = new LargeCache;
  return *cache;
}
std::size_t page_round(std::size_t bytes) {
  TG_CHECK(bytes <= SIZE_MAX - kPage, "Buffer", "bytes", "size too large: ", bytes);
  return (bytes + kPage - 1) / kPage * kPage;
}

// The paths for blocks above 32 KiB, out of line: the small ones stay a few instructions.
[[gnu::noinline]] void* host_allocate_large(std::size_t bytes) {
  const std::size_t size = page_round(bytes);
  {
    LargeCache& c = large_cache();
    std::lock_guard<std::mutex> lock(c.mu);
    const auto it = c.blocks.lower_bound(size);
    if (it != c.blocks.end() && it->first <= size + size / 8) {
      void* p = it->second;
      c.bytes -= it->first;
      c.blocks.erase(it);
      return p;
    }
  }
  return ::operator new(size, std::align_val_t(Buffer::kAlignment));
}

[[gnu::noinline]] void host_free_large(void* p, std::size_t bytes) {
  const std::size_t size = page_round(bytes);  // at most the block's own size
  {
    LargeCache& c = large_cache();
    std::lock_guard<std::mutex> lock(c.mu);
    if (size <= kLargeBlockMax && c.bytes + size <= kLargeCacheBytes) {
      c.blocks.emplace(size, p);
      c.bytes += size;
      return;
    }
  }
  ::operator delete(p, std::align_val_t(Buffer::kAlignment));
}

void* host_allocate(std::size_t bytes) {
  const int k = size_class(bytes);
  if (k < 0) return host_allocate_large(bytes);
  if (!t_cache_gone && !t_cache.blocks[std::size_t(k)].empty()) {
    void* p = t_cache.blocks[std::size_t(k)].back();
    t_cache.blocks[std::size_t(k)].pop_back();
    return p;
  }
  return ::operator new(std::size_t(64) << k, std::align_val_t(Buffer::kAlignment));
}

void host_free(void* p, std::size_t bytes) {
  const int k = size_class(bytes);
  if (k < 0) return host_free_large(p, bytes);
  if (!t_cache_gone && t_cache.blocks[std::size_t(k)].size() < kKeep) {
    t_cache.blocks[std::size_t(k)].push_back(p);
    return;
  }
  ::operator delete(p, std::align_val_t(Buffer::kAlignment));
}

}  // namespace

std::size_t host_cache_bytes() {
  LargeCache& c = large_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.bytes;
}

void release_host_cache() {
  LargeCache& c = large_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (const auto& [size, p] : c.blocks) ::operator delete(p, std::align_val_t(Buffer::kAlignment));
  c.blocks.clear();
  c.bytes = 0;
}

void set_device_allocator(DeviceType type, const DeviceAllocator* allocator) {
  TG_CHECK(type != DeviceType::cpu, "set_device_allocator", "type",
           "expected a device type other than cpu (host memory is always ours)");
  allocators()[std::size_t(type)].store(allocator);
}

const DeviceAllocator* device_allocator(DeviceType type) {
  return allocators()[std::size_t(type)].load();
}

BufferStats buffer_stats() {
  Counters& c = counters();
  return {c.live_buffers.load(), c.live_bytes.load(), c.peak_bytes.load(), c.total.load()};
}

Buffer::Buffer(std::size_t bytes, Device device) : bytes_(bytes), device_(device), owns_(true) {
  if (bytes == 0) return;
  if (device.is_cpu()) {
    try {
      data_ = host_allocate(bytes);
    } catch (const std::bad_alloc&) {
      detail::throw_error("Buffer", "bytes", "cannot allocate ", bytes, " bytes of host memory");
    }
  } else {
    const DeviceAllocator* a = device_allocator(device.type);
    TG_CHECK(a != nullptr, "Buffer", "device", "no allocator for ", device.str(),
             ": tilegrad was built without that backend, or its runtime is not linked");
    data_ = a->allocate(device.index, bytes);
  }
  count_alloc(bytes);
}

Buffer Buffer::borrow(void* data, std::size_t bytes, Device device) {
  TG_CHECK(data != nullptr || bytes == 0, "Buffer::borrow", "data",
           "expected a non-null pointer for ", bytes, " bytes");
  Buffer b;
  b.data_ = data;
  b.bytes_ = bytes;
  b.device_ = device;
  b.owns_ = false;
  return b;
}

Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      device_(other.device_),
      owns_(std::exchange(other.owns_, false)) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    device_ = other.device_;
    owns_ = std::exchange(other.owns_, false);
  }
  return *this;
}

Buffer::~Buffer() { release(); }

void Buffer::release() noexcept {
  if (owns_ && bytes_ > 0) {
    if (device_.is_cpu()) {
      host_free(data_, bytes_);
    } else if (const DeviceAllocator* a = device_allocator(device_.type)) {
      a->deallocate(device_.index, data_, bytes_);
    }
    count_free(bytes_);
  }
  data_ = nullptr;
  bytes_ = 0;
  owns_ = false;
}

}  // namespace tg
