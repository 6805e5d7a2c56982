// The GEMM launches and entries (cuda::gemm, gemm_tf32, gemm_bf16, gemm_f16): argument
// checks, the choice of kernel and configuration, split-K. The kernels, and how they
// work, are in cuda/gemm.cuh.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/gemm.cuh"
#include "tilegrad/cuda/gemm.hpp"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/cuda/gemm_wgmma.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::cuda {

namespace {

using namespace gemmk;

template <bool kTA, bool kTB, bool kWarp, bool kAsync>
void launch(dim3 grid, const Args& a, bool vec) {
  sgemm_tiled<kBM, kTA, kTB, kWarp, kAsync><<<grid, kThreads, 0, detail::stream()>>>(a, vec);
}
template <bool kTA, bool kTB>
void launch_small(dim3 grid, const Args& a, bool vec) {
  sgemm_tiled<kBS, kTA, kTB, false, false><<<grid, kThreadsSmall, 0, detail::stream()>>>(a, vec);
}

using Launch = void (*)(dim3, const Args&, bool);

// The kernel for a configuration and transposes. cp.async needs a natural operand (A
// transposed or B not) and 16-byte aligned rows (vec); otherwise the warp-tiled kernel
// runs without it.
Launch pick(GemmKernel kernel, bool ta, bool tb, bool vec) {
  if (kernel == GemmKernel::tile64) {
    if (!ta) return tb ? &launch_small<false, true> : &launch_small<false, false>;
    return tb ? &launch_small<true, true> : &launch_small<true, false>;
  }
  if (kernel == GemmKernel::tile128_warp_async && vec && (ta || !tb)) {
    if (!ta) return &launch<false, false, true, true>;
    return tb ? &launch<true, true, true, true> : &launch<true, false, true, true>;
  }
  if (kernel != GemmKernel::tile128) {
    if (!ta) return tb ? &launch<false, true, true, false> : &launch<false, false, true, false>;
    return tb ? &launch<true, true, true, false> : &launch<true, false, true, false>;
  }
  if (!ta) return tb ? &launch<false, true, false, false> : &launch<false, false, false, false>;
  return tb ? &launch<true, true, false, false> : &launch<true, false, false, false>;
}

// TG_CUDA_GEMM_KERNEL (0-3: one configuration for every shape, for re-tuning on a GPU),
// or auto_select when unset.
GemmKernel env_kernel() {
  static const GemmKernel k = [] {
    const char* v = std::getenv("TG_CUDA_GEMM_KERNEL");
    if (v && v[0] >= '0' && v[0] < '0' + kGemmKernels && v[1] == '\0') return GemmKernel(v[0] - '0');
    return GemmKernel::auto_select;
  }();
  return k;
}

// The checks every FP32 entry runs (check_gemm, and sizes that fit the kernels' ints),
// and the call as the kernels see it.
Args checked_args(const char* op, Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A,
                  index_t lda, const float* B, index_t ldb, float beta, float* C, index_t ldc,
                  const GemmEpilogue<float>& ep) {
  check_gemm(op, ta, tb, M, N, K, double(alpha), A, lda, B, ldb, C, ldc, ep.bias, sizeof(float));
  TG_CHECK(M < (index_t(1) << 31) && N < (index_t(1) << 31) && K < (index_t(1) << 31) && lda < (index_t(1) << 31) &&
               ldb < (index_t(1) << 31) && ldc < (index_t(1) << 31),
           op, "M", "expected sizes and leading dimensions below 2^31");
  return Args{int(M), int(N), int(K), alpha, beta, A, int(lda), B, int(ldb), C, int(ldc), ep.bias, ep.act.kind,
              float(ep.act.slope), 0};
}

// Split-K when the tiles of C cannot fill the GPU and K is long (a weight gradient:
// 256 x 784 over a batch of 8192 is 14 tiles for 132 SMs): slices of K in their own
// blocks, about two per SM in all, each at least 512 deep. K >= 1024: 1024^3 is 64 tiles,
// half the H200's SMs idle, 0.53x cuBLAS measured in step 1; two slices fill them for
// ~3 us of partial sums: predicted ~0.9x, cuda/notes/gemm.md. The slices before rounding.
index_t split_slices(index_t tiles, index_t K, index_t sms) {
  if (tiles >= sms || K < 1024) return 1;
  return std::min<index_t>((2 * sms + tiles - 1) / tiles, K / 512);
}

dim3 tile_grid(index_t M, index_t N, index_t tile = kBM) {
  return dim3(unsigned((N + tile - 1) / tile), unsigned((M + tile - 1) / tile));
}

// gemm_kernel_for on a device of `sms` SMs.
GemmKernel kernel_for(index_t M, index_t N, index_t K, index_t sms) {
  if (const GemmKernel forced = env_kernel(); forced != GemmKernel::auto_select) return forced;
  const dim3 grid = tile_grid(M, N);
  const index_t tiles = index_t(grid.x) * grid.y;
  return 2 * tiles * split_slices(tiles, K, sms) < sms ? GemmKernel::tile64 : GemmKernel::tile128;
}

}  // namespace

