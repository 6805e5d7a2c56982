// The CUDA smoke test: device query, a Buffer on the device, one kernel launch, the
// caching allocator's reuse, pinned copies on a stream and their counters. Runs
// where a GPU exists; elsewhere it skips with the reason (no device, no driver, or a
// build without CUDA), which is what CI on the development machines shows.
#include <gtest/gtest.h>

#include <cstring>

#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tests/support/device_vec.hpp"

namespace tg::cuda {
namespace {

TEST(CudaSmoke, QueriesEveryDevice) {
  TG_REQUIRE_GPU();
  for (int i = 0; i < device_count(); ++i) {
    const DeviceInfo d = device_info(i);
    EXPECT_FALSE(d.name.empty());
    EXPECT_GE(d.cc_major, 5);
    EXPECT_GT(d.sm_count, 0);
    EXPECT_GT(d.total_memory, std::size_t(1) << 30);
    RecordProperty("device" + std::to_string(i), d.name);
  }
}

TEST(CudaSmoke, AllocatesABufferOnTheDevice) {
  TG_REQUIRE_GPU();
  const std::size_t live = buffer_stats().live_buffers;
  {
    Buffer b(1 << 20, Device::cuda(0));
    EXPECT_NE(b.data(), nullptr);
    EXPECT_EQ(b.device(), Device::cuda(0));
  }
  EXPECT_EQ(buffer_stats().live_buffers, live);
}

TEST(CudaSmoke, LaunchesAKernelAndGetsTheRightAnswer) {
  TG_REQUIRE_GPU();
  for (int i = 0; i < device_count(); ++i) EXPECT_EQ(launch_check(i), "") << "device " << i;
}

TEST(CudaSmoke, TheCachingAllocatorServesARepeatedBufferWithoutTheDriver) {
  TG_REQUIRE_GPU();
  auto churn = [] {
    Buffer a(3 << 20, Device::cuda(0)), b(1000, Device::cuda(0)), c(64 << 10, Device::cuda(0));
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % 512, 0u);
  };
  churn();
  const AllocatorStats first = allocator_stats(0);
  EXPECT_GE(first.reserved, std::size_t(5) << 20);  // a 4 MiB large segment and a 2 MiB small one
  for (int i = 0; i < 10; ++i) churn();
  const AllocatorStats later = allocator_stats(0);
  EXPECT_EQ(later.driver_allocations, first.driver_allocations);
  EXPECT_EQ(later.allocations, first.allocations + 30);
  EXPECT_EQ(later.allocated, first.allocated);
  empty_cache();
  EXPECT_LT(allocator_stats(0).reserved, first.reserved);
  EXPECT_GT(allocator_stats(0).driver_frees, first.driver_frees);
}

TEST(CudaSmoke, CopiesThroughPinnedMemoryOnAStreamAndCountsThem) {
  TG_REQUIRE_GPU();
  const std::size_t n = 1 << 20;
  PinnedBuffer host(n * sizeof(float)), back(n * sizeof(float));
  auto* h = static_cast<float*>(host.data());
  for (std::size_t i = 0; i < n; ++i) h[i] = float(i) * 0.5f;
  reset_transfer_stats();
  Stream stream(0);
  {
    StreamGuard on(stream);
    EXPECT_EQ(current_stream(), stream.handle());
    Buffer d(n * sizeof(float), Device::cuda(0)), e(n * sizeof(float), Device::cuda(0));
    copy_bytes_async(d.data(), true, host.data(), false, n * sizeof(float));
    copy_bytes_async(e.data(), true, d.data(), true, n * sizeof(float));
    copy_bytes_async(back.data(), false, e.data(), true, n * sizeof(float));
    stream.synchronize();
  }
  EXPECT_EQ(current_stream(), nullptr);
  EXPECT_EQ(std::memcmp(host.data(), back.data(), n * sizeof(float)), 0);
  const TransferStats t = transfer_stats();
  EXPECT_EQ(t.host_to_device, 1u);
  EXPECT_EQ(t.device_to_host, 1u);
  EXPECT_EQ(t.device_to_device, 1u);
  EXPECT_EQ(t.host_to_device_bytes, n * sizeof(float));
  EXPECT_EQ(t.synchronizations, 1u);
}

TEST(CudaSmoke, ReportsWhyThereIsNoDevice) {
  if (device_count() > 0) GTEST_SKIP() << "a device exists";
  EXPECT_FALSE(unavailable_reason().empty());
  EXPECT_NE(launch_check(0), "");
}

}  // namespace
}  // namespace tg::cuda
