// Fused attention forward on Hopper tensor cores (sm_90a: wgmma, TMA, mbarriers), bf16 or
// f16 with FP32 accumulation and softmax: the kernel of cuda/attention_wgmma.cu, apart from
// its launch, so that the SIMT emulator (tests/simt) runs its source on the CPU. The same
// contract as cuda/attention_bf16.cuh's forward (GQA, bottom-right causal, an additive
// 16-bit mask with any non-negative strides, fully masked rows give O = 0 and lse = -inf,
// head dims 8 to 128 in steps of 8, 64 and 128 compiled); written without a GPU
// (cuda/notes/attention.md, "Attention forward on wgmma").
//   - a block of 2 warpgroups and a warp owns 128 query rows of one (batch, head): the
//     warpgroups each own 64 rows, one thread of the warp issues the TMA copies;
//   - Q comes in once by TMA (4-D maps over (d, s, h, b): any strides that are multiples of
//     16 bytes, both layouts); K and V^T tiles of 128 keys stream through a ring of 2
//     stages with a full and an empty mbarrier each, so the next tile's copies overlap this
//     one's products. V goes in transposed (a kernel below writes V^T once per call, into a
//     scratch (b, kv head, d, key) array): the P V product then takes it K-major like
//     every other operand (the layout the GEMM's wgmma path uses and the emulator models);
//   - S = Q K^T as wgmma m64n64k16 from shared memory, a 64-key half of the tile at a time
//     (Q and K 128-byte swizzled rows of 64 values, zero-filled by the copy engine past D,
//     Sq and Sk), the online softmax on
//     the accumulators as the mma.sync kernel does it (log2 units, row max and sum across a
//     quad), P rounded to the 16-bit type straight into the A registers of O += P V^T
//     (wgmma m64nDk16 with A in registers: the accumulator layout of two n8 column groups
//     is the A fragment of one k16 step, as with mma.sync);
//   - O = acc / l written as 16-bit pairs, lse = (m + log2 l) ln 2.
// Step 1: the two consumer warpgroups overlap each other's softmax with their products
// (no explicit ping-pong or intra-warpgroup pipelining yet).
#pragma once

#include "tilegrad/cuda/attention_bf16.cuh"  // the views, mask, causal bound and 16-bit packing
#include "tilegrad/cuda/gemm_wgmma.cuh"      // mbarriers, TMA, descriptors, the wgmma operand lists

