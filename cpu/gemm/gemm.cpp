// CPU GEMM: the five-loop driver, the cache blocking, the threading, and the portable
// (plain C++) packers and micro-kernel. The AVX2/FMA leaves are in gemm_avx2.cpp.
//
// Numerical promise: each C element is a sum over K of fp32 products accumulated in
// fp32, in K blocks of KC, each block in k order; its error bound is the usual
// |C - C_exact| <= K * u * sum_k |a_ik b_kj| (u = 2^-24), and in practice ~sqrt(K) u
// relative (tests/test_gemm.cpp states its tolerance from this). The result does not
// depend on the thread count: threads split C into disjoint parts and every element is
// computed by the same instructions in the same order whatever part it falls in.
//
//   build/tests/test_gemm                      the shared body over every path
//   build/bench/bench_gemm --benchmark_filter=gemm/tilegrad
#include "tilegrad/cpu/omp.hpp"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <new>
#include <string>
#include <type_traits>

#include "tilegrad/cpu/activation.hpp"
#include "tilegrad/cpu/gemm/gemm_impl.hpp"
#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/kernels/activation.hpp"

namespace tg::cpu::gemm_impl {

namespace {

index_t round_up(index_t x, index_t m) { return (x + m - 1) / m * m; }
index_t ceil_div(index_t x, index_t m) { return (x + m - 1) / m; }

// Balanced blocks: ceil(n / max) blocks of (nearly) equal size, each a multiple of
// `align`, so K = 784 gives 4 x 196 rather than 3 x 256 + 16.
index_t balanced(index_t n, index_t max, index_t align) {
  if (n <= max) return round_up(n, align);
  const index_t blocks = ceil_div(n, max);
  return round_up(ceil_div(n, blocks), align);
}

// Per-thread packing buffers, kept between calls (OpenMP's threads persist), 64-byte
// aligned, grown on demand. Three per thread: A's block, B's, and the transposed result
// of a narrow C (gemm_blocked).
template <class T>
T* scratch(int which, index_t elements) {
  struct Buf {
    void* p = nullptr;
    std::size_t bytes = 0;
    ~Buf() { ::operator delete(p, std::align_val_t(64)); }
  };
  thread_local Buf bufs[3];
  Buf& b = bufs[which];
  const std::size_t need = std::size_t(elements + 16) * sizeof(T);  // slack for 8-wide stores
  if (b.bytes < need) {
    ::operator delete(b.p, std::align_val_t(64));
    b.p = nullptr;
    b.bytes = 0;
    b.p = ::operator new(need, std::align_val_t(64));
    b.bytes = need;
  }
  return static_cast<T*>(b.p);
}

// The five loops on one thread's part of C, with that thread's own packing buffers.
template <class T>
void gemm_part(const Arch<T>& arch, const Blocking& blk, T* bbuf, T* abuf, Trans ta, Trans tb,
               index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda, const T* B,
               index_t ldb, T beta, T* C, index_t ldc, const GemmEpilogue<T>& ep) {
  const index_t mr = arch.mr, nr = arch.nr;
  const index_t kc = balanced(K, blk.kc, 1);
  const index_t nc = balanced(N, blk.nc, nr);
  const index_t mc = balanced(M, blk.mc, mr);
  auto a_at = [&](index_t i, index_t p) { return ta == Trans::N ? A + i * lda + p : A + p * lda + i; };
  auto b_at = [&](index_t p, index_t j) { return tb == Trans::N ? B + p * ldb + j : B + j * ldb + p; };
  // op(A) is read in place when its block meets few B panels. A row-major op(A), six
  // row streams a tile, up to N = 256 (16 panels of 16 columns; beyond that the packed
  // single stream is faster: +6% at 512x64x512, +1% at 256^3, -4% at 1024^3 on the
  // AVX2 path; on the AVX-512 path 256x1024x1024 nn lost 1-6% read in place). A
  // transposed op(A) walks down A's columns, one strided stream a tile, up to 16 B
  // panels whatever their width (AVX-512, 64 columns: 256x784x1024 tn 5-10% faster in
  // place; AVX2, 16 columns: 49 panels at N = 784 lost 11%; NOTES.md). A stride of a
  // multiple of 4 KiB would put every k of such a tile in the same L1 set (2048x64x64
  // tn: 72 GFLOP/s in place against 106 packed), so such A is packed.
  auto sets_aliased = [](index_t ld) { return (ld * index_t(sizeof(T))) % 4096 == 0; };
  const bool direct_a = arch.direct_a && (ta == Trans::N ? N <= 256 : ceil_div(N, nr) <= 16 && !sets_aliased(lda));
  // A row-major op(B) is read in place, whole panels of it, by kernels that can
  // (Arch::kernel_b_rows), when this part of C has few rows (Blocking::direct_b_rows:
  // 128x784x256 nn ~5% faster on one thread; 512^3 2-3% slower, so taller parts keep
  // the packed panel, one contiguous stream a tile). B with aliased rows is packed.
  const bool direct_b = arch.kernel_b_rows && tb == Trans::N && M <= blk.direct_b_rows && !sets_aliased(ldb);

  for (index_t jc = 0; jc < N; jc += nc) {
    const index_t ncur = std::min(nc, N - jc);
    for (index_t pc = 0; pc < K; pc += kc) {
      const index_t kcur = std::min(kc, K - pc);
      const bool last = pc + kcur == K;
      TileEpilogue<T> e;
      e.alpha = alpha;
      e.beta = pc == 0 ? beta : T(1);
      if (last) e.act = ep.act;
      const index_t whole = direct_b ? ncur / nr * nr : 0;
      if (whole < ncur) arch.pack_b(tb, b_at(pc, jc + whole), ldb, kcur, ncur - whole, bbuf);
      for (index_t ic = 0; ic < M; ic += mc) {
        const index_t mcur = std::min(mc, M - ic);
        // op(A) read in place, whole tiles of mr rows at a time (rows of A, or columns of
        // a transposed A); only the last, partial tile (if any) is packed, zero-padded.
        const index_t full = direct_a ? mcur / mr * mr : 0;
        arch.pack_a(ta, a_at(ic + full, pc), lda, mcur - full, kcur, abuf);
        for (index_t jr = 0; jr < ncur; jr += nr) {
          e.bias = last && ep.bias ? ep.bias + jc + jr : nullptr;
          T* cp = C + ic * ldc + jc + jr;
          const int n = int(std::min(nr, ncur - jr));
          const bool b_rows = jr < whole;
          const T* bp = b_rows ? b_at(pc, jc + jr) : bbuf + (jr - whole) * kcur;
          auto tile = [&](const T* a, index_t a_rs, index_t a_ks, T* c, int m) {
            if (b_rows)
              arch.kernel_b_rows(kcur, a, a_rs, a_ks, bp, ldb, c, ldc, m, n, e);
            else
              arch.kernel(kcur, a, a_rs, a_ks, bp, c, ldc, m, n, e);
          };
          index_t ir = 0;
          for (; ir < full; ir += mr)
            tile(a_at(ic + ir, pc), ta == Trans::N ? lda : 1, ta == Trans::N ? 1 : lda, cp + ir * ldc, int(mr));
          for (; ir < mcur; ir += mr)
            tile(abuf + (ir - full) * kcur, 1, mr, cp + ir * ldc, int(std::min(mr, mcur - ir)));
        }
      }
    }
  }
}

// Packing buffer sizes (elements): upper bounds of what gemm_part packs for `cols`
// columns or `rows` rows. balanced() never exceeds its (aligned) maximum, and the
// maximum is only reached when there are that many rows: min() of the two is a bound
// that grows with the problem (balanced() itself does not: 510 rows make one block of
// 510, 516 rows two of 258).
template <class T>
index_t b_block_elems(const Arch<T>& arch, const Blocking& blk, index_t cols, index_t K) {
  return balanced(K, blk.kc, 1) * std::min(round_up(cols, arch.nr), blk.nc);
}
template <class T>
index_t a_block_elems(const Arch<T>& arch, const Blocking& blk, index_t rows, index_t K) {
  return balanced(K, blk.kc, 1) * std::min(round_up(rows, arch.mr), blk.mc);
}

// Below this many multiply-adds one thread finishes before a second would start
// (cpu/gemm/NOTES.md: an OpenMP fork/join costs a few microseconds here).
constexpr double kParallelMacs = 48.0 * 48 * 48;

// ---------------------------------------------------------------------------------
// The portable leaves: plain C++ the compiler vectorizes for whatever ISA it targets.
// MR x NR = 4 x 8: 32 accumulators, 8 SSE2 registers of float on baseline x86-64.
// ---------------------------------------------------------------------------------
template <class T, int MR, int NR>
void kernel_portable(index_t kc, const T* a, index_t a_rs, index_t a_ks, const T* b, T* c,
                     index_t ldc, int m, int n, const TileEpilogue<T>& e) {
  T acc[MR][NR] = {};
  for (index_t k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i * a_rs + k * a_ks];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[k * NR + j];
    }
  }
  for (int i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    for (int j = 0; j < n; ++j) {
      T v = e.alpha * acc[i][j];
      if (e.beta != T(0)) v += e.beta * ci[j];
      if (e.bias) v += e.bias[j];
      ci[j] = v;
    }
  }
  if (e.act.kind != Act::none) activate_tile(e.act, c, ldc, m, n);
}

