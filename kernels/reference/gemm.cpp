// Reference GEMM: the triple loop, products accumulated in double, the epilogue applied
// in double, each element of C rounded once. O(MNK) and slow on purpose: it is the
// oracle for every faster GEMM, and its own test checks it against closed forms.
#include "tilegrad/kernels/gemm.hpp"

namespace tg {

template <class T>
void gemm_ref(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha, const T* A,
              index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc,
              const GemmEpilogue<T>& ep) {
  // op(A)(i, p) and op(B)(p, j) for row-major storage.
  auto a = [&](index_t i, index_t p) { return ta == Trans::N ? A[i * lda + p] : A[p * lda + i]; };
  auto b = [&](index_t p, index_t j) { return tb == Trans::N ? B[p * ldb + j] : B[j * ldb + p]; };
  const bool product = alpha != T(0) && K > 0;
  for (index_t i = 0; i < M; ++i) {
    for (index_t j = 0; j < N; ++j) {
      double v = 0;
      if (product) {
        double acc = 0;
        for (index_t p = 0; p < K; ++p) acc += double(a(i, p)) * double(b(p, j));
        v = double(alpha) * acc;
      }
      if (beta != T(0)) v += double(beta) * double(C[i * ldc + j]);  // beta == 0: C unread
      if (ep.bias) v += double(ep.bias[j]);
      C[i * ldc + j] = T(act_value(ep.act, v));
    }
  }
}

template void gemm_ref(Trans, Trans, index_t, index_t, index_t, float, const float*, index_t,
                       const float*, index_t, float, float*, index_t, const GemmEpilogue<float>&);
template void gemm_ref(Trans, Trans, index_t, index_t, index_t, double, const double*, index_t,
                       const double*, index_t, double, double*, index_t,
                       const GemmEpilogue<double>&);

}  // namespace tg
