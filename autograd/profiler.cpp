#include "tilegrad/autograd/profiler.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <sstream>
#include <string_view>
#include <utility>

#include "tilegrad/autograd/detail.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/cuda/ops.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/cost.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/files.hpp"

namespace tg {

namespace profiler_detail {
std::atomic<bool> g_on{false};
}  // namespace profiler_detail

namespace {

using Clock = std::chrono::steady_clock;

// A CUDA kernel's two events, resolved when the profiler stops.
struct DeviceTiming {
  std::size_t event;
  void* start;
  void* end;
};

// The live recording: one per Profiler, reached through g_rec while g_on is set.
struct Recorder {
  std::vector<ProfileEvent> events;
  Clock::time_point t0 = Clock::now();
  std::uint64_t generation = 0;
  int threads = 0;
  void* anchor = nullptr;  // a CUDA event recorded at the start, when a kernel ran there
  double anchor_us = 0;    // its host time
  std::vector<DeviceTiming> device;

  double now_us() const { return std::chrono::duration<double, std::micro>(Clock::now() - t0).count(); }
};

std::mutex g_mu;  // guards g_rec and everything in it
Recorder* g_rec = nullptr;
std::uint64_t g_generation = 0;
std::mutex g_owner;  // held from a Profiler's start to its stop: one at a time

// This thread's view of the current recording: its track and its open scopes.
struct ThreadState {
  std::uint64_t generation = 0;
  int track = 0;
  std::vector<std::int64_t> open;  // indices of open scopes, innermost last
  const char* caller = "";
};
thread_local ThreadState t_state;

// This thread's state for the live recording (fresh when the recording is new). Called
// with g_mu held.
ThreadState& here(Recorder& r) {
  ThreadState& s = t_state;
  if (s.generation != r.generation) {
    const char* caller = s.caller;  // set by the dispatch just before (set_caller)
    s = ThreadState{};
    s.caller = caller;
    s.generation = r.generation;
    s.track = r.threads++;
  }
  return s;
}

// The innermost open scope of `kind` on this thread, or null. With g_mu held.
const ProfileEvent* innermost(const Recorder& r, const ThreadState& s, ProfileEvent::Kind kind) {
  for (auto it = s.open.rbegin(); it != s.open.rend(); ++it)
    if (r.events[std::size_t(*it)].kind == kind) return &r.events[std::size_t(*it)];
  return nullptr;
}

// An event's place: this thread's track, inside its innermost open scope.
void place(ProfileEvent& ev, const ThreadState& s) {
  ev.thread = s.track;
  ev.depth = int(s.open.size());
  ev.parent = s.open.empty() ? -1 : s.open.back();
}

// Begins a scope on this thread; returns its index, or -1 when not recording. A module's
// name becomes its path under the innermost open module.
std::int64_t begin_event(ProfileEvent ev, std::uint64_t* generation) {
  std::lock_guard<std::mutex> lock(g_mu);
  Recorder* r = g_rec;
  if (!r) return -1;
  *generation = r->generation;
  ThreadState& s = here(*r);
  if (ev.kind == ProfileEvent::Kind::module)
    if (const ProfileEvent* parent = innermost(*r, s, ProfileEvent::Kind::module)) ev.name = parent->name + "." + ev.name;
  place(ev, s);
  ev.start_us = ev.end_us = r->now_us();
  const auto index = std::int64_t(r->events.size());
  r->events.push_back(std::move(ev));
  s.open.push_back(index);
  return index;
}

// Ends it, if the recording it began in is still the live one.
void end_event(std::int64_t index, std::uint64_t generation) {
  std::lock_guard<std::mutex> lock(g_mu);
  Recorder* r = g_rec;
  if (!r || index < 0 || r->generation != generation || std::size_t(index) >= r->events.size()) return;
  r->events[std::size_t(index)].end_us = r->now_us();
  ThreadState& s = here(*r);
  if (!s.open.empty() && s.open.back() == index) s.open.pop_back();
}

// A finished kernel call, recorded under one lock: a leaf inside this thread's open
// scopes. CUDA calls keep their two events (released here when nothing records).
void record_kernel(const char* name, bool cuda, const char* dtype, const OpCost& cost, Clock::time_point t0,
                   Clock::time_point t1, void* start, void* end) {
  std::lock_guard<std::mutex> lock(g_mu);
  Recorder* r = g_rec;
  if (!r) [[unlikely]] {
    if (start) cuda::release_timing_event(start);
    if (end) cuda::release_timing_event(end);
    return;
  }
  ThreadState& s = here(*r);
  ProfileEvent ev;
  ev.kind = ProfileEvent::Kind::kernel;
  ev.name = name;
  ev.caller = s.caller;
  ev.in_backward = innermost(*r, s, ProfileEvent::Kind::backward) != nullptr;
  ev.device = cuda ? "cuda" : "cpu";
  ev.dtype = dtype;
  ev.flops = cost.flops;
  ev.bytes = cost.bytes;
  for (int i = 0; i < 4; ++i) ev.dims[i] = cost.dims[i];
  ev.rank = cost.rank;
  ev.layout = cost.layout;
  place(ev, s);
  ev.start_us = std::chrono::duration<double, std::micro>(t0 - r->t0).count();
  ev.end_us = std::chrono::duration<double, std::micro>(t1 - r->t0).count();
  const std::size_t index = r->events.size();
  r->events.push_back(std::move(ev));
  if (start) {
    if (!r->anchor) {
      r->anchor = start;  // the first device event: device times are counted from it
      r->anchor_us = r->events[index].start_us;
    }
    r->device.push_back({index, start, end});
  }
}

template <class T>
const char* dtype_of() {
  return std::is_same_v<T, float> ? "f32" : "f64";
}

// One kernel call recorded: host times around it, device events on a GPU (outside a
// graph capture), then its cost and the record.
template <class Call, class Cost>
void timed_kernel(const char* name, bool on_cuda, const char* dtype, Call call, Cost cost) {
  const bool on_device = on_cuda && !cuda::capturing();
  void* start = on_device ? cuda::record_timing_event() : nullptr;
  const Clock::time_point t0 = Clock::now();
  call();
  const Clock::time_point t1 = Clock::now();
  void* end = on_device ? cuda::record_timing_event() : nullptr;
  record_kernel(name, on_cuda, dtype, cost(), t0, t1, start, end);
}

// The profiling table's entry for one op: records the kernel (caller, cost, time) around
// the entry of the table it wraps (the CPU's selected path, or CUDA's).
template <class T, bool kCuda, auto kMember, auto kCost, class Name, class Sig>
struct Profiled;
template <class T, bool kCuda, auto kMember, auto kCost, class Name, class... A>
struct Profiled<T, kCuda, kMember, kCost, Name, void (*)(A...)> {
  static void call(A... a) {
    const TypedOps<T>& inner = (kCuda ? cuda::ops() : cpu::ops()).template get<T>();
    timed_kernel(
        Name::value, kCuda, dtype_of<T>(), [&] { (inner.*kMember)(a...); }, [&] { return kCost(a...); });
  }
};

#define TG_PROFILE_NAME(name) \
  struct Name_##name {        \
    static constexpr const char* value = #name; \
  };
TG_OPS(TG_PROFILE_NAME)
#undef TG_PROFILE_NAME

template <class T, bool kCuda>
TypedOps<T> profiled_ops() {
  TypedOps<T> t;
#define TG_PROFILED_ENTRY(name)                                                                          \
  t.name = &Profiled<T, kCuda, &TypedOps<T>::name, &name##_cost<T>, Name_##name,                          \
                     typename OpSignatures<T>::name>::call;
  TG_OPS(TG_PROFILED_ENTRY)
#undef TG_PROFILED_ENTRY
  return t;
}

// The same for the 16-bit entries (kernels/ops.hpp's HalfOps), which only the CUDA
// table serves: each recorded under its op's name with its dtype, and its cost; null
// where the CUDA table's is (a build without CUDA).
template <auto kMember, class Name, class Sig>
struct ProfiledHalf;
template <auto kMember, class Name, class... A>
struct ProfiledHalf<kMember, Name, void (*)(A...)> {
  static void call(A... a) {
    timed_kernel(
        Name::value, true, Name::dtype, [&] { (cuda::ops().half.*kMember)(a...); }, [&] { return Name::cost(a...); });
  }
};

struct Name_gemm_bf16 {
  static constexpr const char* value = "gemm";
  static constexpr const char* dtype = "bf16";
  static constexpr auto cost = &gemm16_cost;
};
struct Name_gemm_f16 : Name_gemm_bf16 {
  static constexpr const char* dtype = "f16";
};
template <class H, bool kBackward>
struct NameAttention {
  static constexpr const char* value = kBackward ? "attention_backward" : "attention_forward";
  static constexpr const char* dtype = std::is_same_v<H, bfloat16> ? "bf16" : "f16";
  template <class Args>
  static OpCost cost(const Args& a, const float*) {
    if constexpr (kBackward)
      return attention_backward_cost(a);
    else
      return attention_forward_cost(a);
  }
};
using Name_attention_forward_bf16 = NameAttention<bfloat16, false>;
using Name_attention_backward_bf16 = NameAttention<bfloat16, true>;
using Name_attention_forward_f16 = NameAttention<float16, false>;
using Name_attention_backward_f16 = NameAttention<float16, true>;

HalfOps profiled_half() {
  HalfOps t;
#define TG_PROFILED_HALF(name) \
  if (cuda::ops().half.name) t.name = &ProfiledHalf<&HalfOps::name, Name_##name, HalfSignatures::name>::call;
  TG_HALF_OPS(TG_PROFILED_HALF)
#undef TG_PROFILED_HALF
  return t;
}

template <bool kCuda>
const OpTable& profiled_table() {
  static const OpTable table{kCuda ? "profiled cuda" : "profiled cpu", profiled_ops<float, kCuda>(),
                             profiled_ops<double, kCuda>(), kCuda ? profiled_half() : HalfOps{}};
  return table;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// A table row's name, calls and times (us in all, against wall_us recorded).
ProfileRow timed_row(const std::string& name, std::int64_t calls, double us, double wall_us) {
  ProfileRow row;
  row.name = name;
  row.calls = calls;
  row.total_ms = us / 1000.0;
  row.mean_us = calls > 0 ? us / double(calls) : 0;
  row.share = wall_us > 0 ? us / wall_us : 0;
  return row;
}

void sort_by_time(std::vector<ProfileRow>& rows) {
  std::sort(rows.begin(), rows.end(), [](const ProfileRow& a, const ProfileRow& b) { return a.total_ms > b.total_ms; });
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

namespace profiler_detail {

void set_caller(const char* op) { t_state.caller = op ? op : ""; }

}  // namespace profiler_detail

namespace detail {
// The op table a dispatch goes through while a Profiler records (detail::table_for).
const OpTable& profiled_table_for(const char* op, Device device) {
  profiler_detail::set_caller(op);
  if (device.is_cuda()) return profiled_table<true>();
  if (device.is_cpu()) return profiled_table<false>();
  throw_error(op, "device", "no kernels for device ", device.str());
}
}  // namespace detail

const char* profile_kind_name(ProfileEvent::Kind kind) {
  switch (kind) {
    case ProfileEvent::Kind::kernel: return "kernel";
    case ProfileEvent::Kind::backward: return "backward";
    case ProfileEvent::Kind::module: return "module";
    case ProfileEvent::Kind::optimizer: return "optimizer";
    case ProfileEvent::Kind::data: return "data";
    case ProfileEvent::Kind::range: return "range";
    case ProfileEvent::Kind::copy: return "copy";
  }
  return "?";
}

Profiler::Profiler() {
  if (!g_owner.try_lock()) detail::throw_error("Profiler", "this", "expected no other Profiler recording, found one");
  auto* r = new Recorder;
  r->events.reserve(4096);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    r->generation = ++g_generation;
    r->t0 = Clock::now();  // after the set-up: the recorded time is the caller's
    g_rec = r;
  }
  running_ = true;
  profiler_detail::g_on.store(true, std::memory_order_release);
}

Profiler::~Profiler() {
  try {
    stop();
  } catch (...) {  // a device error while reading the events: the events keep host times
  }
}

void Profiler::stop() {
  if (!running_) return;
  running_ = false;
  profiler_detail::g_on.store(false, std::memory_order_release);
  Recorder* r = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    r = g_rec;
    g_rec = nullptr;
  }
  wall_ms_ = r->now_us() / 1000.0;
  events_ = std::move(r->events);
  std::exception_ptr error;
  // CUDA kernels: their device times, placed on the host's clock from the first one.
  try {
    for (const DeviceTiming& d : r->device) {
      ProfileEvent& e = events_[d.event];
      e.start_us = r->anchor_us + 1000.0 * double(cuda::timing_event_ms(r->anchor, d.start));
      e.end_us = r->anchor_us + 1000.0 * double(cuda::timing_event_ms(r->anchor, d.end));
    }
  } catch (...) {
    error = std::current_exception();
  }
  for (const DeviceTiming& d : r->device) {
    if (d.start != r->anchor) cuda::release_timing_event(d.start);
    cuda::release_timing_event(d.end);
  }
  cuda::release_timing_event(r->anchor);
  delete r;
  g_owner.unlock();
  if (error) std::rethrow_exception(error);
}

const std::vector<ProfileEvent>& Profiler::events() const {
  TG_CHECK(!running_, "Profiler::events", "this", "expected a stopped profiler (call stop() first)");
  return events_;
}

double Profiler::wall_ms() const {
  TG_CHECK(!running_, "Profiler::wall_ms", "this", "expected a stopped profiler (call stop() first)");
  return wall_ms_;
}

std::string ProfileEvent::shape() const {
  std::string s;
  for (int i = 0; i < rank && i < 4; ++i) s += (i ? "x" : "") + std::to_string(dims[i]);
  if (layout && layout[0]) s += std::string(" ") + layout;
  return s;
}

std::vector<ProfileRow> Profiler::op_rows(const Roofline& roof, bool by_shape) const {
  const std::vector<ProfileEvent>& evs = events();
  struct Sum {
    std::int64_t calls = 0;
    double us = 0, flops = 0, bytes = 0;
  };
  std::map<std::string, Sum> sums;
  double kernel_us = 0;
  for (const ProfileEvent& e : evs) {
    if (e.kind != ProfileEvent::Kind::kernel && e.kind != ProfileEvent::Kind::copy) continue;
    std::string key = e.kind == ProfileEvent::Kind::copy
                          ? e.name
                          : std::string(e.caller[0] ? e.caller : "?") + (e.in_backward ? " (backward) / " : " / ") + e.name;
    if (by_shape && e.kind == ProfileEvent::Kind::kernel) key += " " + e.shape();
    Sum& s = sums[key];
    s.calls += 1;
    s.us += e.end_us - e.start_us;
    s.flops += e.flops;
    s.bytes += e.bytes;
    kernel_us += e.end_us - e.start_us;
  }
  const double wall_us = wall_ms_ * 1000.0;
  std::vector<ProfileRow> rows;
  for (const auto& [name, s] : sums) {
    ProfileRow row = timed_row(name, s.calls, s.us, wall_us);
    if (s.us > 0) {
      row.gflops = s.flops / (s.us * 1e3);
      row.gbs = s.bytes / (s.us * 1e3);
    }
    if (roof.peak_gflops > 0 && roof.bandwidth_gbs > 0 && s.us > 0) {
      const double compute_us = s.flops / (roof.peak_gflops * 1e3), memory_us = s.bytes / (roof.bandwidth_gbs * 1e3);
      row.bound = compute_us >= memory_us ? "compute" : "memory";
      row.roofline = std::max(compute_us, memory_us) / s.us;
    }
    rows.push_back(std::move(row));
  }
  sort_by_time(rows);
  ProfileRow rest;
  rest.name = "(outside kernels)";
  rest.total_ms = std::max(0.0, wall_us - kernel_us) / 1000.0;
  rest.share = wall_us > 0 ? rest.total_ms * 1000.0 / wall_us : 0;
  rows.push_back(rest);
  return rows;
}

std::vector<ProfileRow> Profiler::module_rows() const {
  const std::vector<ProfileEvent>& evs = events();
  std::map<std::string, std::pair<std::int64_t, double>> sums;
  for (const ProfileEvent& e : evs) {
    if (e.kind != ProfileEvent::Kind::module) continue;
    auto& [calls, us] = sums[e.name];
    calls += 1;
    us += e.end_us - e.start_us;
  }
  std::vector<ProfileRow> rows;
  for (const auto& [name, s] : sums) rows.push_back(timed_row(name, s.first, s.second, wall_ms_ * 1000.0));
  sort_by_time(rows);
  return rows;
}

std::string Profiler::table(const Roofline& roof, bool by_shape) const {
  const std::vector<ProfileRow> ops = op_rows(roof, by_shape), modules = module_rows();
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line, "profile: %.3f ms recorded, %zu events", wall_ms_, events().size());
  out << line;
  if (roof.peak_gflops > 0) {
    std::snprintf(line, sizeof line, "; roofline: %.1f GFLOP/s peak, %.1f GB/s copy", roof.peak_gflops, roof.bandwidth_gbs);
    out << line;
  }
  out << "\n";
  const int width = by_shape ? 56 : 40;
  std::snprintf(line, sizeof line, "%-*s %7s %10s %10s %7s %9s %8s %9s %8s\n", width, "op / kernel", "calls", "total ms",
                "mean us", "share", "GFLOP/s", "GB/s", "roofline", "bound");
  out << line;
  for (const ProfileRow& r : ops) {
    std::snprintf(line, sizeof line, "%-*s %7lld %10.3f %10.2f %6.1f%% %9.1f %8.1f %8s %8s\n", width, r.name.c_str(),
                  static_cast<long long>(r.calls), r.total_ms, r.mean_us, 100.0 * r.share, r.gflops, r.gbs,
                  r.roofline > 0 ? (fixed(100.0 * r.roofline, 1) + "%").c_str() : "-", r.bound[0] ? r.bound : "-");
    out << line;
  }
  if (!modules.empty()) {
    std::snprintf(line, sizeof line, "\n%-40s %7s %10s %10s %7s   (inclusive)\n", "module", "calls", "total ms",
                  "mean us", "share");
    out << line;
    for (const ProfileRow& r : modules) {
      std::snprintf(line, sizeof line, "%-40s %7lld %10.3f %10.2f %6.1f%%\n", r.name.c_str(),
                    static_cast<long long>(r.calls), r.total_ms, r.mean_us, 100.0 * r.share);
      out << line;
    }
  }
  return out.str();
}

