// SGEMM from scratch, step 1 (cuda/NOTES.md): 128 x 128 block tiles, 8-deep k steps,
// 256 threads each holding an 8 x 8 accumulator tile in registers (2-D register
// blocking), the A tile stored k-major in shared memory (transposed on the way in) so
// that a thread's 8 rows are two 128-bit shared loads, 128-bit global loads when the
// operand's rows are 16-byte aligned, and the next k step's tiles fetched into registers
// while the current one is multiplied (register double buffering, two shared buffers,
// one barrier per step). All four transposes are handled by the tile loaders; the
// epilogue applies alpha, beta, the bias and the activation before the store. When the
// tiles of C are too few to fill the GPU and K is long, K is split over blocks and a
// second pass adds the slices.
//
// Thread (ty, tx) of the 16 x 16 grid owns rows {4 ty + i, 64 + 4 ty + i} and columns
// {4 tx + j, 64 + 4 tx + j} of the block tile: the B fragment reads of a warp's
// threads are consecutive 16-byte words (no bank conflicts), the A fragment reads are
// broadcasts.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/act.cuh"
#include "cuda/check.cuh"
#include "cuda/gemm.hpp"
#include "kernels/buffer.hpp"
#include "kernels/error.hpp"

namespace tg::cuda {

namespace {

constexpr int kBM = 128, kBN = 128, kBK = 8, kThreads = 256;

__device__ __forceinline__ float activate(Act kind, float slope, float x) { return act_forward1(kind, slope, x); }

struct Args {
  int M, N, K;
  float alpha, beta;
  const float* A;
  int lda;
  const float* B;
  int ldb;
  float* C;
  int ldc;
  const float* bias;
  Act act;
  float slope;
  int kslice;  // split-K: slice z covers k in [z kslice, (z + 1) kslice) and writes
               // alpha op(A) op(B) of its slice to C + z M ldc (beta, bias, act later)
};

// Loads this thread's share of the A tile (rows m0.., k0..) and B tile into registers:
// four floats each. kVec: 128-bit loads (rows 16-byte aligned; used for whole tiles).
template <bool kTA, bool kTB>
struct Loader {
  // A: N: 128 rows x 8 k, thread t takes row t / 2, k (t % 2) * 4 .. +3 (along k);
  //    T: stored K x M, thread t takes k t / 32, rows (t % 32) * 4 .. +3 (along m).
  // B: N: stored K x N, thread t takes k t / 32, cols (t % 32) * 4 .. +3;
  //    T: stored N x K, thread t takes col t / 2, k (t % 2) * 4 .. +3.
  __device__ static void load(const Args& a, int m0, int n0, int k0, bool whole, float (&ra)[4], float (&rb)[4]) {
    const int t = threadIdx.x;
    if constexpr (!kTA) {
      const int r = m0 + t / 2, k = k0 + (t % 2) * 4;
      const float* p = a.A + std::int64_t(r) * a.lda + k;
      if (whole) {
        const float4 v = *reinterpret_cast<const float4*>(p);
        ra[0] = v.x, ra[1] = v.y, ra[2] = v.z, ra[3] = v.w;
      } else {
        for (int i = 0; i < 4; ++i) ra[i] = (r < a.M && k + i < a.K) ? p[i] : 0.0f;
      }
    } else {
      const int k = k0 + t / 32, r = m0 + (t % 32) * 4;
      const float* p = a.A + std::int64_t(k) * a.lda + r;
      if (whole) {
        const float4 v = *reinterpret_cast<const float4*>(p);
        ra[0] = v.x, ra[1] = v.y, ra[2] = v.z, ra[3] = v.w;
      } else {
        for (int i = 0; i < 4; ++i) ra[i] = (k < a.K && r + i < a.M) ? p[i] : 0.0f;
      }
    }
    if constexpr (!kTB) {
      const int k = k0 + t / 32, c = n0 + (t % 32) * 4;
      const float* p = a.B + std::int64_t(k) * a.ldb + c;
      if (whole) {
        const float4 v = *reinterpret_cast<const float4*>(p);
        rb[0] = v.x, rb[1] = v.y, rb[2] = v.z, rb[3] = v.w;
      } else {
        for (int i = 0; i < 4; ++i) rb[i] = (k < a.K && c + i < a.N) ? p[i] : 0.0f;
      }
    } else {
      const int c = n0 + t / 2, k = k0 + (t % 2) * 4;
      const float* p = a.B + std::int64_t(c) * a.ldb + k;
      if (whole) {
        const float4 v = *reinterpret_cast<const float4*>(p);
        rb[0] = v.x, rb[1] = v.y, rb[2] = v.z, rb[3] = v.w;
      } else {
        for (int i = 0; i < 4; ++i) rb[i] = (c < a.N && k + i < a.K) ? p[i] : 0.0f;
      }
    }
  }
  // Into shared memory, both tiles k-major: as[k][m], bs[k][n].
  __device__ static void store(const float (&ra)[4], const float (&rb)[4], float (*as)[kBM], float (*bs)[kBN]) {
    const int t = threadIdx.x;
    if constexpr (!kTA) {
      for (int i = 0; i < 4; ++i) as[(t % 2) * 4 + i][t / 2] = ra[i];
    } else {
      *reinterpret_cast<float4*>(&as[t / 32][(t % 32) * 4]) = make_float4(ra[0], ra[1], ra[2], ra[3]);
    }
    if constexpr (!kTB) {
      *reinterpret_cast<float4*>(&bs[t / 32][(t % 32) * 4]) = make_float4(rb[0], rb[1], rb[2], rb[3]);
    } else {
      for (int i = 0; i < 4; ++i) bs[(t % 2) * 4 + i][t / 2] = rb[i];
    }
  }
};

template <bool kTA, bool kTB>
__global__ void __launch_bounds__(kThreads, 2) sgemm_128x128(Args a, bool vec) {
  if (a.kslice > 0) {  // this block's slice of K as a GEMM of its own
    const int kb = blockIdx.z * a.kslice;
    a.A += kTA ? std::int64_t(kb) * a.lda : kb;
    a.B += kTB ? kb : std::int64_t(kb) * a.ldb;
    a.K = min(a.kslice, a.K - kb);
    a.C += std::int64_t(blockIdx.z) * a.M * a.ldc;
  }
  __shared__ __align__(16) float as[2][kBK][kBM];
  __shared__ __align__(16) float bs[2][kBK][kBN];
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  using L = Loader<kTA, kTB>;
  // Whole tiles take the vector path: in bounds in m, n and k, and aligned rows.
  const bool mn_whole = vec && m0 + kBM <= a.M && n0 + kBN <= a.N;
  float acc[8][8] = {};
  float ra[4], rb[4];
  L::load(a, m0, n0, 0, mn_whole && kBK <= a.K, ra, rb);
  L::store(ra, rb, as[0], bs[0]);
  __syncthreads();
  int buf = 0;
  for (int k0 = 0; k0 < a.K; k0 += kBK) {
    const bool more = k0 + kBK < a.K;
    if (more) L::load(a, m0, n0, k0 + kBK, mn_whole && k0 + 2 * kBK <= a.K, ra, rb);
#pragma unroll
    for (int k = 0; k < kBK; ++k) {
      const float4 a0 = *reinterpret_cast<const float4*>(&as[buf][k][ty * 4]);
      const float4 a1 = *reinterpret_cast<const float4*>(&as[buf][k][64 + ty * 4]);
      const float4 b0 = *reinterpret_cast<const float4*>(&bs[buf][k][tx * 4]);
      const float4 b1 = *reinterpret_cast<const float4*>(&bs[buf][k][64 + tx * 4]);
      const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    if (more) {
      L::store(ra, rb, as[buf ^ 1], bs[buf ^ 1]);
      __syncthreads();
      buf ^= 1;
    }
  }
  // Epilogue: C = act(alpha acc + beta C + bias), row by row, 4 columns at a time.
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int r = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
    if (r >= a.M) continue;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int c = n0 + h * 64 + tx * 4;
      float* out = a.C + std::int64_t(r) * a.ldc + c;
      float v[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) v[j] = a.alpha * acc[i][h * 4 + j];
      if (vec && c + 4 <= a.N) {
        if (a.beta != 0.0f) {
          const float4 old = *reinterpret_cast<const float4*>(out);
          v[0] += a.beta * old.x, v[1] += a.beta * old.y, v[2] += a.beta * old.z, v[3] += a.beta * old.w;
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) v[j] = activate(a.act, a.slope, v[j] + (a.bias ? a.bias[c + j] : 0.0f));
        *reinterpret_cast<float4*>(out) = make_float4(v[0], v[1], v[2], v[3]);
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (c + j < a.N) {
            float x = v[j] + (a.beta != 0.0f ? a.beta * out[j] : 0.0f) + (a.bias ? a.bias[c + j] : 0.0f);
            out[j] = activate(a.act, a.slope, x);
          }
      }
    }
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15) == 0; }

// Split-K's second pass: C = act(sum of the slices + beta C + bias), the slices added in
// order (the same bits every run).
__global__ void reduce_slices(Args a, const float* ws, int slices) {
  const std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
  if (i >= std::int64_t(a.M) * a.N) return;
  const int r = int(i / a.N), c = int(i % a.N);
  float x = 0;
  for (int z = 0; z < slices; ++z) x += ws[std::int64_t(z) * a.M * a.N + i];
  float* out = a.C + std::int64_t(r) * a.ldc + c;
  x += (a.beta != 0.0f ? a.beta * *out : 0.0f) + (a.bias ? a.bias[c] : 0.0f);
  *out = activate(a.act, a.slope, x);
}

int sm_count() {
  static int count[64] = {};
  int d = 0;
  TG_CUDA_CHECK(cudaGetDevice(&d));
  if (!count[d & 63]) TG_CUDA_CHECK(cudaDeviceGetAttribute(&count[d & 63], cudaDevAttrMultiProcessorCount, d));
  return count[d & 63];
}

template <bool kTA, bool kTB>
void launch(dim3 grid, const Args& a, bool vec) {
  sgemm_128x128<kTA, kTB><<<grid, kThreads, 0, detail::stream()>>>(a, vec);
}

// K == 0 or alpha == 0: C = act(beta C + bias), no product.
__global__ void scale_c(Args a) {
  const std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
  if (i >= std::int64_t(a.M) * a.N) return;
  const int r = int(i / a.N), c = int(i % a.N);
  float* out = a.C + std::int64_t(r) * a.ldc + c;
  const float x = (a.beta != 0.0f ? a.beta * *out : 0.0f) + (a.bias ? a.bias[c] : 0.0f);
  *out = activate(a.act, a.slope, x);
}

}  // namespace

