#include "bench/peers/peers.hpp"

#include <dlfcn.h>

namespace tg::peers {

// Each peer's adapter lives in its own translation unit, compiled only when found.
#ifdef TG_PEER_OPENBLAS
SgemmPeer openblas_sgemm_peer();
#endif
#ifdef TG_PEER_BLIS
SgemmPeer blis_sgemm_peer();
#endif
#ifdef TG_PEER_EIGEN
SgemmPeer eigen_sgemm_peer();
#endif
#ifdef TG_PEER_ONEDNN
SgemmPeer onednn_sgemm_peer();
#endif

NormPeer libm_norm_peer();  // libm_norm.cpp (always built)
#ifdef TG_PEER_KOKKOS
SgemmPeer kokkos_sgemm_peer();  // kokkos.cpp
SgemmPeer kokkos_blas_sgemm_peer();
NormPeer kokkos_norm_peer();
#endif
#ifdef TG_PEER_EIGEN
NormPeer eigen_norm_peer();
#endif

std::vector<NormPeer> norm_peers() {
  std::vector<NormPeer> v;
#ifdef TG_PEER_EIGEN
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) v.push_back(eigen_norm_peer());
#endif
  v.push_back(libm_norm_peer());
#ifdef TG_PEER_KOKKOS
  v.push_back(kokkos_norm_peer());
#endif
  return v;
}

std::vector<SgemmPeer> sgemm_peers() {
  std::vector<SgemmPeer> v;
#ifdef TG_PEER_OPENBLAS
  v.push_back(openblas_sgemm_peer());
#endif
#ifdef TG_PEER_BLIS
  v.push_back(blis_sgemm_peer());
#endif
#ifdef TG_PEER_EIGEN
  // Compiled with -mavx2 -mfma (bench/CMakeLists.txt): only where the CPU has them.
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) v.push_back(eigen_sgemm_peer());
#endif
#ifdef TG_PEER_ONEDNN
  v.push_back(onednn_sgemm_peer());
#endif
#ifdef TG_PEER_KOKKOS
  v.push_back(kokkos_sgemm_peer());
  v.push_back(kokkos_blas_sgemm_peer());
#endif
  return v;
}

const SgemmPeer* find_sgemm_peer(const std::string& name) {
  static const std::vector<SgemmPeer> all = sgemm_peers();
  for (const SgemmPeer& p : all)
    if (name == p.name) return &p;
  return nullptr;
}

#ifndef TG_PEER_CUBLAS
double cublas_sgemm_gflops(int /*device*/) { return 0; }
void cublas_sgemm_rowmajor(Trans, Trans, index_t, index_t, index_t, float, const float*, index_t, const float*, index_t,
                           float, float*, index_t) {}
bool cublaslt_linear_relu(index_t, index_t, index_t, const float*, const float*, const float*, float*) { return false; }
void cublas_sgemm_tf32_rowmajor(Trans, Trans, index_t, index_t, index_t, float, const float*, index_t, const float*,
                                index_t, float, float*, index_t) {}
void cublas_gemm_bf16_nt(index_t, index_t, index_t, const std::uint16_t*, index_t, const std::uint16_t*, index_t, float*,
                         index_t) {}
#endif

#ifdef TG_PEER_KOKKOS
namespace kk {
int concurrency();  // kokkos_kernels.cpp
}
#endif

int max_threads(const std::string& name) {
#ifdef TG_PEER_KOKKOS
  if (name == "kokkos" || name == "kokkos_blas") return kk::concurrency();
#endif
  (void)name;
  return 1 << 20;
}

std::string library_of(const void* symbol) {
  Dl_info info{};
  if (dladdr(symbol, &info) == 0 || info.dli_fname == nullptr) return "?";
  return info.dli_fname;
}

}  // namespace tg::peers
