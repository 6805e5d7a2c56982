// The fused optimizer steps' portable path (cpu/optimizer_impl.hpp).
#include "cpu/optimizer.hpp"

#include "cpu/optimizer_impl.hpp"

namespace tg::cpu {

TG_OPTIMIZER_PATH(portable)

}  // namespace tg::cpu
