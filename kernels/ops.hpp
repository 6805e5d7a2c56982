// The op table: one function pointer per op and dtype, the seam between the layers
// (ggml's backend function table; BLIS's context of kernels).
//
// Every backend (reference here, cpu/ per ISA, cuda/) fills one OpTable, in one visible
// place, and static_asserts that it is complete. Callers above the kernels (autograd,
// benchmarks, the shared test bodies) pick a table and call through it; the raw entries
// trust their input, so public entry points run the check_* functions first.
//
// Adding an op: its contract header, a line in TG_OPS below, a reference, and an entry
// in every backend's table (the static_asserts list what is missing).
#pragma once

#include <cstdint>
#include <type_traits>

#include "tilegrad/kernels/activation.hpp"
#include "tilegrad/kernels/attention.hpp"
#include "tilegrad/kernels/cross_entropy.hpp"
#include "tilegrad/kernels/elementwise.hpp"
#include "tilegrad/kernels/gemm.hpp"
#include "tilegrad/kernels/half.hpp"
#include "tilegrad/kernels/layer_norm.hpp"
#include "tilegrad/kernels/optimizer.hpp"
#include "tilegrad/kernels/random.hpp"
#include "tilegrad/kernels/reduce.hpp"
#include "tilegrad/kernels/softmax.hpp"

namespace tg {

template <class T>
struct OpSignatures {
  using gemm = void (*)(Trans, Trans, index_t, index_t, index_t, T, const T*, index_t,
                        const T*, index_t, T, T*, index_t, const GemmEpilogue<T>&);
  using act_forward = void (*)(Activation, index_t, index_t, const T*, index_t, const T*, T*,
                               index_t);
  using act_backward = void (*)(Activation, index_t, index_t, const T*, index_t, const T*,
                                const T*, index_t, T*, index_t);
  using softmax_forward = void (*)(index_t, index_t, const T*, index_t, T*, index_t);
  using log_softmax_forward = softmax_forward;
  using softmax_backward = void (*)(index_t, index_t, const T*, index_t, const T*, index_t, T*,
                                    index_t);
  using log_softmax_backward = softmax_backward;
  using layer_norm_forward = void (*)(index_t, index_t, const T*, index_t, const T*, const T*,
                                      double, T*, index_t, T*, T*);
  using layer_norm_backward = void (*)(index_t, index_t, const T*, index_t, const T*, index_t,
                                       const T*, const T*, const T*, double, T*, index_t, T*, T*);
  using attention_forward = void (*)(const AttentionForwardArgs<T>&);
  using attention_backward = void (*)(const AttentionBackwardArgs<T>&);
  using reduce = void (*)(Reduce, index_t, index_t, index_t, const T*, index_t, index_t,
                          index_t, T*, index_t, index_t);
  using unary = void (*)(Unary, double, double, const Shape&, const T*, const Shape&, T*);
  using binary = void (*)(Binary, const Shape&, const T*, const Shape&, const T*, const Shape&, T*);
  using where = void (*)(const Shape&, const T*, const Shape&, const T*, const Shape&, const T*,
                         const Shape&, T*);
  using random = void (*)(Random, index_t, T*, double, double, std::uint64_t, std::uint64_t);
  using dropout = void (*)(index_t, const T*, T*, double, std::uint64_t, std::uint64_t);
  using cross_entropy_forward = void (*)(index_t, index_t, const T*, index_t, const index_t*, index_t,
                                         double, T*, T*);
  using cross_entropy_backward = void (*)(index_t, index_t, const T*, index_t, const index_t*, index_t,
                                          double, const T*, const T*, T*, index_t);
  using sgd_step = void (*)(const SgdConfig&, std::span<const ParamSlot<T>>);
  using adam_step = void (*)(const AdamConfig&, std::span<const ParamSlot<T>>);
};

// X(name): every op, in one list.
#define TG_OPS(X)          \
  X(gemm)                  \
  X(act_forward)           \
  X(act_backward)          \
  X(softmax_forward)       \
  X(log_softmax_forward)   \
  X(softmax_backward)      \
  X(log_softmax_backward)  \
  X(layer_norm_forward)    \
  X(layer_norm_backward)   \
  X(attention_forward)     \
  X(attention_backward)    \
  X(reduce)                \
  X(unary)                 \
  X(binary)                \
  X(where)                 \
  X(random)                \
  X(dropout)               \
  X(cross_entropy_forward) \
  X(cross_entropy_backward) \
  X(sgd_step)              \
  X(adam_step)

template <class T>
struct TypedOps {
#define TG_OP_MEMBER(name) typename OpSignatures<T>::name name = nullptr;
  TG_OPS(TG_OP_MEMBER)
#undef TG_OP_MEMBER

