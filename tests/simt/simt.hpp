// A host emulator of CUDA thread blocks, for testing the kernels on a machine without a
// GPU (tests/test_simt_*.cpp). Include it before the kernel header: it
// defines TG_SIMT_HOST (cuda/mma.cuh then steps aside), CUDA's qualifiers and built-ins,
// and the sm_80 building blocks of cuda/mma.cuh, so that the kernels' own source compiles
// as C++ and runs here.
//
// Every CUDA thread of a block is a fiber (ucontext) on one host thread; a fiber runs
// until it reaches a collective and waits there for the rest of its warp (ldmatrix, mma,
// shuffles) or block (__syncthreads). A warp runs as far as it can before the next one
// starts (to a barrier), so warps drift apart as far as the barriers allow. The last
// lane to arrive computes the collective for all, from the PTX ISA's definitions:
//   ldmatrix .m8n8.x4 .b16: lane i gives the address of row i % 8 of matrix i / 8;
//     register j of lane l holds row l / 4, elements 2 (l % 4) and 2 (l % 4) + 1 of matrix
//     j; with .trans, elements (2 (l % 4), l / 4) and (2 (l % 4) + 1, l / 4);
//   mma.m16n8k16 .bf16/.f16 and m16n8k8 .tf32 -> .f32: the fragments of cuda/mma.cuh;
//     products and sums in double, rounded once to float (the hardware's order of sums
//     is unspecified, its products exact; TF32 operands are their registers' top 19 bits);
//   cp.async: the copies a thread issues are performed at the latest moment PTX allows,
//     its cp.async.wait_group, so a tile read before its wait reads what was there (or,
//     set_copy_timing(at_issue), at once, so a buffer refilled too early shows); and
//     an ldmatrix of shared bytes that a copy still in flight writes is an error (on the
//     hardware that copy may land at any time from its issue: a missing wait, or a
//     missing barrier before a buffer is refilled).
// What it checks on the way, each a std::runtime_error from launch(): a warp whose lanes
// reach different collectives (divergence around a warp-wide instruction), a block
// that can never finish (a barrier some thread does not reach), an ldmatrix address
// that is not 16-byte aligned. Blocks run one after another; dynamic shared memory is
// poisoned with 0xff bytes before each block (NaN in bf16 and FP32), so a read of a tile
// never written shows; static __shared__ arrays are the kernel's statics.
#pragma once

#define TG_SIMT_HOST 1

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>

#include "tilegrad/kernels/half.hpp"

#define __device__
#define __global__
#define __host__
#define __forceinline__ inline
#define TG_NOINLINE [[gnu::noinline]]
#define __launch_bounds__(...)
#define __maxnreg__(...)
// Shared arrays declared in a kernel are its statics: one copy for all the threads of the
// (one running) block. Dynamic shared memory is the emulator's buffer.
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __grid_constant__
#define TG_DYNAMIC_SHARED(T, name) T* const name = static_cast<T*>(::tg::simt::dynamic_shared())

