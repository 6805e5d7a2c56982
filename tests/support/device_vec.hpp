// A host vector mirrored in a device Buffer (cuda:0), and the skip every GPU test starts
// with where there is no device.
#pragma once

#include <algorithm>
#include <vector>

#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/buffer.hpp"

// Skips the test, with the reason, where no CUDA device can be used (in a gtest body).
#define TG_REQUIRE_GPU() \
  if (::tg::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device: " << ::tg::cuda::unavailable_reason()

namespace tg::testing {

struct DeviceVec {
  Buffer buf;
  explicit DeviceVec(const std::vector<float>& host)
      : buf(std::max<std::size_t>(host.size(), 1) * sizeof(float), Device::cuda(0)) {
    if (!host.empty()) cuda::copy_bytes(buf.data(), true, host.data(), false, host.size() * sizeof(float));
  }
  float* ptr() { return static_cast<float*>(buf.data()); }
  std::vector<float> download(std::size_t n) {
    std::vector<float> out(n);
    if (n) cuda::copy_bytes(out.data(), false, buf.data(), true, n * sizeof(float));
    return out;
  }
};

// A device array of class indices (the cross-entropy targets).
struct DeviceIdx {
  Buffer buf;
  explicit DeviceIdx(const std::vector<index_t>& host)
      : buf(std::max<std::size_t>(host.size(), 1) * sizeof(index_t), Device::cuda(0)) {
    if (!host.empty()) cuda::copy_bytes(buf.data(), true, host.data(), false, host.size() * sizeof(index_t));
  }
  const index_t* ptr() const { return static_cast<const index_t*>(buf.data()); }
};

}  // namespace tg::testing
