#include "cpu/ops.hpp"

#include "cpu/activation.hpp"
#include "cpu/attention.hpp"
#include "cpu/cross_entropy.hpp"
#include "cpu/elementwise.hpp"
#include "cpu/optimizer.hpp"
#include "cpu/reduce.hpp"
#include "cpu/gemm.hpp"
#include "cpu/layer_norm.hpp"
#include "cpu/softmax.hpp"
#include "kernels/error.hpp"

#include <type_traits>

namespace tg::cpu {

namespace {

// Which kernel serves which op, per path; an op not listed here runs the reference.
template <class T>
constexpr TypedOps<T> scalar_ops() {
  TypedOps<T> t = reference_typed_ops<T>();
  t.gemm = &gemm_portable<T>;
  t.unary = &unary_portable;
  t.binary = &binary_portable;
  t.where = &where_portable;
  t.reduce = &reduce_portable;
  t.sgd_step = &sgd_step_portable;
  t.adam_step = &adam_step_portable;
  if constexpr (std::is_same_v<T, float>) {
    t.act_forward = &act_forward_portable;
    t.act_backward = &act_backward_portable;
    t.softmax_forward = &softmax_forward_portable;
    t.log_softmax_forward = &log_softmax_forward_portable;
    t.softmax_backward = &softmax_backward_portable;
    t.log_softmax_backward = &log_softmax_backward_portable;
    t.layer_norm_forward = &layer_norm_forward_portable;
    t.layer_norm_backward = &layer_norm_backward_portable;
    t.attention_forward = &attention_forward_portable;
    t.attention_backward = &attention_backward_portable;
    t.cross_entropy_forward = &cross_entropy_forward_portable;
    t.cross_entropy_backward = &cross_entropy_backward_portable;
  }
  return t;
}

// The AVX2 kernels that serve both float and double (the overload picks T).
template <class T>
constexpr TypedOps<T> avx2_ops_both() {
  TypedOps<T> t = scalar_ops<T>();
  t.unary = &unary_avx2;
  t.binary = &binary_avx2;
  t.where = &where_avx2;
  t.reduce = &reduce_avx2;
  t.sgd_step = &sgd_step_avx2;
  t.adam_step = &adam_step_avx2;
  return t;
}

constexpr TypedOps<float> avx2_ops_f32() {
  TypedOps<float> t = avx2_ops_both<float>();
  t.gemm = &gemm_avx2;
  t.act_forward = &act_forward_avx2;
  t.act_backward = &act_backward_avx2;
  t.softmax_forward = &softmax_forward_avx2;
  t.log_softmax_forward = &log_softmax_forward_avx2;
  t.softmax_backward = &softmax_backward_avx2;
  t.log_softmax_backward = &log_softmax_backward_avx2;
  t.layer_norm_forward = &layer_norm_forward_avx2;
  t.layer_norm_backward = &layer_norm_backward_avx2;
  t.attention_forward = &attention_forward_avx2;
  t.attention_backward = &attention_backward_avx2;
  t.cross_entropy_forward = &cross_entropy_forward_avx2;
  t.cross_entropy_backward = &cross_entropy_backward_avx2;
  return t;
}

// The AVX-512 kernels: every op of the AVX2 table, each replaced (a kernel missing here
// would silently run at half width, so the table starts from scalar_ops, not avx2's).
template <class T>
constexpr TypedOps<T> avx512_ops_both() {
  TypedOps<T> t = scalar_ops<T>();
  t.unary = &unary_avx512;
  t.binary = &binary_avx512;
  t.where = &where_avx512;
  t.reduce = &reduce_avx512;
  t.sgd_step = &sgd_step_avx512;
  t.adam_step = &adam_step_avx512;
  return t;
}

constexpr TypedOps<float> avx512_ops_f32() {
  TypedOps<float> t = avx512_ops_both<float>();
  t.gemm = &gemm_avx512;
  t.act_forward = &act_forward_avx512;
  t.act_backward = &act_backward_avx512;
  t.softmax_forward = &softmax_forward_avx512;
  t.log_softmax_forward = &log_softmax_forward_avx512;
  t.softmax_backward = &softmax_backward_avx512;
  t.log_softmax_backward = &log_softmax_backward_avx512;
  t.layer_norm_forward = &layer_norm_forward_avx512;
  t.layer_norm_backward = &layer_norm_backward_avx512;
  t.attention_forward = &attention_forward_avx512;
  t.attention_backward = &attention_backward_avx512;
  t.cross_entropy_forward = &cross_entropy_forward_avx512;
  t.cross_entropy_backward = &cross_entropy_backward_avx512;
  return t;
}

constexpr OpTable kScalar{"cpu-scalar", scalar_ops<float>(), scalar_ops<double>()};
constexpr OpTable kAvx2{"cpu-avx2", avx2_ops_f32(), avx2_ops_both<double>()};
constexpr OpTable kAvx512{"cpu-avx512", avx512_ops_f32(), avx512_ops_both<double>()};
TG_ASSERT_COMPLETE(kScalar, "the scalar table lacks an op of TG_OPS");
TG_ASSERT_COMPLETE(kAvx2, "the avx2 table lacks an op of TG_OPS");
TG_ASSERT_COMPLETE(kAvx512, "the avx512 table lacks an op of TG_OPS");

}  // namespace

const OpTable& ops(Isa isa) {
  TG_CHECK(isa_supported(isa), "cpu::ops", "isa", "this CPU cannot run the ", isa_name(isa),
           " path; it has: ", cpu_info().features());
  switch (isa) {
    case Isa::avx512: return kAvx512;
    case Isa::avx2: return kAvx2;
    case Isa::scalar: break;
  }
  return kScalar;
}

const OpTable& ops() {
  static const OpTable& selected = ops(selected_isa());
  return selected;
}

}  // namespace tg::cpu