void Profiler::write_csv(const std::string& path, const Roofline& roof, bool by_shape) const {
  std::ostringstream out;
  out << "table,name,calls,total_ms,mean_us,share,gflops,gbs,roofline,bound\n";
  auto put = [&out](const char* table, const ProfileRow& r) {
    out << table << ',' << csv_field(r.name) << ',' << r.calls << ',' << fixed(r.total_ms, 6) << ','
        << fixed(r.mean_us, 3) << ',' << fixed(r.share, 6) << ',' << fixed(r.gflops, 3) << ',' << fixed(r.gbs, 3)
        << ',' << fixed(r.roofline, 6) << ',' << r.bound << '\n';
  };
  if (roof.peak_gflops > 0 || roof.bandwidth_gbs > 0) {  // the ceilings, for scripts/plot --profile
    ProfileRow m;
    m.name = "roofline";
    m.gflops = roof.peak_gflops;
    m.gbs = roof.bandwidth_gbs;
    put("machine", m);
  }
  for (const ProfileRow& r : op_rows(roof, by_shape)) put("op", r);
  for (const ProfileRow& r : module_rows()) put("module", r);
  write_file_atomic(path, out.str(), "Profiler::write_csv");
}

void Profiler::write_chrome_trace(const std::string& path) const {
  const std::vector<ProfileEvent>& evs = events();
  std::ostringstream out;
  out << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[";
  bool first = true;
  int tracks = 0;
  for (const ProfileEvent& e : evs) tracks = std::max(tracks, e.thread + 1);
  for (int t = 0; t < tracks; ++t) {
    out << (first ? "" : ",") << "\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":" << t
        << ",\"args\":{\"name\":" << json_quote("thread " + std::to_string(t)) << "}}";
    first = false;
  }
  bool gpu = false;
  for (const ProfileEvent& e : evs) gpu = gpu || (e.kind == ProfileEvent::Kind::kernel && std::string_view(e.device) == "cuda");
  if (gpu)
    out << ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":" << tracks
        << ",\"args\":{\"name\":\"cuda stream\"}}";
  for (const ProfileEvent& e : evs) {
    const bool on_gpu = e.kind == ProfileEvent::Kind::kernel && std::string_view(e.device) == "cuda";
    out << ",\n{\"name\":" << json_quote(e.name) << ",\"cat\":" << json_quote(profile_kind_name(e.kind))
        << ",\"ph\":\"X\",\"pid\":1,\"tid\":" << (on_gpu ? tracks : e.thread) << ",\"ts\":" << fixed(e.start_us, 3)
        << ",\"dur\":" << fixed(std::max(0.0, e.end_us - e.start_us), 3);
    if (e.kind == ProfileEvent::Kind::kernel)
      out << ",\"args\":{\"caller\":" << json_quote(e.caller) << ",\"backward\":" << (e.in_backward ? "true" : "false") << ",\"device\":" << json_quote(e.device)
          << ",\"dtype\":" << json_quote(e.dtype) << ",\"shape\":" << json_quote(e.shape())
          << ",\"flops\":" << fixed(e.flops, 0)
          << ",\"bytes\":" << fixed(e.bytes, 0) << "}";
    out << "}";
  }
  out << "\n]}\n";
  write_file_atomic(path, out.str(), "Profiler::write_chrome_trace");
}

ProfileScope::ProfileScope(ProfileEvent::Kind kind, std::string_view name, std::string_view detail, double bytes) {
  if (!profiling()) return;
  ProfileEvent ev;
  ev.kind = kind;
  ev.name.reserve(name.size() + detail.size());
  ev.name.append(name).append(detail);
  ev.bytes = bytes;
  index_ = begin_event(std::move(ev), &generation_);
}

ProfileScope::~ProfileScope() {
  if (index_ >= 0) end_event(index_, generation_);
}

}  // namespace tg
