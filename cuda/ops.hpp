// The CUDA backend's op table (kernels/ops.hpp): every op autograd's tensors need, in
// f32, with the CPU kernels' signatures, on device pointers, queued on the current stream
// (no host synchronization). f64 entries throw tg::Error (f32 only on CUDA). Each op's
// entries have a header of their own (cuda/<op>.hpp), all included here. Plain C++:
// callers need no nvcc. Without CUDA in the build every entry throws.
#pragma once

#include "tilegrad/cuda/activation.hpp"
#include "tilegrad/cuda/attention.hpp"
#include "tilegrad/cuda/convert.hpp"
#include "tilegrad/cuda/cross_entropy.hpp"
#include "tilegrad/cuda/elementwise.hpp"
#include "tilegrad/cuda/gemm.hpp"
#include "tilegrad/cuda/layer_norm.hpp"
#include "tilegrad/cuda/optimizer.hpp"
#include "tilegrad/cuda/random.hpp"
#include "tilegrad/cuda/reduce.hpp"
#include "tilegrad/cuda/softmax.hpp"
#include "tilegrad/kernels/ops.hpp"

namespace tg::cuda {

const OpTable& ops();

}  // namespace tg::cuda
