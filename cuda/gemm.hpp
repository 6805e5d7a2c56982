// The CUDA SGEMM's entry: the CPU gemm's contract (kernels/gemm.hpp: row-major
// C = act(alpha op(A) op(B) + beta C + bias), beta == 0 never reads C) with device
// pointers, asynchronous on the current device's default stream. Written here from
// scratch (cuda/gemm.cu, cuda/NOTES.md); cuBLAS serves only as test oracle and peer.
// Plain C++: callers need no nvcc. Without CUDA in the build it throws tg::Error.
#pragma once

#include "kernels/gemm.hpp"

namespace tg::cuda {

// Checked entry: shapes and leading dimensions as check_gemm, pointers on a device.
void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda,
          const float* B, index_t ldb, float beta, float* C, index_t ldc, const GemmEpilogue<float>& ep = {});

}  // namespace tg::cuda
