// The CPU backend: one op table per ISA path (cpu/isa.hpp).
//
// Every table starts from the reference entries and replaces those that cpu/ implements,
// so an op without a CPU kernel yet still runs (on the oracle) instead of failing; the
// table in cpu/ops.cpp is the one place that says which kernel serves which op.
#pragma once

#include "cpu/isa.hpp"
#include "kernels/ops.hpp"

namespace tg::cpu {

const OpTable& ops();         // the path of selected_isa(), chosen on first use
const OpTable& ops(Isa isa);  // a given path; tg::Error if this CPU cannot run it

}  // namespace tg::cpu
