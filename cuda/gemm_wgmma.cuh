// The Hopper (sm_90a) GEMM kernel of cuda/gemm_wgmma.cu (what it does: the comment
// there), apart from its launch, so that the SIMT emulator (tests/simt) runs its source on
// the CPU: there the building blocks below (mbarriers, TMA copies, wgmma and its
// fences) come from tests/simt/simt.hpp, and CUtensorMap is the emulator's description
// of a tensor map.
#pragma once

#ifndef TG_SIMT_HOST
#include <cuda.h>  // CUtensorMap
#include <cuda_runtime.h>
#endif

#include <cstdint>

#include "tilegrad/cuda/activation_math.cuh"
#include "tilegrad/cuda/gemm_wgmma.hpp"
#include "tilegrad/cuda/mma.cuh"  // TG_DYNAMIC_SHARED

// Where the kernel has a body: sm_90a device code, and the host emulator.
#if defined(TG_SIMT_HOST) || (defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL))
#define TG_WGMMA_BODY 1
#endif

namespace tg::cuda::detail {

// The operand types (WgmmaType) as template arguments: a k tile is one 128-byte row of
// each, 64 16-bit values or 32 TF32.
constexpr int kBf16 = int(WgmmaType::bf16), kF16 = int(WgmmaType::f16), kTf32 = int(WgmmaType::tf32);
constexpr int kBM = 128, kBN = 128, kStages = 4, kThreads = 256, kRowBytes = 128;
constexpr int k_tile(int kind) { return kind == kTf32 ? 32 : 64; }
constexpr int kTileBytes = kBM * kRowBytes;  // 16 KiB: A's and B's tiles alike (kBM == kBN)
constexpr int kStageBytes = 2 * kTileBytes;
// The stages, 1024-byte aligned by hand (the 128-byte swizzle repeats every 8 rows of 128
// bytes, and the descriptors assume tiles start on that boundary), then the barriers.
constexpr int kSmemBytes = 1024 + kStages * kStageBytes + kStages * 8;

// The TMA map of a rows x K row-major operand (ld elements between rows): elements per
// row and rows, the row stride in bytes, boxes of one k tile (128 bytes) by box_rows rows
// (the block tile's side); 128-byte swizzle.
struct MapShape {
  int elem_bytes;
  unsigned long long dims[2], row_bytes;
  unsigned box[2];
};
constexpr MapShape map_shape(int kind, int rows, int K, int ld, int box_rows) {
  const int elem = kind == kTf32 ? 4 : 2;
  return {elem, {static_cast<unsigned long long>(K), static_cast<unsigned long long>(rows)},
          static_cast<unsigned long long>(ld) * static_cast<unsigned long long>(elem),
          {static_cast<unsigned>(k_tile(kind)), static_cast<unsigned>(box_rows)}};
}

// Step 2 (gemm_wgmma_ws_128x256): 128 x 256 tiles, a producer warpgroup and two consumer
// warpgroups, 4 stages of 48 KiB (A's 16 KiB, B's 32 KiB), a full and an empty barrier per
// stage; row tiles walked in groups of kGroupM (rasterization for L2).
constexpr int kWsBN = 256, kWsStages = 4, kWsThreads = 384, kGroupM = 8;
constexpr int kWsATile = kBM * kRowBytes, kWsBTile = kWsBN * kRowBytes, kWsStageBytes = kWsATile + kWsBTile;
constexpr int kWsSmemBytes = 1024 + kWsStages * kWsStageBytes + 2 * kWsStages * 8;
// Registers per thread after the hand-over: 128 x 40 + 256 x 232 = 64,512 of 65,536.
constexpr int kProducerRegs = 40, kConsumerRegs = 232;

// The (row tile, column tile) of block `id` of a 1-D grid over tiles_m x tiles_n tiles:
// groups of kGroupM row tiles, each walked column by column, so that the blocks running
// together share B's column tiles and a group's A rows stay in L2.
struct TileIndex {
  int m, n;
};
__host__ __device__ constexpr TileIndex grouped_tile(int id, int tiles_m, int tiles_n) {
  const int per_group = kGroupM * tiles_n, first_m = id / per_group * kGroupM;
  const int size_m = tiles_m - first_m < kGroupM ? tiles_m - first_m : kGroupM, r = id % per_group;
  return {first_m + r % size_m, r / size_m};
}

struct Epilogue {
  float* C;
  int ldc, M, N;
  float alpha, beta;
  const float* bias;
  Act act;
  float slope;
};

// A K-major operand tile in shared memory, rows of 128 bytes swizzled in 8-row (1024-byte)
// atoms (PTX ISA, "Matrix Descriptor Format"): start address >> 4 in bits 0-13, leading
// offset unused (1) for swizzled K-major layouts in bits 16-29, stride 1024 bytes between
// 8-row groups (>> 4) in bits 32-45, base offset 0 (atoms 1024-byte aligned), 128-byte
// swizzle (mode 1) in bits 62-63.
__device__ __forceinline__ std::uint64_t descriptor(std::uint32_t address) {
  return std::uint64_t((address & 0x3ffff) >> 4) | (std::uint64_t(1) << 16) | (std::uint64_t(1024 >> 4) << 32) |
         (std::uint64_t(1) << 62);
}

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)

