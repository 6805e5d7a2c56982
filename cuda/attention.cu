// Fused FP32 attention on CUDA: the launches and the checked entries
// (cuda::attention_forward / attention_backward). The kernels, and how they work, are in
// cuda/attention.cuh.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "tilegrad/cuda/attention.cuh"
#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/cuda/ops.hpp"
#include "tilegrad/kernels/attention.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::cuda {

namespace {

using namespace attn32;

template <int kD>
void launch_fwd(const Fwd& f) {
  constexpr std::size_t bytes = smem_bytes<kD>();
  detail::allow_shared(reinterpret_cast<const void*>(&attention_fwd<kD>), bytes);
  const dim3 grid(unsigned((f.Sq + kTile - 1) / kTile), unsigned(f.H), unsigned(f.B));
  attention_fwd<kD><<<grid, kThreads, bytes, detail::stream()>>>(f);
  TG_CUDA_LAUNCHED();
}

template <int kD>
void launch_bwd(const Bwd& w) {
  constexpr std::size_t bytes = bwd_smem_bytes<kD>();
  detail::allow_shared(reinterpret_cast<const void*>(&attention_bwd_kv<kD>), bytes);
  detail::allow_shared(reinterpret_cast<const void*>(&attention_bwd_q<kD>), bytes);
  const cudaStream_t s = detail::stream();
  if (w.Sk > 0)
    attention_bwd_kv<kD><<<dim3(unsigned((w.Sk + kTile - 1) / kTile), unsigned(w.Hkv), unsigned(w.B)), kThreads, bytes,
                           s>>>(w);
  TG_CUDA_LAUNCHED();
  if (w.Sq > 0)
    attention_bwd_q<kD><<<dim3(unsigned((w.Sq + kTile - 1) / kTile), unsigned(w.H), unsigned(w.B)), kThreads, bytes,
                          s>>>(w);
  TG_CUDA_LAUNCHED();
}

}  // namespace

void attention_backward(const AttentionBackwardArgs<float>& args) {
  check_attention_backward("cuda::attention_backward", args);
  const AttentionDims& d = args.dims;
  TG_CHECK(d.head_dim <= 128, "cuda::attention_backward", "head_dim",
           "expected a head dim of at most 128 for the CUDA backward, got ", d.head_dim);
  TG_CHECK(d.batch <= 65535 && d.heads <= 65535 && d.seq_q < (index_t(1) << 31) && d.seq_k < (index_t(1) << 31) &&
               d.batch * d.heads * d.seq_q < (index_t(1) << 31),
           "cuda::attention_backward", "dims", "expected batch and heads <= 65535 and B H Sq below 2^31");
  if (d.batch == 0 || d.heads == 0) return;
  const index_t rows = d.batch * d.heads * d.seq_q;
  Buffer dvec(std::size_t(std::max<index_t>(rows, 1)) * sizeof(float), Device::cuda(detail::current_device()));
  if (rows > 0) {
    attention_bwd_dot<<<unsigned((rows + 7) / 8), 256, 0, detail::stream()>>>(int(rows), int(d.heads), int(d.seq_q),
                                                                            int(d.head_dim), args.o, args.d_o,
                                                                            dvec.as<float>());
    TG_CUDA_LAUNCHED();
  }
  Bwd w{int(d.batch), int(d.heads), int(d.kv_heads), int(d.seq_q), int(d.seq_k), int(d.head_dim), float(args.scale),
        args.causal, args.q, args.k, args.v, args.o, args.d_o, args.mask, args.lse, dvec.as<float>(), args.dq,
        args.dk, args.dv};
  if (d.head_dim <= 32) launch_bwd<32>(w);
  else if (d.head_dim <= 64) launch_bwd<64>(w);
  else launch_bwd<128>(w);
}

void attention_forward(const AttentionForwardArgs<float>& args) {
  check_attention_forward("cuda::attention_forward", args);
  const AttentionDims& d = args.dims;
  TG_CHECK(d.head_dim <= 256, "cuda::attention_forward", "head_dim", "expected a head dim of at most 256, got ",
           d.head_dim);
  TG_CHECK(d.batch <= 65535 && d.heads <= 65535 && d.seq_q < (index_t(1) << 31) && d.seq_k < (index_t(1) << 31),
           "cuda::attention_forward", "dims", "expected batch and heads <= 65535 and sequences below 2^31");
  if (d.batch == 0 || d.heads == 0 || d.seq_q == 0) return;
  // cp.async for K and V where every row starts on 16 bytes with unit stride along d.
  auto rows16 = [](const View4<const float>& x) {
    return x.sd == 1 && x.sb % 4 == 0 && x.sh % 4 == 0 && x.ss % 4 == 0 && detail::aligned16(x.data);
  };
  Fwd f{int(d.batch), int(d.heads), int(d.kv_heads), int(d.seq_q), int(d.seq_k), int(d.head_dim), float(args.scale),
        args.causal, args.q, args.k, args.v, args.mask, args.o, args.lse, rows16(args.k) && rows16(args.v)};
  if (d.head_dim <= 32) launch_fwd<32>(f);
  else if (d.head_dim <= 64) launch_fwd<64>(f);
  else if (d.head_dim <= 128) launch_fwd<128>(f);
  else launch_fwd<256>(f);
}

}  // namespace tg::cuda
