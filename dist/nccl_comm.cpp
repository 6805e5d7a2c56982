// NcclComm (dist/nccl_comm.hpp): NCCL's calls on a stream of the communicator's own,
// ordered against the caller's current stream by events. Compiled with CUDA's runtime
// and NCCL's headers where both are found (TG_DIST_NCCL); otherwise the stubs at the end.
#include "tilegrad/dist/nccl_comm.hpp"

#include "tilegrad/kernels/error.hpp"

#ifdef TG_DIST_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include "tilegrad/cuda/runtime.hpp"
#endif

namespace tg::dist::detail {

#ifdef TG_DIST_NCCL

namespace {

void check_cuda(cudaError_t e, const char* op, const char* what) {
  TG_CHECK(e == cudaSuccess, op, what, "CUDA failed: ", cudaGetErrorName(e), ": ", cudaGetErrorString(e));
}
void check_nccl(ncclResult_t r, const char* op, const char* what) {
  TG_CHECK(r == ncclSuccess, op, what, "NCCL failed: ", ncclGetErrorString(r));
}

ncclDataType_t nccl_type(DType t, const char* op) {
  switch (t) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::bf16: return ncclBfloat16;
    case DType::f16: return ncclFloat16;
    default: break;
  }
  TG_CHECK(false, op, "tensor", "expected f32, f64, bf16 or f16, got ", dtype_name(t));
  return ncclFloat32;
}

// The device made current for a call, the previous one restored after.
struct OnDevice {
  explicit OnDevice(int device) {
    cudaGetDevice(&previous);
    if (previous != device) cudaSetDevice(device);
    changed = previous != device;
  }
  ~OnDevice() {
    if (changed) cudaSetDevice(previous);
  }
  int previous = 0;
  bool changed = false;
};

}  // namespace

bool nccl_built() { return true; }

std::string nccl_version() {
  int v = 0;
  ncclGetVersion(&v);  // major * 10000 + minor * 100 + patch from 2.9 on
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

NcclComm::NcclComm(int rank, int size, int device, const std::function<void(void*, std::size_t)>& share)
    : device_(device) {
  const char* op = "dist.nccl";
  ncclUniqueId id{};
  if (rank == 0) check_nccl(ncclGetUniqueId(&id), op, "ncclGetUniqueId");
  share(&id, sizeof id);
  const OnDevice on(device);
  cudaStream_t s = nullptr;
  check_cuda(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), op, "cudaStreamCreateWithFlags");
  stream_ = s;
  cudaEvent_t ready = nullptr;
  const cudaError_t e = cudaEventCreateWithFlags(&ready, cudaEventDisableTiming);
  if (e != cudaSuccess) cudaStreamDestroy(s);
  check_cuda(e, op, "cudaEventCreate");
  ready_ = ready;
  ncclComm_t c = nullptr;
  const ncclResult_t r = ncclCommInitRank(&c, size, id, rank);
  if (r != ncclSuccess) {
    cudaEventDestroy(ready);
    cudaStreamDestroy(s);
    check_nccl(r, op, "ncclCommInitRank");
  }
  comm_ = c;
}

NcclComm::~NcclComm() {
  const OnDevice on(device_);
  if (comm_) ncclCommDestroy(static_cast<ncclComm_t>(comm_));
  if (ready_) cudaEventDestroy(static_cast<cudaEvent_t>(ready_));
  if (stream_) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

// One event serves every call: a stream's wait takes the event's state when the wait is
// queued, so recording it again for the next call does not move an earlier wait.
void* NcclComm::begin(const char* op) {
  auto* ready = static_cast<cudaEvent_t>(ready_);
  check_cuda(cudaEventRecord(ready, static_cast<cudaStream_t>(cuda::current_stream())), op, "cudaEventRecord");
  check_cuda(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream_), ready, 0), op, "cudaStreamWaitEvent");
  return stream_;
}

