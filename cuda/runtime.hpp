// The CUDA runtime as the rest of tilegrad sees it: whether CUDA was built in, which
// devices exist, and a device allocator for tg::Buffer. Plain C++: callers need no nvcc.
//
// Without a usable GPU (no device, no driver: cudaGetDeviceCount fails with error 100 or
// 35) device_count() is 0 and unavailable_reason() says why; nothing throws for that,
// so GPU tests can GTEST_SKIP() with the reason. When CUDA is built in, linking this
// library installs a cudaMalloc-backed allocator for Buffers on cuda:N.
#pragma once

#include <cstddef>
#include <string>

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

// Copies bytes between any two of host memory and CUDA devices (cudaMemcpy with unified
// addressing); synchronous. tg::Error when a side is a device and CUDA is absent.
void copy_bytes(void* dst, bool dst_on_device, const void* src, bool src_on_device, std::size_t bytes);

// Device-to-device copy bandwidth of device `index` in GB/s (bytes read + written per
// second; cudaMemcpy of 256 MiB, timed with events, best of 5): the memory ceiling the
// GPU rows quote. 0 when there is no such device.
double measure_copy_gbs(int index);

// Runs a tiny kernel on `index` (y = 2x + 1 over 1M elements), copies the result back and
// checks every element: proves compile, launch and copy work on this device. Returns ""
// when it passed, else what went wrong.
std::string launch_check(int index);

}  // namespace tg::cuda
