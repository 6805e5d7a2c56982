// The host SIMT emulator (tests/simt/simt.hpp says what it does and checks): fibers on
// ucontext, one per CUDA thread of the running block, and the collectives they meet at.
#include "tests/simt/simt.hpp"

#include <ucontext.h>

#include <bit>
#include <cstring>
#include <map>
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

// sm_90a: TMA copies waiting on their barrier, mbarriers, warpgroup instructions.
struct Bulk {
  std::uint32_t dst;
  TensorMap map;
  int c0, c1;
  std::uint32_t bar;
  int bytes() const { return map.box[0] * map.elem_bytes * map.box[1]; }
};
struct MBarrier {
  int expected = 0, pending = 0;
  long long tx = 0;
  std::uint64_t phase = 0;  // phases completed
  std::vector<Bulk> copies;  // issued, not landed
};
enum class WgOpKind { mma, commit, wait };
struct WgIn {
  WgOpKind op = WgOpKind::mma;
  std::uint64_t a = 0, b = 0;
  int kind = 0, n = 0, pending = 0;
  float* d = nullptr;
};
struct WgMma {
  std::uint64_t a, b;
  int kind, n;
  float* d[128];  // each thread's accumulators
};
struct WarpGroup {
  int arrived = 0;
  std::uint64_t generation = 0;
  WgIn in[128];
  std::vector<WgMma> open;                 // issued, not committed
  std::vector<std::vector<WgMma>> groups;  // committed, oldest first
};

