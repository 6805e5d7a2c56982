// The reference backend's op table: every entry is a *_ref function.
#include "tilegrad/kernels/ops.hpp"

namespace tg {

namespace {
constexpr OpTable kReference{"reference", reference_typed_ops<float>(),
                             reference_typed_ops<double>()};
TG_ASSERT_COMPLETE(kReference, "the reference table must have every op of TG_OPS");
}  // namespace

const OpTable& reference_ops() { return kReference; }

}  // namespace tg
