// The CUDA runtime wrapper (cuda/runtime.hpp): devices, streams, copies, pinned memory,
// and the caching allocators behind Buffers on cuda:N.
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <cstdint>
#include <string>
#include <vector>

#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/buffer.hpp"

namespace tg::cuda {

namespace {

struct DeviceCount {
  int count = 0;
  std::string reason;
};

const DeviceCount& probe() {
  static const DeviceCount result = [] {
    DeviceCount r;
    const cudaError_t err = cudaGetDeviceCount(&r.count);
    if (err != cudaSuccess) {
      cudaGetLastError();
      r.count = 0;
      r.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorName(err) + " (" +
                 std::to_string(int(err)) + "): " + cudaGetErrorString(err);
    } else if (r.count == 0) {
      r.reason = "no CUDA device";
    }
    return r;
  }();
  return result;
}

// The driver side of the caching allocators: cudaMalloc on the block's device; nullptr
// (not an exception) when the device is out of memory, so that the allocator can empty
// its cache and retry.
void* raw_alloc(std::size_t bytes, void* context) {
  detail::DeviceGuard on(int(reinterpret_cast<std::intptr_t>(context)));
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return nullptr;
  }
  TG_CUDA_CHECK(err);
  return p;
}

// Segments go back only when wholly free, but a kernel queued before the host freed the
// last block may still be reading it: wait for the device first.
void raw_free(void* p, void* context) {
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess) return;  // the runtime is gone (process exit)
  detail::DeviceGuard on(int(reinterpret_cast<std::intptr_t>(context)));
  cudaDeviceSynchronize();
  cudaFree(p);
}

// One caching allocator per device, made on first use and never destroyed: Buffers with
// static storage duration may be freed after any destructor of this file has run.
CachingAllocator& allocator_of(int device) {
  static const std::vector<CachingAllocator*> all = [] {
    std::vector<CachingAllocator*> v;
    for (int i = 0; i < device_count(); ++i)
      v.push_back(new CachingAllocator({&raw_alloc, &raw_free, reinterpret_cast<void*>(std::intptr_t(i))},
                                       "cuda:" + std::to_string(i)));
    return v;
  }();
  TG_CHECK(!all.empty(), "cuda allocator", "device", "cannot allocate on cuda:", device, ": ", unavailable_reason());
  TG_CHECK(device >= 0 && device < int(all.size()), "cuda allocator", "device", "expected 0 <= device < ",
           all.size(), ", got ", device);
  return *all[std::size_t(device)];
}

thread_local void* g_stream = nullptr;  // this thread's current stream; nullptr: default

thread_local std::uint64_t g_pool = 0;  // the allocator pool of this thread: 0, or a graph's
std::atomic<std::uint64_t> g_next_pool{1};

void* allocate(int device, std::size_t bytes) {
  return allocator_of(device).allocate(bytes, reinterpret_cast<std::uintptr_t>(current_stream()), g_pool);
}

void deallocate(int device, void* p, std::size_t /*bytes*/) { allocator_of(device).deallocate(p); }

constexpr DeviceAllocator kAllocator{&allocate, &deallocate};

// Installed when this library is linked in (this translation unit holds every symbol
// of runtime.hpp, so any use of tg::cuda pulls it in).
const bool kInstalled = [] {
  set_device_allocator(DeviceType::cuda, &kAllocator);
  return true;
}();

// Host<->device traffic: counted under a lock (a copy costs microseconds; the lock is
// noise beside it) so that a snapshot and a reset are plain assignments.
std::mutex g_transfers_mutex;
TransferStats g_transfers;

void count_copy(bool dst_on_device, bool src_on_device, std::size_t bytes) {
  std::lock_guard<std::mutex> lock(g_transfers_mutex);
  if (dst_on_device && src_on_device) {
    ++g_transfers.device_to_device;
  } else if (dst_on_device) {
    ++g_transfers.host_to_device;
    g_transfers.host_to_device_bytes += bytes;
  } else if (src_on_device) {
    ++g_transfers.device_to_host;
    g_transfers.device_to_host_bytes += bytes;
  }
}

void count_sync() {
  std::lock_guard<std::mutex> lock(g_transfers_mutex);
  ++g_transfers.synchronizations;
}

