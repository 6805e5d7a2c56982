// cuBLAS as the GPU peer's ceiling: the SGEMM rate of a device at 4096^3 (the "measured
// cuBLAS rate" of the benchmark context and tg_info). Compiled only when CUDA and cuBLAS
// were found (cmake/TgPeers.cmake); returns 0 without a device.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "bench/peers/peers.hpp"
#include "cuda/runtime.hpp"

namespace tg::peers {

namespace {
cublasHandle_t handle_for_current_device() {
  static cublasHandle_t handles[64] = {};
  int d = 0;
  cudaGetDevice(&d);
  if (d < 0 || d >= 64) return nullptr;
  if (!handles[d] && cublasCreate(&handles[d]) != CUBLAS_STATUS_SUCCESS) handles[d] = nullptr;
  return handles[d];
}
}  // namespace

void cublas_sgemm_rowmajor(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
                           index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc) {
  cublasHandle_t h = handle_for_current_device();
  if (!h) return;
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: B first.
  cublasSgemm(h, tb == Trans::N ? CUBLAS_OP_N : CUBLAS_OP_T, ta == Trans::N ? CUBLAS_OP_N : CUBLAS_OP_T, int(N), int(M),
              int(K), &alpha, B, int(ldb), A, int(lda), &beta, C, int(ldc));
}

double cublas_sgemm_gflops(int device) {
  if (device < 0 || device >= cuda::device_count()) return 0;
  const int n = 4096;
  const std::size_t bytes = std::size_t(n) * n * sizeof(float);
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess || cudaSetDevice(device) != cudaSuccess) return 0;
  float *a = nullptr, *b = nullptr, *c = nullptr;
  cublasHandle_t handle = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  double gflops = 0;
  if (cudaMalloc(&a, bytes) == cudaSuccess && cudaMalloc(&b, bytes) == cudaSuccess &&
      cudaMalloc(&c, bytes) == cudaSuccess && cublasCreate(&handle) == CUBLAS_STATUS_SUCCESS &&
      cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&stop) == cudaSuccess) {
    cudaMemset(a, 0, bytes);
    cudaMemset(b, 0, bytes);
    const float one = 1, zero = 0;
    float best = 0;
    for (int rep = 0; rep < 6; ++rep) {  // the first is a warm-up
      cudaEventRecord(start);
      cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, n, b, n, &zero, c, n);
      cudaEventRecord(stop);
      cudaEventSynchronize(stop);
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      if (rep > 0 && (best == 0 || ms < best)) best = ms;
    }
    if (best > 0) gflops = 2.0 * double(n) * n * n / (double(best) * 1e-3) / 1e9;
  }
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  if (handle) cublasDestroy(handle);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  cudaSetDevice(previous);
  return gflops;
}

}  // namespace tg::peers
