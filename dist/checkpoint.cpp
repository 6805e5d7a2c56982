// dist::save_checkpoint (dist/checkpoint.hpp).
#include "tilegrad/dist/checkpoint.hpp"

#include <exception>

#include "tilegrad/kernels/error.hpp"

namespace tg::dist {

void save_checkpoint(ProcessGroup& group, const std::string& path, const nn::TrainingState& state,
                     const std::map<std::string, double>& extra) {
  // Every rank: the optimizer's state (a collective for a ShardedOptimizer).
  nn::StateDict optimizer;
  if (state.optimizer) optimizer = state.optimizer->state_dict();
  Tensor ok = Tensor::ones(std::vector<index_t>{1});
  std::exception_ptr failure;
  if (group.rank() == 0) {
    try {
      nn::save_checkpoint(path, state, extra, state.optimizer ? &optimizer : nullptr);
    } catch (...) {
      failure = std::current_exception();
      ok.data<float>()[0] = 0;
    }
  }
  group.broadcast(ok, 0);  // the others wait here until the file is whole (or failed)
  if (failure) std::rethrow_exception(failure);
  TG_CHECK(ok.data<float>()[0] == 1, "dist.save_checkpoint", "path", "rank 0 could not write ", path);
}

}  // namespace tg::dist
