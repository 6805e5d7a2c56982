// The sm_80 building blocks the tensor-core kernels share (gemm.cuh, attention_bf16.cuh):
// cp.async into shared memory, ldmatrix fragment loads, the m16n8k16 (bf16/f16) and
// m16n8k8 (tf32) products, and the dynamic shared memory declaration.
//
// Fragments of mma.m16n8k16 with 16-bit inputs (PTX ISA, "Matrix Fragments for
// mma.m16n8k16"), lane = 4 g + t: A (16 x 16, row-major) register 0 = (row g, columns 2t,
// 2t + 1), 1 = (g + 8, 2t..), 2 = (g, 2t + 8..), 3 = (g + 8, 2t + 8..); B (16 x 8, k x n)
// register 0 = (k 2t, 2t + 1; n g), 1 = (k 2t + 8.., n g); C/D (16 x 8, FP32) 0, 1 = (g,
// 2t..2t + 1), 2, 3 = (g + 8, 2t..). The lower half of a register is the lower index.
//
// Compiled for the host with TG_SIMT_HOST defined, this header is empty: the SIMT
// emulator (tests/simt/simt.hpp) defines the same functions, so that kernels written
// against them run on the CPU in tests.
#pragma once

#ifndef TG_SIMT_HOST

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

// A kernel's dynamic shared memory (the launch's third argument) as an array of T.
#define TG_DYNAMIC_SHARED(T, name) extern __shared__ __align__(16) T name[]
// A device function kept out of line (CUDA's __noinline__; the emulator's spelling differs).
#define TG_NOINLINE __noinline__

namespace tg::cuda {

// 16 bytes from global straight into shared memory (no registers, no L1); src_bytes < 16
// copies that many and zero-fills the rest, 0 reads nothing.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(src_bytes));
}
// 4 bytes the same way (through L1: .cg takes 16-byte copies only).
__device__ __forceinline__ void cp_async4(void* smem, const void* gmem, int src_bytes) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most kPending of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all() { cp_async_wait<0>(); }

// Four 8 x 8 matrices of 16-bit values: lane i gives the address of row i % 8 of matrix
// i / 8 (16 bytes) and receives, in register j, row lane / 4, columns 2 (lane % 4) and
// 2 (lane % 4) + 1 of matrix j.
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const std::uint16_t* row) {
  const unsigned at = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(at));
}
// The same matrices transposed on the way: register j holds rows 2 (lane % 4) and
// 2 (lane % 4) + 1 of column lane / 4 of matrix j, i.e. a B fragment (k = row, n =
// column) straight from a k-major tile.
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const std::uint16_t* row) {
  const unsigned at = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(at));
}

// c += a b on the tensor cores: bf16 or (kF16) f16 inputs, FP32 accumulators.
template <bool kF16 = false>
__device__ __forceinline__ void mma16(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  if constexpr (kF16)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <bool kF16 = false>
__device__ __forceinline__ void mma16(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  mma16<kF16>(c, a, b[0], b[1]);
}

// FP32 rounded to TF32 (10-bit mantissa; to nearest, ties away from zero), kept in an
// FP32 register with the low 13 bits zero.
__device__ __forceinline__ float to_tf32(float x) {
  unsigned r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return __uint_as_float(r);
}

// c += a b, TF32 inputs (m16n8k8), FP32 accumulators. Fragments (PTX ISA, "Matrix
// Fragments for mma.m16n8k8", .tf32): a0 (g, t) a1 (g + 8, t) a2 (g, t + 4) a3 (g + 8,
// t + 4); b0 (k t, n g), b1 (k t + 4, n g); c as for m16n8k16.
__device__ __forceinline__ void mma_tf32(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// 2^x on the SFU (ex2.approx: ~2 ulp; 2^-inf = +0).
__device__ __forceinline__ float ex2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Two floats rounded to nearest-even bf16 in one register (lo in the lower half).
__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
  const __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);  // .x (low half) = lo
  return *reinterpret_cast<const unsigned*>(&p);
}

// The same in f16 (IEEE binary16: subnormals kept, overflow to inf).
__device__ __forceinline__ unsigned pack_f16(float lo, float hi) {
  const __half2 p = __floats2half2_rn(lo, hi);  // .x (low half) = lo
  return *reinterpret_cast<const unsigned*>(&p);
}

}  // namespace tg::cuda

#endif  // TG_SIMT_HOST
