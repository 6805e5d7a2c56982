// Eigen's GEMM on row-major maps with an outer stride (the leading dimension); threads
// through Eigen::setNbThreads (Eigen parallelizes GEMM with OpenMP).
#include <Eigen/Core>

#include "bench/peers/peers.hpp"

namespace tg::peers {

namespace {
using Stride = Eigen::OuterStride<>;
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat, 0, Stride>;
using Map = Eigen::Map<RowMat, 0, Stride>;

template <class AOp, class BOp>
void run(const AOp& a, const BOp& b, float alpha, float beta, Map& c) {
  if (beta == 0.0f) {
    c.noalias() = alpha * (a * b);  // beta == 0 must not read C
  } else {
    c *= beta;
    c.noalias() += alpha * (a * b);
  }
}

void sgemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
           index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc) {
  ConstMap a(A, ta == Trans::N ? M : K, ta == Trans::N ? K : M, Stride(lda));
  ConstMap b(B, tb == Trans::N ? K : N, tb == Trans::N ? N : K, Stride(ldb));
  Map c(C, M, N, Stride(ldc));
  if (ta == Trans::N && tb == Trans::N) run(a, b, alpha, beta, c);
  if (ta == Trans::N && tb == Trans::T) run(a, b.transpose(), alpha, beta, c);
  if (ta == Trans::T && tb == Trans::N) run(a.transpose(), b, alpha, beta, c);
  if (ta == Trans::T && tb == Trans::T) run(a.transpose(), b.transpose(), alpha, beta, c);
}

std::string describe() {
  return "Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) +
         "." + std::to_string(EIGEN_MINOR_VERSION) + " (header-only, OpenMP)";
}
}  // namespace

SgemmPeer eigen_sgemm_peer() {
  return {"eigen", &sgemm, [](int n) { Eigen::setNbThreads(n); }, &describe};
}

}  // namespace tg::peers