__device__ __forceinline__ std::uint32_t shared_address(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void barrier_init(std::uint32_t bar, int arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(arrivals) : "memory");
}
// Makes the initialized barriers visible to the async proxy (the TMA) and the cluster.
__device__ __forceinline__ void barrier_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

// This thread's arrival, announcing `bytes` of TMA traffic the phase waits for.
__device__ __forceinline__ void barrier_expect(std::uint32_t bar, int bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}

// Waits for the phase of `parity` to complete. A copy that never lands would hang the
// GPU: after ~10 s (2e10 cycles) the kernel traps instead, which the host reports as a
// launch failure (a kernel not yet run on a GPU earns the guard).
__device__ __forceinline__ void barrier_wait(std::uint32_t bar, int parity) {
  std::uint32_t done = 0;
  const long long start = clock64();
  while (true) {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
    if (done) return;
    if (clock64() - start > 20000000000LL) __trap();
  }
}

// The box at (k0, row0) of `map` into shared memory at `dst`, completing on `bar`.
__device__ __forceinline__ void tma_load(std::uint32_t dst, const CUtensorMap* map, int k0, int row0, std::uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(k0), "r"(row0), "r"(bar)
      : "memory");
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// Keeps the compiler from moving accumulator accesses across the asynchronous products.
template <int N>
__device__ __forceinline__ void fence_operands(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// A consumer's arrival on a stage's "empty" barrier: the stage may be refilled.
__device__ __forceinline__ void barrier_arrive(std::uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// The same on the barrier at the same address in block `rank` of the cluster.
__device__ __forceinline__ void barrier_arrive_cluster(std::uint32_t bar, unsigned rank) {
  asm volatile(
      "{\n.reg .b32 remote;\nmapa.shared::cluster.u32 remote, %0, %1;\n"
      "mbarrier.arrive.release.cluster.shared::cluster.b64 _, [remote];\n}\n" ::"r"(bar),
      "r"(rank)
      : "memory");
}

// This block's rank in its cluster.
__device__ __forceinline__ unsigned cta_rank() {
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
// A barrier over every thread of the cluster (release, then acquire).
__device__ __forceinline__ void cluster_barrier() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}

// The box at (k0, row0) into shared memory at `dst` of every block of the cluster in
// `mask`, completing on each one's barrier at `bar` (one read from L2, several SMs fed).
__device__ __forceinline__ void tma_load_multicast(std::uint32_t dst, const CUtensorMap* map, int k0, int row0,
                                                   std::uint32_t bar, std::uint16_t mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster"
      " [%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(dst),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(k0), "r"(row0), "r"(bar), "h"(mask)
      : "memory");
}

// Hands registers between the warpgroups of a warp-specialized kernel: the producer gives
// up what it does not need (dec), the consumers take it (inc). kRegs is per thread, a
// multiple of 8 in [24, 256]; all threads of the warpgroup execute it.
template <int kRegs>
__device__ __forceinline__ void registers_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs>
__device__ __forceinline__ void registers_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

// The accumulator operands of a warpgroup MMA, written once: "%0, ..., %N-1" for the
// asm string and the matching "+f"(d[i]) constraints, for N = 32, 64, 128 FP32 registers.
#define TG_WG_R32 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15"  \
    ", %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define TG_WG_R64 TG_WG_R32                                                             \
    ", %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47"  \
    ", %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define TG_WG_R128 TG_WG_R64                                                                            \
    ", %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79"                  \
    ", %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95"                  \
    ", %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111"      \
    ", %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
#define TG_WG_D32(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),  \
    "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),             \
    "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),           \
    "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define TG_WG_D64(d) TG_WG_D32(d),                                                                           \
    "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),  \
    "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),  \
    "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),  \
    "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define TG_WG_D128(d) TG_WG_D64(d),                                                                                  \
    "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),          \
    "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),          \
    "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),          \
    "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),          \
    "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),      \
    "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),  \
    "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),  \
    "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])


