// OpenBLAS through its CBLAS interface, linked by its own name (libopenblas.so), with
// the header that sits beside it. BLIS exports cblas_sgemm too: describe() names the
// library that actually served the symbol, and a test checks it is OpenBLAS.
#include <cblas.h>

#include "bench/peers/peers.hpp"

namespace tg::peers {

namespace {
CBLAS_TRANSPOSE cblas_trans(Trans t) { return t == Trans::N ? CblasNoTrans : CblasTrans; }

void sgemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
           index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc) {
  cblas_sgemm(CblasRowMajor, cblas_trans(ta), cblas_trans(tb), blasint(M), blasint(N),
              blasint(K), alpha, A, blasint(lda), B, blasint(ldb), beta, C, blasint(ldc));
}

std::string describe() {
  return std::string(openblas_get_config()) + " from " +
         library_of(reinterpret_cast<const void*>(&cblas_sgemm));
}
}  // namespace

SgemmPeer openblas_sgemm_peer() {
  return {"openblas", &sgemm, [](int n) { openblas_set_num_threads(n); }, &describe};
}

}  // namespace tg::peers
