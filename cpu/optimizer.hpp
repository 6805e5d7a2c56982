// CPU optimizer steps (kernels/optimizer.hpp), per path.
#pragma once

#include "tilegrad/kernels/optimizer.hpp"

namespace tg::cpu {

void sgd_step_portable(const SgdConfig& c, std::span<const ParamSlot<float>> slots);
void sgd_step_portable(const SgdConfig& c, std::span<const ParamSlot<double>> slots);
void adam_step_portable(const AdamConfig& c, std::span<const ParamSlot<float>> slots);
void adam_step_portable(const AdamConfig& c, std::span<const ParamSlot<double>> slots);
void sgd_step_avx2(const SgdConfig& c, std::span<const ParamSlot<float>> slots);
void sgd_step_avx2(const SgdConfig& c, std::span<const ParamSlot<double>> slots);
void adam_step_avx2(const AdamConfig& c, std::span<const ParamSlot<float>> slots);
void adam_step_avx2(const AdamConfig& c, std::span<const ParamSlot<double>> slots);
void sgd_step_avx512(const SgdConfig& c, std::span<const ParamSlot<float>> slots);
void sgd_step_avx512(const SgdConfig& c, std::span<const ParamSlot<double>> slots);
void adam_step_avx512(const AdamConfig& c, std::span<const ParamSlot<float>> slots);
void adam_step_avx512(const AdamConfig& c, std::span<const ParamSlot<double>> slots);
void sgd_step_neon(const SgdConfig& c, std::span<const ParamSlot<float>> slots);
void sgd_step_neon(const SgdConfig& c, std::span<const ParamSlot<double>> slots);
void adam_step_neon(const AdamConfig& c, std::span<const ParamSlot<float>> slots);
void adam_step_neon(const AdamConfig& c, std::span<const ParamSlot<double>> slots);

}  // namespace tg::cpu
