// The CUDA SGEMM's entry: the CPU gemm's contract (kernels/gemm.hpp: row-major
// C = act(alpha op(A) op(B) + beta C + bias), beta == 0 never reads C) with device
// pointers, asynchronous on the current stream. Written here from
// scratch (cuda/gemm.cu, cuda/notes/gemm.md); cuBLAS serves only as test oracle and peer.
// Plain C++: callers need no nvcc. Without CUDA in the build it throws tg::Error.
#pragma once

#include <cstdint>

#include "tilegrad/kernels/gemm.hpp"

namespace tg::cuda {

// Checked entry: shapes and leading dimensions as check_gemm, pointers on a device.
void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda,
          const float* B, index_t ldb, float beta, float* C, index_t ldc, const GemmEpilogue<float>& ep = {});

// Which kernel a tensor-core GEMM runs:
//   mma_sync  gemm.cu's mma.sync kernel (sm_80 and newer; any layout the contract allows):
//             two cp.async stages, 32-bit fragment reads;
//   mma_sync_ring  the same with a 3-stage cp.async ring and ldmatrix fragment reads
//             (16-bit only);
//   wgmma     cuda/gemm_wgmma.cu's Hopper kernel (sm_90a: wgmma, TMA, a 4-stage ring,
//             128 x 256 tiles, a producer warpgroup and two consumers, clusters of two
//             blocks sharing B's tile by TMA multicast, a persistent grid; 128 x 128 tiles
//             where N <= 128): needs a compute capability 9.0 device, A and B 16-byte
//             aligned, lda and ldb multiples of 8 (TF32: 4; and A, B along k) and K > 0,
//             else a tg::Error;
//   wgmma_128x128, wgmma_128x256, wgmma_cluster  its steps 1 (128 x 128 tiles, no warp
//             specialization), 2 (no clusters) and 3 (a block per tile), the same
//             requirements: kept to measure each step;
//   auto      TG_CUDA_HALF_GEMM=wgmma|mma_sync|mma_sync_ring (TF32: TG_CUDA_TF32_GEMM=wgmma)
//             if set, else mma_sync: the Hopper kernel becomes auto's choice on sm_90 once
//             scripts/gpu-check has run it on one (cuda/notes/gemm.md), falling back to
//             mma_sync where it does not apply.
enum class HalfGemmPath : int {
  auto_select = -1,
  mma_sync = 0,
  wgmma = 1,
  mma_sync_ring = 2,
  wgmma_128x128 = 3,
  wgmma_128x256 = 4,
  wgmma_cluster = 5
};

// TF32 tensor cores (opt-in: the inputs are rounded to 10-bit mantissas, a relative
// error of ~2^-11 per input, ~1e-3 on C for random data; tests/test_cuda_gemm.cpp says
// how much): the same contract, FP32 accumulation, mma.sync on sm_80+ (every transpose,
// rounded inputs) or the Hopper kernel (ta N and tb T; inputs truncated to TF32 by the
// tensor cores).
void gemm_tf32(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda,
               const float* B, index_t ldb, float beta, float* C, index_t ldc, const GemmEpilogue<float>& ep = {},
               HalfGemmPath path = HalfGemmPath::auto_select);

// BF16 tensor cores: C = act(alpha A B^T + beta C + bias) with A (M x K) and B (N x K)
// row-major bf16 (the bits, as std::uint16_t), FP32 accumulation, C FP32 (M x N).
// K == 0 gives act(beta C + bias).
void gemm_bf16(index_t M, index_t N, index_t K, float alpha, const std::uint16_t* A, index_t lda,
               const std::uint16_t* B, index_t ldb, float beta, float* C, index_t ldc,
               const GemmEpilogue<float>& ep = {}, HalfGemmPath path = HalfGemmPath::auto_select);

// The same with f16 (IEEE binary16) A and B: mma .f16, FP32 accumulation.
void gemm_f16(index_t M, index_t N, index_t K, float alpha, const std::uint16_t* A, index_t lda,
              const std::uint16_t* B, index_t ldb, float beta, float* C, index_t ldc,
              const GemmEpilogue<float>& ep = {}, HalfGemmPath path = HalfGemmPath::auto_select);

// 16-bit GEMMs in every transpose, the CPU gemm's contract: C = act(alpha op(A) op(B) +
// beta C + bias), op(A) M x K, op(B) K x N, A and B bf16 (f16) bits, FP32 accumulation
// and C. (N, T) is the call above (auto's kernel); the other three run the ring kernel,
// which reads the operands as they lie (autocast's backward: g W and g^T x without
// transposed copies).
void gemm_bf16(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const std::uint16_t* A, index_t lda,
               const std::uint16_t* B, index_t ldb, float beta, float* C, index_t ldc,
               const GemmEpilogue<float>& ep = {});
void gemm_f16(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const std::uint16_t* A, index_t lda,
              const std::uint16_t* B, index_t ldb, float beta, float* C, index_t ldc,
              const GemmEpilogue<float>& ep = {});
// Whether the current device can run HalfGemmPath::wgmma (compute capability 9.0 and the
// sm_90a binary loaded); false without a device.
bool half_gemm_wgmma_available();

// The kernel configurations (cuda/notes/gemm.md). gemm() picks one by shape
// (gemm_kernel_for; TG_CUDA_GEMM_KERNEL=0|1|2|3 forces one for every shape, for
// re-tuning on a GPU); the tests and the GPU benchmarks run each.
//   tile128             step 1: 128 x 128 tiles, a 16 x 16 thread grid of 8 x 8 outputs
//   tile128_warp        the same tiles, threads mapped as 2 x 4 warps of 64 x 32 outputs
//   tile128_warp_async  and the operands whose rows lie along m or n (A^T, B) copied to
//                       shared memory by cp.async instead of through registers
//   tile64              64 x 64 tiles, 128 threads of 4 x 8 outputs: four times the
//                       blocks, for problems whose 128 x 128 grid leaves SMs idle
enum class GemmKernel : int { auto_select = -1, tile128 = 0, tile128_warp = 1, tile128_warp_async = 2, tile64 = 3 };
inline constexpr int kGemmKernels = 4;
const char* gemm_kernel_name(GemmKernel kernel);
// The configuration gemm() takes for an M x N x K problem on the current device: tile128,
// or tile64 where 128 x 128 tiles (times split-K's slices, K >= 1024) would cover fewer
// than half the SMs; TG_CUDA_GEMM_KERNEL when set.
GemmKernel gemm_kernel_for(index_t M, index_t N, index_t K);
void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda,
          const float* B, index_t ldb, float beta, float* C, index_t ldc, const GemmEpilogue<float>& ep,
          GemmKernel kernel);

}  // namespace tg::cuda
