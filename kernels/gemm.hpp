// GEMM: the contract every backend implements (row-major, BLAS semantics).
//
//   C = act(alpha * op(A) * op(B) + beta * C + bias)
//
//   op(A) is M x K: A is stored M x K (Trans::N, lda >= K) or K x M (Trans::T, lda >= M).
//   op(B) is K x N: B is stored K x N (Trans::N, ldb >= N) or N x K (Trans::T, ldb >= K).
//   C is M x N with ldc >= N. bias, when not null, has N elements and is added to every
//   row (one value per output column, as a Linear layer's bias); act is applied last.
//
// Exactly as BLAS:
//   - beta == 0 never reads C: a NaN-filled C gives a clean result;
//   - alpha == 0 skips the product: A and B are not read (they may hold NaN or be null);
//   - M == 0 or N == 0 returns without touching anything; K == 0 gives
//     C = act(beta * C + bias).
// C must not overlap A, B or bias. The public entries check this and the sizes with
// check_gemm; kernels below them assume checked input.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tilegrad/kernels/activation.hpp"
#include "tilegrad/kernels/types.hpp"

namespace tg {

enum class Trans : std::uint8_t { N, T };

// The fused epilogue: a per-column bias, then an activation, applied to the C tile
// before it is stored (one pass over C for a Linear layer's forward).
template <class T>
struct GemmEpilogue {
  const T* bias = nullptr;
  Activation act{};
};

void check_gemm(const char* op, Trans ta, Trans tb, index_t M, index_t N, index_t K, double alpha,
                const void* A, index_t lda, const void* B, index_t ldb, const void* C,
                index_t ldc, const void* bias, std::size_t elem);

// Reference: plain loops, products accumulated in double, each element rounded once.
template <class T>
void gemm_ref(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha, const T* A,
              index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc,
              const GemmEpilogue<T>& epilogue = {});

}  // namespace tg
