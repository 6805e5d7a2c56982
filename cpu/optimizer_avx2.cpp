// The fused optimizer steps' AVX2/FMA path (cpu/optimizer_impl.hpp under this unit's flags).
#include "cpu/optimizer.hpp"

#include "cpu/optimizer_impl.hpp"

namespace tg::cpu {

TG_OPTIMIZER_PATH(avx2)

}  // namespace tg::cpu
