// The host SIMT emulator (tests/simt/simt.hpp says what it does and checks): fibers on
// ucontext, one per CUDA thread of the running block, and the collectives they meet at.
#include "tests/simt/simt.hpp"

#include <ucontext.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
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
  int block = 0, warp = 0, lane = 0;  // its block in the running cluster; warp and lane in the block
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
  int block;  // the destination block in the running cluster (a multicast lands in several)
  int c2 = 0, c3 = 0;
  int bytes() const { return map.box[0] * map.elem_bytes * map.box[1] * map.box[2] * map.box[3]; }
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
  bool a_regs = false;    // A from registers (areg), not shared memory
  unsigned areg[4] = {};  // this thread's A fragment
};
struct WgMma {
  std::uint64_t a, b;
  int kind, n;
  float* d[128];  // each thread's accumulators
  bool a_regs = false;
  unsigned areg[128][4] = {};  // A's fragments as the threads gave them at issue
};
struct WarpGroup {
  int arrived = 0;
  std::uint64_t generation = 0;
  WgIn in[128];
  std::vector<WgMma> open;                 // issued, not committed
  std::vector<std::vector<WgMma>> groups;  // committed, oldest first
};

// A running block: its dynamic shared memory (1024-byte aligned: the 128-byte swizzle of
// TMA and wgmma follows address bits 4-9) and, per byte, how many issued copies into it
// have not landed; its barrier, warps, warpgroups and mbarriers.
struct Block {
  Dim3 idx;
  char* shared = nullptr;
  std::vector<std::uint8_t> in_flight;
  int live = 0, barrier_arrived = 0;
  std::uint64_t barrier_generation = 0;
  std::vector<Warp> warps;
  std::vector<WarpGroup> warpgroups;
  std::map<std::uint32_t, MBarrier> mbars;
};

struct AlignedFree {
  void operator()(char* p) const { std::free(p); }
};

struct State {
  std::vector<Fiber> fibers;
  std::vector<Block> blocks;  // the running cluster's (one block without clusters)
  std::vector<std::unique_ptr<char, AlignedFree>> shared_pool;
  int cluster_live = 0, cluster_arrived = 0;
  std::uint64_t cluster_generation = 0;
  ucontext_t scheduler{};
  int current = -1;
  Dim3 block_dim, grid;
  std::uint64_t events = 0;
  std::string error;
  CopyTiming timing = CopyTiming::at_wait;
  const std::function<void()>* kernel = nullptr;
  std::size_t shared_bytes = 0;  // each block's dynamic shared memory
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
Block& blk() { return state().blocks[std::size_t(me().block)]; }

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
  Block& b = blk();
  f.done = true;
  --b.live;
  --s.cluster_live;
  ++s.events;
  if (b.barrier_arrived > 0 && b.barrier_arrived >= b.live) {  // the barrier waited on this thread
    b.barrier_arrived = 0;
    ++b.barrier_generation;
  }
  if (s.cluster_arrived > 0 && s.cluster_arrived >= s.cluster_live) {  // so did the cluster's
    s.cluster_arrived = 0;
    ++s.cluster_generation;
  }
  to_scheduler(true);
}

// Waits in the running fiber until `generation` moves on.
void wait_for(const std::uint64_t& generation, std::uint64_t seen) {
  while (generation == seen) to_scheduler(false);
}

// Marks (+1) or clears (-1) the shared bytes a copy writes while it is in flight.
void mark_in_flight(const Copy& c, int delta) {
  Block& b = blk();
  const char* dst = static_cast<const char*>(c.dst);
  if (dst < b.shared || dst + c.bytes > b.shared + state().shared_bytes) return;  // not shared memory
  for (int i = 0; i < c.bytes; ++i) b.in_flight[std::size_t(dst - b.shared) + std::size_t(i)] += std::uint8_t(delta);
}

std::uint16_t lo16(unsigned x) { return std::uint16_t(x & 0xffffu); }
std::uint16_t hi16(unsigned x) { return std::uint16_t(x >> 16); }
unsigned pack(std::uint16_t lo, std::uint16_t hi) { return unsigned(lo) | (unsigned(hi) << 16); }