namespace tg::cuda::detail {

// Two consumer warpgroups (threads 0-255) and a producer warp (256-287): 288 threads, so
// each thread may have 224 registers (a third warpgroup as producer caps them at 168,
// where S, O and the softmax spilled: setmaxnreg did not raise ptxas's allocation).
constexpr int kAttnRows = 128, kAttnKeys = 128, kAttnStages = 2, kAttnThreads = 288;
// Per stage: K's tile as kD / 64 column blocks of [128 keys][128 bytes], then V^T's as two
// key blocks of [kD rows][128 bytes]; Q as kD / 64 column blocks of [128 rows][128 bytes].
template <int kD>
constexpr int attn_q_bytes() { return kAttnRows * 2 * kD; }
template <int kD>
constexpr int attn_k_bytes() { return kAttnKeys * 2 * kD; }
template <int kD>
constexpr int attn_stage_bytes() { return attn_k_bytes<kD>() + kD * 2 * kAttnKeys; }
// 1024 bytes of alignment slack, Q, the stages, then the barriers (Q's, full x 2, empty x 2).
template <int kD>
constexpr int attn_smem_bytes() { return 1024 + attn_q_bytes<kD>() + kAttnStages * attn_stage_bytes<kD>() + 8 * (1 + 2 * kAttnStages); }

// The three TMA maps, shared by the launch (cuda/attention_wgmma.cu) and the emulated test:
// dims innermost first, the byte strides of dims 1-3, the box. Q (d, s, h, b) and K (d,
// key, kv head, b) as their views lie; V^T (key, d, kv head, b) in the scratch array of
// rows of ldt keys. A dimension of extent 1 gets a dense stride (its own may be anything,
// 0 included, which a map refuses). Boxes: 64 values (128 bytes, the swizzle's row) by
// 128 rows, or by kD head dims for V^T.
struct AttnMap {
  unsigned long long dims[4], strides[3];
  unsigned box[4];
};
struct AttnMaps {
  AttnMap q, k, vt;
  long long ldt;  // V^T's row length in keys (Sk rounded up to 8: rows of whole 16 bytes)
};
inline AttnMap attn_map(const long long (&dims)[4], const long long (&strides)[3], unsigned rows) {
  AttnMap m{};
  long long dense = dims[0] * 2;
  for (int i = 0; i < 4; ++i) m.dims[i] = static_cast<unsigned long long>(dims[i] > 0 ? dims[i] : 1);
  for (int i = 0; i < 3; ++i) {
    m.strides[i] = static_cast<unsigned long long>(dims[i + 1] > 1 ? strides[i] : dense);
    dense = static_cast<long long>(m.strides[i]) * static_cast<long long>(m.dims[i + 1]);
  }
  m.box[0] = 64, m.box[1] = rows, m.box[2] = 1, m.box[3] = 1;
  return m;
}
inline AttnMaps attn_maps(const attn16::Fwd16& f, int kD) {
  AttnMaps a{};
  a.ldt = (f.Sk + 7) / 8 * 8;
  if (a.ldt == 0) a.ldt = 8;
  a.q = attn_map({f.D, f.Sq, f.H, f.B}, {2 * f.q.ss, 2 * f.q.sh, 2 * f.q.sb}, kAttnRows);
  a.k = attn_map({f.D, f.Sk, f.Hkv, f.B}, {2 * f.k.ss, 2 * f.k.sh, 2 * f.k.sb}, kAttnKeys);
  a.vt = attn_map({f.Sk, f.D, f.Hkv, f.B}, {2 * a.ldt, 2 * a.ldt * f.D, 2 * a.ldt * f.D * f.Hkv}, unsigned(kD));
  return a;
}
// The transpose's grid, and the main kernel's: (query tiles, B H).
inline attn16::Grid attn_grid(const attn16::Fwd16& f) {
  return {unsigned((f.Sq + kAttnRows - 1) / kAttnRows), unsigned(f.B * f.H)};
}

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)

// The box at (c0, c1, c2, c3) of a 4-D map into shared memory at `dst`, completing on `bar`.
__device__ __forceinline__ void tma_load_4d(std::uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2, int c3,
                                            std::uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(dst),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
      : "memory");
}

// D (64 x 64, FP32) += A B^T over one k16 step, both K-major behind their descriptors.
template <int kKind>
__device__ __forceinline__ void wgmma_ss64(float (&d)[32], std::uint64_t desc_a, std::uint64_t desc_b) {
  if constexpr (kKind == kF16) TG_WGMMA_SS("m64n64k16.f32.f16.f16", ", 0, 0", TG_WG_R32, "%32", "%33", "%34", TG_WG_D32(d));
  else TG_WGMMA_SS("m64n64k16.f32.bf16.bf16", ", 0, 0", TG_WG_R32, "%32", "%33", "%34", TG_WG_D32(d));
}

// D (64 x N, FP32) += A B^T over one k16 step, A (64 x 16) in registers (the fragment of
// mma.m16n8k16 per warp), B K-major behind its descriptor; scale-d 1, B not transposed.
// AREGS, DB, PRED: the operand numbers after the accumulators.
#define TG_WGMMA_RS(TYPE, REGS, AREGS, DB, PRED, OUTS)                                                     \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " PRED ", 0;\n"                                          \
               "wgmma.mma_async.sync.aligned." TYPE " {" REGS " }, {" AREGS "}, " DB ", p, 1, 1, 0;\n}\n"  \
               : OUTS                                                                                      \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "n"(1))