namespace tg::simt {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

// The running fiber's threadIdx; the running block's blockIdx; blockDim and gridDim.
const Dim3& thread_idx();
const Dim3& block_idx();
const Dim3& block_dim();
const Dim3& grid_dim();

// The running block's dynamic shared memory (launch()'s shared_bytes, 128-byte aligned).
void* dynamic_shared();
void sync_threads();
std::uint32_t shfl_xor(std::uint32_t bits, int lane_mask);  // a 32-bit word, as the hardware moves it
void ldmatrix_x4(unsigned (&r)[4], const std::uint16_t* row, bool trans);
void mma_m16n8k16(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1, bool f16);
void mma_m16n8k8_tf32(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1);
void cp_async(void* dst, const void* src, int bytes, int src_bytes);
// Global atomics: one fiber runs at a time and none is preempted between the read and
// the write, so every read-modify-write here is atomic; the pair form (sm_90's float2
// atomicAdd) is an error unless its address is 8-byte aligned.
float atomic_add(float* p, float v);
void atomic_add_pair(float* p, float x, float y);
void cp_async_commit();
void cp_async_wait(int pending);

// When an issued cp.async lands: at the issuing thread's wait (the latest moment PTX
// allows: a read before the wait sees the old bytes), or at once (the earliest: a buffer
// refilled while another warp still reads it shows its new bytes). A kernel must be right
// under both; the default is at_wait.
enum class CopyTiming { at_wait, at_issue };
void set_copy_timing(CopyTiming timing);

// sm_90a (Hopper), for cuda/gemm_wgmma.cuh:
//   a tensor map (what cuTensorMapEncodeTiled encodes, for 2-D row-major matrices): the
//     copy of box {box[0] elements along a row, box[1] rows} at (c0, c1) writes the box's
//     rows one after another (box[0] * elem_bytes bytes each, 128 with swizzle128) and
//     zeros where the box leaves the matrix; with swizzle128 the 16-byte chunk j of a row
//     at shared address a lands at chunk j ^ ((a >> 7) & 7) (the 128-byte swizzle);
//   mbarriers (init, arrive, arrive.expect_tx, try_wait.parity): a phase completes when its
//     arrivals and its transaction bytes are all in, and a wait for parity p returns once
//     the current phase's parity is no longer p; TMA copies land at the first wait on their
//     barrier (CopyTiming::at_wait) or at once (at_issue);
//   wgmma.mma_async m64nNk16 (bf16, f16) and m64nNk8 (tf32), N 128 or 256, both operands K-major
//     in shared memory through matrix descriptors (128-byte swizzle, base offset 0; element
//     (row r, byte b) of an operand at start + (r / 8) SBO + (r % 8) 128 + b, swizzled), a
//     warpgroup-wide instruction performed at the wgmma.wait_group that retires its group
//     (reading shared memory then); the accumulator fragment of the PTX ISA (warp w of the
//     warpgroup rows 16 w.., lane l rows l / 4 and l / 4 + 8, columns 8 j + 2 (l % 4) + {0,
//     1} in d[4 j .. 4 j + 3]); in a cluster, a multicast copy lands in every block of its
//     mask at the same offset and completes on each one's barrier, and an arrival may go to
//     another block's barrier. Errors: a wgmma that reads bytes a TMA copy in flight
//     writes (a missing barrier wait), a TMA copy landing on bytes an unfinished wgmma reads
//     (a stage refilled too early), a block that ends with groups or copies outstanding, a
//     copy or arrival reaching a block of the cluster that has exited.
//   Up to 4 dimensions: dims[2], dims[3] (1 for a matrix) step by outer_bytes[0], [1]; a
//   box of box[2] x box[3] matrices lands as their rows one after another.
struct TensorMap {
  const void* base = nullptr;
  int elem_bytes = 2;
  long long dims[4] = {0, 0, 1, 1};  // elements per row (k), rows, then the outer dimensions
  long long row_bytes = 0;
  long long outer_bytes[2] = {};     // the strides of dims[2] and dims[3]
  int box[4] = {0, 0, 1, 1};         // elements along a row, rows, outer
  bool swizzle128 = true;
};
std::uint32_t shared_address(const void* p);  // a dynamic shared memory pointer's offset
void mbar_init(std::uint32_t bar, int arrivals);
void mbar_arrive_expect_tx(std::uint32_t bar, int bytes);
void mbar_wait(std::uint32_t bar, int parity);
void tma_load_2d(std::uint32_t dst, const TensorMap* map, int c0, int c1, std::uint32_t bar);
void mbar_arrive(std::uint32_t bar);
void mbar_arrive_remote(std::uint32_t bar, unsigned rank);  // on block `rank`'s barrier at the same address
// The box into every block of the cluster in `mask`, at dst there, completing on each
// one's barrier at `bar`.
void tma_load_2d_multicast(std::uint32_t dst, const TensorMap* map, int c0, int c1, std::uint32_t bar,
                           std::uint16_t mask);
// The box at (c0, c1, c2, c3) of a map of up to 4 dimensions.
void tma_load_tensor(std::uint32_t dst, const TensorMap* map, int c0, int c1, int c2, int c3, std::uint32_t bar);
// wgmma m64nNk16 / k8 with n = 64, 128 or 256 columns (n / 2 accumulators per thread);
// kind: 0 bf16, 1 f16 (k16), 2 tf32 (k8).
void wgmma_m64(float* d, int n, std::uint64_t desc_a, std::uint64_t desc_b, int kind);
// The same with A (64 x 16, bf16 / f16) in registers, read at issue: each thread's four
// 32-bit registers hold A's fragment as mma.m16n8k16's does for the 16 rows of its warp
// (warp w rows 16 w..: a0 row l / 4, columns 2 (l % 4) + {0, 1}; a1 8 rows down; a2, a3
// the same 8 columns on).
void wgmma_m64_rs(float* d, int n, const unsigned (&a)[4], std::uint64_t desc_b, int kind);
void wgmma_commit();
void wgmma_wait(int pending);

// ldmatrix_phases counts the shared-memory wavefronts of every ldmatrix.x4: each 8 x 8
// matrix (8 rows of 16 bytes) is one wavefront when its rows fall in distinct 16-byte
// bank groups (address / 16 mod 8), one more for each row that repeats a group (a bank
// conflict); a conflict-free kernel has ldmatrix_phases == 4 ldmatrix_instructions.
struct Stats {
  long long blocks = 0, collectives = 0, switches = 0;
  long long ldmatrix_instructions = 0, ldmatrix_phases = 0;
};
const Stats& stats();

// The most dynamic shared memory a block may ask for (an H200's opt-in limit).
constexpr std::size_t kMaxDynamicShared = 227 * 1024;

// Runs kernel() as every thread of every block of the grid (x fastest), one block at a
// time, each with shared_bytes of dynamic shared memory poisoned with 0xff bytes.
void launch(Dim3 grid, Dim3 block, std::size_t shared_bytes, const std::function<void()>& kernel);

// Thread-block clusters of `cluster` blocks along x (dividing grid.x): a cluster's blocks
// run together (one at a time, each as long as it makes progress), each with its own
// dynamic shared memory, which the others reach through map_shared_rank; cluster_sync is
// a barrier over all their threads. Static __shared__ variables are the kernel's statics,
// shared by the cluster's blocks: a kernel keeps in dynamic shared memory what must last
// across a cluster barrier or what another block reads (map_shared_rank refuses a static).
constexpr unsigned kMaxCluster = 16;
void launch_clusters(Dim3 grid, unsigned cluster, Dim3 block, std::size_t shared_bytes,
                     const std::function<void()>& kernel);
unsigned cluster_rank();
unsigned cluster_size();
void cluster_sync();
void* map_shared_rank(const void* p, unsigned rank);

}  // namespace tg::simt

