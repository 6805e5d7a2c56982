#include "tilegrad/kernels/buffer.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
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

std::size_t round_up(std::size_t bytes) {
  TG_CHECK(bytes <= SIZE_MAX - Buffer::kAlignment, "Buffer", "bytes", "size too large: ", bytes);
  return (bytes + Buffer::kAlignment - 1) / Buffer::kAlignment * Buffer::kAlignment;
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

void* host_allocate(std::size_t bytes) {
  const int k = size_class(bytes);
  if (k >= 0 && !t_cache_gone && !t_cache.blocks[std::size_t(k)].empty()) {
    void* p = t_cache.blocks[std::size_t(k)].back();
    t_cache.blocks[std::size_t(k)].pop_back();
    return p;
  }
  return ::operator new(k >= 0 ? std::size_t(64) << k : round_up(bytes), std::align_val_t(Buffer::kAlignment));
}

void host_free(void* p, std::size_t bytes) {
  const int k = size_class(bytes);
  if (k >= 0 && !t_cache_gone && t_cache.blocks[std::size_t(k)].size() < kKeep) {
    t_cache.blocks[std::size_t(k)].push_back(p);
    return;
  }
  ::operator delete(p, std::align_val_t(Buffer::kAlignment));
}

}  // namespace

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