  // True when every entry is set; backends static_assert it on their constexpr tables.
  constexpr bool complete() const {
    bool ok = true;
#define TG_OP_SET(name) ok = ok && (name != nullptr);
    TG_OPS(TG_OP_SET)
#undef TG_OP_SET
    return ok;
  }
};

// The 16-bit entries: bf16 or f16 operands (the GEMM's as their bits, std::uint16_t)
// with f32 accumulation; the GEMM writes f32 (cuda/gemm.hpp's contract, every transpose),
// the attention 16-bit outputs and an f32 log-sum-exp (cuda/attention.hpp's). The tensor
// cores serve them: the CUDA table fills them, the CPU tables leave them null, and
// autograd widens 16-bit operands to f32 and takes the f32 entries where they are null.
struct HalfSignatures {
  using gemm_bf16 = void (*)(Trans, Trans, index_t, index_t, index_t, float, const std::uint16_t*, index_t,
                             const std::uint16_t*, index_t, float, float*, index_t, const GemmEpilogue<float>&);
  using gemm_f16 = gemm_bf16;
  using attention_forward_bf16 = void (*)(const AttentionForwardArgs<bfloat16>&, float* lse);
  using attention_backward_bf16 = void (*)(const AttentionBackwardArgs<bfloat16>&, const float* lse);
  using attention_forward_f16 = void (*)(const AttentionForwardArgs<float16>&, float* lse);
  using attention_backward_f16 = void (*)(const AttentionBackwardArgs<float16>&, const float* lse);
};

#define TG_HALF_OPS(X)       \
  X(gemm_bf16)               \
  X(gemm_f16)                \
  X(attention_forward_bf16)  \
  X(attention_backward_bf16) \
  X(attention_forward_f16)   \
  X(attention_backward_f16)

struct HalfOps {
#define TG_HALF_MEMBER(name) HalfSignatures::name name = nullptr;
  TG_HALF_OPS(TG_HALF_MEMBER)
#undef TG_HALF_MEMBER

  // Every entry set (a table that serves 16-bit at all serves all of it), or none.
  constexpr bool all_or_none() const {
    int set = 0, total = 0;
#define TG_HALF_COUNT(name) set += name != nullptr ? 1 : 0, ++total;
    TG_HALF_OPS(TG_HALF_COUNT)
#undef TG_HALF_COUNT
    return set == 0 || set == total;
  }
};

struct OpTable {
  const char* name = "";  // "reference", "cpu-avx2", "cpu-scalar", "cuda"
  TypedOps<float> f32;
  TypedOps<double> f64;
  HalfOps half = {};  // the tensor cores' 16-bit entries: the CUDA table's only

  template <class T> const TypedOps<T>& get() const {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
    if constexpr (std::is_same_v<T, float>) return f32; else return f64;
  }
  constexpr bool complete() const { return f32.complete() && f64.complete(); }
};

// A backend's constexpr table must be complete. GCC cannot fold "&f != nullptr" in a
// constant expression under -fsanitize=undefined (which keeps null-pointer checks), so
// in sanitizer builds this is checked at run time only (tests/test_isa.cpp checks every
// table in every build).
#if defined(TG_SANITIZED)
#define TG_ASSERT_COMPLETE(table, message) static_assert(true)
#else
#define TG_ASSERT_COMPLETE(table, message) static_assert((table).complete(), message)
#endif

// A table every entry of which calls kFail (which throws tg::Error): the entries of a
// dtype a backend does not serve, or of a backend this build lacks.
namespace detail {
template <class F, void (*kFail)()>
struct Failing;
template <class... A, void (*kFail)()>
struct Failing<void (*)(A...), kFail> {
  static void call(A...) { kFail(); }
};
}  // namespace detail

template <class T, void (*kFail)()>
constexpr TypedOps<T> failing_ops() {
  TypedOps<T> t;
#define TG_FAILING_ENTRY(name) t.name = &detail::Failing<typename OpSignatures<T>::name, kFail>::call;
  TG_OPS(TG_FAILING_ENTRY)
#undef TG_FAILING_ENTRY
  return t;
}

// The reference kernels (kernels/reference/): plain loops in double, the oracle.
const OpTable& reference_ops();

// The reference entries for one dtype: where every backend's table starts, so that an op
// a backend has not (yet) implemented falls back to the oracle instead of failing.
template <class T>
constexpr TypedOps<T> reference_typed_ops() {
  TypedOps<T> t;
  t.gemm = &gemm_ref<T>;
  t.act_forward = &act_forward_ref<T>;
  t.act_backward = &act_backward_ref<T>;
  t.softmax_forward = &softmax_forward_ref<T>;
  t.log_softmax_forward = &log_softmax_forward_ref<T>;
  t.softmax_backward = &softmax_backward_ref<T>;
  t.log_softmax_backward = &log_softmax_backward_ref<T>;
  t.layer_norm_forward = &layer_norm_forward_ref<T>;
  t.layer_norm_backward = &layer_norm_backward_ref<T>;
  t.attention_forward = &attention_forward_ref<T>;
  t.attention_backward = &attention_backward_ref<T>;
  t.reduce = &reduce_ref<T>;
  t.unary = &unary_ref<T>;
  t.binary = &binary_ref<T>;
  t.where = &where_ref<T>;
  t.random = &random_ref<T>;
  t.dropout = &dropout_ref<T>;
  t.cross_entropy_forward = &cross_entropy_forward_ref<T>;
  t.cross_entropy_backward = &cross_entropy_backward_ref<T>;
  t.sgd_step = &sgd_step_ref<T>;
  t.adam_step = &adam_step_ref<T>;
  return t;
}

}  // namespace tg