template <int kKind, int kN>
__device__ __forceinline__ void wgmma_rs(float (&d)[kN / 2], const unsigned (&a)[4], std::uint64_t desc_b) {
  static_assert(kN == 64 || kN == 128, "the head dims compiled");
  if constexpr (kN == 128) {
    if constexpr (kKind == kF16)
      TG_WGMMA_RS("m64n128k16.f32.f16.f16", TG_WG_R64, "%64, %65, %66, %67", "%68", "%69", TG_WG_D64(d));
    else TG_WGMMA_RS("m64n128k16.f32.bf16.bf16", TG_WG_R64, "%64, %65, %66, %67", "%68", "%69", TG_WG_D64(d));
  } else {
    if constexpr (kKind == kF16)
      TG_WGMMA_RS("m64n64k16.f32.f16.f16", TG_WG_R32, "%32, %33, %34, %35", "%36", "%37", TG_WG_D32(d));
    else TG_WGMMA_RS("m64n64k16.f32.bf16.bf16", TG_WG_R32, "%32, %33, %34, %35", "%36", "%37", TG_WG_D32(d));
  }
}
#undef TG_WGMMA_RS

#endif

// V^T for the P V product: vt[((b Hkv + hk) D + d) ldt + j] = V[b, hk, j, d], 32 x 32 tiles
// through shared memory (reads along d, writes along j both coalesced). Block (32, 8),
// grid (ceil(Sk / 32), ceil(D / 32), B Hkv).
__global__ void __launch_bounds__(256) attention_transpose_v(attn16::In v, int Hkv, int Sk, int D, std::uint16_t* vt,
                                                              long long ldt) {
  __shared__ std::uint16_t tile[32][33];
  const int j0 = int(blockIdx.x) * 32, d0 = int(blockIdx.y) * 32, b = int(blockIdx.z) / Hkv, hk = int(blockIdx.z) % Hkv;
  const std::uint16_t* src = attn16::head(v, b, hk);
  for (int r = int(threadIdx.y); r < 32; r += 8) {
    const int j = j0 + r, d = d0 + int(threadIdx.x);
    if (j < Sk && d < D) tile[r][threadIdx.x] = src[(long long)j * v.ss + d];
  }
  __syncthreads();
  std::uint16_t* dst = vt + ((long long)(int(blockIdx.z)) * D) * ldt;
  for (int r = int(threadIdx.y); r < 32; r += 8) {
    const int d = d0 + r, j = j0 + int(threadIdx.x);
    if (j < Sk && d < D) dst[(long long)d * ldt + j] = tile[threadIdx.x][r];
  }
}

// x, as a value the compiler cannot see through (so it is not hoisted out of a loop).
__device__ __forceinline__ std::uint32_t opaque(std::uint32_t x) {
#if defined(TG_SIMT_HOST)
  return x;
#else
  asm volatile("" : "+r"(x));
  return x;
#endif
}

