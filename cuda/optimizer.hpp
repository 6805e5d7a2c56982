// CUDA optimizer steps: the CPU kernels' contract (kernels/optimizer.hpp) on device pointers, asynchronous on the current device's
// stream, checked like the CPU entries. Plain C++: callers need no nvcc. Without CUDA in
// the build they throw tg::Error.
#pragma once

#include <span>

#include "tilegrad/kernels/optimizer.hpp"

namespace tg::cuda {

// One launch per 24 parameters (a multi-tensor apply); the slots' arrays on the device.
void sgd_step(const SgdConfig& c, std::span<const ParamSlot<float>> slots);
void adam_step(const AdamConfig& c, std::span<const ParamSlot<float>> slots);

}  // namespace tg::cuda
