// Profiler: where the time of a training step goes, kernel by kernel and module by
// module, and how close each kernel came to this machine's roofline.
//
//   {
//     tg::Profiler prof;                 // records from here ...
//     for (...) train_step();
//     prof.stop();                       // ... to here (or to the destructor)
//     std::cout << prof.table(roofline); // per op and per module
//     prof.write_chrome_trace("prof.json");  // Perfetto, chrome://tracing
//   }
//
// What is recorded, each with its thread, start and end:
//   - every kernel dispatched through the op table (kernels/ops.hpp) by the autograd ops,
//     named by the kernel and by the op that called it ("linear" -> gemm), with its
//     FLOPs and bytes from the op's contract (kernels/cost.hpp); CPU kernels timed by
//     the steady clock, CUDA kernels by events on the current stream, read when the
//     profiler stops (nothing synchronizes inside the step);
//   - copies between host and device (Tensor::to, copy_), with their bytes, by the host's
//     clock (a copy to or from the host waits for the transfer);
//   - scopes: each backward node ("backward:LinearBackward"), each nn module called
//     through operator() (by its path, "fc1" inside "MLP"), optimizer steps, batches
//     of a DataLoader, and the caller's own (`tg::profile_range("name")`).
// Off (no Profiler alive) each dispatch costs one test of a global flag.
//
// One Profiler at a time (a second one is a tg::Error); ops on several threads are
// recorded, each on its own track.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tilegrad/kernels/types.hpp"

namespace tg {

namespace profiler_detail {
extern std::atomic<bool> g_on;
}  // namespace profiler_detail

// True while a Profiler records.
inline bool profiling() { return profiler_detail::g_on.load(std::memory_order_relaxed); }

struct ProfileEvent {
  enum class Kind : std::uint8_t { kernel, backward, module, optimizer, data, range, copy };
  Kind kind = Kind::range;
  std::string name;           // kernel: the op table's entry ("gemm"); scopes: their name or path
  const char* caller = "";    // kernel: the autograd op that dispatched it ("linear"); else ""
  bool in_backward = false;   // kernel: dispatched inside a backward node
  const char* device = "cpu";  // "cpu" or "cuda"
  const char* dtype = "";      // kernel: "f32" or "f64"
  int thread = 0;       // 0 for the first thread that recorded, then 1, 2, ...
  int depth = 0;        // open scopes around it on its thread
  std::int64_t parent = -1;       // index of the innermost enclosing scope, or -1
  double start_us = 0, end_us = 0;  // from the profiler's start
  double flops = 0, bytes = 0;    // kernels only
  index_t dims[4] = {0, 0, 0, 0};  // kernels: the sizes of kernels/cost.hpp's OpCost
  int rank = 0;
  const char* layout = "";        // GEMM: "nn", "nt", "tn" or "tt"

  std::string shape() const;  // "128x784x256 nt", "4096x1024"; "" for scopes
};

const char* profile_kind_name(ProfileEvent::Kind kind);

// The machine's ceilings, for the roofline fractions (0: unknown, left out of the table).
struct Roofline {
  double peak_gflops = 0;    // FMA peak of the path in use, all threads
  double bandwidth_gbs = 0;  // copy bandwidth (read + write), all threads
};

// One row of the table: a kernel under one calling op, or one module path.
struct ProfileRow {
  std::string name;       // "linear / gemm", or the module path
  std::int64_t calls = 0;
  double total_ms = 0, mean_us = 0, share = 0;  // share of the recorded time
  double gflops = 0, gbs = 0;                   // achieved rates (kernels)
  double roofline = 0;  // time at the roofline's bound over the time taken (kernels; 0 unknown)
  const char* bound = "";  // "compute" or "memory": which ceiling bounds the op
};

class Profiler {
 public:
  Profiler();
  ~Profiler();
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  void stop();  // idempotent; the destructor calls it
  bool running() const { return running_; }

  // After stop(): every event in the order recorded (scopes as they begin, kernels as
  // they end; a kernel's parent always comes before it).
  const std::vector<ProfileEvent>& events() const;
  double wall_ms() const;  // from construction to stop()

  // Kernels grouped by (caller, kernel), or by (caller, kernel, shape), and copies by
  // direction, sorted by time, then one "(outside kernels)" row with the rest of the
  // recorded time, so the rows add up to wall_ms().
  std::vector<ProfileRow> op_rows(const Roofline& roof = {}, bool by_shape = false) const;
  // Module scopes grouped by path, their inclusive time, sorted by time.
  std::vector<ProfileRow> module_rows() const;

  // The two tables as text, and as CSV (one file, a `table` column saying which: "op",
  // "module", and one "machine" row holding the roofline's peak and bandwidth in its
  // gflops and gbs columns when they were given).
  std::string table(const Roofline& roof = {}, bool by_shape = false) const;
  void write_csv(const std::string& path, const Roofline& roof = {}, bool by_shape = false) const;
  // Chrome's trace-event JSON: one complete event ("ph": "X") per event, a track per
  // thread, the kernels' FLOPs, bytes and caller as args. Written whole or not at all.
  void write_chrome_trace(const std::string& path) const;

 private:
  bool running_ = false;
  std::vector<ProfileEvent> events_;
  double wall_ms_ = 0;
};

// A scope of the caller's own, recorded while a Profiler runs; nothing otherwise.
class ProfileScope {
 public:
  // Named name + detail (built only while a Profiler records); bytes: a copy's.
  ProfileScope(ProfileEvent::Kind kind, std::string_view name, std::string_view detail = {}, double bytes = 0);
  ~ProfileScope();
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  std::int64_t index_ = -1;
  std::uint64_t generation_ = 0;
};

// `auto r = tg::profile_range("eval");` names everything until r leaves scope.
inline ProfileScope profile_range(std::string_view name) { return ProfileScope(ProfileEvent::Kind::range, name); }

namespace profiler_detail {
// Remembers the autograd op about to dispatch a kernel on this thread (detail::table_for).
void set_caller(const char* op);
}  // namespace profiler_detail

}  // namespace tg