// __maxnreg__ rather than __launch_bounds__(288, 1), under which ptxas kept to 168
// registers and spilled (bf16, head dim 128); 224 x 288 threads fit an SM's 64 Ki.
template <int kD, int kKind>
__global__ void __maxnreg__(224)
    attention_fwd_wgmma(const __grid_constant__ CUtensorMap map_q, const __grid_constant__ CUtensorMap map_k,
                        const __grid_constant__ CUtensorMap map_vt, attn16::Fwd16 f) {
  static_assert(kD == 64 || kD == 128, "the head dims compiled");
#if defined(TG_WGMMA_BODY)
  constexpr bool kF16Type = kKind == kF16;
  constexpr int kQBlock = kAttnRows * 128, kKBlock = kAttnKeys * 128, kVBlock = kD * 128;  // bytes
  TG_DYNAMIC_SHARED(unsigned char, raw);
  unsigned char* base = reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(raw) + 1023) & ~std::uintptr_t(1023));
  const std::uint32_t q_at = shared_address(base), stages_at = q_at + attn_q_bytes<kD>();
  const std::uint32_t q_bar = stages_at + kAttnStages * attn_stage_bytes<kD>(), full_at = q_bar + 8,
                      empty_at = full_at + 8 * kAttnStages;
  const int bh = int(blockIdx.y), b = bh / f.H, h = bh % f.H, hk = h / (f.H / f.Hkv), i0 = int(blockIdx.x) * kAttnRows;
  const int kv_end = f.causal ? attn16::causal_end(i0, kAttnRows, f.Sq, f.Sk) : f.Sk;
  const int tiles = (kv_end + kAttnKeys - 1) / kAttnKeys;
  const int tid = int(threadIdx.x), wg = tid / 128;  // 0, 1: consumers; 2: the producer warp
  if (tid == 0) {
    barrier_init(q_bar, 1);
    for (int s = 0; s < kAttnStages; ++s) {
      barrier_init(full_at + 8 * s, 1);   // the producer's arrival, plus the copies' bytes
      barrier_init(empty_at + 8 * s, 2);  // one arrival per consumer warpgroup
    }
    barrier_init_fence();
  }
  __syncthreads();
  if (wg == 2) {
    if (tid == 256) {
      barrier_expect(q_bar, attn_q_bytes<kD>());
      for (int cb = 0; cb < kD / 64; ++cb) tma_load_4d(q_at + cb * kQBlock, &map_q, 64 * cb, i0, h, b, q_bar);
      for (int t = 0; t < tiles; ++t) {
        const int s = t % kAttnStages;
        barrier_wait(empty_at + 8 * s, ((t / kAttnStages) & 1) ^ 1);  // a fresh barrier counts as released
        const std::uint32_t bar = full_at + 8 * s, k_at = stages_at + s * attn_stage_bytes<kD>(),
                            v_at = k_at + attn_k_bytes<kD>();
        barrier_expect(bar, attn_stage_bytes<kD>());
        for (int cb = 0; cb < kD / 64; ++cb) tma_load_4d(k_at + cb * kKBlock, &map_k, 64 * cb, kAttnKeys * t, hk, b, bar);
        for (int kb = 0; kb < 2; ++kb) tma_load_4d(v_at + kb * kVBlock, &map_vt, kAttnKeys * t + 64 * kb, 0, hk, b, bar);
      }
    }
    return;
  }
  const int c = wg, w = (tid % 128) / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;
  const int row[2] = {i0 + 64 * c + 16 * w + g, i0 + 64 * c + 16 * w + g + 8};
  const std::uint16_t* mask = f.mask.data ? attn16::head(f.mask, b, h) : nullptr;
  const float sl = f.scale * attn16::kLog2e;
  float m[2] = {attn16::kNegInf, attn16::kNegInf}, l[2] = {0.0f, 0.0f};
  float o[kD / 2];
