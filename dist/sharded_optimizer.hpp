// Optimizer state sharded across the ranks (ZeRO stage 1, as DeepSpeed's and llm.c's):
// every rank holds the whole model, but only 1/N of the optimizer's state. An
// nn::Optimizer, so the schedulers, GradScaler and nn::save_checkpoint take it as they
// take the optimizer inside it.
//
//   auto model = ...;                                   // the same model on every rank
//   dist::ShardedOptimizer opt(model->parameters(), pg, [](std::vector<Tensor> shard) {
//     return std::make_unique<nn::AdamW>(std::move(shard), 1e-3);
//   });
//   for (...) {
//     opt.zero_grad();
//     loss_fn((*model)(x_local), y_local).backward();  // local gradients, no communication
//     opt.step();                                      // reduce-scatter, shard step, all-gather
//   }
//
// The parameters, in order, are laid end to end in one flat array of n elements (one
// dtype: f32 or f64), padded with zeros to a multiple of the rank count N; rank r owns
// elements [r s, (r + 1) s), s = ceil(n / N). Construction broadcasts the parameters from
// rank 0 (checked equal after, as DataParallel does) and makes the inner optimizer, by
// the factory given, over one parameter: the rank's shard, s elements. Its state (Adam's
// two moments, SGD's momentum) is s elements a buffer instead of n.
//
// step(), collective, in three parts:
//   1. the gradients, laid out the same way (a parameter without one adds zeros), are
//      averaged across the ranks and scattered: each rank receives its shard's average
//      (one reduce_scatter, half an all-reduce's traffic);
//   2. the inner optimizer steps the shard: the fused SGD / Adam kernels of the op table;
//   3. the shards are gathered into every rank's parameters (one all_gather).
// The result equals DataParallel + the same optimizer on the whole model, element for
// element, wherever the optimizer's update is elementwise (SGD, Adam, AdamW): the same
// averages (a reduce-scatter sums as the all-reduce does), the same kernel arithmetic on
// each element. Gradients are not overlapped with backward (they are scattered after it).
// nn::clip_grad_norm on the model before step() would clip each rank's local gradients,
// not their average: set_max_grad_norm clips the averaged gradients by their global norm
// inside step() instead.
//
// state_dict() (collective) gathers the shards and returns the state an unsharded
// optimizer of the same kind would have: "lr", "steps", "state.<i>.<buffer>" shaped as
// parameter i. load_state_dict() takes such a state (from either kind, written under any
// rank count) and keeps this rank's shard of it: checkpoints move between rank counts.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "tilegrad/autograd/tensor.hpp"
#include "tilegrad/dist/process_group.hpp"
#include "tilegrad/nn/optim.hpp"

namespace tg::dist {

class ShardedOptimizer : public nn::Optimizer {
 public:
  using Factory = std::function<std::unique_ptr<nn::Optimizer>(std::vector<Tensor> shard)>;
  // params: contiguous, one dtype (f32 or f64), on one device (the CPU, whose collectives
  // run over MPI, or a CUDA device, over NCCL: the flat arrays and the shard's optimizer
  // state then live on that device), the same list on every rank. The learning rate is
  // the inner optimizer's, and set_lr() sets it there from the next step.
  ShardedOptimizer(std::vector<Tensor> params, const ProcessGroup& group, const Factory& make);
  ~ShardedOptimizer() override;
  ShardedOptimizer(const ShardedOptimizer&) = delete;
  ShardedOptimizer& operator=(const ShardedOptimizer&) = delete;

  void step() override;  // collective (above)
  // From the next step() on, scale the averaged gradients by max_norm / (norm + 1e-6)
  // when their global L2 norm exceeds max_norm (nn::clip_grad_norm's rule, applied
  // between the reduce-scatter and the shard's update). 0 turns it off.
  void set_max_grad_norm(double max_norm);
  // The global L2 norm of the last step's averaged gradients, before clipping (computed
  // only while a max norm is set; NaN otherwise).
  double last_grad_norm() const;

  nn::Optimizer& inner();  // the shard's optimizer
  // This rank's elements of the flat layout: [begin, end) (the shard may reach into the
  // padding past the last parameter).
  index_t shard_begin() const;
  index_t shard_end() const;
  index_t total_elements() const;  // n, without padding

  nn::StateDict state_dict() const override;                  // collective: every rank gets the whole state
  void load_state_dict(const nn::StateDict& state) override;  // local: keeps this rank's shard

  struct State;  // dist/sharded_optimizer.cpp

 protected:
  int buffer_count() const override { return 0; }  // the state is the inner optimizer's
  const char* buffer_name(int) const override { return ""; }

 private:
  std::unique_ptr<State> s_;
};

}  // namespace tg::dist