__global__ void affine_kernel(const float* x, float* y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = 2.0f * x[i] + 1.0f;
}

}  // namespace

bool built() { return kInstalled; }

int device_count() { return probe().count; }

std::string unavailable_reason() { return probe().reason; }

DeviceInfo device_info(int index) {
  TG_CHECK(index >= 0 && index < device_count(), "cuda::device_info", "index",
           "expected 0 <= index < ", device_count(), ", got ", index);
  cudaDeviceProp p{};
  TG_CUDA_CHECK(cudaGetDeviceProperties(&p, index));
  DeviceInfo info;
  info.index = index;
  info.name = p.name;
  info.cc_major = p.major;
  info.cc_minor = p.minor;
  info.total_memory = p.totalGlobalMem;
  info.sm_count = p.multiProcessorCount;
  info.max_threads_per_block = p.maxThreadsPerBlock;
  info.shared_memory_per_block_optin = p.sharedMemPerBlockOptin;
  info.l2_cache_bytes = p.l2CacheSize;
  info.memory_bus_width_bits = p.memoryBusWidth;
  return info;
}

std::string version_string() {
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  auto fmt = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
  return "runtime " + fmt(runtime) + ", driver " + (driver ? fmt(driver) : std::string("none"));
}

void copy_bytes_async(void* dst, bool dst_on_device, const void* src, bool src_on_device, std::size_t bytes) {
  if (bytes == 0) return;
  TG_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, detail::stream()));
  count_copy(dst_on_device, src_on_device, bytes);
}

void copy_bytes(void* dst, bool dst_on_device, const void* src, bool src_on_device, std::size_t bytes) {
  // A host side waits for the stream, which a capture forbids (CUDA would end it with a
  // bare "operation not permitted"): say what it is.
  TG_CHECK(bytes == 0 || (dst_on_device && src_on_device) || !capturing(), "cuda::copy_bytes", "stream",
           "a copy ", dst_on_device ? "from" : "to", " the host waits for the device and cannot be captured in a CUDA "
           "graph (reading a value with item() or to(cpu), a batch copied in, a GradScaler's check: do it between "
           "replays)");
  copy_bytes_async(dst, dst_on_device, src, src_on_device, bytes);
  if (bytes > 0 && (!dst_on_device || !src_on_device)) synchronize();  // the host side may be reused at once
}

TransferStats transfer_stats() {
  std::lock_guard<std::mutex> lock(g_transfers_mutex);
  return g_transfers;
}

void reset_transfer_stats() {
  std::lock_guard<std::mutex> lock(g_transfers_mutex);
  g_transfers = {};
}

Stream::Stream(int device) : device_(device) {
  TG_CHECK(device >= 0 && device < device_count(), "cuda::Stream", "device", "expected 0 <= device < ",
           device_count(), ", got ", device);
  detail::DeviceGuard on(device);
  cudaStream_t s = nullptr;
  TG_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  handle_ = s;
}

Stream::~Stream() {
  if (handle_) cudaStreamDestroy(static_cast<cudaStream_t>(handle_));
}

void Stream::synchronize() const {
  TG_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(handle_)));
  count_sync();
}

StreamGuard::StreamGuard(const Stream& stream) : previous_(g_stream) {
  TG_CUDA_CHECK(cudaGetDevice(&previous_device_));
  TG_CUDA_CHECK(cudaSetDevice(stream.device()));
  g_stream = stream.handle();
}

StreamGuard::~StreamGuard() {
  g_stream = previous_;
  cudaSetDevice(previous_device_);
}

void* current_stream() { return g_stream; }

void synchronize() {
  TG_CUDA_CHECK(cudaStreamSynchronize(detail::stream()));
  count_sync();
}

void* record_timing_event() {
  cudaEvent_t e = nullptr;
  TG_CUDA_CHECK(cudaEventCreate(&e));
  TG_CUDA_CHECK(cudaEventRecord(e, detail::stream()));
  return e;
}

float timing_event_ms(void* from, void* to) {
  float ms = 0;
  TG_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(to)));
  TG_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(from), static_cast<cudaEvent_t>(to)));
  return ms;
}

