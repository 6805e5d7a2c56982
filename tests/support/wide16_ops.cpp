// wide16_ops(): the *_impl.hpp templates instantiated over simd::P16 (see the header),
// through the same path macros as the shipped paths' translation units.
#include "tests/support/wide16_ops.hpp"

#include "tests/support/testing.hpp"

#include "tilegrad/cpu/vmath/vec_wide.hpp"
// (the lane type before the generic code that uses it)
#include "tilegrad/cpu/activation_impl.hpp"
#include "tilegrad/cpu/attention_impl.hpp"
#include "tilegrad/cpu/cross_entropy_impl.hpp"
#include "tilegrad/cpu/elementwise_impl.hpp"
#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/cpu/layer_norm_impl.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/cpu/softmax_impl.hpp"

namespace tg::cpu {

// External linkage, as the shipped paths' entries: a path macro defines a whole set,
// some of which the table below leaves out.
TG_ACTIVATION_PATH(wide16, simd::P16)
TG_SOFTMAX_PATH(wide16, simd::P16)
TG_LAYER_NORM_PATH(wide16, simd::P16)
TG_ATTENTION_PATH(wide16, simd::P16, gemm_impl::arch_portable_f32())
TG_ELEMENTWISE_PATH(wide16, simd::P16)
TG_CROSS_ENTROPY_PATH(wide16, simd::P16)

namespace {

OpTable make() {
  OpTable t = ops(Isa::scalar);
  t.name = "cpu-wide16";
  TG_SET_ROW_OP_ENTRIES(t.f32, wide16);
  t.f32.unary = &unary_wide16;
  t.f64.unary = &unary_wide16;
  return t;
}

}  // namespace
}  // namespace tg::cpu

namespace tg::testing {

void math_array_wide16(cpu::MathFn fn, index_t n, const float* x, float* y) { cpu::math_array_wide16(fn, n, x, y); }

const OpTable& wide16_ops() {
  static const OpTable t = cpu::make();
  return t;
}

std::vector<const OpTable*> cpu_tables() {
  std::vector<const OpTable*> v;
  for (cpu::Isa isa : cpu::supported_isas()) v.push_back(&cpu::ops(isa));
  if (!emulated()) v.push_back(&wide16_ops());  // its x86 runs cover it; under qemu it costs the most
  return v;
}

std::vector<CpuImpl> cpu_implementations(bool with_wide16) {
  std::vector<CpuImpl> v;
  for (const OpTable* table : cpu_tables()) {
    if (!with_wide16 && table == &wide16_ops()) continue;
    for (int t : thread_counts()) v.push_back({table->name, &table->f32, t});
  }
  return v;
}

}  // namespace tg::testing