struct State {
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  std::vector<WarpGroup> warpgroups;
  std::map<std::uint32_t, MBarrier> mbars;
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
  // 1024-byte aligned: the 128-byte swizzle of TMA and wgmma follows address bits 4-9.
  alignas(1024) char shared[kMaxDynamicShared];
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

// ---- sm_90a ----

namespace {

void check_shared(std::uint32_t at, std::size_t bytes, const char* what) {
  if (std::size_t(at) + bytes > state().shared_bytes) {
    record(std::string(what) + ": shared bytes [" + std::to_string(at) + ", " + std::to_string(std::size_t(at) + bytes) +
           ") past the block's " + std::to_string(state().shared_bytes));
    halt();
  }
}

std::uint32_t swizzle128(std::uint32_t a) { return a ^ (((a >> 7) & 7u) << 4); }

MBarrier& mbar(std::uint32_t bar, const char* what) {
  State& s = state();
  auto it = s.mbars.find(bar);
  if (it == s.mbars.end()) {
    record(std::string(what) + ": no mbarrier initialized at shared address " + std::to_string(bar));
    halt();
  }
  return it->second;
}

void complete_if_done(MBarrier& b) {
  if (b.pending == 0 && b.tx == 0) {
    ++b.phase;
    b.pending = b.expected;
    ++state().events;
  }
}

// The shared byte range [lo, hi) an unfinished wgmma operand may read: rows of 128 bytes
// in 8-row groups SBO apart.
struct Range {
  std::uint32_t lo, hi;
};
Range operand_range(std::uint64_t desc, int rows) {
  const std::uint32_t start = std::uint32_t(desc & 0x3fff) << 4, sbo = std::uint32_t((desc >> 32) & 0x3fff) << 4;
  const std::uint32_t lo = start & ~127u;
  return {lo, lo + std::uint32_t(rows / 8 - 1) * sbo + 8 * 128};
}

// A TMA copy lands: the box into shared memory (swizzled), zeros outside the matrix.
void land(const Bulk& c) {
  State& s = state();
  const int n = c.bytes();
  for (const WarpGroup& g : s.warpgroups) {
    auto clash = [&](const WgMma& m) {
      for (Range r : {operand_range(m.a, 64), operand_range(m.b, m.n)})
        if (c.dst < r.hi && r.lo < c.dst + std::uint32_t(n)) return true;
      return false;
    };
    bool bad = false;
    for (const WgMma& m : g.open) bad = bad || clash(m);
    for (const auto& grp : g.groups)
      for (const WgMma& m : grp) bad = bad || clash(m);
    if (bad) {
      record("a TMA copy lands on shared memory that an unfinished wgmma reads (a stage refilled before its products were waited for)");
      halt();
    }
  }
  const TensorMap& m = c.map;
  const int eb = m.elem_bytes, row_bytes = m.box[0] * eb;
  const char* base = static_cast<const char*>(m.base);
  for (int r = 0; r < m.box[1]; ++r)
    for (int b = 0; b < row_bytes; ++b) {
      const long long k = c.c0 + b / eb, row = c.c1 + r;
      const bool in = k >= 0 && k < m.dims[0] && row >= 0 && row < m.dims[1];
      const std::uint32_t at = c.dst + std::uint32_t(r * row_bytes + b);
      const std::uint32_t phys = m.swizzle128 ? swizzle128(at) : at;
      s.shared[phys] = in ? base[row * m.row_bytes + k * eb + b % eb] : char(0);
      --s.in_flight[phys];
    }
  MBarrier& bar = mbar(c.bar, "cp.async.bulk.tensor");
  bar.tx -= n;
  complete_if_done(bar);
}

// The warpgroup-wide instructions: the last of the 128 threads to arrive does the work.
void wg_collective(const WgIn& in) {
  State& s = state();
  Fiber& f = me();
  const int t = f.warp * 32 + f.lane;
  if (std::size_t(t / 128) >= s.warpgroups.size()) {
    record("wgmma: thread " + std::to_string(t) + " is not in a whole warpgroup of 128 threads");
    halt();
  }
  WarpGroup& g = s.warpgroups[std::size_t(t / 128)];
  g.in[t % 128] = in;
  ++s.events;
  if (++g.arrived < 128) {
    wait_for(g.generation, g.generation);
    return;
  }
  for (int l = 0; l < 128; ++l) {
    const WgIn& o = g.in[l];
    if (o.op != in.op || o.a != in.a || o.b != in.b || o.kind != in.kind || o.n != in.n || o.pending != in.pending) {
      record("warpgroup " + std::to_string(t / 128) + ": thread " + std::to_string(l) +
             " is at a different wgmma instruction (or operands) than thread " + std::to_string(t % 128));
      halt();
    }
  }
  if (in.op == WgOpKind::mma) {
    WgMma m{in.a, in.b, in.kind, in.n, {}};
    for (int l = 0; l < 128; ++l) m.d[l] = g.in[l].d;
    g.open.push_back(m);
  } else if (in.op == WgOpKind::commit) {
    g.groups.push_back(std::move(g.open));
    g.open.clear();
  } else {
    while (int(g.groups.size()) > in.pending) {
      for (const WgMma& m : g.groups.front()) {
        // D (64 x n) += A (64 x k) B^T (n x k), both K-major behind their descriptors.
        const int k = m.kind == 2 ? 8 : 16, eb = m.kind == 2 ? 4 : 2;
        auto value = [&](std::uint64_t desc, int row, int kk) {
          const std::uint32_t start = std::uint32_t(desc & 0x3fff) << 4, sbo = std::uint32_t((desc >> 32) & 0x3fff) << 4;
          if ((desc >> 62) != 1 || ((desc >> 49) & 7) != 0 || (start % 128) + std::uint32_t(k * eb) > 128) {
            record("wgmma: a descriptor the emulator does not model (only K-major, 128-byte swizzle, base offset 0, "
                   "the k step inside one 128-byte row)");
            halt();
          }
          const std::uint32_t at = swizzle128(start + std::uint32_t(row / 8) * sbo + std::uint32_t(row % 8) * 128 +
                                              std::uint32_t(kk * eb));
          check_shared(at, std::size_t(eb), "wgmma");
          for (int i = 0; i < eb; ++i)
            if (s.in_flight[at + std::uint32_t(i)]) {
              record("wgmma reads shared memory that a TMA copy in flight writes (a missing mbarrier wait)");
              halt();
            }
          if (m.kind == 2) {
            std::uint32_t u;
            std::memcpy(&u, s.shared + at, 4);
            return double(std::bit_cast<float>(u & ~0x1fffu));  // TF32: the top 19 bits
          }
          std::uint16_t h;
          std::memcpy(&h, s.shared + at, 2);
          return m.kind == 1 ? double(float_from_f16_bits(h)) : double(float_from_bf16_bits(h));
        };
        static double A[64][16], B[256][16];
        for (int r = 0; r < 64; ++r)
          for (int kk = 0; kk < k; ++kk) A[r][kk] = value(m.a, r, kk);
        for (int c = 0; c < m.n; ++c)
          for (int kk = 0; kk < k; ++kk) B[c][kk] = value(m.b, c, kk);
        for (int l = 0; l < 128; ++l) {
          const int w = l / 32, lane = l % 32;
          for (int j = 0; j < m.n / 8; ++j)
            for (int q = 0; q < 4; ++q) {
              const int r = 16 * w + lane / 4 + (q >= 2 ? 8 : 0), c = 8 * j + 2 * (lane % 4) + (q & 1);
              double acc = m.d[l][4 * j + q];
              for (int kk = 0; kk < k; ++kk) acc += A[r][kk] * B[c][kk];
              m.d[l][4 * j + q] = float(acc);
            }
        }
      }
      g.groups.erase(g.groups.begin());
    }
  }
  ++s.stats.collectives;
  g.arrived = 0;
  ++g.generation;
}

}  // namespace

std::uint32_t shared_address(const void* p) {
  State& s = state();
  const char* at = static_cast<const char*>(p);
  if (at < s.shared || at > s.shared + s.shared_bytes) {
    record("shared_address: a pointer outside the block's dynamic shared memory");
    halt();
  }
  return std::uint32_t(at - s.shared);
}

void mbar_init(std::uint32_t bar, int arrivals) {
  check_shared(bar, 8, "mbarrier.init");
  if (bar % 8 != 0 || arrivals < 1) {
    record("mbarrier.init: address " + std::to_string(bar) + " not 8-byte aligned, or " + std::to_string(arrivals) + " arrivals");
    halt();
  }
  MBarrier& b = state().mbars[bar];
  b = MBarrier{};
  b.expected = b.pending = arrivals;
  ++state().events;
}

void mbar_arrive_expect_tx(std::uint32_t bar, int bytes) {
  MBarrier& b = mbar(bar, "mbarrier.arrive.expect_tx");
  b.tx += bytes;
  --b.pending;
  ++state().events;
  complete_if_done(b);
}

void mbar_arrive(std::uint32_t bar) {
  MBarrier& b = mbar(bar, "mbarrier.arrive");
  if (b.pending <= 0) {
    record("mbarrier.arrive: more arrivals than the barrier counts");
    halt();
  }
  --b.pending;
  ++state().events;
  complete_if_done(b);
}

void mbar_wait(std::uint32_t bar, int parity) {
  // While the phase waited for is open, its copies land (at the latest moment: a wait for
  // a phase already complete, a wrong parity, leaves them in flight), then other threads
  // run until it completes.
  MBarrier* b = &mbar(bar, "mbarrier.try_wait");
  while (int(b->phase & 1) == (parity & 1)) {
    if (!b->copies.empty()) {
      const Bulk c = b->copies.front();
      b->copies.erase(b->copies.begin());
      land(c);
    } else {
      to_scheduler(false);
    }
    b = &mbar(bar, "mbarrier.try_wait");
  }
}

void tma_load_2d(std::uint32_t dst, const TensorMap* map, int c0, int c1, std::uint32_t bar) {
  State& s = state();
  const Bulk c{dst, *map, c0, c1, bar};
  if (dst % 128 != 0 || (map->swizzle128 && map->box[0] * map->elem_bytes != 128)) {
    record("cp.async.bulk.tensor: destination " + std::to_string(dst) +
           " not 128-byte aligned, or a 128-byte swizzle with rows of other than 128 bytes");
    halt();
  }
  check_shared(dst, std::size_t(c.bytes()), "cp.async.bulk.tensor");
  for (int i = 0; i < c.bytes(); ++i) ++s.in_flight[dst + std::uint32_t(i)];
  MBarrier& b = mbar(bar, "cp.async.bulk.tensor");
  ++s.events;
  if (s.timing == CopyTiming::at_issue) land(c);
  else b.copies.push_back(c);
}

void wgmma_m64(float* d, int n, std::uint64_t desc_a, std::uint64_t desc_b, int kind) {
  if (n != 128 && n != 256) {
    record("wgmma: n " + std::to_string(n) + " (the emulator models 128 and 256)");
    halt();
  }
  WgIn in;
  in.op = WgOpKind::mma, in.a = desc_a, in.b = desc_b, in.kind = kind, in.n = n, in.d = d;
  wg_collective(in);
}
void wgmma_commit() {
  WgIn in;
  in.op = WgOpKind::commit;
  wg_collective(in);
}
void wgmma_wait(int pending) {
  WgIn in;
  in.op = WgOpKind::wait, in.pending = pending;
  wg_collective(in);
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
        s.mbars.clear();
        s.warpgroups.assign(std::size_t(threads / 128), WarpGroup{});
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
        if (s.error.empty()) {
          for (const auto& [at, b] : s.mbars)
            if (!b.copies.empty()) s.error = "the block ended with TMA copies never waited for";
          for (const WarpGroup& g : s.warpgroups)
            if (!g.open.empty() || !g.groups.empty()) s.error = "the block ended with wgmma products never waited for";
        }
        if (!s.error.empty())
          throw std::runtime_error("simt block (" + std::to_string(bx) + ", " + std::to_string(by) + ", " +
                                   std::to_string(bz) + "): " + s.error);
        ++s.stats.blocks;
      }
}

}  // namespace tg::simt
