// The NCCL side of a ProcessGroup: collectives on CUDA tensors, used by
// dist/process_group.cpp where the library is built with CUDA and NCCL (the toolkit at
// /usr/local/cuda ships it); the group's MPI communicator bootstraps it, as llm.c does:
// rank 0 makes NCCL's unique id and MPI broadcasts it.
//
// Stream-ordered, with no host synchronization: a collective is queued on the
// communicator's own stream after an event recorded on the caller's current stream (so
// it reads what the kernels before it wrote), and its end is an event that the current
// stream waits on: at once for a blocking call, at Work::wait() for an asynchronous one.
// The host never waits in a collective; errors NCCL reports asynchronously (a peer that
// died, a network fault) are read by Work::test() and wait(). One device per rank: rank r
// uses the device its tensors are on, every collective of a group the same one.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "tilegrad/kernels/types.hpp"

namespace tg::dist::detail {

// Built with NCCL: the functions below work. Without, constructing an NcclComm throws.
bool nccl_built();
std::string nccl_version();  // "2.28.9", or "not built"

class NcclComm {
 public:
  // Collective over the group: `share` broadcasts the 128-byte unique id from rank 0
  // (the group's MPI broadcast).
  NcclComm(int rank, int size, int device, const std::function<void(void* id, std::size_t bytes)>& share);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;
  int device() const { return device_; }

  // Each queues one NCCL call and returns its end event (a cudaEvent_t). avg divides by
  // the rank count (ncclAvg). Element counts; dtype f32, f64, bf16 (f16 and the integer
  // types for broadcast and all_gather, which move bytes).
  void* all_reduce(void* data, index_t n, DType t, bool avg, const char* op);
  void* broadcast(void* data, index_t bytes, int root, const char* op);
  void* all_gather(const void* in, void* out, index_t bytes_per_rank, const char* op);
  void* reduce_scatter(const void* in, void* out, index_t n_per_rank, DType t, bool avg, const char* op);

  // The event's collective has finished on the device (tg::Error with NCCL's message if
  // the communicator failed).
  bool finished(void* event, const char* op);
  // The caller's current stream waits for the event (no host wait).
  static void current_stream_waits(void* event);
  static void release(void* event);

 private:
  void* begin(const char* op);  // the comm stream after the current stream's work
  void* end(const char* op);
  [[maybe_unused]] void* comm_ = nullptr;    // ncclComm_t (unused where built without NCCL)
  [[maybe_unused]] void* stream_ = nullptr;  // cudaStream_t
  [[maybe_unused]] void* ready_ = nullptr;   // cudaEvent_t: the caller's stream before each call
  int device_ = 0;
};

}  // namespace tg::dist::detail
