// Kokkos, the performance-portable peer: the same ops written the portable way, against
// the default execution space, so that a Kokkos built with OpenMP or CUDA runs this very
// code multi-threaded or on a GPU (Debian's Kokkos 3.4 has only Serial: one thread).
//   team_sgemm   hierarchical parallelism: a team per 32 x 64 tile of C, tiles of A and
//                B staged in team scratch memory (64-deep k chunks), rows over the
//                team's threads, columns over the vector lanes
//   blas_sgemm   KokkosBlas::gemm, which for float calls the BLAS that the process
//                resolved `sgemm_` to (kokkos_blas_library() says which)
//   activations  parallel_for over the elements
//   softmax, layer norm   a team per row, TeamThreadRange parallel_reduce for the max
//                and the sums
// Compiled as C++17 (Debian's Kokkos 3.4 is C++14-era code): the interface uses plain
// types only; kokkos.cpp wraps it for the peer tables.
#include <KokkosBlas3_gemm.hpp>
#include <Kokkos_Core.hpp>
#include <dlfcn.h>

#include <cmath>
#include <string>

namespace tg::peers::kk {

namespace {

void ensure_initialized() {
  // Kokkos may be initialized once per process; finalized at exit by the runtime's own
  // atexit handling of the host space (Serial needs nothing else).
  if (!Kokkos::is_initialized()) Kokkos::initialize();
}

using Exec = Kokkos::DefaultExecutionSpace;
using Team = Kokkos::TeamPolicy<Exec>::member_type;
using Scratch = Kokkos::View<float**, Kokkos::LayoutRight, Exec::scratch_memory_space,
                             Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
template <class T>
using Unmanaged2 = Kokkos::View<T**, Kokkos::LayoutStride, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;

template <class T>
using Unmanaged2R = Kokkos::View<T**, Kokkos::LayoutRight, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;

constexpr int kTM = 32, kTN = 64, kTK = 64;
constexpr float kK = 0.7978845608028654f, kC = 0.044715f;

KOKKOS_INLINE_FUNCTION float fwd1(int a, float slope, float x) {
  switch (a) {
    case 1: return x < 0 ? 0.0f : x;
    case 2: return x >= 0 ? x : slope * x;
    case 3: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case 4: return 0.5f * x * (1.0f + std::tanh(kK * (x + kC * x * x * x)));
    case 5: return x / (1.0f + std::exp(-x));
    case 6: return 1.0f / (1.0f + std::exp(-x));
    case 7: return std::tanh(x);
    default: return x;
  }
}

KOKKOS_INLINE_FUNCTION float bwd1(int a, float slope, float x) {
  switch (a) {
    case 1: return x > 0 ? 1.0f : 0.0f;
    case 2: return x > 0 ? 1.0f : slope;
    case 3: return 0.5f * (1.0f + std::erf(x * 0.70710678118654752f)) + x * std::exp(-0.5f * x * x) * 0.3989422804f;
    case 4: {
      const float t = std::tanh(kK * (x + kC * x * x * x));
      return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kK * (1.0f + 3.0f * kC * x * x);
    }
    case 5: {
      const float s = 1.0f / (1.0f + std::exp(-x));
      return s * (1.0f + x * (1.0f - s));
    }
    case 6: {
      const float s = 1.0f / (1.0f + std::exp(-x));
      return s * (1.0f - s);
    }
    case 7: {
      const float t = std::tanh(x);
      return 1.0f - t * t;
    }
    default: return 1.0f;
  }
}

}  // namespace

int concurrency() {
  ensure_initialized();
  return Exec().concurrency();
}

std::string devices() {
  ensure_initialized();
  return std::string(TG_KOKKOS_DEVICES) + ", concurrency " + std::to_string(Exec().concurrency());
}

// Row-major C (M x N, ldc) = alpha op(A) op(B) + beta C; ta, tb: 0 = N, 1 = T.
void team_sgemm(int ta, int tb, long M, long N, long K, float alpha, const float* A, long lda, const float* B,
                long ldb, float beta, float* C, long ldc) {
  ensure_initialized();
  if (M <= 0 || N <= 0) return;
  const int tiles_n = int((N + kTN - 1) / kTN), tiles = int((M + kTM - 1) / kTM) * tiles_n;
  const std::size_t bytes = Scratch::shmem_size(kTM, kTK) + Scratch::shmem_size(kTK, kTN) + Scratch::shmem_size(kTM, kTN);
  Kokkos::parallel_for(
      "tg_kokkos_team_sgemm",
      Kokkos::TeamPolicy<Exec>(tiles, Kokkos::AUTO, Kokkos::AUTO).set_scratch_size(0, Kokkos::PerTeam(bytes)),
      KOKKOS_LAMBDA(const Team& t) {
        const long i0 = long(t.league_rank() / tiles_n) * kTM, j0 = long(t.league_rank() % tiles_n) * kTN;
        const int tm = int(M - i0 < kTM ? M - i0 : kTM), tn = int(N - j0 < kTN ? N - j0 : kTN);
        Scratch as(t.team_scratch(0), kTM, kTK), bs(t.team_scratch(0), kTK, kTN), cs(t.team_scratch(0), kTM, kTN);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(t, tm), [&](int i) {
          Kokkos::parallel_for(Kokkos::ThreadVectorRange(t, tn), [&](int j) { cs(i, j) = 0.0f; });
        });
        for (long k0 = 0; k0 < K; k0 += kTK) {
          const int tk = int(K - k0 < kTK ? K - k0 : kTK);
          t.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(t, tm), [&](int i) {
            Kokkos::parallel_for(Kokkos::ThreadVectorRange(t, tk), [&](int k) {
              as(i, k) = ta == 0 ? A[(i0 + i) * lda + k0 + k] : A[(k0 + k) * lda + i0 + i];
            });
          });
          Kokkos::parallel_for(Kokkos::TeamThreadRange(t, tk), [&](int k) {
            Kokkos::parallel_for(Kokkos::ThreadVectorRange(t, tn), [&](int j) {
              bs(k, j) = tb == 0 ? B[(k0 + k) * ldb + j0 + j] : B[(j0 + j) * ldb + k0 + k];
            });
          });
          t.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(t, tm), [&](int i) {
            for (int k = 0; k < tk; ++k) {
              const float a = as(i, k);
              Kokkos::parallel_for(Kokkos::ThreadVectorRange(t, tn), [&](int j) { cs(i, j) += a * bs(k, j); });
            }
          });
        }
        t.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(t, tm), [&](int i) {
          Kokkos::parallel_for(Kokkos::ThreadVectorRange(t, tn), [&](int j) {
            float& c = C[(i0 + i) * ldc + j0 + j];
            c = alpha * cs(i, j) + (beta == 0.0f ? 0.0f : beta * c);
          });
        });
      });
  Kokkos::fence();
}