void release_timing_event(void* event) {
  if (event) cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

PinnedBuffer::PinnedBuffer(std::size_t bytes) : bytes_(bytes) {
  if (bytes) TG_CUDA_CHECK(cudaMallocHost(&data_, bytes));
}

PinnedBuffer::PinnedBuffer(PinnedBuffer&& other) noexcept : data_(other.data_), bytes_(other.bytes_) {
  other.data_ = nullptr;
  other.bytes_ = 0;
}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& other) noexcept {
  if (this != &other) {
    if (data_) cudaFreeHost(data_);
    data_ = other.data_;
    bytes_ = other.bytes_;
    other.data_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

PinnedBuffer::~PinnedBuffer() {
  if (data_) cudaFreeHost(data_);
}

Graph::Graph(const Stream& stream)
    : stream_(stream.handle()), device_(stream.device()), pool_(g_next_pool.fetch_add(1)) {
  allocator_of(device_).pin_pool(pool_);
}

Graph::~Graph() {
  if (exec_) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
  if (graph_) cudaGraphDestroy(static_cast<cudaGraph_t>(graph_));
  // Blocks still held by tensors made in the capture free into the pool later; its
  // wholly free segments go now, the rest at the next empty_cache.
  try {
    allocator_of(device_).unpin_pool(pool_);
  } catch (...) {
  }
}

void Graph::capture(const std::function<void()>& work) {
  TG_CHECK(exec_ == nullptr, "cuda::Graph::capture", "graph", "this graph was captured already");
  const cudaStream_t s = static_cast<cudaStream_t>(stream_);
  detail::DeviceGuard on(device_);
  TG_CUDA_CHECK(cudaDeviceSynchronize());  // what came before is done, on every stream
  // This thread queues on the graph's stream and allocates from its pool until the end.
  struct Restore {
    void* stream;
    std::uint64_t pool;
    ~Restore() { g_stream = stream, g_pool = pool; }
  } restore{g_stream, g_pool};
  g_stream = stream_;
  g_pool = pool_;
  // Relaxed: the allocator may ask the driver for the pool's first segments meanwhile.
  TG_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
  try {
    work();
  } catch (...) {
    cudaGraph_t broken = nullptr;
    cudaStreamEndCapture(s, &broken);
    if (broken) cudaGraphDestroy(broken);
    cudaGetLastError();
    throw;
  }
  cudaGraph_t g = nullptr;
  TG_CUDA_CHECK(cudaStreamEndCapture(s, &g));
  graph_ = g;
  TG_CUDA_CHECK(cudaGraphGetNodes(g, nullptr, &nodes_));
  cudaGraphExec_t exec = nullptr;
  TG_CUDA_CHECK(cudaGraphInstantiate(&exec, g, 0));
  exec_ = exec;
}

void Graph::replay() {
  TG_CHECK(exec_ != nullptr, "cuda::Graph::replay", "graph", "capture the graph before replaying it");
  TG_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), static_cast<cudaStream_t>(stream_)));
}

bool capturing() {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  TG_CUDA_CHECK(cudaStreamIsCapturing(detail::stream(), &status));
  return status == cudaStreamCaptureStatusActive;
}

AllocatorStats allocator_stats(int device) { return allocator_of(device).stats(); }
void reset_allocator_peaks(int device) { allocator_of(device).reset_peaks(); }
void empty_cache() {
  for (int i = 0; i < device_count(); ++i) allocator_of(i).empty_cache();
}

double measure_copy_gbs(int index) {
  if (index < 0 || index >= device_count()) return 0;
  detail::DeviceGuard on(index);
  const std::size_t bytes = std::size_t(256) << 20;
  void *a = nullptr, *b = nullptr;
  cudaEvent_t start, stop;
  float best_ms = 0;
  TG_CUDA_CHECK(cudaMalloc(&a, bytes));
  TG_CUDA_CHECK(cudaMalloc(&b, bytes));
  TG_CUDA_CHECK(cudaEventCreate(&start));
  TG_CUDA_CHECK(cudaEventCreate(&stop));
  TG_CUDA_CHECK(cudaMemset(a, 0, bytes));
  TG_CUDA_CHECK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));  // warm-up
  for (int rep = 0; rep < 5; ++rep) {
    TG_CUDA_CHECK(cudaEventRecord(start));
    TG_CUDA_CHECK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
    TG_CUDA_CHECK(cudaEventRecord(stop));
    TG_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    TG_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (rep == 0 || ms < best_ms) best_ms = ms;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(a);
  cudaFree(b);
  return best_ms > 0 ? 2.0 * double(bytes) / (double(best_ms) * 1e-3) / 1e9 : 0;
}

