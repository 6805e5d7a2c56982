// Launching kernels on the SIMT emulator for the emulator tests (test_simt_*): a grid of
// blocks, small grids that make grid-stride loops go round, and the reductions' launch
// sequence (cuda/reduce.cuh, launch_reduce) for the reductions and layer norm's dgamma
// and dbeta.
#pragma once

#include "tests/simt/simt.hpp"
// The kernels, compiled for the host against the emulator.
#include "tilegrad/cuda/reduce.cuh"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace tg::testing {

namespace rk = cuda::reduce_kernels;

// `grid` blocks of threads_x x threads_y threads, no dynamic shared memory.
inline void launch(simt::Dim3 grid, unsigned threads_x, unsigned threads_y, const std::function<void()>& k) {
  simt::launch(grid, {threads_x, threads_y, 1}, 0, k);
}
// blocks_x x blocks_y blocks of `threads` threads with `shared` bytes of dynamic shared memory.
inline void launch(unsigned blocks_x, unsigned blocks_y, unsigned threads, std::size_t shared,
                   const std::function<void()>& k) {
  simt::launch({blocks_x, blocks_y, 1}, {threads, 1, 1}, shared, k);
}
// A grid-stride loop's grid for n items, kept small (at most 3 blocks of 64 threads): the
// loops go round.
inline simt::Dim3 small_grid(std::int64_t n) { return {unsigned(std::clamp<std::int64_t>((n + 63) / 64, 1, 3)), 1, 1}; }

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
    launch({unsigned((outer + 7) / 8), gz, 1}, 256, 1, [&] { rk::reduce_rows<32, Op>(outer, n, plan.chunk_len, load, out); });
  else if (plan.rows)
    launch({unsigned(outer), gz, 1}, 256, 1, [&] { rk::reduce_rows<256, Op>(outer, n, plan.chunk_len, load, out); });
  else  // fewer blocks along outer than outputs: the o loop goes round
    launch({unsigned((inner + 31) / 32), unsigned(std::min<i64>(outer, 3)), gz}, 32, 8, [&] { rk::reduce_cols<Op>(outer, n, inner, plan.chunk_len, load, out); });
  if (plan.chunks > 1) {
    const rk::Out final_out{y, yo, yi, nullptr, mean, n, outer, inner};
    launch(small_grid(outer * inner), 64, 1, [&] { rk::reduce_chunks<Op>(outer, inner, int(plan.chunks), ws.data(), final_out); });
  }
}

}  // namespace tg::testing