void compute(Warp& w, Op op) {
  switch (op) {
    case Op::ldmatrix:
    case Op::ldmatrix_trans: {
      Stats& st = state().stats;
      ++st.ldmatrix_instructions;
      for (int j = 0; j < 4; ++j) {  // matrix j: its 8 rows' bank groups
        int count[8] = {};
        for (int r = 0; r < 8; ++r) ++count[(reinterpret_cast<std::uintptr_t>(w.in[8 * j + r].row) / 16) % 8];
        st.ldmatrix_phases += *std::max_element(count, count + 8);
      }
    }
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
  Warp& w = blk().warps[std::size_t(f.warp)];
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
void* dynamic_shared() { return blk().shared; }
const Dim3& block_idx() { return blk().idx; }
const Dim3& block_dim() { return state().block_dim; }
const Dim3& grid_dim() { return state().grid; }
const Stats& stats() { return state().stats; }

void sync_threads() {
  Block& b = blk();
  ++state().events;
  if (++b.barrier_arrived < b.live) {
    wait_for(b.barrier_generation, b.barrier_generation);
  } else {
    b.barrier_arrived = 0;
    ++b.barrier_generation;
  }
}

unsigned cluster_rank() { return unsigned(me().block); }
unsigned cluster_size() { return unsigned(state().blocks.size()); }

void cluster_sync() {
  State& s = state();
  ++s.events;
  if (++s.cluster_arrived < s.cluster_live) {
    wait_for(s.cluster_generation, s.cluster_generation);
  } else {
    s.cluster_arrived = 0;
    ++s.cluster_generation;
  }
}

void* map_shared_rank(const void* p, unsigned rank) {
  State& s = state();
  Block& b = blk();
  const char* at = static_cast<const char*>(p);
  if (at < b.shared || at >= b.shared + s.shared_bytes || rank >= s.blocks.size()) {
    record("map_shared_rank: rank " + std::to_string(rank) + " of a cluster of " + std::to_string(s.blocks.size()) +
           ", or a pointer outside this block's dynamic shared memory (static __shared__ variables are not per block "
           "in the emulator: what other blocks read goes in dynamic shared memory)");
    halt();
  }
  return s.blocks[rank].shared + (at - b.shared);
}

std::uint32_t shfl_xor(std::uint32_t v, int lane_mask) {
  LaneIn in;
  in.op = Op::shfl, in.v = v, in.lane_mask = lane_mask & 31;
  return collective(in).v;
}

float atomic_add(float* p, float v) {
  const float old = *p;
  *p = old + v;
  return old;
}
void atomic_add_pair(float* p, float x, float y) {
  if (reinterpret_cast<std::uintptr_t>(p) % 8 != 0) {
    record("atomicAdd(float2*): thread " + std::to_string(me().lane) + " of its warp gives an address that is not "
           "8-byte aligned");
    halt();
  }
  p[0] += x;
  p[1] += y;
}

void ldmatrix_x4(unsigned (&r)[4], const std::uint16_t* row, bool trans) {
  if (reinterpret_cast<std::uintptr_t>(row) % 16 != 0) {
    record("ldmatrix: lane " + std::to_string(me().lane) + " gives a row address that is not 16-byte aligned");
    halt();
  }
  Block& b = blk();
  const char* at = reinterpret_cast<const char*>(row);
  if (at >= b.shared && at + 16 <= b.shared + state().shared_bytes)
    for (std::size_t i = 0; i < 16; ++i)
      if (b.in_flight[std::size_t(at - b.shared) + i]) {
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

// The mbarrier at shared address `bar` of block `block` of the cluster (-1: the running one).
MBarrier& mbar(std::uint32_t bar, const char* what, int block = -1) {
  Block& blk_ = block < 0 ? blk() : state().blocks[std::size_t(block)];
  auto it = blk_.mbars.find(bar);
  if (it == blk_.mbars.end()) {
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

// A wgmma operand's matrix descriptor (PTX ISA, "Matrix Descriptor Format"): the start
// address (bits 0-13, >> 4) and the stride between 8-row groups (SBO, bits 32-45, >> 4);
// the emulator models K-major operands with the 128-byte swizzle (mode 1 in bits 62-63)
// and base offset 0 (bits 49-51).
struct Range {
  std::uint32_t lo, hi;
};
struct Descriptor {
  std::uint32_t start, sbo;
  bool modeled;
  explicit Descriptor(std::uint64_t d)
      : start(std::uint32_t(d & 0x3fff) << 4),
        sbo(std::uint32_t((d >> 32) & 0x3fff) << 4),
        modeled((d >> 62) == 1 && ((d >> 49) & 7) == 0) {}
  // The shared address of byte `byte` of row `row`: rows of 128 bytes, swizzled.
  std::uint32_t at(int row, int byte) const {
    return swizzle128(start + std::uint32_t(row / 8) * sbo + std::uint32_t(row % 8) * 128 + std::uint32_t(byte));
  }
  // The bytes [lo, hi) an operand of `rows` rows may read.
  Range range(int rows) const {
    const std::uint32_t lo = start & ~127u;
    return {lo, lo + std::uint32_t(rows / 8 - 1) * sbo + 8 * 128};
  }
};

// A TMA copy lands: the box into shared memory (swizzled), zeros outside the matrix.
// A block whose threads have all finished: on a GPU its shared memory is gone.
void check_alive(const Block& b, const char* what) {
  if (b.live == 0) {
    record(std::string(what) + " reaches block (" + std::to_string(b.idx.x) +
           ") of the cluster after it has exited (a missing cluster barrier before exit)");
    halt();
  }
}

void land(const Bulk& c) {
  Block& blk_ = state().blocks[std::size_t(c.block)];
  check_alive(blk_, "a TMA copy");
  const int n = c.bytes();
  for (const WarpGroup& g : blk_.warpgroups) {
    auto clash = [&](const WgMma& m) {
      const Range rb = Descriptor(m.b).range(m.n);
      if (c.dst < rb.hi && rb.lo < c.dst + std::uint32_t(n)) return true;
      if (m.a_regs) return false;
      const Range ra = Descriptor(m.a).range(64);
      return c.dst < ra.hi && ra.lo < c.dst + std::uint32_t(n);
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
  int r = 0;  // the box's rows, outer dimensions outermost
  for (int i3 = 0; i3 < m.box[3]; ++i3)
    for (int i2 = 0; i2 < m.box[2]; ++i2)
      for (int i1 = 0; i1 < m.box[1]; ++i1, ++r)
        for (int b = 0; b < row_bytes; ++b) {
          const long long k = c.c0 + b / eb, row = c.c1 + i1, o2 = c.c2 + i2, o3 = c.c3 + i3;
          const bool in = k >= 0 && k < m.dims[0] && row >= 0 && row < m.dims[1] && o2 >= 0 && o2 < m.dims[2] &&
                          o3 >= 0 && o3 < m.dims[3];
          const std::uint32_t at = c.dst + std::uint32_t(r * row_bytes + b);
          const std::uint32_t phys = m.swizzle128 ? swizzle128(at) : at;
          blk_.shared[phys] =
              in ? base[row * m.row_bytes + o2 * m.outer_bytes[0] + o3 * m.outer_bytes[1] + k * eb + b % eb] : char(0);
          --blk_.in_flight[phys];
        }
  MBarrier& bar = mbar(c.bar, "cp.async.bulk.tensor", c.block);
  bar.tx -= n;
  complete_if_done(bar);
}

// The warpgroup-wide instructions: the last of the 128 threads to arrive does the work.
void wg_collective(const WgIn& in) {
  State& s = state();
  Fiber& f = me();
  const int t = f.warp * 32 + f.lane;
  Block& blk_ = blk();
  if (std::size_t(t / 128) >= blk_.warpgroups.size()) {
    record("wgmma: thread " + std::to_string(t) + " is not in a whole warpgroup of 128 threads");
    halt();
  }
  WarpGroup& g = blk_.warpgroups[std::size_t(t / 128)];
  g.in[t % 128] = in;
  ++s.events;
  if (++g.arrived < 128) {
    wait_for(g.generation, g.generation);
    return;
  }
  for (int l = 0; l < 128; ++l) {
    const WgIn& o = g.in[l];
    if (o.op != in.op || o.a != in.a || o.b != in.b || o.kind != in.kind || o.n != in.n || o.pending != in.pending ||
        o.a_regs != in.a_regs) {
      record("warpgroup " + std::to_string(t / 128) + ": thread " + std::to_string(l) +
             " is at a different wgmma instruction (or operands) than thread " + std::to_string(t % 128));
      halt();
    }
  }
  if (in.op == WgOpKind::mma) {
    WgMma& m = g.open.emplace_back();
    m.a = in.a, m.b = in.b, m.kind = in.kind, m.n = in.n, m.a_regs = in.a_regs;
    for (int l = 0; l < 128; ++l) {
      m.d[l] = g.in[l].d;
      std::memcpy(m.areg[l], g.in[l].areg, sizeof m.areg[l]);
    }
  } else if (in.op == WgOpKind::commit) {
    g.groups.push_back(std::move(g.open));
    g.open.clear();
  } else {
    while (int(g.groups.size()) > in.pending) {
      for (const WgMma& m : g.groups.front()) {
        // D (64 x n) += A (64 x k) B^T (n x k), both K-major behind their descriptors.
        const int k = m.kind == 2 ? 8 : 16, eb = m.kind == 2 ? 4 : 2;
        const Descriptor da(m.a), db(m.b);
        auto check = [&](const Descriptor& d) {
          if (!d.modeled || (d.start % 128) + std::uint32_t(k * eb) > 128) {
            record("wgmma: a descriptor the emulator does not model (only K-major, 128-byte swizzle, base offset 0, "
                   "the k step inside one 128-byte row)");
            halt();
          }
        };
        if (!m.a_regs) check(da);
        check(db);
        auto value = [&](const Descriptor& d, int row, int kk) {
          const std::uint32_t at = d.at(row, kk * eb);
          check_shared(at, std::size_t(eb), "wgmma");
          for (int i = 0; i < eb; ++i)
            if (blk_.in_flight[at + std::uint32_t(i)]) {
              record("wgmma reads shared memory that a TMA copy in flight writes (a missing mbarrier wait)");
              halt();
            }
          if (m.kind == 2) {
            std::uint32_t u;
            std::memcpy(&u, blk_.shared + at, 4);
            return double(std::bit_cast<float>(u & ~0x1fffu));  // TF32: the top 19 bits
          }
          std::uint16_t h;
          std::memcpy(&h, blk_.shared + at, 2);
          return m.kind == 1 ? double(float_from_f16_bits(h)) : double(float_from_bf16_bits(h));
        };
        static double A[64][16], B[256][16];
        if (m.a_regs) {  // thread l of warp w: rows 16 w + l / 4 (+ 8), columns 2 (l % 4) + {0, 1} (+ 8)
          for (int l = 0; l < 128; ++l)
            for (int j = 0; j < 4; ++j) {
              const int r = 16 * (l / 32) + (l % 32) / 4 + (j % 2) * 8, c = 2 * (l % 4) + (j / 2) * 8;
              for (int h = 0; h < 2; ++h) {
                const auto bits = std::uint16_t(m.areg[l][j] >> (16 * h));
                A[r][c + h] = m.kind == 1 ? double(float_from_f16_bits(bits)) : double(float_from_bf16_bits(bits));
              }
            }
        } else {
          for (int r = 0; r < 64; ++r)
            for (int kk = 0; kk < k; ++kk) A[r][kk] = value(da, r, kk);
        }
        for (int c = 0; c < m.n; ++c)
          for (int kk = 0; kk < k; ++kk) B[c][kk] = value(db, c, kk);
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
  const Block& b = blk();
  const char* at = static_cast<const char*>(p);
  if (at < b.shared || at > b.shared + state().shared_bytes) {
    record("shared_address: a pointer outside the block's dynamic shared memory");
    halt();
  }
  return std::uint32_t(at - b.shared);
}

void mbar_init(std::uint32_t bar, int arrivals) {
  check_shared(bar, 8, "mbarrier.init");
  if (bar % 8 != 0 || arrivals < 1) {
    record("mbarrier.init: address " + std::to_string(bar) + " not 8-byte aligned, or " + std::to_string(arrivals) + " arrivals");
    halt();
  }
  MBarrier& b = blk().mbars[bar];
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

void mbar_arrive(std::uint32_t bar) { mbar_arrive_remote(bar, unsigned(me().block)); }

void mbar_arrive_remote(std::uint32_t bar, unsigned rank) {
  if (rank >= state().blocks.size()) {
    record("mbarrier.arrive: cta rank " + std::to_string(rank) + " of a cluster of " + std::to_string(state().blocks.size()));
    halt();
  }
  check_alive(state().blocks[rank], "an mbarrier arrival");
  MBarrier& b = mbar(bar, "mbarrier.arrive", int(rank));
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
  MBarrier& b = mbar(bar, "mbarrier.try_wait");  // map nodes stay put until the next block
  while (int(b.phase & 1) == (parity & 1)) {
    if (!b.copies.empty()) {
      const Bulk c = b.copies.front();
      b.copies.erase(b.copies.begin());
      land(c);
    } else {
      to_scheduler(false);
    }
  }
}

namespace {
// A TMA copy of `one`'s box into every block of the cluster in `mask`, at the same offset,
// completing on each one's barrier at the same offset.
void issue_copy(const Bulk& one, std::uint16_t mask) {
  State& s = state();
  const TensorMap& map = one.map;
  if (one.dst % 128 != 0 || (map.swizzle128 && map.box[0] * map.elem_bytes != 128)) {
    record("cp.async.bulk.tensor: destination " + std::to_string(one.dst) +
           " not 128-byte aligned, or a 128-byte swizzle with rows of other than 128 bytes");
    halt();
  }
  if (mask == 0 || mask >> s.blocks.size()) {
    record("cp.async.bulk.tensor: cta mask " + std::to_string(mask) + " for a cluster of " + std::to_string(s.blocks.size()));
    halt();
  }
  check_shared(one.dst, std::size_t(one.bytes()), "cp.async.bulk.tensor");
  ++s.events;
  for (int q = 0; q < int(s.blocks.size()); ++q) {
    if (!(mask >> q & 1)) continue;
    Bulk c = one;
    c.block = q;
    Block& dst_block = s.blocks[std::size_t(q)];
    for (int i = 0; i < c.bytes(); ++i) ++dst_block.in_flight[c.dst + std::uint32_t(i)];
    MBarrier& b = mbar(c.bar, "cp.async.bulk.tensor", q);
    if (s.timing == CopyTiming::at_issue) land(c);
    else b.copies.push_back(c);
  }
}
}  // namespace

void tma_load_2d_multicast(std::uint32_t dst, const TensorMap* map, int c0, int c1, std::uint32_t bar,
                           std::uint16_t mask) {
  issue_copy(Bulk{dst, *map, c0, c1, bar, 0}, mask);
}
void tma_load_2d(std::uint32_t dst, const TensorMap* map, int c0, int c1, std::uint32_t bar) {
  issue_copy(Bulk{dst, *map, c0, c1, bar, 0}, std::uint16_t(1u << me().block));
}
void tma_load_tensor(std::uint32_t dst, const TensorMap* map, int c0, int c1, int c2, int c3, std::uint32_t bar) {
  issue_copy(Bulk{dst, *map, c0, c1, bar, 0, c2, c3}, std::uint16_t(1u << me().block));
}

void wgmma_m64(float* d, int n, std::uint64_t desc_a, std::uint64_t desc_b, int kind) {
  if (n != 64 && n != 128 && n != 256) {
    record("wgmma: n " + std::to_string(n) + " (the emulator models 64, 128 and 256)");
    halt();
  }
  WgIn in;
  in.op = WgOpKind::mma, in.a = desc_a, in.b = desc_b, in.kind = kind, in.n = n, in.d = d;
  wg_collective(in);
}
void wgmma_m64_rs(float* d, int n, const unsigned (&a)[4], std::uint64_t desc_b, int kind) {
  if ((n != 64 && n != 128 && n != 256) || kind == 2) {
    record("wgmma: n " + std::to_string(n) + " with A in registers (the emulator models 64, 128 and 256, 16-bit types)");
    halt();
  }
  WgIn in;
  in.op = WgOpKind::mma, in.b = desc_b, in.kind = kind, in.n = n, in.d = d, in.a_regs = true;
  std::memcpy(in.areg, a, sizeof in.areg);
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
  launch_clusters(grid, 1, block, shared_bytes, kernel);
}

void launch_clusters(Dim3 grid, unsigned cluster, Dim3 block, std::size_t shared_bytes, const std::function<void()>& kernel) {
  State& s = state();
  const int threads = int(block.x * block.y * block.z);
  if (threads <= 0 || threads % 32 != 0) throw std::runtime_error("simt::launch: blocks of whole warps only");
  if (shared_bytes > kMaxDynamicShared)
    throw std::runtime_error("simt::launch: " + std::to_string(shared_bytes) + " bytes of dynamic shared memory, more than " +
                             std::to_string(kMaxDynamicShared));
  if (cluster < 1 || cluster > kMaxCluster || grid.x % cluster != 0)
    throw std::runtime_error("simt::launch: clusters of 1 to " + std::to_string(kMaxCluster) +
                             " blocks along x that divide the grid's x, got " + std::to_string(cluster));
  const int all = threads * int(cluster);
  s.fibers.resize(std::size_t(all));
  for (Fiber& f : s.fibers)
    if (!f.stack) f.stack = std::make_unique_for_overwrite<char[]>(kStackBytes);  // touched only as deep as used
  while (s.shared_pool.size() < cluster)
    s.shared_pool.emplace_back(static_cast<char*>(std::aligned_alloc(1024, kMaxDynamicShared)));
  s.kernel = &kernel;
  s.block_dim = block, s.grid = grid;
  s.shared_bytes = shared_bytes;
  s.blocks.assign(cluster, Block{});
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx0 = 0; bx0 < grid.x; bx0 += cluster) {
        for (unsigned r = 0; r < cluster; ++r) {
          Block& b = s.blocks[r];
          b = Block{};
          b.idx = {bx0 + r, by, bz};
          b.shared = s.shared_pool[r].get();
          std::memset(b.shared, 0xff, shared_bytes);  // NaN in bf16 and FP32: reads of unwritten tiles show
          b.in_flight.assign(shared_bytes, 0);
          b.live = threads;
          b.warps.assign(std::size_t(threads / 32), Warp{});
          b.warpgroups.assign(std::size_t(threads / 128), WarpGroup{});
        }
        s.cluster_live = all, s.cluster_arrived = 0, s.error.clear();
        for (int i = 0; i < all; ++i) {
          Fiber& f = s.fibers[std::size_t(i)];
          const int local = i % threads;
          f.tid = {unsigned(local) % block.x, unsigned(local) / block.x % block.y, unsigned(local) / (block.x * block.y)};
          f.block = i / threads, f.warp = local / 32, f.lane = local % 32, f.done = false;
          f.open.clear(), f.groups.clear();
          start_context(f);
        }
        // A block at a time, as long as it makes progress (a block's threads wait only for
        // another block at a cluster barrier or an mbarrier); within it a warp at a time,
        // each as far as it gets (to a barrier, or its end) before the next: warps drift
        // apart as far as the barriers let them, which is what a missing barrier needs to
        // show (lockstep warps would hide it). Odd blocks take their warps, and odd clusters
        // their blocks, in reverse order. A pass over the cluster in which nothing happens is
        // a deadlock (a barrier or collective that some thread never reaches).
        const int warps = threads / 32;
        const bool reverse = (bx0 / cluster + by + bz) % 2 == 1;
        auto run_block = [&](int bi) {
          const bool rev = (s.blocks[std::size_t(bi)].idx.x + by + bz) % 2 == 1;
          std::uint64_t block_seen;
          do {
            block_seen = s.events;
            for (int wi = 0; wi < warps && s.error.empty(); ++wi) {
              const int w = rev ? warps - 1 - wi : wi;
              std::uint64_t seen;
              do {
                seen = s.events;
                for (int i = bi * threads + 32 * w; i < bi * threads + 32 * w + 32 && s.error.empty(); ++i) {
                  if (s.fibers[std::size_t(i)].done) continue;
                  resume(i);
                }
              } while (s.events != seen && s.error.empty());
            }
          } while (s.events != block_seen && s.error.empty());
        };
        while (s.cluster_live > 0 && s.error.empty()) {
          const std::uint64_t before = s.events;
          for (unsigned ri = 0; ri < cluster && s.error.empty(); ++ri)
            run_block(int(reverse ? cluster - 1 - ri : ri));
          if (s.cluster_live > 0 && s.events == before && s.error.empty())
            s.error = "deadlock: " + std::to_string(s.cluster_live) +
                      " threads wait at a barrier or collective that the rest never reach";
        }
        s.current = -1;
        if (s.error.empty())
          for (const Block& b : s.blocks) {
            for (const auto& [at, m] : b.mbars)
              if (!m.copies.empty()) s.error = "the block ended with TMA copies never waited for";
            for (const WarpGroup& g : b.warpgroups)
              if (!g.open.empty() || !g.groups.empty()) s.error = "the block ended with wgmma products never waited for";
          }
        if (!s.error.empty())
          throw std::runtime_error("simt block (" + std::to_string(bx0) + (cluster > 1 ? "+" : "") + ", " +
                                   std::to_string(by) + ", " + std::to_string(bz) + "): " + s.error);
        s.stats.blocks += cluster;
      }
}

}  // namespace tg::simt
