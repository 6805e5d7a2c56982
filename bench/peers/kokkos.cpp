// The Kokkos peer's entries in the peer tables (kokkos_kernels.cpp holds the Kokkos code,
// compiled as C++17 behind a plain-typed interface): "kokkos" (the team-policy SGEMM and
// the portable activations, softmax and layer norm) and "kokkos_blas" (KokkosBlas::gemm).
#include <dlfcn.h>

#include <string>

#include "bench/peers/peers.hpp"

namespace tg::peers {

namespace kk {
std::string devices();
std::string blas_library();
void team_sgemm(int ta, int tb, long M, long N, long K, float alpha, const float* A, long lda, const float* B,
                long ldb, float beta, float* C, long ldc);
void blas_sgemm(int ta, int tb, long M, long N, long K, float alpha, const float* A, long lda, const float* B,
                long ldb, float beta, float* C, long ldc);
void act_fwd(int act, float slope, long n, const float* x, float* y);
void act_bwd(int act, float slope, long n, const float* x, const float* dy, float* dx);
void softmax_fwd(bool log, long rows, long cols, const float* x, float* y);
void softmax_bwd(bool log, long rows, long cols, const float* y, const float* dy, float* dx);
void layer_norm_fwd(long rows, long cols, const float* x, float eps, float* y, float* mean, float* rstd);
void layer_norm_bwd(long rows, long cols, const float* x, const float* dy, const float* mean, const float* rstd,
                    float* dx);
}  // namespace kk

namespace {

// The activation codes of kokkos_kernels.cpp (it cannot see tg::Act).
int code(Act a) {
  switch (a) {
    case Act::none: return 0;
    case Act::relu: return 1;
    case Act::leaky_relu: return 2;
    case Act::gelu_erf: return 3;
    case Act::gelu_tanh: return 4;
    case Act::silu: return 5;
    case Act::sigmoid: return 6;
    case Act::tanh: return 7;
  }
  return 0;
}

void team(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda,
          const float* B, index_t ldb, float beta, float* C, index_t ldc) {
  kk::team_sgemm(ta == Trans::T, tb == Trans::T, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void blas(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda,
          const float* B, index_t ldb, float beta, float* C, index_t ldc) {
  kk::blas_sgemm(ta == Trans::T, tb == Trans::T, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void no_threads(int) {}  // the execution space's own configuration decides
// KokkosBlas::gemm runs whatever `sgemm_` resolved to: give that BLAS the row's count.
void blas_threads(int n) {
  using SetThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
}
std::string describe_team() { return "Kokkos team-policy SGEMM on " + kk::devices(); }
std::string describe_blas() { return "KokkosBlas::gemm on " + kk::devices() + ", sgemm_ from " + kk::blas_library(); }

void act_fwd(Activation a, index_t n, const float* x, float* y) { kk::act_fwd(code(a.kind), float(a.slope), n, x, y); }
void act_bwd(Activation a, index_t n, const float* x, const float* dy, float* dx) {
  kk::act_bwd(code(a.kind), float(a.slope), n, x, dy, dx);
}

}  // namespace

SgemmPeer kokkos_sgemm_peer() { return {"kokkos", &team, &no_threads, &describe_team}; }
SgemmPeer kokkos_blas_sgemm_peer() { return {"kokkos_blas", &blas, &blas_threads, &describe_blas}; }
NormPeer kokkos_norm_peer() {
  return {"kokkos", &act_fwd, &act_bwd, &kk::softmax_fwd, &kk::softmax_bwd, &kk::layer_norm_fwd, &kk::layer_norm_bwd};
}

}  // namespace tg::peers