void blas_sgemm(int ta, int tb, long M, long N, long K, float alpha, const float* A, long lda, const float* B,
                long ldb, float beta, float* C, long ldc) {
  ensure_initialized();
  if (M <= 0 || N <= 0) return;
  // Stored shapes: op(A) is M x K, so A is stored M x K (N) or K x M (T).
  const long ar = ta == 0 ? M : K, ac = ta == 0 ? K : M, br = tb == 0 ? K : N, bc = tb == 0 ? N : K;
  const char* tra = ta == 0 ? "N" : "T";
  const char* trb = tb == 0 ? "N" : "T";
  if (lda == ac && ldb == bc && ldc == N) {
    // Contiguous: LayoutRight views, the layout for which KokkosKernels hands float GEMM
    // to the BLAS (a strided view takes its own, much slower, native kernel).
    Unmanaged2R<const float> a(A, ar, ac), b(B, br, bc);
    Unmanaged2R<float> c(C, M, N);
    KokkosBlas::gemm(tra, trb, alpha, a, b, beta, c);
  } else {
    Unmanaged2<const float> a(A, Kokkos::LayoutStride(std::size_t(ar), std::size_t(lda), std::size_t(ac), 1));
    Unmanaged2<const float> b(B, Kokkos::LayoutStride(std::size_t(br), std::size_t(ldb), std::size_t(bc), 1));
    Unmanaged2<float> c(C, Kokkos::LayoutStride(std::size_t(M), std::size_t(ldc), std::size_t(N), 1));
    KokkosBlas::gemm(tra, trb, alpha, a, b, beta, c);
  }
  Kokkos::fence();
}

// The shared object that served the BLAS call KokkosBlas::gemm makes for float.
std::string blas_library() {
  void* sym = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info info{};
  if (!sym || dladdr(sym, &info) == 0 || !info.dli_fname) return "?";
  return info.dli_fname;
}

void act_fwd(int act, float slope, long n, const float* x, float* y) {
  ensure_initialized();
  Kokkos::parallel_for("tg_kokkos_act_fwd", Kokkos::RangePolicy<Exec>(0, n),
                       KOKKOS_LAMBDA(long i) { y[i] = fwd1(act, slope, x[i]); });
  Kokkos::fence();
}

