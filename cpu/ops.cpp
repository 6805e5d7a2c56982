#include "cpu/ops.hpp"

#include "kernels/error.hpp"

namespace tg::cpu {

namespace {

// No CPU kernel has landed yet: both paths serve the reference entries. The CPU GEMM,
// activation/softmax and attention issues replace them here, one line per op.
constexpr OpTable kScalar{"cpu-scalar", reference_typed_ops<float>(), reference_typed_ops<double>()};
constexpr OpTable kAvx2{"cpu-avx2", reference_typed_ops<float>(), reference_typed_ops<double>()};
TG_ASSERT_COMPLETE(kScalar, "the scalar table lacks an op of TG_OPS");
TG_ASSERT_COMPLETE(kAvx2, "the avx2 table lacks an op of TG_OPS");

}  // namespace

const OpTable& ops(Isa isa) {
  TG_CHECK(isa_supported(isa), "cpu::ops", "isa", "this CPU cannot run the ", isa_name(isa),
           " path; it has: ", cpu_info().features());
  return isa == Isa::avx2 ? kAvx2 : kScalar;
}

const OpTable& ops() {
  static const OpTable& selected = ops(selected_isa());
  return selected;
}

}  // namespace tg::cpu