template <class T>
constexpr Arch<T> portable_arch() {
  return {"portable",       4, 8, &pack_a_portable<T, 4>, &pack_b_portable<T, 8>, &kernel_portable<T, 4, 8>, nullptr,
          &activate_tile<T>, &blocking_of<4, 8, T>};
}

constexpr Arch<float> kPortableF32 = portable_arch<float>();
constexpr Arch<double> kPortableF64 = portable_arch<double>();

}  // namespace

// The generic packer (gemm_impl.hpp; B's panels are those of op(B)^T): the portable
// path's, and any path's partial panels.
template <class T, int MR>
void pack_a_portable(Trans ta, const T* A, index_t lda, index_t rows, index_t kc, T* out) {
  for (index_t i0 = 0; i0 < rows; i0 += MR) {
    for (index_t k = 0; k < kc; ++k)
      for (int r = 0; r < MR; ++r) {
        const index_t i = i0 + r;
        out[k * MR + r] = i < rows ? (ta == Trans::N ? A[i * lda + k] : A[k * lda + i]) : T(0);
      }
    out += kc * MR;
  }
}


template void pack_a_portable<float, 4>(Trans, const float*, index_t, index_t, index_t, float*);
template void pack_a_portable<double, 4>(Trans, const double*, index_t, index_t, index_t, double*);
template void pack_a_portable<float, 8>(Trans, const float*, index_t, index_t, index_t, float*);
template void pack_a_portable<double, 8>(Trans, const double*, index_t, index_t, index_t, double*);
template void pack_a_portable<float, 12>(Trans, const float*, index_t, index_t, index_t, float*);