namespace {
// auto's choice for the tensor-core GEMMs: the environment variable `name` (wgmma,
// mma_sync_ring), else mma.sync (cuda/gemm.hpp). Each call site reads its variable once.
HalfGemmPath path_from_env(const char* name) {
  const char* v = std::getenv(name);
  const std::string s = v ? v : "";
  return s == "wgmma"           ? HalfGemmPath::wgmma
         : s == "wgmma_128x128" ? HalfGemmPath::wgmma_128x128
         : s == "wgmma_128x256" ? HalfGemmPath::wgmma_128x256
         : s == "wgmma_cluster" ? HalfGemmPath::wgmma_cluster
         : s == "mma_sync_ring" ? HalfGemmPath::mma_sync_ring
                                : HalfGemmPath::mma_sync;
}
bool is_wgmma(HalfGemmPath p) {
  return p == HalfGemmPath::wgmma || p == HalfGemmPath::wgmma_128x128 || p == HalfGemmPath::wgmma_128x256 ||
         p == HalfGemmPath::wgmma_cluster;
}
detail::WgmmaTile wgmma_tile(HalfGemmPath p) {
  return p == HalfGemmPath::wgmma_128x128   ? detail::WgmmaTile::t128x128
         : p == HalfGemmPath::wgmma_128x256 ? detail::WgmmaTile::ws128x256
         : p == HalfGemmPath::wgmma_cluster ? detail::WgmmaTile::ws128x256_cluster2
                                            : detail::WgmmaTile::ws128x256_persistent;
}
}  // namespace

void gemm_tf32(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda,
               const float* B, index_t ldb, float beta, float* C, index_t ldc, const GemmEpilogue<float>& ep,
               HalfGemmPath path) {
  const char* op = "cuda::gemm_tf32";
  const Args a = checked_args(op, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
  TG_CHECK(path != HalfGemmPath::mma_sync_ring, op, "path", "the ring configuration exists for the 16-bit GEMMs only");
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.0f) {  // no product: the FP32 path's C = act(beta C + bias)
    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
    return;
  }
  // The Hopper kernel takes A and B along k (a Linear layer's forward: N, T) when asked,
  // or for auto when TG_CUDA_TF32_GEMM=wgmma.
  const bool explicit_wgmma = is_wgmma(path);  // asked for: an error where it does not apply
  if (path == HalfGemmPath::auto_select) {
    static const HalfGemmPath env = path_from_env("TG_CUDA_TF32_GEMM");
    path = env == HalfGemmPath::mma_sync_ring ? HalfGemmPath::mma_sync : env;  // no ring for TF32
  }
  if (is_wgmma(path)) {
    if (ta == Trans::N && tb == Trans::T &&
        detail::gemm_wgmma(detail::WgmmaType::tf32, wgmma_tile(path), int(M), int(N), int(K), alpha, A, int(lda), B,
                           int(ldb), beta, C, int(ldc), ep.bias, ep.act.kind, float(ep.act.slope)))
      return;
    TG_CHECK(!explicit_wgmma, op, "path",
             "the wgmma path needs A and B along k (ta N, tb T), a compute capability 9.0 device running its sm_90a "
             "binary, A and B 16-byte aligned and lda, ldb multiples of 4; got lda ",
             lda, ", ldb ", ldb, detail::wgmma_available() ? "" : " (no such device here)");
  }
  const bool vec = lda % 4 == 0 && ldb % 4 == 0 && detail::aligned16(A) && detail::aligned16(B);
  const dim3 grid = tile_grid(M, N);
  const cudaStream_t s = detail::stream();
  if (ta == Trans::N) {
    if (tb == Trans::N) sgemm_tf32_128x128<false, false><<<grid, kThreads, 0, s>>>(a, vec);
    else sgemm_tf32_128x128<false, true><<<grid, kThreads, 0, s>>>(a, vec);
  } else {
    if (tb == Trans::N) sgemm_tf32_128x128<true, false><<<grid, kThreads, 0, s>>>(a, vec);
    else sgemm_tf32_128x128<true, true><<<grid, kThreads, 0, s>>>(a, vec);
  }
  TG_CUDA_LAUNCHED();
}

