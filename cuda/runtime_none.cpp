// cuda/runtime.hpp for builds without CUDA (TG_CUDA=OFF or no nvcc): no devices, and a
// reason that says so. Nothing here needs the CUDA toolkit.
#include "tilegrad/cuda/activation.hpp"
#include "tilegrad/cuda/cross_entropy.hpp"
#include "tilegrad/cuda/gemm.hpp"
#include "tilegrad/cuda/ops.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/cuda/softmax.hpp"
#include "tilegrad/kernels/error.hpp"

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
void* record_timing_event() { detail::throw_error("cuda::record_timing_event", "device", unavailable_reason()); }
float timing_event_ms(void* /*from*/, void* /*to*/) {
  detail::throw_error("cuda::timing_event_ms", "device", unavailable_reason());
}
void release_timing_event(void* /*event*/) {}

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

Graph::Graph(const Stream& stream) : device_(stream.device()) {
  detail::throw_error("cuda::Graph", "device", unavailable_reason());
}
Graph::~Graph() = default;
void Graph::capture(const std::function<void()>& /*work*/) {
  detail::throw_error("cuda::Graph::capture", "device", unavailable_reason());
}
void Graph::replay() { detail::throw_error("cuda::Graph::replay", "device", unavailable_reason()); }
bool capturing() { return false; }

AllocatorStats allocator_stats(int device) {
  detail::throw_error("cuda::allocator_stats", "device", "no CUDA device (built without CUDA), got ", device);
}
void reset_allocator_peaks(int device) {
  detail::throw_error("cuda::reset_allocator_peaks", "device", "no CUDA device (built without CUDA), got ", device);
}
void empty_cache() {}

// The arguments are checked first, as in the CUDA build: a bad one is named either way.
void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda, const float* B,
          index_t ldb, float beta, float* C, index_t ldc, const GemmEpilogue<float>& ep, GemmKernel) {
  (void)beta;
  check_gemm("cuda::gemm", ta, tb, M, N, K, double(alpha), A, lda, B, ldb, C, ldc, ep.bias, sizeof(float));
  detail::throw_error("cuda::gemm", "device", unavailable_reason());
}

void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda, const float* B,
          index_t ldb, float beta, float* C, index_t ldc, const GemmEpilogue<float>& ep) {
  gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, GemmKernel::auto_select);
}
const char* gemm_kernel_name(GemmKernel) { return "none (built without CUDA)"; }
GemmKernel gemm_kernel_for(index_t, index_t, index_t) { return GemmKernel::auto_select; }
void gemm_bf16(Trans, Trans, index_t, index_t, index_t, float, const std::uint16_t*, index_t, const std::uint16_t*,
               index_t, float, float*, index_t, const GemmEpilogue<float>&) {
  detail::throw_error("cuda::gemm_bf16", "device", unavailable_reason());
}
void gemm_f16(Trans, Trans, index_t, index_t, index_t, float, const std::uint16_t*, index_t, const std::uint16_t*,
              index_t, float, float*, index_t, const GemmEpilogue<float>&) {
  detail::throw_error("cuda::gemm_f16", "device", unavailable_reason());
}
void gemm_bf16(index_t, index_t, index_t, float, const std::uint16_t*, index_t, const std::uint16_t*, index_t, float,
               float*, index_t, const GemmEpilogue<float>&, HalfGemmPath) {
  detail::throw_error("cuda::gemm_bf16", "device", unavailable_reason());
}
void gemm_f16(index_t, index_t, index_t, float, const std::uint16_t*, index_t, const std::uint16_t*, index_t, float,
              float*, index_t, const GemmEpilogue<float>&, HalfGemmPath) {
  detail::throw_error("cuda::gemm_f16", "device", unavailable_reason());
}
bool half_gemm_wgmma_available() { return false; }
void gemm_tf32(Trans, Trans, index_t, index_t, index_t, float, const float*, index_t, const float*, index_t, float,
               float*, index_t, const GemmEpilogue<float>&, HalfGemmPath) {
  detail::throw_error("cuda::gemm_tf32", "device", unavailable_reason());
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

// The op table and cuda/ops.hpp's entries: every one says why there is no device.
namespace {
[[noreturn]] void unavailable(const char* op) { detail::throw_error(op, "device", unavailable_reason()); }
[[noreturn]] void no_device() { unavailable("cuda"); }
constexpr OpTable kNone{"cuda (not built)", failing_ops<float, &no_device>(), failing_ops<double, &no_device>()};
}  // namespace

const OpTable& ops() { return kNone; }

void unary(Unary, double, double, const Shape&, const float*, const Shape&, float*) { unavailable("cuda::unary"); }
void binary(Binary, const Shape&, const float*, const Shape&, const float*, const Shape&, float*) {
  unavailable("cuda::binary");
}
void where(const Shape&, const float*, const Shape&, const float*, const Shape&, const float*, const Shape&, float*) {
  unavailable("cuda::where");
}
void reduce(Reduce, index_t, index_t, index_t, const float*, index_t, index_t, index_t, float*, index_t, index_t) {
  unavailable("cuda::reduce");
}
void layer_norm_forward(index_t, index_t, const float*, index_t, const float*, const float*, double, float*, index_t,
                        float*, float*) {
  unavailable("cuda::layer_norm_forward");
}
void layer_norm_backward(index_t, index_t, const float*, index_t, const float*, index_t, const float*, const float*,
                         const float*, double, float*, index_t, float*, float*) {
  unavailable("cuda::layer_norm_backward");
}
void cross_entropy_forward(index_t, index_t, const float*, index_t, const index_t*, index_t, double, float*, float*) {
  unavailable("cuda::cross_entropy_forward");
}
void cross_entropy_backward(index_t, index_t, const float*, index_t, const index_t*, index_t, double, const float*,
                            const float*, float*, index_t) {
  unavailable("cuda::cross_entropy_backward");
}
void attention_forward(const AttentionForwardArgs<float>&) { unavailable("cuda::attention_forward"); }
void attention_backward(const AttentionBackwardArgs<float>&) { unavailable("cuda::attention_backward"); }
void attention_forward_bf16(const AttentionForwardArgs<bfloat16>&, float*, AttentionForwardPath) {
  unavailable("cuda::attention_forward_bf16");
}
void attention_backward_bf16(const AttentionBackwardArgs<bfloat16>&, const float*, AttentionBackwardPath) {
  unavailable("cuda::attention_backward_bf16");
}
void attention_forward_f16(const AttentionForwardArgs<float16>&, float*, AttentionForwardPath) {
  unavailable("cuda::attention_forward_f16");
}
void attention_backward_f16(const AttentionBackwardArgs<float16>&, const float*, AttentionBackwardPath) {
  unavailable("cuda::attention_backward_f16");
}
void count_targets(index_t, const index_t*, index_t, float*) { unavailable("cuda::count_targets"); }
void random(Random, index_t, float*, double, double, std::uint64_t, std::uint64_t) { unavailable("cuda::random"); }
void dropout(index_t, const float*, float*, double, std::uint64_t, std::uint64_t) { unavailable("cuda::dropout"); }
void sgd_step(const SgdConfig&, std::span<const ParamSlot<float>>) { unavailable("cuda::sgd_step"); }
void adam_step(const AdamConfig&, std::span<const ParamSlot<float>>) { unavailable("cuda::adam_step"); }
void convert(DType, DType, const Shape&, const void*, void*) { unavailable("cuda::convert"); }

}  // namespace tg::cuda