std::string launch_check(int index) {
  try {
    TG_CHECK(index >= 0 && index < device_count(), "cuda::launch_check", "index",
             "expected 0 <= index < ", device_count(), ", got ", index);
    detail::DeviceGuard on(index);
    const int n = 1 << 20;
    std::vector<float> host(n);
    for (int i = 0; i < n; ++i) host[i] = float(i % 1000) - 500.0f;
    Buffer x(n * sizeof(float), Device::cuda(index));
    Buffer y(n * sizeof(float), Device::cuda(index));
    copy_bytes(x.data(), true, host.data(), false, n * sizeof(float));
    affine_kernel<<<(n + 255) / 256, 256, 0, detail::stream()>>>(x.as<float>(), y.as<float>(), n);
    TG_CUDA_LAUNCHED();
    std::vector<float> out(n);
    copy_bytes(out.data(), false, y.data(), true, n * sizeof(float));
    for (int i = 0; i < n; ++i)
      if (out[i] != 2.0f * host[i] + 1.0f)
        return "element " + std::to_string(i) + ": got " + std::to_string(out[i]) +
               ", expected " + std::to_string(2.0f * host[i] + 1.0f);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

namespace detail {

DeviceGuard::DeviceGuard(int device) {
  TG_CUDA_CHECK(cudaGetDevice(&previous_));
  if (device != previous_) TG_CUDA_CHECK(cudaSetDevice(device));
}

DeviceGuard::~DeviceGuard() { cudaSetDevice(previous_); }

int current_device() {
  int d = 0;
  TG_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

int device_attribute(cudaDeviceAttr attr) {
  static std::mutex mutex;
  static std::map<std::pair<int, int>, int> known;  // per device and attribute
  const int d = current_device();
  std::lock_guard<std::mutex> lock(mutex);
  const auto it = known.find({d, int(attr)});
  if (it != known.end()) return it->second;
  int v = 0;
  TG_CUDA_CHECK(cudaDeviceGetAttribute(&v, attr, d));
  known[{d, int(attr)}] = v;
  return v;
}

int binary_version(const void* kernel) {
  static std::mutex mutex;
  static std::map<std::pair<const void*, int>, int> known;  // per kernel and device
  const int d = current_device();
  std::lock_guard<std::mutex> lock(mutex);
  const auto it = known.find({kernel, d});
  if (it != known.end()) return it->second;
  cudaFuncAttributes fa{};
  const int v = cudaFuncGetAttributes(&fa, kernel) == cudaSuccess ? fa.binaryVersion : 0;
  cudaGetLastError();  // a kernel with no image for this device is an answer (0), not an error
  known[{kernel, d}] = v;
  return v;
}

int sm_count() { return device_attribute(cudaDevAttrMultiProcessorCount); }

unsigned grid_for(std::int64_t n, int threads) {
  const std::int64_t blocks = (n + threads - 1) / threads;
  return unsigned(std::min<std::int64_t>(std::max<std::int64_t>(blocks, 1), std::int64_t(sm_count()) * 32));
}

void allow_shared(const void* kernel, std::size_t bytes) {
  if (bytes <= 48 * 1024) return;  // the default limit
  static std::mutex mutex;
  static std::map<std::pair<const void*, int>, std::size_t> raised;  // per kernel and device
  std::lock_guard<std::mutex> lock(mutex);
  std::size_t& done = raised[{kernel, current_device()}];
  if (done >= bytes) return;
  TG_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  done = bytes;
}

std::size_t shared_optin() { return std::size_t(device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin)); }

bool can_cluster(const void* kernel) {
  return device_attribute(cudaDevAttrClusterLaunch) != 0 && binary_version(kernel) >= 90;
}

}  // namespace detail

}  // namespace tg::cuda
