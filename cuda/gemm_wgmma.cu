// The Hopper path of the tensor-core GEMMs (cuda::gemm_bf16 / gemm_f16 / gemm_tf32 with
// HalfGemmPath::wgmma): C = act(alpha A B^T + beta C + bias), A (M x K) and B (N x K)
// row-major bf16, f16 or FP32 read as TF32 (the tensor cores ignore the low 13 mantissa
// bits: truncation, where the mma.sync TF32 kernel rounds), FP32 accumulation. Compiled
// for sm_90a only (its own target: wgmma and the tensor memory accelerator exist on that
// architecture alone) and used where the device is compute
// capability 9.0 and the kernel's binary loaded; everywhere else gemm.cu's mma.sync kernel
// serves. Step 1 (cuda/notes/gemm.md):
//   - 128 x 128 block tiles, k tiles of one 128-byte row (64 16-bit values, 32 TF32),
//     a ring of 4 shared-memory stages (32 KiB each: A's and B's tiles);
//   - one thread issues the TMA copies (cp.async.bulk.tensor, 128-byte swizzle, the
//     layout wgmma reads without bank conflicts; edges past the matrix are zero-filled by
//     the copy engine) and an mbarrier per stage counts their bytes;
//   - two warpgroups, each 64 rows x 128 columns of C as wgmma m64n128k16 / k8 (4 per k tile,
//     both operands K-major from shared memory through matrix descriptors), the next k
//     tile's products issued before the previous ones are waited for, a stage refilled
//     once both warpgroups are done with it;
//   - the epilogue from the accumulator registers: alpha, beta C, bias, activation.
// Step 2 (HalfGemmPath::wgmma where N > 128; step 1 is HalfGemmPath::wgmma_128x128):
// 128 x 256 tiles of 4 stages of 48 KiB, a producer warpgroup (one thread issues the
// copies once a stage's empty barrier says both consumers released it) and two consumer
// warpgroups of 64 x 256 (wgmma m64n256), registers handed over by setmaxnreg, no block
// barrier in the k loop, tiles rasterized in groups of 8 row tiles for L2.
// Requires 16-byte aligned A and B with rows a multiple of 16 bytes (the TMA's strides).
//
// The kernel and its building blocks are in cuda/gemm_wgmma.cuh (the SIMT emulator runs
// them in tests); this file encodes the tensor maps and launches.
#include <cuda.h>  // CUtensorMap; the encoder comes through the runtime's driver entry point
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/gemm_wgmma.cuh"
#include "tilegrad/cuda/gemm_wgmma.hpp"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/cuda/tensor_map.hpp"

