// Buffer: an owned (or borrowed) block of memory on one device.
//
// Host memory is 64-byte aligned (a cache line; a full AVX-512 vector) and its size is
// rounded up to a multiple of 64, so SIMD kernels may read whole vectors at the tail of
// an aligned buffer without touching another allocation. Host blocks up to 32 KiB are
// recycled per thread by power-of-two size class (tiny tensors come and go on every
// autograd op); larger ones (up to 64 MiB each, 256 MiB in all) are kept by the process
// for the next request of about their size, so a training step's activations and
// gradients land on pages already mapped, whatever else the process allocates, instead
// of faulting them in again each step. Device memory comes from the allocator that the device's backend
// installs with set_device_allocator (cuda/ installs its caching allocator); without
// one, allocating on that device throws tg::Error.
#pragma once

#include <cstddef>

#include "tilegrad/kernels/types.hpp"

namespace tg {

struct DeviceAllocator {
  void* (*allocate)(int device, std::size_t bytes);
  void (*deallocate)(int device, void* ptr, std::size_t bytes);
};

// Installs (or with nullptr removes) the allocator for a device type other than cpu.
void set_device_allocator(DeviceType type, const DeviceAllocator* allocator);
const DeviceAllocator* device_allocator(DeviceType type);

// Counters over every owning Buffer of the process (all devices), for memory tests.
struct BufferStats {
  std::size_t live_buffers;
  std::size_t live_bytes;
  std::size_t peak_bytes;
  std::size_t total_allocations;
};
BufferStats buffer_stats();

// Bytes of freed host blocks above 32 KiB held for reuse, and their release to the system.
std::size_t host_cache_bytes();
void release_host_cache();

class Buffer {
 public:
  static constexpr std::size_t kAlignment = 64;

  Buffer() = default;
  // Allocates `bytes` on `device`; 0 bytes gives data() == nullptr.
  explicit Buffer(std::size_t bytes, Device device = Device::cpu());
  // Wraps memory owned by someone else; it must outlive the Buffer.
  static Buffer borrow(void* data, std::size_t bytes, Device device = Device::cpu());

  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  void* data() { return data_; }
  const void* data() const { return data_; }
  template <class T> T* as() { return static_cast<T*>(data_); }
  template <class T> const T* as() const { return static_cast<const T*>(data_); }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  bool owns() const { return owns_; }

 private:
  void release() noexcept;

  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  Device device_{};
  bool owns_ = false;
};

}  // namespace tg
