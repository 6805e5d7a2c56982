// One model's parameters made equal on every rank of a group, as DataParallel and
// ShardedOptimizer start: checked to be f32 or f64 and contiguous, all on one device (the
// CPU, or a CUDA device: their collectives then go over NCCL), the same list
// (count, sizes, dtypes, device kind) on every rank, then rank 0's values broadcast and
// checked equal everywhere, bit for bit. Errors are tg::Errors naming `op` and `arg`, on
// every rank.
#pragma once

#include <vector>

#include "tilegrad/autograd/tensor.hpp"
#include "tilegrad/dist/process_group.hpp"

namespace tg::dist {

void replicate_parameters(ProcessGroup& group, const std::vector<Tensor>& params, const std::vector<Tensor>& buffers,
                          const char* op, const char* arg);

}  // namespace tg::dist
