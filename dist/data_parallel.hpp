// Data-parallel training over a ProcessGroup, as PyTorch's DistributedDataParallel: every
// rank holds the whole model, trains on its own part of each global batch, and the
// gradients are averaged across ranks before each optimizer step.
//
//   auto model = std::make_shared<nn::Sequential>(...);
//   dist::DataParallel ddp(model, dist::ProcessGroup::world());
//   nn::SGD opt(model->parameters(), 0.1);
//   for (...) {
//     opt.zero_grad();
//     loss_fn(ddp(x_local), y_local).backward();   // buckets all-reduce during backward
//     ddp.synchronize();                            // waits; .grad = the ranks' average
//     opt.step();
//   }
//
// - Construction broadcasts every parameter and buffer from rank 0 (so the ranks start
//   equal whatever their seeds) and checks afterwards that they are, bit for bit.
// - Gradients go into buckets of about Options::bucket_mib, in the reverse of the
//   parameters' registration order (the order backward usually produces them). A hook on
//   each parameter copies its gradient into its bucket the moment it is accumulated; the
//   moment a bucket is full, and every bucket before it has started, its asynchronous
//   all-reduce (avg) starts, while backward goes on with the layers below. Buckets start in
//   the same order on every rank, so their collectives always match.
// - synchronize() starts the buckets still waiting, waits for all of them and writes the
//   averages into .grad. A parameter that got no gradient in the step on this rank (an
//   unused branch) adds zeros to its average, so its .grad becomes the other ranks' sum
//   over the rank count, and 0 where no rank used it (PyTorch's find_unused_parameters
//   behaviour).
// - no_sync(): backward accumulates into .grad locally and starts nothing; the first
//   backward after it reduces the accumulated sum (gradient accumulation).
// Parameters: f32 or f64, the same list and shapes on every rank (checked), on the CPU
// (MPI) or all on one CUDA device a rank (NCCL: the buckets live on that device, their
// all-reduces are ordered against the current stream by events, and synchronize() makes
// the current stream wait, not the host; compiled in every CUDA build, not yet run on a
// GPU).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "tilegrad/autograd/tensor.hpp"
#include "tilegrad/dist/process_group.hpp"
#include "tilegrad/nn/module.hpp"

namespace tg::dist {

struct DataParallelOptions {
  double bucket_mib = 25;         // gradient bytes per bucket, as PyTorch's default
  bool broadcast_buffers = true;  // also broadcast the module's buffers at construction
};

class DataParallel {
 public:
  DataParallel(std::shared_ptr<nn::Module> module, const ProcessGroup& group, DataParallelOptions options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  Tensor operator()(const Tensor& x) { return (*module_)(x); }
  nn::Module& module() { return *module_; }
  const ProcessGroup& group() const;

  // Completes this step's gradient averaging (see above); call after backward, before
  // the optimizer step. A no-op inside no_sync().
  void synchronize();

  // While alive, backward starts no communication (gradient accumulation).
  class NoSync {
   public:
    ~NoSync();
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    friend class DataParallel;
    explicit NoSync(DataParallel& d);
    DataParallel* d_;
    bool saved_;
  };
  NoSync no_sync() { return NoSync(*this); }

  // The buckets: how many, and for each the parameter indices (registration order) in it.
  std::vector<std::vector<int>> buckets() const;
  // Of the last step's buckets, how many started their all-reduce from backward's hooks
  // while other parameters' gradients were still to come: communication that overlapped
  // the rest of backward.
  int started_during_backward() const;

  struct State;  // dist/data_parallel.cpp

 private:
  std::shared_ptr<nn::Module> module_;
  std::shared_ptr<State> s_;
};

}  // namespace tg::dist