namespace {

void gemm_half(bool f16, index_t M, index_t N, index_t K, float alpha, const std::uint16_t* A, index_t lda,
               const std::uint16_t* B, index_t ldb, float beta, float* C, index_t ldc, const GemmEpilogue<float>& ep,
               HalfGemmPath path) {
  const char* op = f16 ? "cuda::gemm_f16" : "cuda::gemm_bf16";
  TG_CHECK(M >= 0 && N >= 0 && K >= 0, op, "M", "expected sizes >= 0, got ", M, " x ", N, " x ", K);
  TG_CHECK(M < (index_t(1) << 31) && N < (index_t(1) << 31) && K < (index_t(1) << 31), op, "M",
           "expected sizes below 2^31");
  TG_CHECK(lda >= std::max<index_t>(K, 1) && ldb >= std::max<index_t>(K, 1) && ldc >= std::max<index_t>(N, 1) &&
               lda < (index_t(1) << 31) && ldb < (index_t(1) << 31) && ldc < (index_t(1) << 31),
           op, "lda", "expected lda, ldb >= K and ldc >= N (row-major A M x K, B N x K, C M x N), got ", lda, ", ",
           ldb, ", ", ldc);
  if (M == 0 || N == 0) return;
  TG_CHECK(C != nullptr && (K == 0 || (A != nullptr && B != nullptr)), op, "C", "expected device pointers");
  const ArgsBf16 a{int(M), int(N), int(K), alpha, beta, A, int(lda), B, int(ldb), C, int(ldc), ep.bias, ep.act.kind,
                   float(ep.act.slope), 0};
  const bool explicit_wgmma = is_wgmma(path);
  if (path == HalfGemmPath::auto_select) {
    static const HalfGemmPath env = path_from_env("TG_CUDA_HALF_GEMM");
    path = env;
  }
  if (is_wgmma(path)) {
    if (detail::gemm_wgmma(f16 ? detail::WgmmaType::f16 : detail::WgmmaType::bf16, wgmma_tile(path), int(M), int(N),
                           int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc), ep.bias, ep.act.kind,
                           float(ep.act.slope)))
      return;
    TG_CHECK(!explicit_wgmma, op, "path",
             "the wgmma path needs a compute capability 9.0 device running its sm_90a binary, A and B 16-byte "
             "aligned, lda and ldb multiples of 8 and K > 0; got lda ",
             lda, ", ldb ", ldb, ", K ", K, detail::wgmma_available() ? "" : " (no such device here)");
  }
  const bool vec = lda % 8 == 0 && ldb % 8 == 0 && detail::aligned16(A) && detail::aligned16(B);
  if (path == HalfGemmPath::mma_sync_ring) {
    void (*kernel)(ArgsBf16, bool) = f16 ? &gemm_half_ring_128x128<true> : &gemm_half_ring_128x128<false>;
    detail::allow_shared(reinterpret_cast<const void*>(kernel), kRingBytes);
    kernel<<<tile_grid(M, N), kThreads, kRingBytes, detail::stream()>>>(a, vec);
    TG_CUDA_LAUNCHED();
    return;
  }
  if (f16) gemm_half_128x128<true><<<tile_grid(M, N), kThreads, 0, detail::stream()>>>(a, vec);
  else gemm_half_128x128<false><<<tile_grid(M, N), kThreads, 0, detail::stream()>>>(a, vec);
  TG_CUDA_LAUNCHED();
}
}  // namespace

