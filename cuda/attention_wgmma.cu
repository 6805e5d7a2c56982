// The Hopper path of the 16-bit attention forward (cuda::attention_forward_bf16 / _f16 with
// AttentionForwardPath::wgmma): V^T into a scratch array, the three TMA maps, the launch.
// Compiled for sm_90a only, as cuda/gemm_wgmma.cu; the kernel, and how it works, are in
// cuda/attention_wgmma.cuh.
#include <cuda.h>  // CUtensorMap
#include <cuda_runtime.h>

#include <cstdint>

#include "tilegrad/cuda/attention_wgmma.cuh"
#include "tilegrad/cuda/attention_wgmma.hpp"
#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/cuda/tensor_map.hpp"
#include "tilegrad/kernels/buffer.hpp"

namespace tg::cuda::detail {

namespace {

// One of attn_maps' maps over the 16-bit array at `base`, 128-byte swizzle.
bool encode(CUtensorMap* map, bool f16, const void* base, const AttnMap& m) {
  const cuuint64_t dims[4] = {m.dims[0], m.dims[1], m.dims[2], m.dims[3]};
  const cuuint64_t strides[3] = {m.strides[0], m.strides[1], m.strides[2]};
  const cuuint32_t box[4] = {m.box[0], m.box[1], m.box[2], m.box[3]}, unit[4] = {1, 1, 1, 1};
  return tensor_map_encoder()(map, f16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4,
                              const_cast<void*>(base), dims, strides, box, unit, CU_TENSOR_MAP_INTERLEAVE_NONE,
                              CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                              CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <int kD>
bool launch(bool f16, const attn16::Fwd16& f) {
  const AttnMaps maps = attn_maps(f, kD);
  // V^T, (b, kv head, d, key) in rows of ldt keys; from the caching allocator, so a
  // training step allocates nothing from the driver after the first.
  Buffer vt(std::size_t(f.B) * std::size_t(f.Hkv) * std::size_t(f.D) * std::size_t(maps.ldt) * 2,
            Device::cuda(current_device()));
  CUtensorMap mq, mk, mv;
  if (!encode(&mq, f16, f.q.data, maps.q) || !encode(&mk, f16, f.k.data, maps.k) ||
      !encode(&mv, f16, vt.data(), maps.vt))
    return false;
  if (f.Sk > 0) {
    const dim3 grid(unsigned((f.Sk + 31) / 32), unsigned((f.D + 31) / 32), unsigned(f.B * f.Hkv));
    attention_transpose_v<<<grid, dim3(32, 8), 0, stream()>>>(f.v, f.Hkv, f.Sk, f.D, vt.as<std::uint16_t>(), maps.ldt);
    TG_CUDA_LAUNCHED();
  }
  using Kernel = void (*)(CUtensorMap, CUtensorMap, CUtensorMap, attn16::Fwd16);
  const Kernel kernel = f16 ? &attention_fwd_wgmma<kD, kF16> : &attention_fwd_wgmma<kD, kBf16>;
  allow_shared(reinterpret_cast<const void*>(kernel), attn_smem_bytes<kD>());
  const attn16::Grid grid = attn_grid(f);
  kernel<<<dim3(grid.x, grid.y), kAttnThreads, attn_smem_bytes<kD>(), stream()>>>(mq, mk, mv, f);
  TG_CUDA_LAUNCHED();
  return true;
}

}  // namespace

bool attention_forward_wgmma(bool f16, const attn16::Fwd16& f) {
  if (!wgmma_available() || f.D > 128 || f.Sq == 0 || f.B == 0) return false;
  return f.D <= 64 ? launch<64>(f16, f) : launch<128>(f16, f);
}

}  // namespace tg::cuda::detail