// One warpgroup MMA with A and B behind matrix descriptors (desc_a, desc_b) into the
// accumulators d: TYPE the shape and types ("m64n128k16.f32.bf16.bf16"), TRANS the
// operands' transpose flags (", 0, 0": both K-major; TF32 takes none), REGS and OUTS the
// accumulator lists above, DA, DB, PRED the operand numbers after them; scale-d 1.
#define TG_WGMMA_SS(TYPE, TRANS, REGS, DA, DB, PRED, OUTS)                                             \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " PRED ", 0;\n"                                      \
               "wgmma.mma_async.sync.aligned." TYPE " {" REGS " }, " DA ", " DB ", p, 1, 1" TRANS ";\n}\n" \
               : OUTS                                                                                  \
               : "l"(desc_a), "l"(desc_b), "n"(1))

// D (64 x 128, FP32, in the warpgroup's registers) += A B^T over one 32-byte k step of
// the swizzled rows: m64n128k16 for 16-bit types, m64n128k8 TF32 (K-major only: no
// transpose flags).
template <int kKind>
__device__ __forceinline__ void wgmma_step(float (&d)[64], std::uint64_t desc_a, std::uint64_t desc_b) {
  if constexpr (kKind == kF16)
    TG_WGMMA_SS("m64n128k16.f32.f16.f16", ", 0, 0", TG_WG_R64, "%64", "%65", "%66", TG_WG_D64(d));
  else if constexpr (kKind == kTf32)
    TG_WGMMA_SS("m64n128k8.f32.tf32.tf32", "", TG_WG_R64, "%64", "%65", "%66", TG_WG_D64(d));
  else TG_WGMMA_SS("m64n128k16.f32.bf16.bf16", ", 0, 0", TG_WG_R64, "%64", "%65", "%66", TG_WG_D64(d));
}

// The same with 256 columns (128 FP32 registers per thread): m64n256k16 / k8.
template <int kKind>
__device__ __forceinline__ void wgmma_step256(float (&d)[128], std::uint64_t desc_a, std::uint64_t desc_b) {
  if constexpr (kKind == kF16)
    TG_WGMMA_SS("m64n256k16.f32.f16.f16", ", 0, 0", TG_WG_R128, "%128", "%129", "%130", TG_WG_D128(d));
  else if constexpr (kKind == kTf32)
    TG_WGMMA_SS("m64n256k8.f32.tf32.tf32", "", TG_WG_R128, "%128", "%129", "%130", TG_WG_D128(d));
  else TG_WGMMA_SS("m64n256k16.f32.bf16.bf16", ", 0, 0", TG_WG_R128, "%128", "%129", "%130", TG_WG_D128(d));
}

#endif

