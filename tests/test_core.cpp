// Core types: tg::Error and TG_CHECK, Device, DType, Shape, Buffer.
#include <gtest/gtest.h>

#include <cstring>

#include <cstdint>
#include <limits>
#include <string>

#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/shape.hpp"
#include "tilegrad/kernels/types.hpp"

namespace tg {
namespace {

TEST(Error, MessageNamesOpArgumentExpectationAndValue) {
  const index_t lda = 3, K = 5;
  try {
    TG_CHECK(lda >= K, "gemm", "lda", "expected lda >= K = ", K, ", got ", lda);
    FAIL() << "TG_CHECK did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "gemm: argument 'lda': expected lda >= K = 5, got 3");
    EXPECT_EQ(e.op(), "gemm");
    EXPECT_EQ(e.arg(), "lda");
  }
}

TEST(Error, CheckThatHoldsDoesNotThrowOrEvaluateTheMessage) {
  int evaluated = 0;
  auto part = [&] { return ++evaluated; };
  EXPECT_NO_THROW(TG_CHECK(1 + 1 == 2, "op", "arg", "never ", part()));
  EXPECT_EQ(evaluated, 0);
}

TEST(Error, CheckedArithmeticCatchesInt64Overflow) {
  const std::int64_t big = std::numeric_limits<std::int64_t>::max() / 2 + 1;
  EXPECT_EQ(checked_mul(3, 4, "op", "n"), 12);
  EXPECT_THROW(checked_mul(big, 2, "op", "n"), Error);
  EXPECT_THROW(checked_add(std::numeric_limits<std::int64_t>::max(), 1, "op", "n"), Error);
}

TEST(Device, ParsesAndPrints) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device::cuda(2).str(), "cuda:2");
  EXPECT_EQ(Device::cpu().str(), "cpu");
  for (const char* bad : {"", "gpu", "cuda:", "cuda:-1", "cuda:1x", "CPU"})
    EXPECT_THROW(Device::parse(bad), Error) << bad;
}

TEST(DType, SizesAndNames) {
  EXPECT_EQ(dtype_size(DType::f32), 4u);
  EXPECT_EQ(dtype_size(DType::f64), 8u);
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::f16), 2u);
  EXPECT_STREQ(dtype_name(DType::bf16), "bf16");
  EXPECT_EQ(dtype_v<float>, DType::f32);
  EXPECT_EQ(dtype_v<double>, DType::f64);
}

TEST(Shape, ContiguousStridesNumelAndExtent) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s.rank(), 3);
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s.extent(), 24);
  EXPECT_EQ(s.stride(0), 12);
  EXPECT_EQ(s.stride(1), 4);
  EXPECT_EQ(s.stride(2), 1);
  EXPECT_TRUE(s.is_contiguous());
  EXPECT_EQ(s.str(), "(2, 3, 4)");
  EXPECT_EQ(Shape{}.numel(), 1);  // a scalar
  EXPECT_EQ(Shape{5}.str(), "(5,)");
}

TEST(Shape, StridedViewsAndEmptyShapes) {
  const index_t sizes[] = {3, 2};
  const index_t transposed[] = {1, 3};  // a (2, 3) matrix seen transposed
  Shape t(sizes, transposed);
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.extent(), 6);
  EXPECT_EQ(t.str(), "(3, 2):(1, 3)");
  const index_t bsizes[] = {4, 3};
  const index_t broadcast[] = {0, 1};  // a row repeated 4 times
  EXPECT_EQ(Shape(bsizes, broadcast).extent(), 3);
  Shape empty{3, 0, 5};
  EXPECT_EQ(empty.numel(), 0);
  EXPECT_EQ(empty.extent(), 0);
  EXPECT_TRUE(empty.is_contiguous());
}

TEST(Shape, RejectsBadSizesStridesRankAndOverflow) {
  EXPECT_THROW((Shape{2, -1}), Error);
  EXPECT_THROW((Shape{1, 1, 1, 1, 1, 1, 1, 1, 1}), Error);
  const index_t sizes[] = {2, 2};
  const index_t negative[] = {1, -1};
  EXPECT_THROW(Shape(sizes, negative), Error);
  const index_t one[] = {1};
  EXPECT_THROW(Shape(sizes, one), Error);
  const index_t huge = index_t(1) << 32;
  EXPECT_THROW((Shape{huge, huge}), Error);
  EXPECT_THROW(Shape{1}.size(1), Error);
}

TEST(Buffer, HostMemoryIsAlignedAndCounted) {
  const BufferStats before = buffer_stats();
  {
    Buffer b(1000);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % Buffer::kAlignment, 0u);
    EXPECT_EQ(b.bytes(), 1000u);
    EXPECT_TRUE(b.owns());
    EXPECT_EQ(buffer_stats().live_buffers, before.live_buffers + 1);
    EXPECT_GE(buffer_stats().peak_bytes, before.live_bytes + 1000);
    Buffer moved = std::move(b);
    EXPECT_EQ(b.data(), nullptr);
    EXPECT_EQ(moved.bytes(), 1000u);
    EXPECT_EQ(buffer_stats().live_buffers, before.live_buffers + 1);
  }
  EXPECT_EQ(buffer_stats().live_buffers, before.live_buffers);
  EXPECT_EQ(buffer_stats().live_bytes, before.live_bytes);
  EXPECT_EQ(Buffer(0).data(), nullptr);
}

// Freed blocks above 32 KiB are kept and handed to the next request of about their size
// (their pages stay mapped), up to a bound; release_host_cache() returns them.
TEST(Buffer, LargeHostBlocksAreReusedWithinBounds) {
  release_host_cache();
  void* first = nullptr;
  {
    Buffer b(800 * 1024);
    first = b.data();
    std::memset(b.data(), 1, b.bytes());  // fault its pages in, as a kernel would
  }
  EXPECT_EQ(host_cache_bytes(), 800u * 1024);
  {
    Buffer same(800 * 1024 - 100);  // the same pages
    EXPECT_EQ(same.data(), first);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(same.data()) % Buffer::kAlignment, 0u);
    EXPECT_EQ(host_cache_bytes(), 0u);
  }
  {
    Buffer smaller(600 * 1024);  // the cached 800 KiB is more than an eighth larger: not taken
    EXPECT_NE(smaller.data(), first);
    EXPECT_EQ(host_cache_bytes(), 800u * 1024);
  }
  EXPECT_EQ(host_cache_bytes(), 1400u * 1024);
  { Buffer huge(std::size_t(65) << 20); }  // above the per-block bound: back to the system
  EXPECT_EQ(host_cache_bytes(), 1400u * 1024);
  release_host_cache();
  EXPECT_EQ(host_cache_bytes(), 0u);
}

TEST(Buffer, BorrowsWithoutOwning) {
  float x[4] = {1, 2, 3, 4};
  const std::size_t live = buffer_stats().live_buffers;
  {
    Buffer b = Buffer::borrow(x, sizeof x);
    EXPECT_FALSE(b.owns());
    EXPECT_EQ(b.as<float>()[2], 3.0f);
    EXPECT_EQ(buffer_stats().live_buffers, live);
  }
  EXPECT_EQ(x[3], 4.0f);
  EXPECT_THROW(Buffer::borrow(nullptr, 8), Error);
}

TEST(Buffer, DeviceWithoutUsableBackendIsAClearError) {
  if (cuda::device_count() > 0) GTEST_SKIP() << "a CUDA device exists; the GPU smoke test covers it";
  EXPECT_THROW(Buffer(64, Device::cuda(0)), Error);
}

}  // namespace
}  // namespace tg
