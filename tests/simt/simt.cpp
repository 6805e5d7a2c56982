// The host SIMT emulator (tests/simt/simt.hpp says what it does and checks): fibers on
// ucontext, one per CUDA thread of the running block, and the collectives they meet at.
#include "tests/simt/simt.hpp"

#include <ucontext.h>

#include <bit>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define TG_SIMT_ASAN 1
#endif

namespace tg::simt {
namespace {

constexpr std::size_t kStackBytes = std::size_t(256) << 10;

enum class Op { none, ldmatrix, ldmatrix_trans, mma_bf16, mma_f16, mma_tf32, shfl };

const char* op_name(Op op) {
  switch (op) {
    case Op::ldmatrix: return "ldmatrix.x4";
    case Op::ldmatrix_trans: return "ldmatrix.x4.trans";
    case Op::mma_bf16: return "mma.m16n8k16.bf16";
    case Op::mma_f16: return "mma.m16n8k16.f16";
    case Op::mma_tf32: return "mma.m16n8k8.tf32";
    case Op::shfl: return "shfl.xor";
    case Op::none: break;
  }
  return "none";
}

// What a lane brings to a collective and what it takes away.
struct LaneIn {
  Op op = Op::none;
  const std::uint16_t* row = nullptr;
  unsigned a[4] = {}, b0 = 0, b1 = 0;
  float c[4] = {};
  std::uint32_t v = 0;
  int lane_mask = 0;
};
struct LaneOut {
  unsigned r[4] = {};
  float d[4] = {};
  std::uint32_t v = 0;
};

struct Copy {
  void* dst;
  const void* src;
  int bytes, src_bytes;
};

struct Fiber {
  ucontext_t ctx{};
  std::unique_ptr<char[]> stack;
  Dim3 tid;
  int warp = 0, lane = 0;
  bool done = false;
  std::vector<Copy> open;                  // issued, not yet committed
  std::vector<std::vector<Copy>> groups;   // committed, oldest first
};

struct Warp {
  int arrived = 0;
  std::uint64_t generation = 0;
  LaneIn in[32];
  LaneOut out[32];
};

struct State {
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  ucontext_t scheduler{};
  int current = -1;
  Dim3 block, block_dim, grid;
  int live = 0, barrier_arrived = 0;
  std::uint64_t barrier_generation = 0, events = 0;
  std::string error;
  CopyTiming timing = CopyTiming::at_wait;
  const std::function<void()>* kernel = nullptr;
  // Dynamic shared memory, and per byte how many issued cp.async copies into it have not
  // landed.
  alignas(128) char shared[kMaxDynamicShared];
  std::size_t shared_bytes = 0;
  std::vector<std::uint8_t> in_flight;
  Stats stats;
#if defined(TG_SIMT_ASAN)
  const void* main_stack = nullptr;
  std::size_t main_stack_size = 0;
#endif
};

State& state() {
  static State s;
  return s;
}

Fiber& me() { return state().fibers[std::size_t(state().current)]; }

// From the running fiber back to the scheduler (finished: never to come back).
void to_scheduler(bool finished) {
  State& s = state();
  ++s.stats.switches;
#if defined(TG_SIMT_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(finished ? nullptr : &fake, s.main_stack, s.main_stack_size);
  swapcontext(&me().ctx, &s.scheduler);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  (void)finished;
  swapcontext(&me().ctx, &s.scheduler);
#endif
}

// After an error: record() it (the first one stays), then halt() the running fiber for
// good, in a statement of its own, so that no temporary of the message is left alive in
// a frame that never returns; launch() reports the error.
void record(const std::string& what) {
  State& s = state();
  if (s.error.empty()) s.error = what;
}
[[noreturn]] void halt() {
  for (;;) to_scheduler(false);  // the scheduler never resumes a fiber once there is an error
}

void trampoline() {
  State& s = state();
#if defined(TG_SIMT_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &s.main_stack, &s.main_stack_size);
#endif
  (*s.kernel)();
  Fiber& f = me();
  f.done = true;
  --s.live;
  ++s.events;
  if (s.barrier_arrived > 0 && s.barrier_arrived >= s.live) {  // the barrier waited on this thread
    s.barrier_arrived = 0;
    ++s.barrier_generation;
  }
  to_scheduler(true);
}

// Waits in the running fiber until `generation` moves on.
void wait_for(const std::uint64_t& generation, std::uint64_t seen) {
  while (generation == seen) to_scheduler(false);
}

// Marks (+1) or clears (-1) the shared bytes a copy writes while it is in flight.
void mark_in_flight(const Copy& c, int delta) {
  State& s = state();
  const char* dst = static_cast<const char*>(c.dst);
  if (dst < s.shared || dst + c.bytes > s.shared + s.shared_bytes) return;  // not shared memory
  for (int i = 0; i < c.bytes; ++i) s.in_flight[std::size_t(dst - s.shared) + std::size_t(i)] += std::uint8_t(delta);
}

std::uint16_t lo16(unsigned x) { return std::uint16_t(x & 0xffffu); }
std::uint16_t hi16(unsigned x) { return std::uint16_t(x >> 16); }
unsigned pack(std::uint16_t lo, std::uint16_t hi) { return unsigned(lo) | (unsigned(hi) << 16); }

void compute(Warp& w, Op op) {
  switch (op) {
    case Op::ldmatrix:
    case Op::ldmatrix_trans:
      for (int l = 0; l < 32; ++l)
        for (int j = 0; j < 4; ++j) {
          const int g = l / 4, t = l % 4;
          if (op == Op::ldmatrix) {
            const std::uint16_t* row = w.in[8 * j + g].row;
            w.out[l].r[j] = pack(row[2 * t], row[2 * t + 1]);
          } else {  // element (row 2t, column g) and (2t + 1, g) of matrix j
            w.out[l].r[j] = pack(w.in[8 * j + 2 * t].row[g], w.in[8 * j + 2 * t + 1].row[g]);
          }
        }
      break;
    case Op::mma_bf16:
    case Op::mma_f16: {
      auto value = [&](std::uint16_t h) {
        return op == Op::mma_f16 ? double(float_from_f16_bits(h)) : double(float_from_bf16_bits(h));
      };
      double A[16][16], B[16][8], C[16][8];
      for (int l = 0; l < 32; ++l) {
        const int g = l / 4, t = l % 4;
        const LaneIn& x = w.in[l];
        const int ar[4] = {g, g + 8, g, g + 8}, ac[4] = {2 * t, 2 * t, 2 * t + 8, 2 * t + 8};
        for (int i = 0; i < 4; ++i) A[ar[i]][ac[i]] = value(lo16(x.a[i])), A[ar[i]][ac[i] + 1] = value(hi16(x.a[i]));
        B[2 * t][g] = value(lo16(x.b0)), B[2 * t + 1][g] = value(hi16(x.b0));
        B[2 * t + 8][g] = value(lo16(x.b1)), B[2 * t + 9][g] = value(hi16(x.b1));
        C[g][2 * t] = x.c[0], C[g][2 * t + 1] = x.c[1], C[g + 8][2 * t] = x.c[2], C[g + 8][2 * t + 1] = x.c[3];
      }
      for (int l = 0; l < 32; ++l) {
        const int g = l / 4, t = l % 4;
        const int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
        for (int e = 0; e < 4; ++e) {
          double acc = C[rows[e]][cols[e]];
          for (int k = 0; k < 16; ++k) acc += A[rows[e]][k] * B[k][cols[e]];
          w.out[l].d[e] = float(acc);
        }
      }
      break;
    }
    case Op::mma_tf32: {
      auto value = [](unsigned bits) { return double(std::bit_cast<float>(bits & ~0x1fffu)); };  // TF32: the top 19 bits
      double A[16][8], B[8][8];
      for (int l = 0; l < 32; ++l) {
        const int g = l / 4, t = l % 4;
        const LaneIn& x = w.in[l];
        A[g][t] = value(x.a[0]), A[g + 8][t] = value(x.a[1]), A[g][t + 4] = value(x.a[2]), A[g + 8][t + 4] = value(x.a[3]);
        B[t][g] = value(x.b0), B[t + 4][g] = value(x.b1);
      }
      for (int l = 0; l < 32; ++l) {
        const int g = l / 4, t = l % 4;
        const int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
        for (int e = 0; e < 4; ++e) {  // C and D share the layout: a lane's own c[e]
          const int r = rows[e], c = cols[e];
          double acc = w.in[l].c[e];
          for (int k = 0; k < 8; ++k) acc += A[r][k] * B[k][c];
          w.out[l].d[e] = float(acc);
        }
      }
      break;
    }
    case Op::shfl:
      for (int l = 0; l < 32; ++l) w.out[l].v = w.in[l ^ w.in[l].lane_mask].v;
      break;
    case Op::none: break;
  }
}

// The running lane's part in a warp-wide instruction; returns its result.
const LaneOut& collective(const LaneIn& in) {
  State& s = state();
  Fiber& f = me();
  Warp& w = s.warps[std::size_t(f.warp)];
  w.in[f.lane] = in;
  ++s.events;
  if (++w.arrived < 32) {
    wait_for(w.generation, w.generation);
  } else {
    for (int l = 0; l < 32; ++l)
      if (w.in[l].op != in.op) {
        record(std::string("warp ") + std::to_string(f.warp) + ": lane " + std::to_string(l) + " is at " +
               op_name(w.in[l].op) + " while lane " + std::to_string(f.lane) + " is at " + op_name(in.op));
        halt();
      }
    compute(w, in.op);
    ++s.stats.collectives;
    w.arrived = 0;
    ++w.generation;
  }
  return w.out[f.lane];
}

// A fresh context that runs the kernel on the fiber's own stack. (getcontext and
// swapcontext return twice: kept out of launch()'s loops, whose variables they would
// clobber.)
[[gnu::noinline]] void start_context(Fiber& f) {
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = f.stack.get();
  f.ctx.uc_stack.ss_size = kStackBytes;
  f.ctx.uc_link = nullptr;
  makecontext(&f.ctx, trampoline, 0);
}

// From the scheduler into fiber i until it yields or finishes.
[[gnu::noinline]] void resume(int i) {
  State& s = state();
  s.current = i;
  Fiber& f = s.fibers[std::size_t(i)];
#if defined(TG_SIMT_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f.stack.get(), kStackBytes);
  swapcontext(&s.scheduler, &f.ctx);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  swapcontext(&s.scheduler, &f.ctx);
#endif
  ++s.stats.switches;
}

}  // namespace

const Dim3& thread_idx() { return me().tid; }
void* dynamic_shared() { return state().shared; }
const Dim3& block_idx() { return state().block; }
const Dim3& block_dim() { return state().block_dim; }
const Dim3& grid_dim() { return state().grid; }
const Stats& stats() { return state().stats; }

void sync_threads() {
  State& s = state();
  ++s.events;
  if (++s.barrier_arrived < s.live) {
    wait_for(s.barrier_generation, s.barrier_generation);
  } else {
    s.barrier_arrived = 0;
    ++s.barrier_generation;
  }
}

std::uint32_t shfl_xor(std::uint32_t v, int lane_mask) {
  LaneIn in;
  in.op = Op::shfl, in.v = v, in.lane_mask = lane_mask & 31;
  return collective(in).v;
}

void ldmatrix_x4(unsigned (&r)[4], const std::uint16_t* row, bool trans) {
  if (reinterpret_cast<std::uintptr_t>(row) % 16 != 0) {
    record("ldmatrix: lane " + std::to_string(me().lane) + " gives a row address that is not 16-byte aligned");
    halt();
  }
  State& s = state();
  const char* at = reinterpret_cast<const char*>(row);
  if (at >= s.shared && at + 16 <= s.shared + s.shared_bytes)
    for (std::size_t i = 0; i < 16; ++i)
      if (s.in_flight[std::size_t(at - s.shared) + i]) {
        record("ldmatrix: lane " + std::to_string(me().lane) + " of warp " + std::to_string(me().warp) +
               " reads shared memory that a cp.async still in flight writes (a missing wait or barrier)");
        halt();
      }
  LaneIn in;
  in.op = trans ? Op::ldmatrix_trans : Op::ldmatrix, in.row = row;
  const LaneOut& out = collective(in);
  for (int j = 0; j < 4; ++j) r[j] = out.r[j];
}

void mma_m16n8k8_tf32(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  LaneIn in;
  in.op = Op::mma_tf32;
  for (int i = 0; i < 4; ++i) in.a[i] = a[i], in.c[i] = c[i];
  in.b0 = b0, in.b1 = b1;
  const LaneOut& out = collective(in);
  for (int i = 0; i < 4; ++i) c[i] = out.d[i];
}

void mma_m16n8k16(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1, bool f16) {
  LaneIn in;
  in.op = f16 ? Op::mma_f16 : Op::mma_bf16;
  for (int i = 0; i < 4; ++i) in.a[i] = a[i], in.c[i] = c[i];
  in.b0 = b0, in.b1 = b1;
  const LaneOut& out = collective(in);
  for (int i = 0; i < 4; ++i) c[i] = out.d[i];
}

void cp_async(void* dst, const void* src, int bytes, int src_bytes) {
  if (src_bytes < 0 || src_bytes > bytes) {
    record("cp.async: src_bytes " + std::to_string(src_bytes) + " of " + std::to_string(bytes));
    halt();
  }
  if (state().timing == CopyTiming::at_issue) {  // lands now: nothing stays in flight
    if (src_bytes > 0) std::memcpy(dst, src, std::size_t(src_bytes));
    std::memset(static_cast<char*>(dst) + src_bytes, 0, std::size_t(bytes - src_bytes));
    return;
  }
  me().open.push_back({dst, src, bytes, src_bytes});
  mark_in_flight(me().open.back(), +1);
}

void set_copy_timing(CopyTiming timing) { state().timing = timing; }

void cp_async_commit() {
  Fiber& f = me();
  f.groups.push_back(std::move(f.open));
  f.open.clear();
}

void cp_async_wait(int pending) {
  Fiber& f = me();
  while (int(f.groups.size()) > pending) {
    for (const Copy& c : f.groups.front()) {
      mark_in_flight(c, -1);
      if (c.src_bytes > 0) std::memcpy(c.dst, c.src, std::size_t(c.src_bytes));
      std::memset(static_cast<char*>(c.dst) + c.src_bytes, 0, std::size_t(c.bytes - c.src_bytes));
    }
    f.groups.erase(f.groups.begin());
  }
}

void launch(Dim3 grid, Dim3 block, std::size_t shared_bytes, const std::function<void()>& kernel) {
  State& s = state();
  const int threads = int(block.x * block.y * block.z);
  if (threads <= 0 || threads % 32 != 0) throw std::runtime_error("simt::launch: blocks of whole warps only");
  if (shared_bytes > kMaxDynamicShared)
    throw std::runtime_error("simt::launch: " + std::to_string(shared_bytes) + " bytes of dynamic shared memory, more than " +
                             std::to_string(kMaxDynamicShared));
  s.fibers.resize(std::size_t(threads));
  s.warps.assign(std::size_t(threads / 32), Warp{});
  for (Fiber& f : s.fibers)
    if (!f.stack) f.stack = std::make_unique<char[]>(kStackBytes);
  s.kernel = &kernel;
  s.block_dim = block, s.grid = grid;
  s.shared_bytes = shared_bytes;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        s.block = {bx, by, bz};
        std::memset(s.shared, 0xff, shared_bytes);
        s.in_flight.assign(shared_bytes, 0);
        s.live = threads, s.barrier_arrived = 0, s.error.clear();
        for (int i = 0; i < threads; ++i) {
          Fiber& f = s.fibers[std::size_t(i)];
          f.tid = {unsigned(i) % block.x, unsigned(i) / block.x % block.y, unsigned(i) / (block.x * block.y)};
          f.warp = i / 32, f.lane = i % 32, f.done = false;
          f.open.clear(), f.groups.clear();
          start_context(f);
        }
        for (Warp& w : s.warps) w.arrived = 0;
        // A warp at a time, each as far as it gets (to a barrier, or its end) before the
        // next: warps drift apart as far as the barriers let them, which is what a missing
        // barrier needs to show (lockstep warps would hide it). Odd blocks take the warps
        // in reverse order. A pass in which nothing happens is a deadlock (a barrier or
        // collective that some thread never reaches).
        const int warps = threads / 32;
        const bool reverse = (bx + by + bz) % 2 == 1;
        while (s.live > 0 && s.error.empty()) {
          const std::uint64_t before = s.events;
          for (int wi = 0; wi < warps && s.error.empty(); ++wi) {
            const int w = reverse ? warps - 1 - wi : wi;
            std::uint64_t seen;
            do {
              seen = s.events;
              for (int i = 32 * w; i < 32 * w + 32 && s.error.empty(); ++i) {
                if (s.fibers[std::size_t(i)].done) continue;
                resume(i);
              }
            } while (s.events != seen && s.error.empty());
          }
          if (s.live > 0 && s.events == before && s.error.empty())
            s.error = "deadlock: " + std::to_string(s.live) + " threads wait at a barrier or collective that the rest never reach";
        }
        s.current = -1;
        if (!s.error.empty())
          throw std::runtime_error("simt block (" + std::to_string(bx) + ", " + std::to_string(by) + ", " +
                                   std::to_string(bz) + "): " + s.error);
        ++s.stats.blocks;
      }
}

}  // namespace tg::simt