template <int kKind>
__global__ void __launch_bounds__(kThreads, 1)
    gemm_wgmma_128x128(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b, int K,
                       Epilogue e) {
#if defined(TG_WGMMA_BODY)
  TG_DYNAMIC_SHARED(unsigned char, raw);
  unsigned char* tiles = reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(raw) + 1023) & ~std::uintptr_t(1023));
  const std::uint32_t tiles_at = shared_address(tiles), bars_at = tiles_at + kStages * kStageBytes;
  const int m0 = int(blockIdx.y) * kBM, n0 = int(blockIdx.x) * kBN;
  constexpr int kBK = k_tile(kKind);
  const int tid = int(threadIdx.x), wg = tid / 128, ktiles = (K + kBK - 1) / kBK;
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) barrier_init(bars_at + 8 * s, 1);
    barrier_init_fence();
  }
  __syncthreads();
  // Thread 0 fills stage kt % kStages with k tile kt of A and B.
  auto load = [&](int kt) {
    if (kt >= ktiles) return;
    const int s = kt % kStages;
    const std::uint32_t bar = bars_at + 8 * s, dst = tiles_at + s * kStageBytes;
    barrier_expect(bar, kStageBytes);
    tma_load(dst, &map_a, kt * kBK, m0, bar);
    tma_load(dst + kTileBytes, &map_b, kt * kBK, n0, bar);
  };
  if (tid == 0)
    for (int kt = 0; kt < kStages - 1; ++kt) load(kt);
  float d[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) d[i] = 0.0f;
  for (int kt = 0; kt < ktiles; ++kt) {
    const int s = kt % kStages;
    barrier_wait(bars_at + 8 * s, (kt / kStages) & 1);
    const std::uint32_t a_at = tiles_at + s * kStageBytes + wg * 64 * 128;  // this warpgroup's 64 rows
    const std::uint32_t b_at = tiles_at + s * kStageBytes + kTileBytes;
    fence_operands(d);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)  // 4 steps of 32 bytes along the swizzled 128-byte rows
      wgmma_step<kKind>(d, descriptor(a_at + 32 * kk), descriptor(b_at + 32 * kk));
    wgmma_commit();
    wgmma_wait<1>();  // k tile kt - 1's products are done: its stage may be refilled ...
    fence_operands(d);
    __syncthreads();  // ... once both warpgroups are past it
    if (tid == 0) load(kt + kStages - 1);
  }
  wgmma_wait<0>();
  fence_operands(d);
  // Accumulator layout (m64nNk16, FP32): warp w of the warpgroup holds rows 16 w.., lane l
  // rows l / 4 and l / 4 + 8, columns 8 j + 2 (l % 4) + {0, 1} in d[4 j .. 4 j + 3].
  const int lane = tid % 32, row = m0 + 64 * wg + 16 * ((tid % 128) / 32) + lane / 4;
#pragma unroll
  for (int j = 0; j < 16; ++j)
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int r = row + (q >= 2 ? 8 : 0), c = n0 + 8 * j + 2 * (lane % 4) + (q & 1);
      if (r >= e.M || c >= e.N) continue;
      float* out = e.C + std::int64_t(r) * e.ldc + c;
      const float x = e.alpha * d[4 * j + q] + (e.beta != 0.0f ? e.beta * *out : 0.0f) + (e.bias ? e.bias[c] : 0.0f);
      *out = act_forward1(e.act, e.slope, x);
    }
#else
  (void)map_a, (void)map_b, (void)K, (void)e;
  __trap();  // never launched: the host checks that the sm_90a binary is the one loaded
#endif
}


