// Fused attention on 16-bit tensor cores: the launches and the checked entries
// (cuda::attention_forward_bf16 / attention_backward_bf16 and the f16 pair). The kernels,
// and how they work, are in cuda/attention_bf16.cuh.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "tilegrad/cuda/attention_bf16.cuh"
#include "tilegrad/cuda/attention_wgmma.hpp"
#include "tilegrad/cuda/check.cuh"
#include "tilegrad/cuda/launch.cuh"
#include "tilegrad/cuda/ops.hpp"
#include "tilegrad/kernels/attention.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::cuda {

namespace {

using namespace attn16;

template <int kD, bool kF16>
void launch(const Fwd16& f) {
  constexpr int bytes = smem_fwd<kD>();
  detail::allow_shared(reinterpret_cast<const void*>(&attention_fwd_16<kD, kF16>), bytes);
  const Grid grid = fwd_grid(f);
  attention_fwd_16<kD, kF16><<<dim3(grid.x, grid.y), kFwdThreads, bytes, detail::stream()>>>(f);
  TG_CUDA_LAUNCHED();
}

// The deterministic path: the dK / dV kernel, then the dQ kernel. The atomic path
// (f.dq_acc set): the buffer zeroed, the dK / dV kernel adding dS K into it, then dQ
// written from it.
template <int kD, bool kF16>
void launch_bwd(const Bwd16& f) {
  if (f.dq_acc) {
    constexpr int kv_bytes = smem_bwd_kv<kD, true>();
    detail::allow_shared(reinterpret_cast<const void*>(&attention_bwd_kv_16<kD, kF16, true>), kv_bytes);
    const std::size_t acc_bytes = std::size_t(f.B) * f.H * f.Sq * f.D * sizeof(float);
    TG_CUDA_CHECK(cudaMemsetAsync(f.dq_acc, 0, acc_bytes, detail::stream()));
    if (f.Sk > 0) {
      const Grid grid = bwd_kv_grid(f);
      attention_bwd_kv_16<kD, kF16, true><<<dim3(grid.x, grid.y), kThreads, kv_bytes, detail::stream()>>>(f);
      TG_CUDA_LAUNCHED();
    }
    if (f.Sq > 0) {
      attention_bwd_dq_16<kF16><<<bwd_dot_blocks(i64(f.B) * f.H * f.Sq), kDotThreads, 0, detail::stream()>>>(f);
      TG_CUDA_LAUNCHED();
    }
    return;
  }
  constexpr int kv_bytes = smem_bwd_kv<kD>(), q_bytes = smem_bwd_q<kD>();
  detail::allow_shared(reinterpret_cast<const void*>(&attention_bwd_kv_16<kD, kF16>), kv_bytes);
  detail::allow_shared(reinterpret_cast<const void*>(&attention_bwd_q_16<kD, kF16>), q_bytes);
  if (f.Sk > 0) {
    const Grid grid = bwd_kv_grid(f);
    attention_bwd_kv_16<kD, kF16><<<dim3(grid.x, grid.y), kThreads, kv_bytes, detail::stream()>>>(f);
    TG_CUDA_LAUNCHED();
  }
  if (f.Sq > 0) {
    const Grid grid = bwd_q_grid(f);
    attention_bwd_q_16<kD, kF16><<<dim3(grid.x, grid.y), kThreads, q_bytes, detail::stream()>>>(f);
    TG_CUDA_LAUNCHED();
  }
}

// The checks both entries share: dims the kernels take, FP32 lse apart.
template <class Args>
void check_dims(const char* op, const Args& a) {
  const AttentionDims& d = a.dims;
  TG_CHECK(d.batch >= 0 && d.heads >= 1 && d.kv_heads >= 1 && d.heads % d.kv_heads == 0, op, "dims",
           "expected batch >= 0 and heads a multiple of kv_heads >= 1, got ", d.batch, ", ", d.heads, ", ", d.kv_heads);
  TG_CHECK(d.head_dim >= 8 && d.head_dim <= 128 && d.head_dim % 8 == 0, op, "head_dim",
           "expected a multiple of 8 from 8 to 128 on this path, got ", d.head_dim);
  TG_CHECK(d.seq_q >= 0 && d.seq_k >= 0 && d.batch * d.heads * (d.seq_q + 1) < (index_t(1) << 31) &&
               d.seq_k < (index_t(1) << 31) && d.batch * d.heads < 65536,
           op, "dims", "expected B H Sq and Sk below 2^31 and batch x heads below 65536");
  TG_CHECK(a.lse == nullptr, op, "lse", "the 16-bit path takes the FP32 lse through its own argument");
}

using W = const std::uint16_t;
// A view the kernels can read in 16-byte pieces, as 16-bit words.
template <class T>
View4<std::conditional_t<std::is_const_v<T>, W, std::uint16_t>> checked_view(const char* op, const char* name,
                                                                            const View4<T>& x, index_t head_dim) {
  TG_CHECK(x.data != nullptr, op, name, "expected a device pointer");
  TG_CHECK(x.sd == 1 && x.sb % 8 == 0 && x.sh % 8 == 0 && x.ss % 8 == 0 && x.sb >= 0 && x.sh >= 0 &&
               x.ss >= head_dim && detail::aligned16(x.data),
           op, name, "expected unit stride along the head dim, other strides multiples of 8 (rows >= head_dim) and "
           "16-byte alignment, got strides (", x.sb, ", ", x.sh, ", ", x.ss, ", ", x.sd, ")");
  using V = std::conditional_t<std::is_const_v<T>, W, std::uint16_t>;
  return {reinterpret_cast<V*>(x.data), x.sb, x.sh, x.ss, x.sd};
}

// The additive mask: any non-negative strides (0 broadcasts), read a value at a time.
template <class H>
View4<W> mask_view(const char* op, const View4<const H>& m) {
  if (m.data == nullptr) return {};
  TG_CHECK(m.sb >= 0 && m.sh >= 0 && m.ss >= 0 && m.sd >= 0, op, "mask",
           "expected non-negative strides (0 to broadcast), got (", m.sb, ", ", m.sh, ", ", m.ss, ", ", m.sd, ")");
  return {reinterpret_cast<W*>(m.data), m.sb, m.sh, m.ss, m.sd};
}

template <class H>
void forward_16(const char* op, const AttentionForwardArgs<H>& a, float* lse, AttentionForwardPath path) {
  constexpr bool kF16 = std::is_same_v<H, float16>;
  check_dims(op, a);
  const AttentionDims& d = a.dims;
  if (d.batch == 0 || d.seq_q == 0) return;
  const index_t D = d.head_dim;
  const Fwd16 f{int(d.batch), int(d.heads), int(d.kv_heads), int(d.seq_q), int(d.seq_k), int(D), float(a.scale), a.causal,
                checked_view(op, "q", a.q, D), checked_view(op, "k", a.k, D), checked_view(op, "v", a.v, D),
                mask_view(op, a.mask), checked_view(op, "o", a.o, D), lse};
  TG_CHECK(path == AttentionForwardPath::auto_select || path == AttentionForwardPath::mma_sync ||
               path == AttentionForwardPath::wgmma,
           op, "path", "expected AttentionForwardPath::auto_select, mma_sync or wgmma, got ", int(path));
  if (path == AttentionForwardPath::auto_select) {
    static const bool env = [] {
      const char* v = std::getenv("TG_CUDA_ATTENTION");
      return v != nullptr && std::string(v) == "wgmma";
    }();
    path = env ? AttentionForwardPath::wgmma : AttentionForwardPath::mma_sync;
  }
  if (path == AttentionForwardPath::wgmma) {
    if (detail::attention_forward_wgmma(kF16, f)) return;
    ::tg::detail::throw_error(op, "path",
                              "the wgmma path needs a compute capability 9.0 device running its sm_90a binary (none here)");
  }
  if (D <= 64) launch<64, kF16>(f);
  else launch<128, kF16>(f);
}

template <class H>
void backward_16(const char* op, const AttentionBackwardArgs<H>& a, const float* lse, AttentionBackwardPath path) {
  constexpr bool kF16 = std::is_same_v<H, float16>;
  check_dims(op, a);
  const AttentionDims& d = a.dims;
  if (d.batch == 0 || (d.seq_q == 0 && d.seq_k == 0)) return;
  TG_CHECK(lse != nullptr || d.seq_q == 0, op, "lse", "expected the forward's lse (B, H, Sq) on the device");
  const index_t D = d.head_dim, rows = d.batch * d.heads * d.seq_q;
  TG_CHECK(path == AttentionBackwardPath::deterministic || path == AttentionBackwardPath::atomic_dq, op, "path",
           "expected AttentionBackwardPath::deterministic or atomic_dq, got ", int(path));
  const Device dev = Device::cuda(detail::current_device());
  Buffer dd(std::size_t(std::max<index_t>(rows, 1)) * sizeof(float), dev);
  // The atomic path's FP32 dQ sums (B, H, Sq, D).
  Buffer acc(path == AttentionBackwardPath::atomic_dq ? std::size_t(std::max<index_t>(rows, 1) * D) * sizeof(float) : 0,
             dev);
  Bwd16 f{int(d.batch), int(d.heads), int(d.kv_heads), int(d.seq_q), int(d.seq_k), int(D), float(a.scale), a.causal,
                checked_view(op, "q", a.q, D), checked_view(op, "k", a.k, D), checked_view(op, "v", a.v, D),
                checked_view(op, "o", a.o, D), checked_view(op, "d_o", a.d_o, D), mask_view(op, a.mask),
                checked_view(op, "dq", a.dq, D), checked_view(op, "dk", a.dk, D), checked_view(op, "dv", a.dv, D), lse,
                dd.as<float>()};
  if (path == AttentionBackwardPath::atomic_dq) f.dq_acc = acc.as<float>();
  if (rows > 0) {
    attention_bwd_dot_16<kF16><<<bwd_dot_blocks(rows), kDotThreads, 0, detail::stream()>>>(f, dd.as<float>());
    TG_CUDA_LAUNCHED();
  }
  if (D <= 64) launch_bwd<64, kF16>(f);
  else launch_bwd<128, kF16>(f);
}

}  // namespace

void attention_forward_bf16(const AttentionForwardArgs<bfloat16>& a, float* lse, AttentionForwardPath path) {
  forward_16("cuda::attention_forward_bf16", a, lse, path);
}
void attention_backward_bf16(const AttentionBackwardArgs<bfloat16>& a, const float* lse, AttentionBackwardPath path) {
  backward_16("cuda::attention_backward_bf16", a, lse, path);
}
void attention_forward_f16(const AttentionForwardArgs<float16>& a, float* lse, AttentionForwardPath path) {
  forward_16("cuda::attention_forward_f16", a, lse, path);
}
void attention_backward_f16(const AttentionBackwardArgs<float16>& a, const float* lse, AttentionBackwardPath path) {
  backward_16("cuda::attention_backward_f16", a, lse, path);
}

}  // namespace tg::cuda
