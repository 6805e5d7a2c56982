// What the launch sites of every .cu share: alignment tests, the current device and its
// SM count, the grid of a grid-stride loop, the dynamic shared-memory opt-in, a cluster
// launch's configuration, and a guard that restores the current device. Defined once, in runtime.cu.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tilegrad/cuda/check.cuh"

namespace tg::cuda::detail {

inline bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15) == 0; }

int current_device();
// An attribute of the current device (cached per device and attribute).
int device_attribute(cudaDeviceAttr attr);
// The architecture of `kernel`'s binary loaded for the current device (90 for sm_90 or
// sm_90a; cached per kernel and device); 0 when it has none for this device.
int binary_version(const void* kernel);
int sm_count();  // of the current device

// Blocks of `threads` for a grid-stride loop over n items: enough to cover them, at most
// 32 per SM (grid-stride beyond), at least 1.
unsigned grid_for(std::int64_t n, int threads);

// Lets `kernel` take `bytes` of dynamic shared memory on the current device (the opt-in
// above 48 KiB): cudaFuncSetAttribute once per kernel, device and larger size.
void allow_shared(const void* kernel, std::size_t bytes);

// The most dynamic shared memory one block may opt into on the current device.
std::size_t shared_optin();

// Whether `kernel` may be launched in thread-block clusters on the current device: the
// device supports cluster launch and the kernel's loaded binary is sm_90 or newer (a
// build for an older architecture compiles the cluster code out).
bool can_cluster(const void* kernel);

// cudaLaunchKernelEx's configuration for `blocks` blocks of `threads` threads in clusters
// of `cluster` blocks along x, with `smem` bytes of dynamic shared memory, on the current
// stream. Not copyable: the configuration points at its own attribute.
struct ClusterLaunch {
  cudaLaunchConfig_t config{};
  cudaLaunchAttribute attribute{};
  ClusterLaunch(unsigned blocks, unsigned threads, std::size_t smem, unsigned cluster) {
    config.gridDim = dim3(blocks);
    config.blockDim = dim3(threads);
    config.dynamicSmemBytes = smem;
    config.stream = stream();
    attribute.id = cudaLaunchAttributeClusterDimension;
    attribute.val.clusterDim.x = cluster;
    attribute.val.clusterDim.y = 1;
    attribute.val.clusterDim.z = 1;
    config.attrs = &attribute;
    config.numAttrs = 1;
  }
  ClusterLaunch(const ClusterLaunch&) = delete;
  ClusterLaunch& operator=(const ClusterLaunch&) = delete;
};

// Makes `device` current for its lifetime, then restores the one that was.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace tg::cuda::detail