// Steps 2 and 3: warp-specialized, 128 x 256 tiles. Warpgroup 0 is the producer: one
// thread issues the TMA copies of each stage once the consumers have released it (empty
// barrier), and the rest of its registers go to the consumers. Warpgroups 1 and 2 each
// own 64 rows x 256 columns of C (wgmma m64n256, 128 accumulators per thread): they wait
// for a stage's copies (full barrier), issue its 4 k steps, retire the previous stage's
// products (wait_group 1) and release that stage with one arrival each. No block barrier
// after the start.
// Outputs col and col + 1 of a row of C (out points at col) from their accumulators:
// act(alpha acc + beta C + bias), as one 8-byte access when `pairs` and both are inside N.
__device__ __forceinline__ void store_pair(const Epilogue& e, float* out, int col, float acc0, float acc1, bool pairs) {
  auto value = [&](float acc, int cc, float old) {
    return act_forward1(e.act, e.slope, e.alpha * acc + (e.beta != 0.0f ? e.beta * old : 0.0f) + (e.bias ? e.bias[cc] : 0.0f));
  };
  if (pairs && col + 1 < e.N) {
    const float2 old = e.beta != 0.0f ? *reinterpret_cast<const float2*>(out) : make_float2(0.0f, 0.0f);
    *reinterpret_cast<float2*>(out) = make_float2(value(acc0, col, old.x), value(acc1, col + 1, old.y));
    return;
  }
  if (col < e.N) out[0] = value(acc0, col, e.beta != 0.0f ? out[0] : 0.0f);
  if (col + 1 < e.N) out[1] = value(acc1, col + 1, e.beta != 0.0f ? out[1] : 0.0f);
}

