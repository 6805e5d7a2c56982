// A host vector mirrored in a device Buffer (cuda:0), for the GPU tests.
#pragma once

#include <algorithm>
#include <vector>

#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/buffer.hpp"

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

}  // namespace tg::testing
