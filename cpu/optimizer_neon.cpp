// The fused optimizer steps' NEON path (aarch64): cpu/optimizer_impl.hpp, vectorized by
// the compiler with Advanced SIMD.
#include "tilegrad/cpu/optimizer.hpp"

#include "tilegrad/cpu/optimizer_impl.hpp"

namespace tg::cpu {

TG_OPTIMIZER_PATH(neon)

}  // namespace tg::cpu
