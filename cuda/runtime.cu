// The CUDA runtime wrapper (cuda/runtime.hpp) and the device allocator for Buffers.
// The allocator is plain cudaMalloc/cudaFree for now; the caching allocator of the CUDA
// path issue replaces it behind the same hook.
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "cuda/check.cuh"
#include "cuda/runtime.hpp"
#include "kernels/buffer.hpp"

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

void* allocate(int device, std::size_t bytes) {
  int previous = 0;
  TG_CUDA_CHECK(cudaGetDevice(&previous));
  TG_CUDA_CHECK(cudaSetDevice(device));
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  cudaSetDevice(previous);
  TG_CUDA_CHECK(err);
  return p;
}

void deallocate(int /*device*/, void* p, std::size_t /*bytes*/) { cudaFree(p); }

constexpr DeviceAllocator kAllocator{&allocate, &deallocate};

// Installed when this library is linked in (this translation unit holds every symbol
// of runtime.hpp, so any use of tg::cuda pulls it in).
const bool kInstalled = [] {
  set_device_allocator(DeviceType::cuda, &kAllocator);
  return true;
}();

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

void copy_bytes(void* dst, bool /*dst_on_device*/, const void* src, bool /*src_on_device*/, std::size_t bytes) {
  if (bytes == 0) return;
  TG_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
}

double measure_copy_gbs(int index) {
  if (index < 0 || index >= device_count()) return 0;
  int previous = 0;
  TG_CUDA_CHECK(cudaGetDevice(&previous));
  TG_CUDA_CHECK(cudaSetDevice(index));
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
  TG_CUDA_CHECK(cudaSetDevice(previous));
  return best_ms > 0 ? 2.0 * double(bytes) / (double(best_ms) * 1e-3) / 1e9 : 0;
}

std::string launch_check(int index) {
  try {
    TG_CHECK(index >= 0 && index < device_count(), "cuda::launch_check", "index",
             "expected 0 <= index < ", device_count(), ", got ", index);
    TG_CUDA_CHECK(cudaSetDevice(index));
    const int n = 1 << 20;
    std::vector<float> host(n);
    for (int i = 0; i < n; ++i) host[i] = float(i % 1000) - 500.0f;
    Buffer x(n * sizeof(float), Device::cuda(index));
    Buffer y(n * sizeof(float), Device::cuda(index));
    TG_CUDA_CHECK(cudaMemcpy(x.data(), host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    affine_kernel<<<(n + 255) / 256, 256>>>(x.as<float>(), y.as<float>(), n);
    TG_CUDA_LAUNCHED();
    std::vector<float> out(n);
    TG_CUDA_CHECK(cudaMemcpy(out.data(), y.data(), n * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; ++i)
      if (out[i] != 2.0f * host[i] + 1.0f)
        return "element " + std::to_string(i) + ": got " + std::to_string(out[i]) +
               ", expected " + std::to_string(2.0f * host[i] + 1.0f);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace tg::cuda
