// The sm_90a (Hopper) path of the tensor-core GEMMs, cuda/gemm_wgmma.cu: wgmma with TMA copies
// into 4-stage shared-memory rings. Internal to cuda/.
#pragma once

#include "tilegrad/kernels/activation.hpp"

namespace tg::cuda::detail {

// Whether the current device runs the sm_90a kernel: compute capability 9.0, the driver's
// tensor-map encoder found, the kernel's sm_90a binary loaded.
bool wgmma_available();

// C = act(alpha A B^T + beta C + bias) on the Hopper path, arguments already checked; A
// and B row-major along k, bf16 / f16 bits or FP32 read as TF32 (truncated). Returns
// false, doing nothing, where it does not apply (no sm_90a device, K == 0, A or B not
// 16-byte aligned, rows not a multiple of 16 bytes, more than 65535 row tiles).
// tile: step 1 (128 x 128, two warpgroups sharing a block barrier per k tile), step 2
// (128 x 256, a TMA producer warpgroup and two consumers, full and empty barriers), step 3
// (step 2 in clusters of two blocks sharing B by TMA multicast) or step 4 (step 3 on a
// persistent grid); step 1 where N <= 128, no clusters where M <= 128.
enum class WgmmaType : int { bf16 = 0, f16 = 1, tf32 = 2 };
enum class WgmmaTile : int { t128x128 = 0, ws128x256 = 1, ws128x256_cluster2 = 2, ws128x256_persistent = 3 };
bool gemm_wgmma(WgmmaType type, WgmmaTile tile, int M, int N, int K, float alpha, const void* A, int lda, const void* B,
                int ldb, float beta, float* C, int ldc, const float* bias, Act act, float slope);

}  // namespace tg::cuda::detail
