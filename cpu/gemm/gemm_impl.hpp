// The CPU GEMM's internals, shared by the portable driver (gemm.cpp) and the AVX2/FMA
// kernels (gemm_avx2.cpp). Not a public header: cpu/gemm.hpp is.
//
// Structure (Goto & van de Geijn 2008, "Anatomy of high-performance matrix
// multiplication"; Van Zee & van de Geijn 2015, BLIS): five loops around a register-
// blocked micro-kernel. op(B) is packed in KC x NC blocks of NR-column micro-panels,
// op(A) in MC x KC blocks of MR-row micro-panels, k-major, zero-padded to whole panels;
// the packing absorbs transposes and leading dimensions, so the micro-kernel sees one
// layout whatever the operands' were. cpu/gemm/NOTES.md has the blocking, its
// reasoning and the measurements.
#pragma once

#include <cstddef>

#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/kernels/gemm.hpp"

namespace tg::cpu::gemm_impl {

// What the micro-kernel does with its MR x NR accumulator tile `acc` before storing:
//   C = act(alpha * acc + beta * C + bias)
// beta == 0 never reads C; bias (nullptr for none) points at the tile's first column.
// Bias and activation are passed only with the last K block; earlier blocks pass
// bias = nullptr and Act::none, and later blocks accumulate with beta = 1.
template <class T>
struct TileEpilogue {
  T alpha = 1;
  T beta = 0;
  const T* bias = nullptr;
  Activation act{};
};

// Cache blocking from a description of the caches and the micro-kernel's shape
// (cpu/gemm/NOTES.md), by the analytical model of Low, Igual, Smith & Quintana-Orti 2016
// ("Analytical modeling is enough for high-performance BLIS"), counted in cache ways so
// that the panels do not evict each other by set conflicts:
//   KC: the B micro-panel (KC x NR) stays in L1 while A micro-panels (KC x MR) stream
//       through it: A gets C_A = floor((W1 - 1) / (1 + NR / MR)) ways of L1 (at least
//       one), B the other W1 - 1 - C_A, one way left for C's lines; KC is what both fit.
//       Where that gives KC < 256 (a wide block: 6x64 on a 48 KiB L1 gives 160), the B
//       micro-panel moves to L2 (at most 1/16 of it) and KC grows to what the A
//       micro-panel's half of L1 and that allow (up to 512): fewer passes over C;
//   MC: the A block (MC x KC) in the L2 ways the B micro-panel leaves, at most 3/4 of
//       them (the rest for B's block streaming through);
//   NC: the B block (KC x NC) in half of this core's share of L3.
// KC a multiple of 8, MC of MR, NC of NR. TG_GEMM_KC / TG_GEMM_MC / TG_GEMM_DIRECT_B
// override (experiments).
struct Blocking {
  index_t mc, kc, nc;
  // The most rows of a thread's part of C for which a row-major op(B) is read in place
  // (Arch::kernel_b_rows) instead of packed: each B panel then serves at most this many
  // / MR tiles, too few to pay for packing it (cpu/gemm/NOTES.md, step 17).
  index_t direct_b_rows = 256;
};
Blocking blocking_for(const CacheSizes& caches, int mr, int nr, std::size_t elem);

// The blocking of an MR x NR micro-kernel on this machine's caches, worked out once:
// what each Arch's `blocking` points at, so a GEMM call does no divisions for it.
template <int MR, int NR, class T>
const Blocking& blocking_of() {
  static const Blocking b = blocking_for(cache_sizes(), MR, NR, sizeof(T));
  return b;
}

// One implementation of the five loops' leaves: the packers, the micro-kernel and a
// direct path for problems too small for packing to pay.
template <class T>
struct Arch {
  const char* name;
  int mr, nr;
  // Packs `rows` rows x kc columns of op(A), starting at A (already offset to the block's
  // first element), into ceil(rows / mr) micro-panels of kc x mr, k-major, rows past
  // `rows` zero. May write up to 8 elements past the last panel (buffers have slack).
  void (*pack_a)(Trans ta, const T* A, index_t lda, index_t rows, index_t kc, T* out);
  // Packs kc rows x `cols` columns of op(B) into ceil(cols / nr) micro-panels of kc x nr.
  void (*pack_b)(Trans tb, const T* B, index_t ldb, index_t kc, index_t cols, T* out);
  // C[0:m, 0:n] = epilogue(A (mr x kc) * B panel (kc x nr)); m <= mr, n <= nr. A's
  // element (r, k) is a[r * a_rs + k * a_ks]: a packed panel (a_rs = 1, a_ks = mr) or
  // mr rows of a row-major op(A) read in place (a_rs = lda, a_ks = 1). All mr rows are
  // read, valid or not: a caller with m < mr passes a packed, zero-padded panel. b is a
  // packed panel (nr floats a k), 64-byte aligned as the packing buffers are: the AVX2
  // kernel loads it with aligned moves, so a caller passing other memory as a panel
  // checks its alignment.
  void (*kernel)(index_t kc, const T* a, index_t a_rs, index_t a_ks, const T* b, T* c,
                 index_t ldc, int m, int n, const TileEpilogue<T>& e);
  // The whole GEMM without packing, for tiny problems (nullptr: none).
  void (*small)(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha, const T* A,
                index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc,
                const GemmEpilogue<T>& ep);
  // The path's activation, in place over rows x cols of C (for epilogues applied
  // outside the micro-kernel: alpha == 0 or K == 0).
  void (*activate)(Activation act, T* c, index_t ldc, index_t rows, index_t cols);
  // The cache blocking for this mr x nr (blocking_of<mr, nr, T>).
  const Blocking& (*blocking)();
  // The narrowest column block the micro-kernel runs at about that width's cost (an
  // edge block for panels with few live columns), 0 when it has none (then nr): a C
  // narrower than a quarter of it goes through the transposed product (gemm_blocked).
  int narrow_nr = 0;
  // Whether the kernel reads rows of a row-major op(A) in place at full speed (the x86
  // kernels broadcast each element from memory): the driver then skips packing A for
  // products with few B panels. Kernels that need A packed for their loads say false.
  bool direct_a = true;
  // The micro-kernel reading B's rows in place from a row-major op(B): row k of the
  // panel is the nr floats at b + k ldb, all of them read (the driver passes whole
  // panels only); otherwise as `kernel`. nullptr where the path has none: B is packed.
  void (*kernel_b_rows)(index_t kc, const T* a, index_t a_rs, index_t a_ks, const T* b, index_t ldb, T* c, index_t ldc,
                        int m, int n, const TileEpilogue<T>& e) = nullptr;
};

// The packers in plain C++ (gemm.cpp), with Arch::pack_a's and pack_b's contracts for an
// MR-row or NR-column panel, zero-padded: the portable path's, and the partial panels of
// paths whose own packers vectorize only whole ones. Instantiated for widths 4 and 8
// (float and double: the portable 4 x 8) and float 12 (the NEON path's B).
template <class T, int MR>
void pack_a_portable(Trans ta, const T* A, index_t lda, index_t rows, index_t kc, T* out);
// B's NR-column panels are the NR-row panels of op(B)^T: the same packer, the other
// transpose.
template <class T, int NR>
void pack_b_portable(Trans tb, const T* B, index_t ldb, index_t kc, index_t cols, T* out) {
  pack_a_portable<T, NR>(tb == Trans::N ? Trans::T : Trans::N, B, ldb, cols, kc, out);
}

// Problems at or under this many multiply-adds go to Arch::small.
inline constexpr double kSmallMacs = 16.0 * 16 * 16;
// GEMV shapes (M == 1 or N == 1) at or under this many go there too.
inline constexpr double kSkinnyMacs = 65536.0;

// The driver: threads, blocks, packs and calls the micro-kernel (gemm.cpp).
template <class T>
void gemm_blocked(const Arch<T>& arch, Trans ta, Trans tb, index_t M, index_t N, index_t K,
                  T alpha, const T* A, index_t lda, const T* B, index_t ldb, T beta, T* C,
                  index_t ldc, const GemmEpilogue<T>& ep);

const Arch<float>& arch_avx2_f32();    // gemm_avx2.cpp
const Arch<float>& arch_avx512_f32();  // gemm_avx512.cpp
const Arch<float>& arch_neon_f32();     // gemm_neon.cpp (aarch64)
const Arch<float>& arch_portable_f32();
const Arch<double>& arch_portable_f64();

// Applies act in place to a rows x cols tile of C (row stride ldc) on the portable path:
// float through cpu/activation's portable kernel, double through the reference.
template <class T>
void activate_tile(Activation act, T* c, index_t ldc, index_t rows, index_t cols);

}  // namespace tg::cpu::gemm_impl
