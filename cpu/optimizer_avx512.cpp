// The fused optimizer steps' avx512 path (cpu/optimizer_impl.hpp).
#include "cpu/optimizer.hpp"

#include "cpu/optimizer_impl.hpp"

namespace tg::cpu {

void sgd_step_avx512(const SgdConfig& c, std::span<const ParamSlot<float>> s) { optim_impl::sgd<float>(c, s); }
void sgd_step_avx512(const SgdConfig& c, std::span<const ParamSlot<double>> s) { optim_impl::sgd<double>(c, s); }
void adam_step_avx512(const AdamConfig& c, std::span<const ParamSlot<float>> s) { optim_impl::adam<float>(c, s); }
void adam_step_avx512(const AdamConfig& c, std::span<const ParamSlot<double>> s) { optim_impl::adam<double>(c, s); }

}  // namespace tg::cpu
