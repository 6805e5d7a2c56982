// The CPU backend: one op table per ISA path (cpu/isa.hpp).
//
// Every table starts from the reference entries and replaces those that cpu/ implements,
// so an op without a CPU kernel yet still runs (on the oracle) instead of failing; the
// table in cpu/ops.cpp is the one place that says which kernel serves which op.
#pragma once

#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/kernels/ops.hpp"

namespace tg::cpu {

const OpTable& ops();         // the path of selected_isa(), chosen on first use
const OpTable& ops(Isa isa);  // a given path; tg::Error if this CPU cannot run it

// The float entries of the row-wise ops that each lane-type path defines through its
// *_impl.hpp path macros (activations, softmax and log-softmax, layer norm, attention,
// cross-entropy), set into the TypedOps<float> `t` for the path suffix: the one list
// that the shipped tables (cpu/ops.cpp) and the tests' 16-lane table share.
#define TG_SET_ROW_OP_ENTRIES(t, path)                         \
  (t).act_forward = &act_forward_##path;                       \
  (t).act_backward = &act_backward_##path;                     \
  (t).softmax_forward = &softmax_forward_##path;               \
  (t).log_softmax_forward = &log_softmax_forward_##path;       \
  (t).softmax_backward = &softmax_backward_##path;             \
  (t).log_softmax_backward = &log_softmax_backward_##path;     \
  (t).layer_norm_forward = &layer_norm_forward_##path;         \
  (t).layer_norm_backward = &layer_norm_backward_##path;       \
  (t).attention_forward = &attention_forward_##path;           \
  (t).attention_backward = &attention_backward_##path;         \
  (t).cross_entropy_forward = &cross_entropy_forward_##path;   \
  (t).cross_entropy_backward = &cross_entropy_backward_##path

// The entries that serve float and double alike (each path's overloads pick T).
#define TG_SET_ELEMENTWISE_ENTRIES(t, path) \
  (t).unary = &unary_##path;                \
  (t).binary = &binary_##path;              \
  (t).where = &where_##path;                \
  (t).reduce = &reduce_##path;              \
  (t).sgd_step = &sgd_step_##path;          \
  (t).adam_step = &adam_step_##path

}  // namespace tg::cpu
