// The fused optimizer steps' portable path (cpu/optimizer_impl.hpp).
#include "tilegrad/cpu/optimizer.hpp"

#include "tilegrad/cpu/optimizer_impl.hpp"

namespace tg::cpu {

TG_OPTIMIZER_PATH(portable)

}  // namespace tg::cpu
