// The CPU GEMM's entries: the checked public gemm() and the per-path table entries,
// which route degenerate, tiny and ordinary problems.
#include "tilegrad/cpu/gemm.hpp"

#include "tilegrad/cpu/gemm/gemm_impl.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/kernels/error.hpp"

#include <type_traits>

namespace tg::cpu {

namespace {

using gemm_impl::Arch;

// alpha == 0 or K == 0: no product, C = act(beta C + bias) (beta == 0 never reads C).
template <class T>
void scale_c(const Arch<T>& arch, index_t M, index_t N, T beta, T* C, index_t ldc,
             const GemmEpilogue<T>& ep) {
  for (index_t i = 0; i < M; ++i) {
    T* ci = C + i * ldc;
    for (index_t j = 0; j < N; ++j) ci[j] = (beta == T(0) ? T(0) : beta * ci[j]) + (ep.bias ? ep.bias[j] : T(0));
  }
  if (ep.act.kind != Act::none) arch.activate(ep.act, C, ldc, M, N);
}

template <class T>
void run(const Arch<T>& arch, Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha,
         const T* A, index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc,
         const GemmEpilogue<T>& ep) {
  if (M == 0 || N == 0) return;
  if (alpha == T(0) || K == 0) return scale_c(arch, M, N, beta, C, ldc, ep);
  const double macs = double(M) * double(N) * double(K);
  // A single row or column of C (a GEMV: a width-1 layer, its weight gradient) wastes
  // 15/16 or 5/6 of the packed micro-kernel's lanes: the unpacked loops serve it up to
  // kSkinnyMacs, past which threads and bandwidth matter more.
  if (arch.small && (macs <= gemm_impl::kSmallMacs || ((M == 1 || N == 1) && macs <= gemm_impl::kSkinnyMacs)))
    return arch.small(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
  gemm_impl::gemm_blocked(arch, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}

template <class T>
void checked(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha, const T* A,
             index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc,
             const GemmEpilogue<T>& ep) {
  check_gemm("gemm", ta, tb, M, N, K, double(alpha), A, lda, B, ldb, C, ldc, ep.bias, sizeof(T));
  ops().get<T>().gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}

}  // namespace

#if TG_X86_PATHS
void gemm_avx2(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
               index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc,
               const GemmEpilogue<float>& ep) {
  run(gemm_impl::arch_avx2_f32(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}

void gemm_avx512(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
                 index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc,
                 const GemmEpilogue<float>& ep) {
  run(gemm_impl::arch_avx512_f32(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}
#endif

#if TG_NEON_PATHS
void gemm_neon(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
               index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc,
               const GemmEpilogue<float>& ep) {
  run(gemm_impl::arch_neon_f32(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}
#endif

template <class T>
void gemm_portable(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha, const T* A,
                   index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc,
                   const GemmEpilogue<T>& ep) {
  if constexpr (std::is_same_v<T, float>)
    run(gemm_impl::arch_portable_f32(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
  else
    run(gemm_impl::arch_portable_f64(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}
template void gemm_portable(Trans, Trans, index_t, index_t, index_t, float, const float*, index_t,
                            const float*, index_t, float, float*, index_t, const GemmEpilogue<float>&);
template void gemm_portable(Trans, Trans, index_t, index_t, index_t, double, const double*,
                            index_t, const double*, index_t, double, double*, index_t,
                            const GemmEpilogue<double>&);

void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
          index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc,
          const GemmEpilogue<float>& ep) {
  checked(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}

void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, double alpha, const double* A,
          index_t lda, const double* B, index_t ldb, double beta, double* C, index_t ldc,
          const GemmEpilogue<double>& ep) {
  checked(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}

}  // namespace tg::cpu