// Step 4 is the same kernel on a persistent grid (as many clusters as stay resident), each
// cluster looping over tiles with its stage ring running on across them.
// kCluster 2 (step 3): the two blocks of a cluster take vertically adjacent tiles with
// the same columns, so they need the same B tile: each copies its own A tile and half of
// B's rows, multicast into both blocks. A stage is refilled (by either block) only once
// the consumers of both blocks have released it: every consumer arrives on the empty
// barrier of each block (4 arrivals per phase), and each block's full barrier counts its
// A tile and both halves of B. A cluster barrier at the start (the barriers exist before
// a peer arrives on them) and at the end (no block leaves while its peer may still write
// into it or arrive on its barriers).
template <int kKind, int kCluster>
__global__ void __launch_bounds__(kWsThreads, 1)
    gemm_wgmma_ws_128x256(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b, int K,
                          Epilogue e) {
  static_assert(kCluster == 1 || kCluster == 2, "clusters of one or two blocks");
#if defined(TG_WGMMA_BODY)
  TG_DYNAMIC_SHARED(unsigned char, raw);
  unsigned char* tiles = reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(raw) + 1023) & ~std::uintptr_t(1023));
  const std::uint32_t tiles_at = shared_address(tiles), full_at = tiles_at + kWsStages * kWsStageBytes,
                      empty_at = full_at + 8 * kWsStages;
  const int tiles_m = (e.M + kBM - 1) / kBM, tiles_n = (e.N + kWsBN - 1) / kWsBN;
  // The cluster's work: units (row tile groups of kCluster, column tile) from its index
  // on, a grid's worth of clusters apart. A grid of one cluster per unit runs one each
  // (steps 2, 3); a grid of as many clusters as stay resident is persistent (step 4).
  const int units = (tiles_m + kCluster - 1) / kCluster * tiles_n;
  const int first = int(blockIdx.x) / kCluster, stride = int(gridDim.x) / kCluster;
  const unsigned rank = kCluster > 1 ? cta_rank() : 0u;
  // The row tile and column tile of unit u for this block: the second row tile of a pair
  // lies past M when tiles_m is odd (its A rows are zero-filled and it writes nothing,
  // but it still copies its half of B).
  auto tile_of = [&](int u) {
    const TileIndex pair = grouped_tile(u, (tiles_m + kCluster - 1) / kCluster, tiles_n);
    return TileIndex{pair.m * kCluster + int(rank), pair.n};
  };
  constexpr int kBK = k_tile(kKind);
  const int tid = int(threadIdx.x), wg = tid / 128, ktiles = (K + kBK - 1) / kBK;
  if (tid == 0) {
    for (int s = 0; s < kWsStages; ++s) {
      barrier_init(full_at + 8 * s, 1);              // the producer's arrival, plus the copies' bytes
      barrier_init(empty_at + 8 * s, 2 * kCluster);  // one arrival per consumer warpgroup of the cluster
    }
    barrier_init_fence();
  }
  if constexpr (kCluster > 1) cluster_barrier();
  else __syncthreads();
  // Stage uses are counted across the block's tiles (`it`): stage it % kWsStages, phase
  // it / kWsStages. The producer runs ahead into the next tile while the consumers write
  // the last one's outputs.
  if (wg == 0) {
    registers_dec<kProducerRegs>();
    if (tid == 0) {
      int it = 0;
      for (int u = first; u < units; u += stride) {
        const TileIndex t = tile_of(u);
        const int m0 = t.m * kBM, n0 = t.n * kWsBN;
        for (int kt = 0; kt < ktiles; ++kt, ++it) {
          const int s = it % kWsStages;
          // A fresh barrier counts as released once (parity 1 of the phase before the first).
          barrier_wait(empty_at + 8 * s, ((it / kWsStages) & 1) ^ 1);
          const std::uint32_t bar = full_at + 8 * s, dst = tiles_at + s * kWsStageBytes;
          barrier_expect(bar, kWsStageBytes);
          tma_load(dst, &map_a, kt * kBK, m0, bar);
          if constexpr (kCluster == 1) {
            tma_load(dst + kWsATile, &map_b, kt * kBK, n0, bar);
          } else {
            constexpr int kHalf = kWsBN / kCluster;
            tma_load_multicast(dst + kWsATile + std::uint32_t(rank) * kHalf * kRowBytes, &map_b, kt * kBK,
                               n0 + int(rank) * kHalf, bar, std::uint16_t((1u << kCluster) - 1));
          }
        }
      }
    }
  } else {
    registers_inc<kConsumerRegs>();
    const int c = wg - 1;  // this consumer's 64 rows of the tile
    // Releases stage use `used` to the producers of the cluster.
    auto release = [&](int used) {
      if (tid % 128 != 0) return;
      const std::uint32_t empty = empty_at + 8 * (used % kWsStages);
      if constexpr (kCluster == 1) barrier_arrive(empty);
      else
        for (int q = 0; q < kCluster; ++q) barrier_arrive_cluster(empty, unsigned(q));
    };
    int it = 0;
    for (int u = first; u < units; u += stride) {
      const TileIndex t = tile_of(u);
      const int m0 = t.m * kBM, n0 = t.n * kWsBN;
      float d[128];
#pragma unroll
      for (int i = 0; i < 128; ++i) d[i] = 0.0f;
      for (int kt = 0; kt < ktiles; ++kt, ++it) {
        const int s = it % kWsStages;
        barrier_wait(full_at + 8 * s, (it / kWsStages) & 1);
        const std::uint32_t a_at = tiles_at + s * kWsStageBytes + c * 64 * 128, b_at = tiles_at + s * kWsStageBytes + kWsATile;
        fence_operands(d);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) wgmma_step256<kKind>(d, descriptor(a_at + 32 * kk), descriptor(b_at + 32 * kk));
        wgmma_commit();
        wgmma_wait<1>();  // the previous k tile's products are done: release its stage
        fence_operands(d);
        if (kt > 0) release(it - 1);
      }
      wgmma_wait<0>();
      fence_operands(d);
      release(it - 1);  // the tile's last stage: the producer may refill it during the epilogue
      // Accumulator layout as in step 1, with 32 column groups of 8: a thread's two
      // neighbouring columns go out as one 8-byte store where C's rows allow (a warp's
      // store then fills whole 32-byte sectors, where 4-byte stores fill half of each).
      const int lane = tid % 32, row = m0 + 64 * c + 16 * ((tid % 128) / 32) + lane / 4;
      const bool pairs = e.ldc % 2 == 0 && (reinterpret_cast<std::uintptr_t>(e.C) & 7) == 0;
#pragma unroll
      for (int j = 0; j < 32; ++j)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int r = row + 8 * half, col = n0 + 8 * j + 2 * (lane % 4);
          if (r < e.M) store_pair(e, e.C + std::int64_t(r) * e.ldc + col, col, d[4 * j + 2 * half], d[4 * j + 2 * half + 1], pairs);
        }
    }
  }
  if constexpr (kCluster > 1) cluster_barrier();
#else
  (void)map_a, (void)map_b, (void)K, (void)e;
  __trap();  // never launched: the host checks that the sm_90a binary is the one loaded
#endif
}

}  // namespace tg::cuda::detail