void gemm_bf16(index_t M, index_t N, index_t K, float alpha, const std::uint16_t* A, index_t lda,
               const std::uint16_t* B, index_t ldb, float beta, float* C, index_t ldc, const GemmEpilogue<float>& ep,
               HalfGemmPath path) {
  gemm_half(false, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, path);
}

void gemm_f16(index_t M, index_t N, index_t K, float alpha, const std::uint16_t* A, index_t lda,
              const std::uint16_t* B, index_t ldb, float beta, float* C, index_t ldc, const GemmEpilogue<float>& ep,
              HalfGemmPath path) {
  gemm_half(true, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, path);
}

namespace {

// The ring kernel for op(A) op(B) in the layouts the (N, T) kernels do not take.
void gemm_half_transposed(bool f16, Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha,
                          const std::uint16_t* A, index_t lda, const std::uint16_t* B, index_t ldb, float beta, float* C,
                          index_t ldc, const GemmEpilogue<float>& ep) {
  const char* op = f16 ? "cuda::gemm_f16" : "cuda::gemm_bf16";
  check_gemm(op, ta, tb, M, N, K, double(alpha), A, lda, B, ldb, C, ldc, ep.bias, sizeof(std::uint16_t));
  TG_CHECK(M < (index_t(1) << 31) && N < (index_t(1) << 31) && K < (index_t(1) << 31) && lda < (index_t(1) << 31) &&
               ldb < (index_t(1) << 31) && ldc < (index_t(1) << 31),
           op, "M", "expected sizes and leading dimensions below 2^31");
  if (M == 0 || N == 0) return;
  const ArgsBf16 a{int(M), int(N), int(K), alpha, beta, A, int(lda), B, int(ldb), C, int(ldc), ep.bias, ep.act.kind,
                   float(ep.act.slope), 0};
  const bool vec = lda % 8 == 0 && ldb % 8 == 0 && detail::aligned16(A) && detail::aligned16(B);
  using Kernel = void (*)(ArgsBf16, bool);
  // [f16][A stored K x M][B stored K x N]
  const Kernel kernels[2][2][2] = {
      {{&gemm_half_ring_128x128<false, false, false>, &gemm_half_ring_128x128<false, false, true>},
       {&gemm_half_ring_128x128<false, true, false>, &gemm_half_ring_128x128<false, true, true>}},
      {{&gemm_half_ring_128x128<true, false, false>, &gemm_half_ring_128x128<true, false, true>},
       {&gemm_half_ring_128x128<true, true, false>, &gemm_half_ring_128x128<true, true, true>}}};
  const Kernel kernel = kernels[f16][ta == Trans::T][tb == Trans::N];
  detail::allow_shared(reinterpret_cast<const void*>(kernel), kRingBytes);
  kernel<<<tile_grid(M, N), kThreads, kRingBytes, detail::stream()>>>(a, vec);
  TG_CUDA_LAUNCHED();
}

}  // namespace

