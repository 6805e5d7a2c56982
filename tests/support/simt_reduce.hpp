// The reductions' launch sequence (cuda/reduce.cuh, launch_reduce) on the SIMT emulator,
// for the emulator tests of the reductions and of layer norm's dgamma and dbeta.
#pragma once

#include "tests/simt/simt.hpp"
// The kernels, compiled for the host against the emulator.
#include "tilegrad/cuda/reduce.cuh"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace tg::testing {

namespace rk = cuda::reduce_kernels;

// launch_reduce's sequence, on the emulator: plan_reduce's kernel over chunks (partials
// in a host workspace), then reduce_chunks, with small grids so that the loops go round.
template <class Op, class Loader>
void emulate_reduce(bool mean, std::int64_t outer, std::int64_t n, std::int64_t inner, Loader load, float* y,
                    std::int64_t yo, std::int64_t yi, int sms) {
  using i64 = std::int64_t;
  if (outer == 0 || inner == 0) return;
  const rk::ReducePlan plan = rk::plan_reduce(outer, n, inner, sms);
  rk::Out out{y, yo, yi, nullptr, mean, n, outer, inner};
  std::vector<double> ws;
  if (plan.chunks > 1) {
    ws.assign(std::size_t(plan.chunks * outer * inner), std::nan(""));
    out.y = nullptr, out.part = ws.data();
  }
  const unsigned gz = unsigned(plan.chunks);
  if (plan.rows && plan.warp_rows)
    simt::launch({unsigned((outer + 7) / 8), gz, 1}, {256, 1, 1}, 0,
                 [&] { rk::reduce_rows<32, Op>(outer, n, plan.chunk_len, load, out); });
  else if (plan.rows)
    simt::launch({unsigned(outer), gz, 1}, {256, 1, 1}, 0,
                 [&] { rk::reduce_rows<256, Op>(outer, n, plan.chunk_len, load, out); });
  else  // fewer blocks along outer than outputs: the o loop goes round
    simt::launch({unsigned((inner + 31) / 32), unsigned(std::min<i64>(outer, 3)), gz}, {32, 8, 1}, 0,
                 [&] { rk::reduce_cols<Op>(outer, n, inner, plan.chunk_len, load, out); });
  if (plan.chunks > 1) {
    const rk::Out final_out{y, yo, yi, nullptr, mean, n, outer, inner};
    simt::launch({unsigned(std::clamp<i64>((outer * inner + 63) / 64, 1, 3)), 1, 1}, {64, 1, 1}, 0,
                 [&] { rk::reduce_chunks<Op>(outer, inner, int(plan.chunks), ws.data(), final_out); });
  }
}

}  // namespace tg::testing