namespace tg::cuda::detail {

// The driver's tensor-map encoder, through the runtime (no link to libcuda): null where
// the driver has none.
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      return PFN_cuTensorMapEncodeTiled_v12000(nullptr);
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

namespace {

// A rows x K row-major operand (16-bit or FP32) as a TMA map: map_shape's boxes, 128-byte swizzle.
bool make_map(CUtensorMap* map, int kind, const void* m, int rows, int K, int ld, int box_rows) {
  const MapShape shape = map_shape(kind, rows, K, ld, box_rows);
  const cuuint64_t dims[2] = {shape.dims[0], shape.dims[1]};
  const cuuint64_t strides[1] = {shape.row_bytes};
  const cuuint32_t box[2] = {shape.box[0], shape.box[1]}, unit[2] = {1, 1};
  const CUtensorMapDataType type = kind == kTf32  ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32
                                   : kind == kF16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16
                                                  : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  return tensor_map_encoder()(map, type, 2, const_cast<void*>(m), dims, strides, box, unit, CU_TENSOR_MAP_INTERLEAVE_NONE,
                   CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                   CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// How many clusters of `kernel` stay resident on the current device with `config`'s
// block and cluster shape: asked of the runtime once per kernel and device (an occupancy
// query per GEMM call would sit on the launch path of every small GEMM), one block per SM
// where it has no answer.
int resident_clusters(const void* kernel, const cudaLaunchConfig_t& config, int cluster) {
  static std::mutex lock;
  static std::map<std::pair<const void*, int>, int> known;
  const std::pair<const void*, int> key{kernel, current_device()};
  const std::lock_guard<std::mutex> hold(lock);
  const auto it = known.find(key);
  if (it != known.end()) return it->second;
  int resident = 0;
  if (cudaOccupancyMaxActiveClusters(&resident, kernel, &config) != cudaSuccess || resident < 1) {
    cudaGetLastError();
    resident = sm_count() / cluster;
  }
  return known[key] = resident;
}

}  // namespace

bool wgmma_available() {
  return device_attribute(cudaDevAttrComputeCapabilityMajor) == 9 &&
         device_attribute(cudaDevAttrComputeCapabilityMinor) == 0 && tensor_map_encoder() != nullptr &&
         binary_version(reinterpret_cast<const void*>(&gemm_wgmma_128x128<kBf16>)) == 90;
}

bool gemm_wgmma(WgmmaType type, WgmmaTile tile, int M, int N, int K, float alpha, const void* A, int lda, const void* B,
                int ldb, float beta, float* C, int ldc, const float* bias, Act act, float slope) {
  const int kind = int(type);
  const int align = kind == kTf32 ? 4 : 8;  // elements per 16 bytes: the TMA's stride unit
  if (K == 0 || lda % align != 0 || ldb % align != 0 || !aligned16(A) || !aligned16(B) || (M + kBM - 1) / kBM > 65535 ||
      !wgmma_available())
    return false;
  // One 256-column tile would be half empty where N <= 128: step 1's tiles there. A
  // cluster of two takes two row tiles: where there is one, step 2.
  const bool ws = tile != WgmmaTile::t128x128 && N > kBN;
  const bool persistent = tile == WgmmaTile::ws128x256_persistent;
  const int cluster = ws && (tile == WgmmaTile::ws128x256_cluster2 || persistent) && M > kBM ? 2 : 1;
  CUtensorMap map_a, map_b;
  if (!make_map(&map_a, kind, A, M, K, lda, kBM) ||
      !make_map(&map_b, kind, B, N, K, ldb, ws ? kWsBN / cluster : kBN))  // a cluster's blocks copy half of B each
    return false;
  const Epilogue e{C, ldc, M, N, alpha, beta, bias, act, slope};
  using Kernel = void (*)(CUtensorMap, CUtensorMap, int, Epilogue);
  auto by_kind = [&](Kernel bf16, Kernel f16, Kernel tf32) { return kind == kTf32 ? tf32 : kind == kF16 ? f16 : bf16; };
  if (ws) {
    const long long row_tiles = ((M + kBM - 1) / kBM + cluster - 1) / cluster * cluster;  // whole clusters
    const long long blocks = row_tiles * ((N + kWsBN - 1) / kWsBN);
    if (blocks > 0x7fffffffLL) return false;
    const Kernel kernel =
        cluster == 2 ? by_kind(&gemm_wgmma_ws_128x256<kBf16, 2>, &gemm_wgmma_ws_128x256<kF16, 2>, &gemm_wgmma_ws_128x256<kTf32, 2>)
                     : by_kind(&gemm_wgmma_ws_128x256<kBf16, 1>, &gemm_wgmma_ws_128x256<kF16, 1>, &gemm_wgmma_ws_128x256<kTf32, 1>);
    allow_shared(reinterpret_cast<const void*>(kernel), kWsSmemBytes);
    ClusterLaunch launch(unsigned(blocks), kWsThreads, kWsSmemBytes, unsigned(cluster));
    if (persistent)  // as many clusters as stay resident, each looping over the tiles
      launch.config.gridDim =
          dim3(unsigned(std::min<long long>(blocks / cluster, resident_clusters(reinterpret_cast<const void*>(kernel), launch.config, cluster)) * cluster));
    TG_CUDA_CHECK(cudaLaunchKernelEx(&launch.config, kernel, map_a, map_b, K, e));
  } else {
    const dim3 grid(unsigned((N + kBN - 1) / kBN), unsigned((M + kBM - 1) / kBM));
    const Kernel kernel = by_kind(&gemm_wgmma_128x128<kBf16>, &gemm_wgmma_128x128<kF16>, &gemm_wgmma_128x128<kTf32>);
    allow_shared(reinterpret_cast<const void*>(kernel), kSmemBytes);
    kernel<<<grid, kThreads, kSmemBytes, stream()>>>(map_a, map_b, K, e);
  }
  TG_CUDA_LAUNCHED();
  return true;
}

}  // namespace tg::cuda::detail
