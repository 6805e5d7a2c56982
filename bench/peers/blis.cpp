// BLIS through its typed API (bli_sgemm with row and column strides), which no other
// peer exports, so the call cannot be served by another BLAS.
#include <blis.h>

#include "bench/peers/peers.hpp"

namespace tg::peers {

namespace {
trans_t blis_trans(Trans t) { return t == Trans::N ? BLIS_NO_TRANSPOSE : BLIS_TRANSPOSE; }

void sgemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
           index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc) {
  // Row-major storage: row stride ld, column stride 1; BLIS applies op() to it.
  bli_sgemm(blis_trans(ta), blis_trans(tb), dim_t(M), dim_t(N), dim_t(K), &alpha,
            const_cast<float*>(A), inc_t(lda), 1, const_cast<float*>(B), inc_t(ldb), 1, &beta,
            C, inc_t(ldc), 1);
}

std::string describe() {
  return std::string("BLIS ") + bli_info_get_version_str() + " from " +
         library_of(reinterpret_cast<const void*>(&bli_sgemm));
}
}  // namespace

SgemmPeer blis_sgemm_peer() {
  return {"blis", &sgemm, [](int n) { bli_thread_set_num_threads(n); }, &describe};
}

}  // namespace tg::peers
