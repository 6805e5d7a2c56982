// Peers: other libraries' kernels behind one small interface, so that tests can use
// them as a second oracle and benchmarks can time them beside ours in the same run.
// Only the peers found at configure time are compiled in (cmake/TgPeers.cmake).
#pragma once

#include <cstdint>

#include <string>
#include <vector>

#include "tilegrad/kernels/activation.hpp"
#include "tilegrad/kernels/gemm.hpp"

namespace tg::peers {

// Row-major SGEMM, C = alpha op(A) op(B) + beta C, with the arguments of tg::gemm_ref.
using SgemmFn = void (*)(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha,
                         const float* A, index_t lda, const float* B, index_t ldb, float beta,
                         float* C, index_t ldc);

struct SgemmPeer {
  const char* name;              // "openblas", "blis", "eigen", "onednn"
  SgemmFn sgemm;
  void (*set_threads)(int n);    // the peer's own thread knob
  std::string (*describe)();     // version and the library file that served the call
};

std::vector<SgemmPeer> sgemm_peers();
// nullptr when that peer was not found at configure time.
const SgemmPeer* find_sgemm_peer(const std::string& name);

// Elementwise and row-wise kernels of the array-expression peer (Eigen) and of a plain
// loop over libm (compiled at -O3, no vector flags), over contiguous rows x cols, OpenMP
// over rows (or chunks of a long row) at omp_get_max_threads(). What a user of those
// libraries would write for these ops.
struct NormPeer {
  const char* name;  // "eigen", "libm"
  void (*act_fwd)(Activation act, index_t n, const float* x, float* y);
  void (*act_bwd)(Activation act, index_t n, const float* x, const float* dy, float* dx);
  void (*softmax_fwd)(bool log, index_t rows, index_t cols, const float* x, float* y);
  void (*softmax_bwd)(bool log, index_t rows, index_t cols, const float* y, const float* dy, float* dx);
  void (*layer_norm_fwd)(index_t rows, index_t cols, const float* x, float eps, float* y, float* mean,
                         float* rstd);
  void (*layer_norm_bwd)(index_t rows, index_t cols, const float* x, const float* dy, const float* mean,
                         const float* rstd, float* dx);
  // n values between f32 and bf16 / f16 (the 16-bit side as raw bits); null if the
  // peer has no conversion of its own.
  void (*convert)(DType from, DType to, index_t n, const void* src, void* dst) = nullptr;
};
std::vector<NormPeer> norm_peers();

// cuBLAS SGEMM at 4096^3 on `device`, GFLOP/s (best of 5); 0 without a device or
// without cuBLAS in this build.
double cublas_sgemm_gflops(int device);
// Row-major SGEMM by cuBLAS on device pointers (the column-major call with the operands
// swapped), asynchronous; does nothing without cuBLAS in the build.
void cublas_sgemm_rowmajor(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
                           index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc);

// The same with TF32 tensor cores (cublasGemmEx, CUBLAS_COMPUTE_32F_FAST_TF32).
void cublas_sgemm_tf32_rowmajor(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
                                index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc);

// Row-major C (FP32) = A B^T with A (M x K) and B (N x K) bf16 (bits as uint16):
// cublasGemmEx, FP32 compute.
void cublas_gemm_bf16_nt(index_t M, index_t N, index_t K, const std::uint16_t* A, index_t lda, const std::uint16_t* B,
                         index_t ldb, float* C, index_t ldc);

// Row-major C = relu(A B^T + bias) by cublasLt with its RELU_BIAS epilogue (A M x K,
// B N x K, bias N, C M x N, all contiguous on the device): the fused peer of a Linear
// layer's forward, asynchronous. False without cuBLAS in the build or when cublasLt
// rejects the problem.
bool cublaslt_linear_relu(index_t M, index_t N, index_t K, const float* A, const float* B, const float* bias, float* C);

// The most threads a peer can use: its rows at higher thread counts are not registered
// (Debian's Kokkos runs only its Serial execution space: 1).
int max_threads(const std::string& name);

// The shared object that holds `symbol`'s code ("?" when unknown), e.g. to show that
// cblas_sgemm came from libopenblas and not from another BLAS that exports it too.
std::string library_of(const void* symbol);

}  // namespace tg::peers
