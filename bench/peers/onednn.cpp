// oneDNN's dnnl_sgemm (row-major, like ours). Debian's oneDNN threads with OpenMP, so
// its thread count is OpenMP's.
#include <dnnl.h>
#include <omp.h>

#include "bench/peers/peers.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::peers {

namespace {
void sgemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
           index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc) {
  const dnnl_status_t st = dnnl_sgemm(ta == Trans::N ? 'N' : 'T', tb == Trans::N ? 'N' : 'T', M,
                                      N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  TG_CHECK(st == dnnl_success, "onednn sgemm", "", "dnnl_sgemm returned status ", int(st));
}

std::string describe() {
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch) + " from " + library_of(reinterpret_cast<const void*>(&dnnl_sgemm));
}
}  // namespace

SgemmPeer onednn_sgemm_peer() {
  return {"onednn", &sgemm, [](int n) { omp_set_num_threads(n); }, &describe};
}

}  // namespace tg::peers
