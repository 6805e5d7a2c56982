// The fused optimizer steps' AVX2/FMA path (cpu/optimizer_impl.hpp under this unit's flags).
#include "tilegrad/cpu/optimizer.hpp"

#include "tilegrad/cpu/optimizer_impl.hpp"

namespace tg::cpu {

TG_OPTIMIZER_PATH(avx2)

}  // namespace tg::cpu