Blocking blocking_for(const CacheSizes& c, int mr, int nr, std::size_t elem) {
  constexpr index_t kL1KcFloor = 256;  // below this, a tile's C traffic is no longer noise
  const std::size_t S = elem;
  // L1: ways of one set's worth of bytes each.
  const std::size_t way1 = c.l1 / std::size_t(c.l1_ways);
  const int a_ways = std::max(1, (c.l1_ways - 1) * mr / (mr + nr));  // (W1 - 1) / (1 + NR / MR)
  const int b_ways = std::max(1, c.l1_ways - 1 - a_ways);
  index_t kc = index_t(std::min(std::size_t(a_ways) * way1 / (S * std::size_t(mr)),
                                std::size_t(b_ways) * way1 / (S * std::size_t(nr))));
  // A block too wide for that (6x64 takes 256 bytes of L1 a k: KC = 160 on a 48 KiB L1)
  // pays for it in C: every KC block loads and stores the C tile again, and at 2048^3
  // that traffic cost 20% (KC 160 -> 384: 164 -> 181 GFLOP/s on one thread; NOTES.md).
  // Such a B micro-panel lives in L2 instead (two of them in an eighth of it, the
  // current and the next), streamed at 256 bytes per 24 FMAs, and KC is what the A
  // micro-panel and that budget allow.
  if (kc < kL1KcFloor) {
    const std::size_t kc_a = std::size_t(c.l1_ways - 1) / 2 * way1 / (S * std::size_t(mr));
    const std::size_t kc_b = c.l2 / 16 / (S * std::size_t(nr));
    kc = std::max<index_t>(kc, index_t(std::min({kc_a, kc_b, std::size_t(512)})));
  }
  kc = std::clamp<index_t>(kc / 8 * 8, 32, 1024);
  // L2: the B micro-panel's ways, then the A block in what is left (at most 3/4).
  const std::size_t way2 = c.l2 / std::size_t(c.l2_ways);
  const std::size_t b_panel = std::size_t(kc) * std::size_t(nr) * S;
  const int b2_ways = int((b_panel + way2 - 1) / way2);
  const int a2_ways = std::max(1, std::min(c.l2_ways - 1 - b2_ways, c.l2_ways * 3 / 4));
  index_t mc = index_t(std::size_t(a2_ways) * way2 / (S * std::size_t(kc)));
  mc = std::clamp<index_t>(mc / mr * mr, mr, 4096 / mr * mr);
  // L3: half of this core's share.
  index_t nc = index_t(c.l3_per_core() / 2 / (S * std::size_t(kc)));
  nc = std::clamp<index_t>(nc / nr * nr, nr, 8192 / nr * nr);
  static const char* env_kc = std::getenv("TG_GEMM_KC");
  static const char* env_mc = std::getenv("TG_GEMM_MC");
  if (env_kc) kc = std::max<index_t>(16, std::atol(env_kc));
  if (env_mc) mc = std::max<index_t>(mr, std::atol(env_mc) / mr * mr);
  Blocking b{mc, kc, nc};
  static const char* env_db = std::getenv("TG_GEMM_DIRECT_B");
  if (env_db) b.direct_b_rows = std::atol(env_db);
  return b;
}