void gemm_bf16(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const std::uint16_t* A, index_t lda,
               const std::uint16_t* B, index_t ldb, float beta, float* C, index_t ldc, const GemmEpilogue<float>& ep) {
  if (ta == Trans::N && tb == Trans::T) return gemm_bf16(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
  gemm_half_transposed(false, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}
void gemm_f16(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const std::uint16_t* A, index_t lda,
              const std::uint16_t* B, index_t ldb, float beta, float* C, index_t ldc, const GemmEpilogue<float>& ep) {
  if (ta == Trans::N && tb == Trans::T) return gemm_f16(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
  gemm_half_transposed(true, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}

bool half_gemm_wgmma_available() { return device_count() > 0 && detail::wgmma_available(); }

const char* gemm_kernel_name(GemmKernel kernel) {
  switch (kernel) {
    case GemmKernel::tile128: return "tile128";
    case GemmKernel::tile128_warp: return "tile128_warp";
    case GemmKernel::tile128_warp_async: return "tile128_warp_async";
    case GemmKernel::tile64: return "tile64";
    case GemmKernel::auto_select: return "auto";
  }
  return "?";
}

// auto's table (cuda/notes/gemm.md, "Configurations by shape"): tile128 (step 1, measured 0.81x
// cuBLAS on large squares) wherever its blocks, split-K's slices counted, cover at least
// half the SMs; tile64 where they do not (the MLP step at batch 1024: its forward is 16
// tiles of 128 for 132 SMs, 64 of 64; its weight gradient 14 x 2 slices, 52 x 2).
GemmKernel gemm_kernel_for(index_t M, index_t N, index_t K) { return kernel_for(M, N, K, detail::sm_count()); }

void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda,
          const float* B, index_t ldb, float beta, float* C, index_t ldc, const GemmEpilogue<float>& ep) {
  gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, GemmKernel::auto_select);
}

void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda,
          const float* B, index_t ldb, float beta, float* C, index_t ldc, const GemmEpilogue<float>& ep,
          GemmKernel config) {
  const Args a = checked_args("cuda::gemm", ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.0f) {
    const std::int64_t n = std::int64_t(M) * N;
    scale_c<<<unsigned((n + 255) / 256), 256, 0, detail::stream()>>>(a);
    TG_CUDA_LAUNCHED();
    return;
  }
  // 128-bit loads and stores need every operand's rows on 16-byte boundaries.
  const bool aligned = lda % 4 == 0 && ldb % 4 == 0 && detail::aligned16(A) && detail::aligned16(B);
  const index_t sms = detail::sm_count();
  const GemmKernel chosen = config == GemmKernel::auto_select ? kernel_for(M, N, K, sms) : config;
  dim3 grid = tile_grid(M, N, chosen == GemmKernel::tile64 ? kBS : kBM);
  // Split-K (split_slices): partial products of the slices to a workspace, then one pass
  // that adds them in order.
  int slices = int(split_slices(index_t(grid.x) * grid.y, K, sms));
  const bool tA = ta == Trans::T, tB = tb == Trans::T;
  if (slices > 1) {
    Args part = a;
    part.kslice = int((K + slices - 1) / slices + kBK - 1) / kBK * kBK;
    slices = int((K + part.kslice - 1) / part.kslice);
    // From the caching allocator, on this stream: freed when the call returns, reused by
    // the next work of the same stream only, so no other stream can overwrite it early.
    Buffer workspace(std::size_t(slices) * std::size_t(M) * std::size_t(N) * sizeof(float),
                     Device::cuda(detail::current_device()));
    float* ws = workspace.as<float>();
    part.C = ws, part.ldc = int(N), part.beta = 0.0f, part.bias = nullptr, part.act = Act::none;
    grid.z = unsigned(slices);
    const bool vec = aligned && N % 4 == 0;
    pick(chosen, tA, tB, vec)(grid, part, vec);
    TG_CUDA_LAUNCHED();
    const std::int64_t n = std::int64_t(M) * N;
    reduce_slices<<<unsigned((n + 255) / 256), 256, 0, detail::stream()>>>(a, ws, slices);
  } else {
    const bool vec = aligned && ldc % 4 == 0 && detail::aligned16(C);
    pick(chosen, tA, tB, vec)(grid, a, vec);
  }
  TG_CUDA_LAUNCHED();
}

}  // namespace tg::cuda
