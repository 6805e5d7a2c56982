// Training checkpoints in one safetensors file: the model's state_dict ("model.*"),
// the optimizer's ("optimizer.*"), the schedule's ("scheduler.*"), the generator's
// seed and offset ("rng.*") and caller values such as the epoch ("extra.*"). Resuming
// from it continues a CPU run bit for bit, as if it had not stopped (tests/test_nn.cpp).
#pragma once

#include <map>
#include <string>

#include "tilegrad/nn/module.hpp"
#include "tilegrad/nn/optim.hpp"

namespace tg::nn {

struct TrainingState {
  Module* model = nullptr;
  Optimizer* optimizer = nullptr;   // optional
  LRScheduler* scheduler = nullptr; // optional
  Generator* generator = nullptr;   // optional (dropout, data order)
};

// optimizer_state: the optimizer's state_dict() already made, written in its place
// (dist::save_checkpoint makes it on every rank first); null: made here.
void save_checkpoint(const std::string& path, const TrainingState& state,
                     const std::map<std::string, double>& extra = {}, const StateDict* optimizer_state = nullptr);
// Restores every part present in `state`; returns the extra values.
std::map<std::string, double> load_checkpoint(const std::string& path, const TrainingState& state);

}  // namespace tg::nn
