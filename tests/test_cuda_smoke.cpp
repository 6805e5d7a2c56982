// The CUDA smoke test: device query, a Buffer on the device, one kernel launch. Runs
// where a GPU exists; elsewhere it skips with the reason (no device, no driver, or a
// build without CUDA), which is what CI on the development machines shows.
#include <gtest/gtest.h>

#include "cuda/runtime.hpp"
#include "kernels/buffer.hpp"

namespace tg::cuda {
namespace {

#define TG_REQUIRE_GPU()                                                             \
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device: " << unavailable_reason()

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

TEST(CudaSmoke, ReportsWhyThereIsNoDevice) {
  if (device_count() > 0) GTEST_SKIP() << "a device exists";
  EXPECT_FALSE(unavailable_reason().empty());
  EXPECT_NE(launch_check(0), "");
}

}  // namespace
}  // namespace tg::cuda
