// cuda/runtime.hpp for builds without CUDA (TG_CUDA=OFF or no nvcc): no devices, and a
// reason that says so. Nothing here needs the CUDA toolkit.
#include "cuda/gemm.hpp"
#include "cuda/kernels.hpp"
#include "cuda/runtime.hpp"
#include "kernels/error.hpp"

namespace tg::cuda {

bool built() { return false; }
int device_count() { return 0; }
std::string unavailable_reason() { return "tilegrad was built without CUDA (TG_CUDA=OFF or no nvcc)"; }
DeviceInfo device_info(int index) {
  detail::throw_error("cuda::device_info", "index", "no CUDA device (built without CUDA), got ",
                      index);
}
std::string version_string() { return "built without CUDA"; }
std::string launch_check(int /*index*/) { return unavailable_reason(); }
double measure_copy_gbs(int /*index*/) { return 0; }
void copy_bytes(void* /*dst*/, bool /*dst_on_device*/, const void* /*src*/, bool /*src_on_device*/,
                std::size_t /*bytes*/) {
  detail::throw_error("cuda::copy_bytes", "device", unavailable_reason());
}

void copy_bytes_async(void* /*dst*/, bool /*dst_on_device*/, const void* /*src*/, bool /*src_on_device*/,
                      std::size_t /*bytes*/) {
  detail::throw_error("cuda::copy_bytes_async", "device", unavailable_reason());
}
TransferStats transfer_stats() { return {}; }
void reset_transfer_stats() {}

Stream::Stream(int device) : device_(device) { detail::throw_error("cuda::Stream", "device", unavailable_reason()); }
Stream::~Stream() = default;
void Stream::synchronize() const {}
StreamGuard::StreamGuard(const Stream& /*stream*/) {}
StreamGuard::~StreamGuard() = default;
void* current_stream() { return nullptr; }
void synchronize() {}

PinnedBuffer::PinnedBuffer(std::size_t bytes) : bytes_(bytes) {
  detail::throw_error("cuda::PinnedBuffer", "device", unavailable_reason());
}
PinnedBuffer::PinnedBuffer(PinnedBuffer&& other) noexcept : data_(other.data_), bytes_(other.bytes_) {}
PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& other) noexcept {
  data_ = other.data_;
  bytes_ = other.bytes_;
  return *this;
}
PinnedBuffer::~PinnedBuffer() = default;

AllocatorStats allocator_stats(int device) {
  detail::throw_error("cuda::allocator_stats", "device", "no CUDA device (built without CUDA), got ", device);
}
void reset_allocator_peaks(int device) {
  detail::throw_error("cuda::reset_allocator_peaks", "device", "no CUDA device (built without CUDA), got ", device);
}
void empty_cache() {}

void gemm(Trans, Trans, index_t, index_t, index_t, float, const float*, index_t, const float*, index_t, float, float*,
          index_t, const GemmEpilogue<float>&) {
  detail::throw_error("cuda::gemm", "device", unavailable_reason());
}

void act_forward(Activation, index_t, index_t, const float*, index_t, const float*, float*, index_t) {
  detail::throw_error("cuda::act_forward", "device", unavailable_reason());
}
void act_backward(Activation, index_t, index_t, const float*, index_t, const float*, const float*, index_t, float*,
                  index_t) {
  detail::throw_error("cuda::act_backward", "device", unavailable_reason());
}
void softmax_forward(bool, index_t, index_t, const float*, index_t, float*, index_t) {
  detail::throw_error("cuda::softmax_forward", "device", unavailable_reason());
}
void softmax_backward(bool, index_t, index_t, const float*, index_t, const float*, index_t, float*, index_t) {
  detail::throw_error("cuda::softmax_backward", "device", unavailable_reason());
}

}  // namespace tg::cuda
