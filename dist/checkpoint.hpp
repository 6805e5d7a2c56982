// Training checkpoints under several ranks: nn's safetensors checkpoint (nn/checkpoint.hpp)
// written once, by rank 0, from state every rank helped gather.
//
//   dist::save_checkpoint(pg, "ck.safetensors", {&model, &opt, &sched, &gen}, {{"epoch", e}});
//   ...
//   nn::load_checkpoint("ck.safetensors", {&model, &opt, &sched, &gen});  // on every rank
//
// save_checkpoint is collective: every rank calls it with the same parts. Each rank
// makes the optimizer's state dict (a ShardedOptimizer's gathers the shards, so every
// rank must take part); rank 0 writes the file (atomically: a temporary file renamed);
// then rank 0's outcome is broadcast, so every rank returns once the file is whole, or
// throws a tg::Error naming the file if rank 0 could not write it. Rank 0's model,
// schedule and generator are written: after DataParallel or ShardedOptimizer steps the
// models are equal on every rank, and the schedule and data order are the same.
// Resuming is nn::load_checkpoint on every rank (a file every rank can read: a shared
// file system across machines); a ShardedOptimizer keeps its shard of the state, under
// any rank count.
#pragma once

#include <map>
#include <string>

#include "tilegrad/dist/process_group.hpp"
#include "tilegrad/nn/checkpoint.hpp"

namespace tg::dist {

void save_checkpoint(ProcessGroup& group, const std::string& path, const nn::TrainingState& state,
                     const std::map<std::string, double>& extra = {});

}  // namespace tg::dist
