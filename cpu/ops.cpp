#include "tilegrad/cpu/ops.hpp"

#include "tilegrad/cpu/activation.hpp"
#include "tilegrad/cpu/attention.hpp"
#include "tilegrad/cpu/cross_entropy.hpp"
#include "tilegrad/cpu/elementwise.hpp"
#include "tilegrad/cpu/optimizer.hpp"
#include "tilegrad/cpu/reduce.hpp"
#include "tilegrad/cpu/gemm.hpp"
#include "tilegrad/cpu/layer_norm.hpp"
#include "tilegrad/cpu/softmax.hpp"
#include "tilegrad/kernels/error.hpp"

#include <type_traits>

namespace tg::cpu {

namespace {

// The ops the CPU serves with the reference kernels, each by name, so that a table that
// forgets one of its own kernels fails TG_ASSERT_COMPLETE instead of running the
// reference unnoticed: random draws and dropout (the Philox reference already makes one
// pass per element, the bits every backend must give), and in double the row ops,
// attention and cross-entropy (double is the oracle's own precision, where gradcheck
// runs; the fast paths are float).
template <class T>
constexpr void set_reference_entries(TypedOps<T>& t) {
  constexpr TypedOps<T> ref = reference_typed_ops<T>();
  t.random = ref.random;
  t.dropout = ref.dropout;
  if constexpr (std::is_same_v<T, double>) {
    t.act_forward = ref.act_forward;
    t.act_backward = ref.act_backward;
    t.softmax_forward = ref.softmax_forward;
    t.log_softmax_forward = ref.log_softmax_forward;
    t.softmax_backward = ref.softmax_backward;
    t.log_softmax_backward = ref.log_softmax_backward;
    t.layer_norm_forward = ref.layer_norm_forward;
    t.layer_norm_backward = ref.layer_norm_backward;
    t.attention_forward = ref.attention_forward;
    t.attention_backward = ref.attention_backward;
    t.cross_entropy_forward = ref.cross_entropy_forward;
    t.cross_entropy_backward = ref.cross_entropy_backward;
  }
}

// Which kernel serves which op, per path: ours, and the reference's named above.
template <class T>
constexpr TypedOps<T> scalar_ops() {
  TypedOps<T> t;  // every entry empty until set
  set_reference_entries(t);
  t.gemm = &gemm_portable<T>;
  TG_SET_ELEMENTWISE_ENTRIES(t, portable);
  if constexpr (std::is_same_v<T, float>) {
    TG_SET_ROW_OP_ENTRIES(t, portable);
  }
  return t;
}

// A SIMD path's tables: its float-and-double kernels over the scalar table, then its
// float-only ones. Each starts from scalar_ops, not from a narrower path's table, so a
// kernel missing from a path would run the portable one, never another path's width.
#define TG_SIMD_PATH_TABLES(path)                      \
  template <class T>                                   \
  constexpr TypedOps<T> path##_ops_both() {            \
    TypedOps<T> t = scalar_ops<T>();                   \
    TG_SET_ELEMENTWISE_ENTRIES(t, path);               \
    return t;                                          \
  }                                                    \
  constexpr TypedOps<float> path##_ops_f32() {         \
    TypedOps<float> t = path##_ops_both<float>();      \
    t.gemm = &gemm_##path;                             \
    TG_SET_ROW_OP_ENTRIES(t, path);                    \
    return t;                                          \
  }
constexpr OpTable kScalar{"cpu-scalar", scalar_ops<float>(), scalar_ops<double>()};
TG_ASSERT_COMPLETE(kScalar, "the scalar table lacks an op of TG_OPS");
#if TG_X86_PATHS  // the AVX2 and AVX-512 units exist on x86-64 builds only (cpu/CMakeLists.txt)
TG_SIMD_PATH_TABLES(avx2)
TG_SIMD_PATH_TABLES(avx512)
constexpr OpTable kAvx2{"cpu-avx2", avx2_ops_f32(), avx2_ops_both<double>()};
constexpr OpTable kAvx512{"cpu-avx512", avx512_ops_f32(), avx512_ops_both<double>()};
TG_ASSERT_COMPLETE(kAvx2, "the avx2 table lacks an op of TG_OPS");
TG_ASSERT_COMPLETE(kAvx512, "the avx512 table lacks an op of TG_OPS");
#endif
#if TG_NEON_PATHS  // the NEON units exist on aarch64 builds only
TG_SIMD_PATH_TABLES(neon)
constexpr OpTable kNeon{"cpu-neon", neon_ops_f32(), neon_ops_both<double>()};
TG_ASSERT_COMPLETE(kNeon, "the neon table lacks an op of TG_OPS");
#endif
#undef TG_SIMD_PATH_TABLES

}  // namespace

const OpTable& ops(Isa isa) {
  TG_CHECK(isa_supported(isa), "cpu::ops", "isa", "this CPU cannot run the ", isa_name(isa),
           " path; it has: ", cpu_info().features());
#if TG_X86_PATHS
  if (isa == Isa::avx512) return kAvx512;
  if (isa == Isa::avx2) return kAvx2;
#endif
#if TG_NEON_PATHS
  if (isa == Isa::neon) return kNeon;
#endif
  return kScalar;
}

const OpTable& ops() {
  static const OpTable& selected = ops(selected_isa());
  return selected;
}

}  // namespace tg::cpu