#define threadIdx (::tg::simt::thread_idx())
#define blockIdx (::tg::simt::block_idx())
#define blockDim (::tg::simt::block_dim())
#define gridDim (::tg::simt::grid_dim())

inline void __syncthreads() { ::tg::simt::sync_threads(); }
// Shuffles move 32-bit words (a double as two, as the hardware does); the mask is taken
// as the whole warp.
template <class T>
T __shfl_xor_sync(unsigned /*mask*/, T v, int lane_mask) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "32- or 64-bit values");
  std::uint32_t w[sizeof(T) / 4];
  std::memcpy(w, &v, sizeof v);
  for (std::uint32_t& x : w) x = ::tg::simt::shfl_xor(x, lane_mask);
  std::memcpy(&v, w, sizeof v);
  return v;
}
inline float atomicAdd(float* p, float v) { return ::tg::simt::atomic_add(p, v); }
inline float __log2f(float x) { return std::log2(x); }
inline float __expf(float x) { return std::exp(x); }
using std::isfinite;
using std::isinf;
using std::isnan;
using std::max;
using std::min;

struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}
struct float2 {
  float x, y;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float2 atomicAdd(float2* p, float2 v) {
  const float2 old = *p;
  ::tg::simt::atomic_add_pair(&p->x, v.x, v.y);
  return old;
}

namespace tg::cuda {

inline void cp_async16(void* dst, const void* src, int src_bytes) { simt::cp_async(dst, src, 16, src_bytes); }
inline void cp_async4(void* dst, const void* src, int src_bytes) { simt::cp_async(dst, src, 4, src_bytes); }
inline void cp_async_commit() { simt::cp_async_commit(); }
template <int kPending>
void cp_async_wait() {
  simt::cp_async_wait(kPending);
}
inline void cp_async_wait_all() { simt::cp_async_wait(0); }
inline void ldmatrix_x4(unsigned (&r)[4], const std::uint16_t* row) { simt::ldmatrix_x4(r, row, false); }
inline void ldmatrix_x4_trans(unsigned (&r)[4], const std::uint16_t* row) { simt::ldmatrix_x4(r, row, true); }
template <bool kF16 = false>
void mma16(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  simt::mma_m16n8k16(c, a, b0, b1, kF16);
}
template <bool kF16 = false>
void mma16(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  simt::mma_m16n8k16(c, a, b[0], b[1], kF16);
}
inline float ex2_approx(float x) { return std::exp2(x); }
// cvt.rna.tf32.f32: to nearest, ties away from zero, 10 mantissa bits; NaN and inf kept.
inline float to_tf32(float x) {
  unsigned u = __float_as_uint(x);
  if ((u & 0x7f800000u) != 0x7f800000u) u += 0x1000u;
  return __uint_as_float(u & ~0x1fffu);
}
inline void mma_tf32(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  simt::mma_m16n8k8_tf32(c, a, b[0], b[1]);
}
inline unsigned pack_bf16(float lo, float hi) {
  return unsigned(bf16_bits_from_float(lo)) | (unsigned(bf16_bits_from_float(hi)) << 16);
}
inline unsigned pack_f16(float lo, float hi) {
  return unsigned(f16_bits_from_float(lo)) | (unsigned(f16_bits_from_float(hi)) << 16);
}

// The sm_90a building blocks of cuda/gemm_wgmma.cuh.
inline std::uint32_t shared_address(const void* p) { return simt::shared_address(p); }
inline void barrier_init(std::uint32_t bar, int arrivals) { simt::mbar_init(bar, arrivals); }
inline void barrier_init_fence() {}
inline void barrier_expect(std::uint32_t bar, int bytes) { simt::mbar_arrive_expect_tx(bar, bytes); }
inline void barrier_wait(std::uint32_t bar, int parity) { simt::mbar_wait(bar, parity); }
inline void tma_load(std::uint32_t dst, const simt::TensorMap* map, int k0, int row0, std::uint32_t bar) {
  simt::tma_load_2d(dst, map, k0, row0, bar);
}
inline void tma_load_multicast(std::uint32_t dst, const simt::TensorMap* map, int k0, int row0, std::uint32_t bar,
                               std::uint16_t mask) {
  simt::tma_load_2d_multicast(dst, map, k0, row0, bar, mask);
}
inline void tma_load_4d(std::uint32_t dst, const simt::TensorMap* map, int c0, int c1, int c2, int c3, std::uint32_t bar) {
  simt::tma_load_tensor(dst, map, c0, c1, c2, c3, bar);
}
template <int kKind, int kN>
void wgmma_rs(float (&d)[kN / 2], const unsigned (&a)[4], std::uint64_t desc_b) {
  simt::wgmma_m64_rs(d, kN, a, desc_b, kKind);
}
template <int kKind>
void wgmma_ss64(float (&d)[32], std::uint64_t desc_a, std::uint64_t desc_b) {
  simt::wgmma_m64(d, 64, desc_a, desc_b, kKind);
}
inline unsigned cta_rank() { return simt::cluster_rank(); }
inline void cluster_barrier() { simt::cluster_sync(); }
inline void barrier_arrive_cluster(std::uint32_t bar, unsigned rank) { simt::mbar_arrive_remote(bar, rank); }
inline void wgmma_fence() {}
inline void wgmma_commit() { simt::wgmma_commit(); }
template <int kPending>
void wgmma_wait() {
  simt::wgmma_wait(kPending);
}
template <int N>
void fence_operands(float (&)[N]) {}
inline void barrier_arrive(std::uint32_t bar) { simt::mbar_arrive(bar); }
template <int kRegs>
void registers_dec() {}
template <int kRegs>
void registers_inc() {}
template <int kKind>
void wgmma_step(float (&d)[64], std::uint64_t desc_a, std::uint64_t desc_b) {
  simt::wgmma_m64(d, 128, desc_a, desc_b, kKind);
}
template <int kKind>
void wgmma_step256(float (&d)[128], std::uint64_t desc_a, std::uint64_t desc_b) {
  simt::wgmma_m64(d, 256, desc_a, desc_b, kKind);
}

}  // namespace tg::cuda

using CUtensorMap = ::tg::simt::TensorMap;
