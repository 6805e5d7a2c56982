// TG_CUDA_CHECK(call): every CUDA runtime call goes through it; a failure becomes a
// tg::Error naming the call, the file and the line. After each launch,
// TG_CUDA_CHECK(cudaGetLastError()). With TG_CUDA_SYNC=1 in the environment,
// TG_CUDA_LAUNCHED() also synchronizes, to pin an asynchronous fault on its kernel.
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <string>

#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::cuda::detail {

inline void check(cudaError_t err, const char* call, const char* file, int line) {
  if (err == cudaSuccess) [[likely]] return;
  cudaGetLastError();  // clear a sticky non-fatal error so the next call starts clean
  throw Error("cuda", "", std::string(call) + " failed: " + cudaGetErrorName(err) + " (" +
                              std::to_string(int(err)) + "): " + cudaGetErrorString(err) +
                              " at " + file + ":" + std::to_string(line));
}

// The stream work is queued on: the calling thread's current one (cuda/runtime.hpp).
inline cudaStream_t stream() { return static_cast<cudaStream_t>(current_stream()); }

inline bool sync_after_launch() {
  static const bool on = [] {
    const char* v = std::getenv("TG_CUDA_SYNC");
    return v != nullptr && v[0] == '1';
  }();
  return on;
}

}  // namespace tg::cuda::detail

#define TG_CUDA_CHECK(call) ::tg::cuda::detail::check((call), #call, __FILE__, __LINE__)
#define TG_CUDA_LAUNCHED()                                                  \
  do {                                                                      \
    TG_CUDA_CHECK(cudaGetLastError());                                      \
    if (::tg::cuda::detail::sync_after_launch())                            \
      TG_CUDA_CHECK(cudaStreamSynchronize(::tg::cuda::detail::stream()));   \
  } while (0)
