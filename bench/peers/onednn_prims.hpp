// oneDNN primitives (eltwise, softmax, layer normalization; forward and backward) built
// once and executed many times, for the benchmarks of those ops. Compiled only when
// oneDNN was found (TG_PEER_ONEDNN).
#pragma once

#include <memory>
#include <string>

#include "tilegrad/kernels/activation.hpp"

namespace tg::peers {

class OnednnPrimitive {
 public:
  enum class Kind {
    eltwise_fwd,     // run(x, -, y)
    eltwise_bwd,     // run(x, dy, dx)
    softmax_fwd,     // run(x, -, y)
    softmax_bwd,     // run(y, dy, dx)
    log_softmax_fwd,
    log_softmax_bwd,
    layer_norm_fwd,  // run(x, -, y), mean and variance kept inside
    layer_norm_bwd,  // run(x, dy, dx), with the mean and variance of the forward
  };
  // Rows x cols, row-major, contiguous. Throws tg::Error if oneDNN refuses.
  OnednnPrimitive(Kind kind, index_t rows, index_t cols, Activation act = {});
  ~OnednnPrimitive();
  OnednnPrimitive(const OnednnPrimitive&) = delete;
  OnednnPrimitive& operator=(const OnednnPrimitive&) = delete;

  void run(const float* in0, const float* in1, float* out);
  const std::string& implementation() const;  // oneDNN's name for the kernel it chose

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace tg::peers