void* NcclComm::end(const char* op) {
  cudaEvent_t done = nullptr;
  check_cuda(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), op, "cudaEventCreate");
  check_cuda(cudaEventRecord(done, static_cast<cudaStream_t>(stream_)), op, "cudaEventRecord");
  return done;
}

void* NcclComm::all_reduce(void* data, index_t n, DType t, bool avg, const char* op) {
  const OnDevice on(device_);
  auto* s = static_cast<cudaStream_t>(begin(op));
  check_nccl(ncclAllReduce(data, data, std::size_t(n), nccl_type(t, op), avg ? ncclAvg : ncclSum,
                           static_cast<ncclComm_t>(comm_), s),
             op, "ncclAllReduce");
  return end(op);
}

void* NcclComm::broadcast(void* data, index_t bytes, int root, const char* op) {
  const OnDevice on(device_);
  auto* s = static_cast<cudaStream_t>(begin(op));
  check_nccl(ncclBroadcast(data, data, std::size_t(bytes), ncclUint8, root, static_cast<ncclComm_t>(comm_), s), op,
             "ncclBroadcast");
  return end(op);
}

void* NcclComm::all_gather(const void* in, void* out, index_t bytes_per_rank, const char* op) {
  const OnDevice on(device_);
  auto* s = static_cast<cudaStream_t>(begin(op));
  check_nccl(ncclAllGather(in, out, std::size_t(bytes_per_rank), ncclUint8, static_cast<ncclComm_t>(comm_), s), op,
             "ncclAllGather");
  return end(op);
}

void* NcclComm::reduce_scatter(const void* in, void* out, index_t n_per_rank, DType t, bool avg, const char* op) {
  const OnDevice on(device_);
  auto* s = static_cast<cudaStream_t>(begin(op));
  check_nccl(ncclReduceScatter(in, out, std::size_t(n_per_rank), nccl_type(t, op), avg ? ncclAvg : ncclSum,
                               static_cast<ncclComm_t>(comm_), s),
             op, "ncclReduceScatter");
  return end(op);
}

bool NcclComm::finished(void* event, const char* op) {
  ncclResult_t async = ncclSuccess;
  check_nccl(ncclCommGetAsyncError(static_cast<ncclComm_t>(comm_), &async), op, "ncclCommGetAsyncError");
  check_nccl(async, op, "communicator");
  const cudaError_t e = cudaEventQuery(static_cast<cudaEvent_t>(event));
  if (e == cudaErrorNotReady) return false;
  check_cuda(e, op, "cudaEventQuery");
  return true;
}

void NcclComm::current_stream_waits(void* event) {
  check_cuda(cudaStreamWaitEvent(static_cast<cudaStream_t>(cuda::current_stream()), static_cast<cudaEvent_t>(event), 0),
             "dist.nccl", "cudaStreamWaitEvent");
}

void NcclComm::release(void* event) {
  if (event) cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

#else  // no NCCL in this build

bool nccl_built() { return false; }
std::string nccl_version() { return "not built"; }

NcclComm::NcclComm(int, int, int, const std::function<void(void*, std::size_t)>&) {
  TG_CHECK(false, "dist.nccl", "tensor",
           "CUDA tensors take the NCCL backend, not in this build (built without CUDA or without NCCL)");
}
NcclComm::~NcclComm() = default;
void* NcclComm::all_reduce(void*, index_t, DType, bool, const char*) { return nullptr; }
void* NcclComm::broadcast(void*, index_t, int, const char*) { return nullptr; }
void* NcclComm::all_gather(const void*, void*, index_t, const char*) { return nullptr; }
void* NcclComm::reduce_scatter(const void*, void*, index_t, DType, bool, const char*) { return nullptr; }
bool NcclComm::finished(void*, const char*) { return true; }
void NcclComm::current_stream_waits(void*) {}
void NcclComm::release(void*) {}
void* NcclComm::begin(const char*) { return nullptr; }
void* NcclComm::end(const char*) { return nullptr; }

#endif

}  // namespace tg::dist::detail
