// The CUDA runtime as the rest of tilegrad sees it: whether CUDA was built in, which
// devices exist, and a device allocator for tg::Buffer. Plain C++: callers need no nvcc.
//
// Without a usable GPU (no device, no driver: cudaGetDeviceCount fails with error 100 or
// 35) device_count() is 0 and unavailable_reason() says why; nothing throws for that,
// so GPU tests can GTEST_SKIP() with the reason. When CUDA is built in, linking this
// library installs the caching allocator for Buffers on cuda:N.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "tilegrad/cuda/caching_allocator.hpp"

namespace tg::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;     // compute capability
  std::size_t total_memory = 0;       // bytes
  int sm_count = 0;
  int max_threads_per_block = 0;
  std::size_t shared_memory_per_block_optin = 0;  // bytes
  int l2_cache_bytes = 0;
  int memory_bus_width_bits = 0;
};

bool built();                     // compiled with CUDA
int device_count();               // 0 when there is no usable device
std::string unavailable_reason(); // why device_count() is 0; "" when it is not
DeviceInfo device_info(int index);  // tg::Error unless 0 <= index < device_count()
std::string version_string();     // "runtime 13.0, driver 13.0" or "built without CUDA"

// Copies bytes between any two of host memory and CUDA devices (unified addressing), in
// order on the current stream. A copy that touches host memory waits for it (the host
// buffer may be pageable or reused at once); device-to-device copies do not wait.
// tg::Error when a side is a device and CUDA is absent. Counted in transfer_stats().
void copy_bytes(void* dst, bool dst_on_device, const void* src, bool src_on_device, std::size_t bytes);
// The same without waiting: `host` must be pinned memory (PinnedBuffer) that stays
// untouched until the stream reaches the copy (synchronize()).
void copy_bytes_async(void* dst, bool dst_on_device, const void* src, bool src_on_device, std::size_t bytes);

// Host<->device traffic and waits since the start (or reset_transfer_stats()): the proof
// that a training step stays on the device (tests/test_cuda_tensor.cpp).
struct TransferStats {
  std::uint64_t host_to_device = 0, device_to_host = 0, device_to_device = 0;  // copies
  std::uint64_t host_to_device_bytes = 0, device_to_host_bytes = 0;
  std::uint64_t synchronizations = 0;  // host waits on a stream or the device
};
TransferStats transfer_stats();
void reset_transfer_stats();

// Streams. Work is queued on the calling thread's current stream: the device's default
// stream unless a StreamGuard says otherwise. Blocks of the caching allocator are reused
// only on the stream that allocated them.
class Stream {
 public:
  explicit Stream(int device = 0);  // a new non-blocking stream on `device`
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  void synchronize() const;  // waits for everything queued on it
  void* handle() const { return handle_; }  // the cudaStream_t
  int device() const { return device_; }

 private:
  void* handle_ = nullptr;
  int device_ = 0;
};
// Makes `stream` the current one of this thread (and its device the current device)
// until destruction.
class StreamGuard {
 public:
  explicit StreamGuard(const Stream& stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  [[maybe_unused]] void* previous_ = nullptr;  // (unused where built without CUDA)
  [[maybe_unused]] int previous_device_ = 0;
};
void* current_stream();      // this thread's current cudaStream_t (nullptr: the default)
void synchronize();          // waits for the current stream

// Timing events on this thread's current stream (the profiler's CUDA timings): one
// recorded now, the milliseconds from one to another (waits for `to`), and its release.
void* record_timing_event();
float timing_event_ms(void* from, void* to);
void release_timing_event(void* event);

// Page-locked host memory: what copy_bytes_async needs, and twice the bandwidth of
// pageable memory for large transfers.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t bytes);
  PinnedBuffer(PinnedBuffer&& other) noexcept;
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer();
  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// A CUDA graph: the work one call queues on a stream, captured once and replayed with
// one launch (no per-kernel launch cost). Its allocations come from a private pool of
// the caching allocator, pinned while the graph lives: the addresses baked into the
// graph stay valid and are never handed to another tensor. Tensors made during the
// capture and still held afterwards (gradients, a returned loss) are the graph's outputs:
// each replay rewrites them. Host values read during the capture are frozen into the
// graph (nn's optimizers keep their rate and step count on the device for this: a
// schedule set between replays holds). The capture records and does not run the work;
// no host wait, copy to the host or driver allocation of the shared pool may happen in
// it (CUDA rejects the capture). Replays are queued on the capture's stream: run the
// work around them on it too (StreamGuard), or synchronize.
class Graph {
 public:
  explicit Graph(const Stream& stream);
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  void capture(const std::function<void()>& work);  // once
  void replay();
  bool captured() const { return exec_ != nullptr; }
  std::size_t node_count() const { return nodes_; }

 private:
  [[maybe_unused]] void* stream_ = nullptr;  // (the unused ones where built without CUDA)
  int device_ = 0;
  [[maybe_unused]] std::uint64_t pool_ = 0;
  [[maybe_unused]] void* graph_ = nullptr;  // cudaGraph_t
  void* exec_ = nullptr;   // cudaGraphExec_t
  std::size_t nodes_ = 0;
};
// True while this thread's current stream is being captured into a graph.
bool capturing();

// The caching allocator of each device (cuda/caching_allocator.hpp) behind every Buffer on
// cuda:N. tg::Error unless 0 <= device < device_count().
AllocatorStats allocator_stats(int device);
void reset_allocator_peaks(int device);
void empty_cache();  // every device: returns wholly free segments to the driver

// Device-to-device copy bandwidth of device `index` in GB/s (bytes read + written per
// second; cudaMemcpy of 256 MiB, timed with events, best of 5): the memory ceiling the
// GPU rows quote. 0 when there is no such device.
double measure_copy_gbs(int index);

// Runs a tiny kernel on `index` (y = 2x + 1 over 1M elements), copies the result back and
// checks every element: proves compile, launch and copy work on this device. Returns ""
// when it passed, else what went wrong.
std::string launch_check(int index);

}  // namespace tg::cuda