void act_bwd(int act, float slope, long n, const float* x, const float* dy, float* dx) {
  ensure_initialized();
  Kokkos::parallel_for("tg_kokkos_act_bwd", Kokkos::RangePolicy<Exec>(0, n),
                       KOKKOS_LAMBDA(long i) { dx[i] = dy[i] * bwd1(act, slope, x[i]); });
  Kokkos::fence();
}

void softmax_fwd(bool log, long rows, long cols, const float* x, float* y) {
  ensure_initialized();
  Kokkos::parallel_for(
      "tg_kokkos_softmax_fwd", Kokkos::TeamPolicy<Exec>(int(rows), Kokkos::AUTO, Kokkos::AUTO),
      KOKKOS_LAMBDA(const Team& t) {
        const float* xi = x + long(t.league_rank()) * cols;
        float* yi = y + long(t.league_rank()) * cols;
        float m = -INFINITY, s = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(t, int(cols)), [&](int j, float& acc) { acc = xi[j] > acc ? xi[j] : acc; },
            Kokkos::Max<float>(m));
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(t, int(cols)), [&](int j, float& acc) { acc += std::exp(xi[j] - m); }, s);
        const float c = m + std::log(s);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(t, int(cols)),
                             [&](int j) { yi[j] = log ? xi[j] - c : std::exp(xi[j] - c); });
      });
  Kokkos::fence();
}

void softmax_bwd(bool log, long rows, long cols, const float* y, const float* dy, float* dx) {
  ensure_initialized();
  Kokkos::parallel_for(
      "tg_kokkos_softmax_bwd", Kokkos::TeamPolicy<Exec>(int(rows), Kokkos::AUTO, Kokkos::AUTO),
      KOKKOS_LAMBDA(const Team& t) {
        const long o = long(t.league_rank()) * cols;
        float acc = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(t, int(cols)),
            [&](int j, float& a) { a += log ? dy[o + j] : dy[o + j] * y[o + j]; }, acc);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(t, int(cols)), [&](int j) {
          dx[o + j] = log ? dy[o + j] - std::exp(y[o + j]) * acc : y[o + j] * (dy[o + j] - acc);
        });
      });
  Kokkos::fence();
}

void layer_norm_fwd(long rows, long cols, const float* x, float eps, float* y, float* mean, float* rstd) {
  ensure_initialized();
  Kokkos::parallel_for(
      "tg_kokkos_layer_norm_fwd", Kokkos::TeamPolicy<Exec>(int(rows), Kokkos::AUTO, Kokkos::AUTO),
      KOKKOS_LAMBDA(const Team& t) {
        const long i = t.league_rank(), o = i * cols;
        float s = 0, v = 0;
        Kokkos::parallel_reduce(Kokkos::TeamThreadRange(t, int(cols)), [&](int j, float& a) { a += x[o + j]; }, s);
        const float mu = s / float(cols);
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(t, int(cols)), [&](int j, float& a) { a += (x[o + j] - mu) * (x[o + j] - mu); },
            v);
        const float r = 1.0f / std::sqrt(v / float(cols) + eps);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(t, int(cols)), [&](int j) { y[o + j] = (x[o + j] - mu) * r; });
        Kokkos::single(Kokkos::PerTeam(t), [&] {
          mean[i] = mu;
          rstd[i] = r;
        });
      });
  Kokkos::fence();
}

void layer_norm_bwd(long rows, long cols, const float* x, const float* dy, const float* mean, const float* rstd,
                    float* dx) {
  ensure_initialized();
  Kokkos::parallel_for(
      "tg_kokkos_layer_norm_bwd", Kokkos::TeamPolicy<Exec>(int(rows), Kokkos::AUTO, Kokkos::AUTO),
      KOKKOS_LAMBDA(const Team& t) {
        const long i = t.league_rank(), o = i * cols;
        const float mu = mean[i], r = rstd[i];
        float mg = 0, mgx = 0;
        Kokkos::parallel_reduce(Kokkos::TeamThreadRange(t, int(cols)), [&](int j, float& a) { a += dy[o + j]; }, mg);
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(t, int(cols)), [&](int j, float& a) { a += dy[o + j] * (x[o + j] - mu) * r; },
            mgx);
        mg /= float(cols);
        mgx /= float(cols);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(t, int(cols)), [&](int j) {
          dx[o + j] = r * (dy[o + j] - mg - (x[o + j] - mu) * r * mgx);
        });
      });
  Kokkos::fence();
}

}  // namespace tg::peers::kk
