// One model's parameters made equal on every rank of a group, as DataParallel and
// ShardedOptimizer start: checked to be CPU, f32 or f64 and contiguous, the same list
// (count, sizes, dtypes) on every rank, then rank 0's values broadcast and checked equal
// everywhere, bit for bit. Errors are tg::Errors naming `op` and `arg`, on every rank.
#pragma once

#include <vector>

#include "tilegrad/autograd/tensor.hpp"
#include "tilegrad/dist/process_group.hpp"

namespace tg::dist {

void replicate_parameters(ProcessGroup& group, const std::vector<Tensor>& params, const std::vector<Tensor>& buffers,
                          const char* op, const char* arg);

}  // namespace tg::dist