#pragma unroll
  for (int i = 0; i < kD / 2; ++i) o[i] = 0.0f;
  barrier_wait(q_bar, 0);
  for (int t = 0; t < tiles; ++t) {
    const int s = t % kAttnStages;
    const std::uint32_t k_at = stages_at + s * attn_stage_bytes<kD>(), v_at = k_at + attn_k_bytes<kD>();
    barrier_wait(full_at + 8 * s, (t / kAttnStages) & 1);
    // The stage's 128 keys in two halves of 64 (S as 64 x 64: 32 accumulators next to O's
    // kD / 2; S of 64 x 128 spilled, cuda/notes/attention.md); the online softmax takes each half as
    // a tile of its own.
#pragma unroll 1
    for (int half = 0; half < 2; ++half) {
      const int j0 = kAttnKeys * t + 64 * half;
      if (j0 >= kv_end) break;  // no visible key in this half (the tile's copies are in; only products are skipped)
      // S = Q K^T (this warpgroup's 64 rows x 64 keys): k16 steps of 32 bytes along the
      // swizzled 128-byte rows, a column block of 64 values every 4; K's rows of this
      // half start 64 rows (8 KiB) into each column block.
      float sc[32];
#pragma unroll
      for (int i = 0; i < 32; ++i) sc[i] = 0.0f;
      fence_operands(sc);
      wgmma_fence();
      // Q's descriptors are the same every half: recomputed here (a few integer ops) rather
      // than hoisted out of the loop into 16 registers for the whole kernel.
      const std::uint32_t qa = opaque(q_at + 64 * c * 128);
#pragma unroll
      for (int kk = 0; kk < kD / 16; ++kk)
        wgmma_ss64<kKind>(sc, descriptor(qa + (kk / 4) * kQBlock + 32 * (kk % 4)),
                          descriptor(k_at + (kk / 4) * kKBlock + 64 * half * 128 + 32 * (kk % 4)));
      wgmma_commit();
      wgmma_wait<0>();
      fence_operands(sc);
      // The softmax step (the mma.sync kernel's: sc[4 j + e] is row g (e < 2) or g + 8, key
      // j0 + 8 j + 2 t4 + (e & 1)); the old terms of O rescaled.
      const attn16::SoftmaxStep st = attn16::softmax_step<kF16Type, 8>(
          [&](int n, int e) -> float& { return sc[4 * n + e]; }, f, mask, j0, row, t4, sl, m, l);
#pragma unroll
      for (int j = 0; j < kD / 8; ++j)
        o[4 * j] *= st.keep[0], o[4 * j + 1] *= st.keep[0], o[4 * j + 2] *= st.keep[1], o[4 * j + 3] *= st.keep[1];
      // P = 2^(x - m) and its row sums, then O += P V^T a k16 step at a time: the step's
      // P (column groups 2 kk and 2 kk + 1: the accumulator layout of two n8 groups is the
      // A fragment of one k16 step) rounded into 4 registers, a fence (A's registers were
      // just written), the wgmma (V^T's rows are head dims, 128-byte rows of 64 keys: this
      // half's key block).
      fence_operands(o);
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          sc[8 * kk + e] = ex2_approx(sc[8 * kk + e] - st.use[(e / 2) % 2]);
          l[(e / 2) % 2] += sc[8 * kk + e];
        }
        const unsigned pa[4] = {attn16::pack16<kF16Type>(sc[8 * kk + 0], sc[8 * kk + 1]),
                                attn16::pack16<kF16Type>(sc[8 * kk + 2], sc[8 * kk + 3]),
                                attn16::pack16<kF16Type>(sc[8 * kk + 4], sc[8 * kk + 5]),
                                attn16::pack16<kF16Type>(sc[8 * kk + 6], sc[8 * kk + 7])};
        wgmma_fence();
        wgmma_rs<kKind, kD>(o, pa, descriptor(v_at + half * kVBlock + 32 * kk));
      }
      wgmma_commit();
      wgmma_wait<0>();
      fence_operands(o);
    }
    if (tid % 128 == 0) barrier_arrive(empty_at + 8 * s);  // this warpgroup is done with the stage
  }
  // The rows' sums across their quad; O = acc / l, lse (attn16::row_end).
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (row[r] >= f.Sq) continue;
    const attn16::RowEnd end = attn16::row_end(m[r], l[r]);
    std::uint16_t* out = attn16::head(f.o, b, h) + (long long)row[r] * f.o.ss + 2 * t4;
#pragma unroll
    for (int j = 0; j < kD / 8; ++j)
      if (8 * j < f.D)
        *reinterpret_cast<unsigned*>(out + 8 * j) =
            end.masked ? 0u : attn16::pack16<kF16Type>(o[4 * j + 2 * r] * end.inv, o[4 * j + 2 * r + 1] * end.inv);
    if (f.lse && t4 == 0) f.lse[((long long)b * f.H + h) * f.Sq + row[r]] = end.lse;
  }
#else
  (void)map_q, (void)map_k, (void)map_vt, (void)f;
  __trap();  // never launched: the host checks that the sm_90a binary is the one loaded
#endif
}

}  // namespace tg::cuda::detail
