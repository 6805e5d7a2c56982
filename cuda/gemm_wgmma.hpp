// The sm_90a (Hopper) path of the tensor-core GEMMs, cuda/gemm_wgmma.cu: wgmma with TMA copies
// into a 4-stage shared-memory ring. Internal to cuda/.
#pragma once

#include <cstdint>

#include "kernels/activation.hpp"

namespace tg::cuda::detail {

// Whether the current device runs the sm_90a kernel: compute capability 9.0, the driver's
// tensor-map encoder found, the kernel's sm_90a binary loaded.
bool wgmma_available();

// C = act(alpha A B^T + beta C + bias) on the Hopper path, arguments already checked;
// returns false, doing nothing, where it does not apply (no sm_90a device, K == 0, A or B
// not 16-byte aligned, lda or ldb not a multiple of 8, more than 65535 row tiles).
bool gemm_half_wgmma(bool f16, int M, int N, int K, float alpha, const std::uint16_t* A, int lda,
                     const std::uint16_t* B, int ldb, float beta, float* C, int ldc, const float* bias, Act act,
                     float slope);
// The same for FP32 A and B read as TF32 (truncated), lda and ldb multiples of 4.
bool gemm_tf32_wgmma(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb, float beta,
                     float* C, int ldc, const float* bias, Act act, float slope);

}  // namespace tg::cuda::detail