template <class T>
void gemm_blocked(const Arch<T>& arch, Trans ta, Trans tb, index_t M, index_t N, index_t K,
                  T alpha, const T* A, index_t lda, const T* B, index_t ldb, T beta, T* C,
                  index_t ldc, const GemmEpilogue<T>& ep) {
  // A narrow, tall C (N at most a quarter of the narrowest column block the micro-kernel
  // has, M at least two NR tall) would fill a fraction of every tile: 3 columns of the
  // AVX2 path's 16-wide tile use 19% of its FMAs. C^T = op(B)^T op(A)^T puts the narrow
  // side on the MR-row side instead, so it is computed that way into a scratch block
  // (ld M) and written back transposed, beta, bias and the activation applied on the
  // way. The AVX-512 path's 16- and 32-column edge blocks match this at N <= 4 and beat
  // it from N = 5 up (1024x10x256: 60-64 us against 87-95 on one thread).
  const int narrow = arch.narrow_nr > 0 ? arch.narrow_nr : arch.nr;
  if (N * 4 <= narrow && M >= 2 * arch.nr && K > 0 && alpha != T(0)) {
    const auto flip = [](Trans t) { return t == Trans::N ? Trans::T : Trans::N; };
    T* ct = scratch<T>(2, N * M);
    gemm_blocked(arch, flip(tb), flip(ta), N, M, K, alpha, B, ldb, A, lda, T(0), ct, M, {});
    for (index_t i = 0; i < M; ++i) {
      T* c = C + i * ldc;
      for (index_t j = 0; j < N; ++j) {
        T v = ct[j * M + i];
        if (beta != T(0)) v += beta * c[j];  // beta == 0 never reads C
        if (ep.bias) v += ep.bias[j];
        c[j] = v;
      }
    }
    if (ep.act.kind != Act::none) arch.activate(ep.act, C, ldc, M, N);
    return;
  }
  const Blocking& blk = arch.blocking();
  const double macs = double(M) * double(N) * double(K);
  int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (macs < kParallelMacs) threads = 1;
  // Threads take disjoint parts of C, each packing what it needs into its own buffers.
  // Splitting the rows makes every thread pack all of op(B) (K x N); splitting the
  // columns, all of op(A) (M x K): split the dimension whose duplicate is cheaper.
  // Sharing one packed block instead (BLIS's way) costs more on this machine: the
  // buffer's lines change owner every call, and packing 256 x 256 of B took 58 us
  // instead of 5 (cpu/gemm/NOTES.md).
  const bool split_m = M >= N;
  const index_t units = split_m ? ceil_div(M, arch.mr) : ceil_div(N, arch.nr);
  threads = int(std::min<index_t>(threads, units));

  if (threads <= 1) {
    T* bbuf = scratch<T>(1, b_block_elems(arch, blk, N, K));
    T* abuf = scratch<T>(0, a_block_elems(arch, blk, M, K));
    gemm_part(arch, blk, bbuf, abuf, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
    return;
  }
  std::exception_ptr error;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const index_t u0 = units * t / nt, u1 = units * (t + 1) / nt;
    try {
      if (split_m) {
        const index_t i0 = std::min(M, u0 * arch.mr), i1 = std::min(M, u1 * arch.mr);
        if (i1 > i0) {
          T* bbuf = scratch<T>(1, b_block_elems(arch, blk, N, K));
          T* abuf = scratch<T>(0, a_block_elems(arch, blk, i1 - i0, K));
          gemm_part(arch, blk, bbuf, abuf, ta, tb, i1 - i0, N, K, alpha, ta == Trans::N ? A + i0 * lda : A + i0,
                    lda, B, ldb, beta, C + i0 * ldc, ldc, ep);
        }
      } else {
        const index_t j0 = std::min(N, u0 * arch.nr), j1 = std::min(N, u1 * arch.nr);
        if (j1 > j0) {
          GemmEpilogue<T> part = ep;
          if (part.bias) part.bias += j0;
          T* bbuf = scratch<T>(1, b_block_elems(arch, blk, j1 - j0, K));
          T* abuf = scratch<T>(0, a_block_elems(arch, blk, M, K));
          gemm_part(arch, blk, bbuf, abuf, ta, tb, M, j1 - j0, K, alpha, A, lda,
                    tb == Trans::N ? B + j0 : B + j0 * ldb, ldb, beta, C + j0, ldc, part);
        }
      }
    } catch (...) {
#pragma omp critical(tg_gemm_error)
      error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

template void gemm_blocked(const Arch<float>&, Trans, Trans, index_t, index_t, index_t, float,
                           const float*, index_t, const float*, index_t, float, float*, index_t,
                           const GemmEpilogue<float>&);
template void gemm_blocked(const Arch<double>&, Trans, Trans, index_t, index_t, index_t, double,
                           const double*, index_t, const double*, index_t, double, double*,
                           index_t, const GemmEpilogue<double>&);

const Arch<float>& arch_portable_f32() { return kPortableF32; }
const Arch<double>& arch_portable_f64() { return kPortableF64; }

template <class T>
void activate_tile(Activation act, T* c, index_t ldc, index_t rows, index_t cols) {
  if constexpr (std::is_same_v<T, float>)
    act_forward_portable(act, rows, cols, c, ldc, nullptr, c, ldc);
  else
    act_forward_ref<T>(act, rows, cols, c, ldc, nullptr, c, ldc);
}
template void activate_tile(Activation, float*, index_t, index_t, index_t);
template void activate_tile(Activation, double*, index_t, index_t, index_t);

}  // namespace tg::cpu::gemm_impl
