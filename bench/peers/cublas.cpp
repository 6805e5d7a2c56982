// cuBLAS as the GPU peer's ceiling: the SGEMM rate of a device at 4096^3 (the "measured
// cuBLAS rate" of the benchmark context and tg_info), row-major SGEMM for the GPU
// benchmarks, and cublasLt's fused bias + ReLU epilogue for the Linear rows. Compiled
// only when CUDA and cuBLAS were found (cmake/TgPeers.cmake); returns 0 without a device.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "bench/peers/peers.hpp"
#include "tilegrad/cuda/runtime.hpp"

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

void cublas_sgemm_tf32_rowmajor(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
                                index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc) {
  cublasHandle_t h = handle_for_current_device();
  if (!h) return;
  cublasGemmEx(h, tb == Trans::N ? CUBLAS_OP_N : CUBLAS_OP_T, ta == Trans::N ? CUBLAS_OP_N : CUBLAS_OP_T, int(N), int(M),
               int(K), &alpha, B, CUDA_R_32F, int(ldb), A, CUDA_R_32F, int(lda), &beta, C, CUDA_R_32F, int(ldc),
               CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT);
}

void cublas_gemm_bf16_nt(index_t M, index_t N, index_t K, const std::uint16_t* A, index_t lda, const std::uint16_t* B,
                         index_t ldb, float* C, index_t ldc) {
  cublasHandle_t h = handle_for_current_device();
  if (!h) return;
  const float one = 1, zero = 0;
  cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K), &one, B, CUDA_R_16BF, int(ldb), A, CUDA_R_16BF,
               int(lda), &zero, C, CUDA_R_32F, int(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

bool cublaslt_linear_relu(index_t M, index_t N, index_t K, const float* A, const float* B, const float* bias, float* C) {
  // Column-major, row-major C^T (N x M) = B (N x K) A^T: cublasLt's A operand is our B
  // (stored K x N column-major, transposed), its B operand our A (K x M, not transposed);
  // the bias runs along the N rows of that C^T, one value per output feature.
  static cublasLtHandle_t lt = nullptr;
  static void* workspace = nullptr;
  constexpr std::size_t kWorkspace = std::size_t(32) << 20;
  if (!lt) {
    if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) return false;
    if (cudaMalloc(&workspace, kWorkspace) != cudaSuccess) return false;
  }
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_RELU_BIAS;
  bool ok = cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
            cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta) == CUBLAS_STATUS_SUCCESS &&
            cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb) == CUBLAS_STATUS_SUCCESS &&
            cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi) == CUBLAS_STATUS_SUCCESS &&
            cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias) == CUBLAS_STATUS_SUCCESS &&
            cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, std::uint64_t(K), std::uint64_t(N), std::int64_t(K)) == CUBLAS_STATUS_SUCCESS &&
            cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, std::uint64_t(K), std::uint64_t(M), std::int64_t(K)) == CUBLAS_STATUS_SUCCESS &&
            cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, std::uint64_t(N), std::uint64_t(M), std::int64_t(N)) == CUBLAS_STATUS_SUCCESS;
  const float one = 1, zero = 0;
  if (ok)
    ok = cublasLtMatmul(lt, op, &one, B, la, A, lb, &zero, C, lc, C, lc, nullptr, workspace, kWorkspace,
                        static_cast<cudaStream_t>(cuda::current_stream())) == CUBLAS_STATUS_SUCCESS;
  if (lc) cublasLtMatrixLayoutDestroy(lc);
  if (lb) cublasLtMatrixLayoutDestroy(lb);
  if (la) cublasLtMatrixLayoutDestroy(la);
  if (op) cublasLtMatmulDescDestroy(op);
  return ok;
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