void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda,
          const float* B, index_t ldb, float beta, float* C, index_t ldc, const GemmEpilogue<float>& ep) {
  check_gemm("cuda::gemm", ta, tb, M, N, K, double(alpha), A, lda, B, ldb, C, ldc, ep.bias, sizeof(float));
  TG_CHECK(M < (index_t(1) << 31) && N < (index_t(1) << 31) && K < (index_t(1) << 31) && lda < (index_t(1) << 31) &&
               ldb < (index_t(1) << 31) && ldc < (index_t(1) << 31),
           "cuda::gemm", "M", "expected sizes and leading dimensions below 2^31");
  if (M == 0 || N == 0) return;
  Args a{int(M), int(N), int(K), alpha, beta, A, int(lda), B, int(ldb), C, int(ldc), ep.bias, ep.act.kind, ep.act.slope, 0};
  if (K == 0 || alpha == 0.0f) {
    const std::int64_t n = std::int64_t(M) * N;
    scale_c<<<unsigned((n + 255) / 256), 256, 0, detail::stream()>>>(a);
    TG_CUDA_LAUNCHED();
    return;
  }
  // 128-bit loads and stores need every operand's rows on 16-byte boundaries.
  const bool aligned = lda % 4 == 0 && ldb % 4 == 0 && aligned16(A) && aligned16(B);
  dim3 grid(unsigned((N + kBN - 1) / kBN), unsigned((M + kBM - 1) / kBM));
  // Split-K when the tiles of C cannot fill the GPU and K is long (a weight gradient:
  // 256 x 784 over a batch of 8192 is 14 tiles for 132 SMs): slices of K in their own
  // blocks, partial products to a workspace, then one pass that adds them in order.
  const index_t tiles = index_t(grid.x) * grid.y, sms = sm_count();
  int slices = 1;
  if (tiles < sms && K >= 2048) slices = int(std::min<index_t>((2 * sms + tiles - 1) / tiles, K / 512));
  void (*kernel)(dim3, const Args&, bool) = ta == Trans::N ? (tb == Trans::N ? &launch<false, false> : &launch<false, true>)
                                                           : (tb == Trans::N ? &launch<true, false> : &launch<true, true>);
  if (slices > 1) {
    Args part = a;
    part.kslice = int((K + slices - 1) / slices + kBK - 1) / kBK * kBK;
    slices = int((K + part.kslice - 1) / part.kslice);
    // From the caching allocator, on this stream: freed when the call returns, reused by
    // the next work of the same stream only, so no other stream can overwrite it early.
    int device = 0;
    TG_CUDA_CHECK(cudaGetDevice(&device));
    Buffer workspace(std::size_t(slices) * std::size_t(M) * std::size_t(N) * sizeof(float), Device::cuda(device));
    float* ws = workspace.as<float>();
    part.C = ws, part.ldc = int(N), part.beta = 0.0f, part.bias = nullptr, part.act = Act::none;
    grid.z = unsigned(slices);
    kernel(grid, part, aligned && N % 4 == 0);
    TG_CUDA_LAUNCHED();
    const std::int64_t n = std::int64_t(M) * N;
    reduce_slices<<<unsigned((n + 255) / 256), 256, 0, detail::stream()>>>(a, ws, slices);
  } else {
    kernel(grid, a, aligned && ldc % 4 == 0 && aligned16(C));
  }
  TG_CUDA_LAUNCHED();
}

}  // namespace tg::cuda
