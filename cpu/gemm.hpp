// The CPU GEMM's public entry: C = act(alpha op(A) op(B) + beta C + bias), row-major, the
// contract of kernels/gemm.hpp (BLAS alpha/beta semantics, fused bias + activation).
//
// gemm() checks its arguments (check_gemm: negative or overflowing sizes, leading
// dimensions smaller than a row, null pointers with non-zero sizes, C overlapping A, B or
// bias) and throws tg::Error; then it runs the path cpu::selected_isa() chose. The
// unchecked per-path entries are what the op tables hold (cpu/ops.cpp).
//
// Threads: OpenMP, cpu::num_threads() of them (one inside a parallel region); the
// result is the same, bit for bit, for any thread count.
#pragma once

#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/kernels/gemm.hpp"

namespace tg::cpu {

void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
          index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc,
          const GemmEpilogue<float>& epilogue = {});
void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, double alpha, const double* A,
          index_t lda, const double* B, index_t ldb, double beta, double* C, index_t ldc,
          const GemmEpilogue<double>& epilogue = {});

// Unchecked entries of the op tables, one per path.
void gemm_avx2(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
               index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc,
               const GemmEpilogue<float>& epilogue);
void gemm_avx512(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
                 index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc,
                 const GemmEpilogue<float>& epilogue);
void gemm_neon(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
               index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc,
               const GemmEpilogue<float>& epilogue);
template <class T>
void gemm_portable(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha, const T* A,
                   index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc,
                   const GemmEpilogue<T>& epilogue);

}  // namespace tg::cpu
