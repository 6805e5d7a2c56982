// ProcessGroup over MPI. Blocking calls are MPI's blocking collectives (MPI_Allreduce,
// ...: OpenMPI's tuned algorithms, 1.3-1.6x faster than its non-blocking ones at 1-256
// MiB on one machine) under a watchdog; asynchronous calls are the non-blocking ones
// (MPI_Iallreduce, ...) completed by Work under a deadline, or, on a group with a
// progress thread, blocking ones made by that thread. The arguments are compared across
// ranks first.
#include "tilegrad/dist/process_group.hpp"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "tilegrad/autograd/modes.hpp"
#include "tilegrad/dist/nccl_comm.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/half.hpp"

namespace tg::dist {
namespace {

// An MPI return code other than MPI_SUCCESS as a tg::Error (the communicators return
// errors instead of aborting: MPI_ERRORS_RETURN).
void check_mpi(int rc, const char* op, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  TG_CHECK(false, op, what, "MPI failed: ", std::string(text, std::size_t(len)));
}

// bf16 sums: each pair added in float and rounded once (MPI has no bf16 type).
void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const std::uint16_t*>(in);
  auto* b = static_cast<std::uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = bf16_bits_from_float(float_from_bf16_bits(a[i]) + float_from_bf16_bits(b[i]));
}

// MPI_Init_thread on first use, MPI_Finalize at exit when we initialized it (a program
// that initialized MPI itself finalizes it too). MPI_THREAD_MULTIPLE is asked for: a
// group's progress thread makes MPI calls while the caller makes others.
MPI_Op g_bf16_sum = MPI_OP_NULL;
int g_world_rank = 0;
int g_thread_level = MPI_THREAD_SINGLE;
void ensure_mpi() {
  static std::once_flag once;
  std::call_once(once, [] {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &g_thread_level), "dist.world",
                "MPI_Init_thread");
      std::atexit([] {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
      });
    } else {
      MPI_Query_thread(&g_thread_level);
    }
    check_mpi(MPI_Op_create(&bf16_sum, 1, &g_bf16_sum), "dist.world", "MPI_Op_create");
    MPI_Comm_rank(MPI_COMM_WORLD, &g_world_rank);
  });
}

// The error of a wait that outlived its deadline.
[[noreturn]] void timed_out(const char* op, std::chrono::steady_clock::time_point start) {
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  TG_CHECK(false, op, "timeout", "rank ", g_world_rank, " waited ", waited,
           " s for the other ranks (one that did not make this call, threw, or died); "
           "the collective stays pending: wait() again, or end the job");
  std::abort();  // not reached: TG_CHECK(false, ...) throws
}

// Completes `request`, or throws tg::Error after `timeout`. Polls with MPI_Test (MPI_Wait
// cannot time out), which is also what moves a non-blocking collective along: OpenMPI
// progresses one only inside MPI calls, so a rank that slept between tests would hold up
// the others (1 MiB all-reduces ran 7x slower with 10 us - 1 ms sleeps). So: tests back
// to back for the first 10 ms, then yielding the core between tests, and only after a
// second (a rank that is late, not slow) sleeping 100 us between them. The request
// stays active after a timeout.
void wait_request(MPI_Request& request, const char* op, std::chrono::milliseconds timeout) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now(), deadline = start + timeout;
  for (unsigned polls = 0;; ++polls) {
    int flag = 0;
    check_mpi(MPI_Test(&request, &flag, MPI_STATUS_IGNORE), op, "MPI_Test");
    if (flag) return;
    if (polls % 64 != 0) continue;  // the clock read every 64 tests
    const auto now = clock::now();
    if (now >= deadline) timed_out(op, start);
    if (now - start > std::chrono::seconds(1)) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    } else if (now - start > std::chrono::milliseconds(10)) {
      std::this_thread::yield();
    }
  }
}

// A blocking MPI call cannot time out, so a watchdog thread watches it: armed with a
// deadline around the call, it ends the job with a message (MPI_Abort: mpirun then stops
// every rank) when the call outlives it. Arming and disarming take a slot and store a
// deadline, a few atomic operations (a 4 KiB all-reduce takes a few microseconds: waking
// a thread per call would double that); the thread looks every 20 ms, so the job ends at
// most that much late. A slot for each blocking call in flight at once (the caller's and
// the progress threads'). One per process, started on first use and never destroyed (it
// outlives static destructors).
class Watchdog {
 public:
  static Watchdog& get() {
    static Watchdog* w = new Watchdog;
    return *w;
  }
  // The slot armed, or -1 when every slot is taken (the call then goes unwatched).
  int arm(const char* op, std::chrono::milliseconds timeout) {
    for (int i = 0; i < kSlots; ++i) {
      Slot& s = slots_[i];
      bool free = false;
      if (!s.taken.compare_exchange_strong(free, true, std::memory_order_acquire)) continue;
      s.op.store(op, std::memory_order_relaxed);
      s.timeout_ms.store(timeout.count(), std::memory_order_relaxed);
      s.deadline_ns.store(now_ns() + std::int64_t(timeout.count()) * 1000000, std::memory_order_release);
      return i;
    }
    return -1;
  }
  void disarm(int slot) {
    if (slot < 0) return;
    slots_[slot].deadline_ns.store(0, std::memory_order_release);
    slots_[slot].taken.store(false, std::memory_order_release);
  }

 private:
  static std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  Watchdog() { std::thread([this] { run(); }).detach(); }
  void run() {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      for (Slot& s : slots_) {
        const std::int64_t deadline = s.deadline_ns.load(std::memory_order_acquire);
        if (deadline == 0 || now_ns() < deadline) continue;
        std::fprintf(stderr,
                     "tilegrad: %s: rank %d waited %.1f s for the other ranks (one that did not make this call, "
                     "threw, or died): ending the job\n",
                     s.op.load(std::memory_order_relaxed), g_world_rank,
                     double(s.timeout_ms.load(std::memory_order_relaxed)) / 1000.0);
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
        std::_Exit(1);
      }
    }
  }
  struct Slot {
    std::atomic<bool> taken{false};
    std::atomic<std::int64_t> deadline_ns{0};  // 0: disarmed
    std::atomic<const char*> op{""};
    std::atomic<std::int64_t> timeout_ms{0};
  };
  static constexpr int kSlots = 16;
  Slot slots_[kSlots];
};

struct Watched {
  Watched(const char* op, std::chrono::milliseconds timeout) : slot_(Watchdog::get().arm(op, timeout)) {}
  ~Watched() { Watchdog::get().disarm(slot_); }
  Watched(const Watched&) = delete;
  Watched& operator=(const Watched&) = delete;

 private:
  int slot_;
};

// A group's progress thread (Options::progress_thread): runs the jobs posted to it (the
// group's collectives, each a blocking MPI call) one at a time, in the order posted. Job
// k is done once done(k); a job records its own error. Idle, the thread sleeps on a
// condition variable.
class ProgressThread {
 public:
  ProgressThread() : thread_([this] { run(); }) {}
  ~ProgressThread() {
    {
      const std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    posted_cv_.notify_all();
    thread_.join();  // after the jobs still queued
  }
  ProgressThread(const ProgressThread&) = delete;
  ProgressThread& operator=(const ProgressThread&) = delete;

  // Queues a job; returns its ticket.
  std::uint64_t post(std::function<void()> job) {
    std::uint64_t ticket = 0;
    {
      const std::lock_guard<std::mutex> lock(m_);
      queue_.push_back(std::move(job));
      ticket = ++posted_;
    }
    posted_cv_.notify_one();
    return ticket;
  }
  bool done(std::uint64_t ticket) {
    const std::lock_guard<std::mutex> lock(m_);
    return finished_ >= ticket;
  }
  // Waits until job `ticket` is done (true) or the deadline passes (false).
  bool wait(std::uint64_t ticket, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(m_);
    return done_cv_.wait_until(lock, deadline, [&] { return finished_ >= ticket; });
  }
  void wait(std::uint64_t ticket) {
    std::unique_lock<std::mutex> lock(m_);
    done_cv_.wait(lock, [&] { return finished_ >= ticket; });
  }
  // Waits for every job posted so far.
  void drain() {
    std::uint64_t last = 0;
    {
      const std::lock_guard<std::mutex> lock(m_);
      last = posted_;
    }
    wait(last);
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(m_);
        posted_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job();
      job = nullptr;  // the job's tensors released before it counts as done
      {
        const std::lock_guard<std::mutex> lock(m_);
        ++finished_;
      }
      done_cv_.notify_all();
    }
  }
  std::mutex m_;
  std::condition_variable posted_cv_, done_cv_;
  std::deque<std::function<void()>> queue_;
  std::uint64_t posted_ = 0, finished_ = 0;
  bool stop_ = false;
  std::thread thread_;  // last: started once the members above exist
};

bool mpi_live() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return !finalized;
}

enum class Kind : std::int64_t { all_reduce = 1, broadcast, all_gather, reduce_scatter, barrier };

const char* op_name(Kind k) {
  switch (k) {
    case Kind::all_reduce: return "dist.all_reduce";
    case Kind::broadcast: return "dist.broadcast";
    case Kind::all_gather: return "dist.all_gather";
    case Kind::reduce_scatter: return "dist.reduce_scatter";
    case Kind::barrier: return "dist.barrier";
  }
  return "dist";
}

}  // namespace

struct ProcessGroup::Comm {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0, size = 1;
  // Options::progress_thread: the thread that makes this group's CPU collectives.
  std::shared_ptr<ProgressThread> progress;
  // CUDA tensors' communicator, made by the first collective on them (every rank makes
  // that call: the arguments' check compares the devices' kind first).
  std::shared_ptr<detail::NcclComm> nccl;
  detail::NcclComm& nccl_for(const Tensor& t, const char* op) {
    const int device = t.device().index;
    if (!nccl) {
      MPI_Comm c = comm;
      nccl = std::make_shared<detail::NcclComm>(rank, size, device, [c, op](void* id, std::size_t bytes) {
        check_mpi(MPI_Bcast(id, int(bytes), MPI_BYTE, 0, c), op, "MPI_Bcast");
      });
    }
    TG_CHECK(nccl->device() == device, op, "tensor", "expected the tensors on cuda:", nccl->device(),
             ", the device of this group's first CUDA collective, got cuda:", device);
    return *nccl;
  }
  // A communicator of the job's ranks (MPI_ERRORS_RETURN), with a progress thread if
  // asked for.
  static std::shared_ptr<Comm> make(MPI_Comm from, const Options& o, const char* op) {
    TG_CHECK(!o.progress_thread || g_thread_level == MPI_THREAD_MULTIPLE, op, "options",
             "progress_thread needs MPI_THREAD_MULTIPLE, and this MPI provides thread level ", g_thread_level,
             " (MPI_THREAD_MULTIPLE is ", MPI_THREAD_MULTIPLE, ")");
    auto c = std::make_shared<Comm>();
    check_mpi(MPI_Comm_dup(from, &c->comm), op, "MPI_Comm_dup");
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    if (o.progress_thread) c->progress = std::make_shared<ProgressThread>();
    return c;
  }
  ~Comm() {
    if (progress) progress->drain();  // its jobs use the communicator
    if (comm != MPI_COMM_NULL && mpi_live()) MPI_Comm_free(&comm);
  }
};

struct Work::State {
  MPI_Request request = MPI_REQUEST_NULL;
  // CUDA tensors: the collective's end event on the NCCL stream (see nccl_comm.hpp).
  std::shared_ptr<detail::NcclComm> nccl;
  void* event = nullptr;
  ~State() { detail::NcclComm::release(event); }
  // On a group with a progress thread: the job's ticket there and the error it met.
  std::shared_ptr<ProgressThread> progress;
  std::uint64_t ticket = 0;
  std::shared_ptr<std::exception_ptr> error;
  const char* op = "dist";
  std::chrono::milliseconds timeout{};
  bool done = false;
  // After completion: divide by the rank count (avg) over `out`.
  Tensor out;
  int divide_by = 0;
  Tensor keep_in;  // the input buffer MPI reads until completion
  void finish() {
    done = true;
    if (divide_by > 1) {
      const index_t n = out.numel();
      const double d = double(divide_by);
      switch (out.dtype()) {
        case DType::f32: {
          float* p = out.data<float>();
          for (index_t i = 0; i < n; ++i) p[i] = p[i] / float(d);
          break;
        }
        case DType::f64: {
          double* p = out.data<double>();
          for (index_t i = 0; i < n; ++i) p[i] /= d;
          break;
        }
        default: {
          auto* p = static_cast<std::uint16_t*>(out.raw_data());
          for (index_t i = 0; i < n; ++i) p[i] = bf16_bits_from_float(float_from_bf16_bits(p[i]) / float(d));
        }
      }
    }
    out = Tensor();
    keep_in = Tensor();
  }
  // A progress thread's job done: its error rethrown here (the output then undefined), or
  // the completion above.
  void finish_posted() {
    if (error && *error) {
      done = true;
      out = Tensor();
      keep_in = Tensor();
      std::rethrow_exception(*error);
    }
    finish();
  }
};

bool Work::completed() const { return !s_ || s_->done; }

bool Work::test() {
  if (completed()) return true;
  if (s_->progress) {  // the progress thread drives it: only look
    if (!s_->progress->done(s_->ticket)) return false;
    s_->finish_posted();
    return true;
  }
  if (s_->nccl) {  // finished on the device: the current stream may read the output at once
    if (!s_->nccl->finished(s_->event, s_->op)) return false;
    s_->finish();
    return true;
  }
  int flag = 0;
  check_mpi(MPI_Test(&s_->request, &flag, MPI_STATUS_IGNORE), s_->op, "MPI_Test");
  if (flag) s_->finish();
  return flag != 0;
}

void Work::wait() {
  if (completed()) return;
  if (s_->nccl) {  // stream-ordered: the current stream waits, the host does not
    s_->nccl->finished(s_->event, s_->op);  // NCCL's asynchronous errors, if any
    detail::NcclComm::current_stream_waits(s_->event);
    s_->finish();
    return;
  }
  if (s_->progress) {
    const auto start = std::chrono::steady_clock::now();
    if (!s_->progress->wait(s_->ticket, start + s_->timeout)) timed_out(s_->op, start);
    s_->finish_posted();
    return;
  }
  wait_request(s_->request, s_->op, s_->timeout);
  s_->finish();
}

ProcessGroup ProcessGroup::world(Options options) {
  ensure_mpi();
  return ProcessGroup(Comm::make(MPI_COMM_WORLD, options, "dist.world"), options);
}

ProcessGroup ProcessGroup::duplicate() const { return duplicate(options_); }

ProcessGroup ProcessGroup::duplicate(Options options) const {
  if (comm_->progress) comm_->progress->drain();  // MPI_Comm_dup is collective on this communicator
  return ProcessGroup(Comm::make(comm_->comm, options, "dist.duplicate"), options);
}

int ProcessGroup::rank() const { return comm_->rank; }
int ProcessGroup::size() const { return comm_->size; }
const Options& ProcessGroup::options() const { return options_; }

namespace {

// What a rank was given, compared across ranks: the maximum and the minimum of each
// field (one MPI_MAX all-reduce of the fields and their negations) agree only where
// every rank passed the same.
struct Signature {
  Kind kind;
  DType dtype;
  std::int64_t count, root, op;
  bool cuda = false;  // the tensors' device kind: MPI on one rank and NCCL on another never match
};

// The collective and whether it is asynchronous go in one field: MPI never matches a
// blocking collective with a non-blocking one, so a rank that calls all_reduce with
// async and another without would wait forever.
void check_same(MPI_Comm comm, const Signature& s, std::chrono::milliseconds timeout, bool async) {
  const char* op = op_name(s.kind);
  std::int64_t v[5] = {std::int64_t(s.kind) * 2 + (async ? 1 : 0), std::int64_t(s.dtype) * 2 + (s.cuda ? 1 : 0),
                       s.count, s.root, s.op};
  std::int64_t both[10], r[10];
  for (int i = 0; i < 5; ++i) both[i] = v[i], both[5 + i] = -v[i];
  {
    const Watched watched(op, timeout);
    check_mpi(MPI_Allreduce(both, r, 10, MPI_INT64_T, MPI_MAX, comm), op, "MPI_Allreduce");
  }
  const char* names[5] = {"collective", "dtype", "tensor", "root", "op"};
  for (int i = 0; i < 5; ++i) {
    const std::int64_t hi = r[i], lo = -r[5 + i];
    if (hi == lo) continue;
    std::ostringstream what;
    if (i == 0) {
      what << "the ranks called different collectives, or the same one blocking on some ranks and asynchronous "
              "on others (this rank " << op << (async ? ", asynchronous" : ", blocking") << ")";
    } else if (i == 1) {
      what << "expected the same dtype and device kind on every rank; this rank has " << dtype_name(s.dtype)
           << (s.cuda ? " on a CUDA device" : " on the CPU");
    } else if (i == 2) {
      what << "expected the same element count on every rank; this rank has " << s.count << ", the ranks range "
           << lo << " to " << hi;
    } else if (i == 3) {
      what << "expected the same root on every rank; this rank has " << s.root << ", the ranks range " << lo << " to "
           << hi;
    } else {
      what << "expected the same reduction on every rank";
    }
    TG_CHECK(false, op, names[i], what.str());
  }
}

MPI_Datatype reduce_type(DType t, const char* op, const char* arg) {
  switch (t) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::bf16: return MPI_UINT16_T;
    default: break;
  }
  TG_CHECK(false, op, arg, "expected f32, f64 or bf16, got ", dtype_name(t));
  return MPI_DATATYPE_NULL;
}

void check_tensor(const Tensor& t, const char* op, const char* arg, bool written) {
  TG_CHECK(t.defined(), op, arg, "expected a tensor, got an undefined one");
  TG_CHECK(t.device().type == DeviceType::cpu || detail::nccl_built(), op, arg,
           "expected a CPU tensor (CUDA tensors take the NCCL backend, not in this build)");
  TG_CHECK(t.is_contiguous(), op, arg, "expected a contiguous tensor (call contiguous() first)");
  if (written) {
    TG_CHECK(!(t.requires_grad() && grad_enabled()), op, arg,
             "is written in place and requires grad: call it under NoGradGuard");
  }
}

int count_of(index_t n, const char* op, const char* arg) {
  TG_CHECK(n <= index_t(std::numeric_limits<int>::max()), op, arg, "expected at most 2^31 - 1 elements, got ", n);
  return int(n);
}

// The tensors of all_gather and reduce_scatter: in read, out written, the same dtype, and
// `big` (out or in) size() times `small`'s elements.
void check_in_out(const char* name, const Tensor& in, const Tensor& out, bool out_is_big, int size) {
  check_tensor(in, name, "in", false);
  check_tensor(out, name, "out", true);
  TG_CHECK(out.dtype() == in.dtype(), name, "out", "expected in's dtype ", dtype_name(in.dtype()), ", got ",
           dtype_name(out.dtype()));
  TG_CHECK(out.device() == in.device(), name, "out", "expected in's device ", in.device().str(), ", got ",
           out.device().str());
  const Tensor& big = out_is_big ? out : in;
  const Tensor& small = out_is_big ? in : out;
  TG_CHECK(big.numel() == small.numel() * size, name, out_is_big ? "out" : "in", "expected size() * ",
           out_is_big ? "in" : "out", ".numel() = ", small.numel() * size, " elements, got ", big.numel());
}

bool overlap(const Tensor& a, const Tensor& b) {
  const auto* pa = static_cast<const char*>(a.raw_data());
  const auto* pb = static_cast<const char*>(b.raw_data());
  const index_t na = a.numel() * index_t(dtype_size(a.dtype())), nb = b.numel() * index_t(dtype_size(b.dtype()));
  return na > 0 && nb > 0 && pa < pb + nb && pb < pa + na;
}

// A collective's Work before it starts: named by its kind, the group's deadline, `out`
// (written: its version bumped, as an in-place op's) divided by `divide_by` on completion
// when above 1, and `in` kept alive until then.
std::shared_ptr<Work::State> make_state(Kind kind, std::chrono::milliseconds timeout, const Tensor& out,
                                        const Tensor& in = {}, int divide_by = 0) {
  auto s = std::make_shared<Work::State>();
  s->op = op_name(kind);
  s->timeout = timeout;
  s->out = out;
  s->keep_in = in;
  s->divide_by = divide_by;
  if (out.impl().storage) ++out.impl().storage->version;
  return s;
}

// Runs a CPU collective the group's way, after comparing `sig` across ranks where the
// group checks:
// - without a progress thread: blocking, MPI's blocking call under the watchdog, then the
//   Work's completion (an avg's division) at once; asynchronous, the non-blocking call,
//   completed by Work::wait or test;
// - with one: the check and MPI's blocking call as a job of that thread, which holds the
//   tensors until it has run; a blocking call waits for it. Every call that thread makes
//   is blocking, so the signature says blocking whatever the caller asked: an
//   asynchronous call matches a blocking one on a rank whose group has the thread too.
// `blocking` and `nonblocking` capture by value: the job runs after this returns.
template <class Blocking, class NonBlocking>
void run(ProcessGroup::Comm& c, const Options& o, const Signature& sig, Work::State& s, bool async, Blocking blocking,
         const char* blocking_name, NonBlocking nonblocking, const char* nonblocking_name) {
  if (!c.progress) {
    if (o.check_args) check_same(c.comm, sig, o.timeout, async);
    if (async) {
      check_mpi(nonblocking(&s.request), s.op, nonblocking_name);
      return;
    }
    {
      const Watched watched(s.op, o.timeout);
      check_mpi(blocking(), s.op, blocking_name);
    }
    s.finish();
    return;
  }
  // An asynchronous job's deadline: Work::wait throws at o.timeout; the watchdog ends the
  // job as long again later (at least 10 s), should the collective still be pending.
  const std::chrono::milliseconds watch =
      async ? o.timeout + std::max<std::chrono::milliseconds>(o.timeout, std::chrono::seconds(10)) : o.timeout;
  auto error = std::make_shared<std::exception_ptr>();
  s.ticket = c.progress->post(
      [comm = c.comm, o, sig, watch, error, blocking, blocking_name, op = s.op, out = s.out, in = s.keep_in] {
        (void)out, (void)in;  // held, not used: MPI reads and writes their buffers
        try {
          if (o.check_args) check_same(comm, sig, o.timeout, false);
          const Watched watched(op, watch);
          check_mpi(blocking(), op, blocking_name);
        } catch (...) {
          *error = std::current_exception();
        }
      });
  s.progress = c.progress;
  s.error = std::move(error);
  if (!async) {
    c.progress->wait(s.ticket);
    s.finish_posted();
  }
}

// A collective on CUDA tensors, after comparing `sig` across ranks where the group checks
// (on the caller's thread, once a progress thread's jobs are done: they use the same
// communicator): `call` queues it on the group's NCCL stream and returns its end event;
// a blocking call makes the current stream wait for it at once (stream order, no host
// wait), an asynchronous one at Work::wait.
template <class Call>
void run_nccl(ProcessGroup::Comm& c, const Options& o, const Signature& sig, Work::State& s, const Tensor& t,
              bool async, Call call) {
  if (c.progress) c.progress->drain();
  if (o.check_args) check_same(c.comm, sig, o.timeout, async);
  detail::NcclComm& nccl = c.nccl_for(t, s.op);
  s.event = call(nccl);
  s.nccl = c.nccl;
  if (!async) {
    detail::NcclComm::current_stream_waits(s.event);
    s.finish();
  }
}

}  // namespace

Work ProcessGroup::all_reduce(const Tensor& t, ReduceOp op, bool async) {
  const char* name = op_name(Kind::all_reduce);
  check_tensor(t, name, "tensor", true);
  const MPI_Datatype type = reduce_type(t.dtype(), name, "tensor");
  const int n = count_of(t.numel(), name, "tensor");
  const bool cuda = !t.device().is_cpu();
  const Signature sig{Kind::all_reduce, t.dtype(), n, -1, std::int64_t(op), cuda};
  auto s = make_state(Kind::all_reduce, options_.timeout, t, {}, op == ReduceOp::avg && !cuda ? comm_->size : 0);
  if (cuda) {
    run_nccl(*comm_, options_, sig, *s, t, async, [&](detail::NcclComm& c) {
      return c.all_reduce(t.raw_data(), t.numel(), t.dtype(), op == ReduceOp::avg, name);
    });
    return Work(std::move(s));
  }
  const MPI_Op mop = t.dtype() == DType::bf16 ? g_bf16_sum : MPI_SUM;
  MPI_Comm comm = comm_->comm;
  void* data = t.raw_data();
  run(
      *comm_, options_, sig, *s, async, [=] { return MPI_Allreduce(MPI_IN_PLACE, data, n, type, mop, comm); },
      "MPI_Allreduce", [=](MPI_Request* r) { return MPI_Iallreduce(MPI_IN_PLACE, data, n, type, mop, comm, r); },
      "MPI_Iallreduce");
  return Work(std::move(s));
}

Work ProcessGroup::broadcast(const Tensor& t, int root, bool async) {
  const char* name = op_name(Kind::broadcast);
  check_tensor(t, name, "tensor", true);
  TG_CHECK(root >= 0 && root < comm_->size, name, "root", "expected a rank in [0, ", comm_->size, "), got ", root);
  const index_t bytes = t.numel() * index_t(dtype_size(t.dtype()));
  const int n = count_of(bytes, name, "tensor");
  const bool cuda = !t.device().is_cpu();
  const Signature sig{Kind::broadcast, t.dtype(), t.numel(), root, 0, cuda};
  auto s = make_state(Kind::broadcast, options_.timeout, t);
  if (cuda) {
    run_nccl(*comm_, options_, sig, *s, t, async,
             [&](detail::NcclComm& c) { return c.broadcast(t.raw_data(), bytes, root, name); });
    return Work(std::move(s));
  }
  MPI_Comm comm = comm_->comm;
  void* data = t.raw_data();
  run(
      *comm_, options_, sig, *s, async, [=] { return MPI_Bcast(data, n, MPI_BYTE, root, comm); }, "MPI_Bcast",
      [=](MPI_Request* r) { return MPI_Ibcast(data, n, MPI_BYTE, root, comm, r); }, "MPI_Ibcast");
  return Work(std::move(s));
}

Work ProcessGroup::all_gather(const Tensor& out, const Tensor& in, bool async) {
  const char* name = op_name(Kind::all_gather);
  check_in_out(name, in, out, true, comm_->size);
  const int n = count_of(in.numel() * index_t(dtype_size(in.dtype())), name, "in");
  count_of(out.numel() * index_t(dtype_size(out.dtype())), name, "out");
  // MPI forbids the input inside the output unless it is this rank's block, passed as
  // MPI_IN_PLACE.
  const bool in_place = in.raw_data() == static_cast<char*>(out.raw_data()) + std::ptrdiff_t(n) * comm_->rank;
  TG_CHECK(in_place || !overlap(in, out), name, "in",
           "expected a buffer apart from out's, or exactly this rank's block of it");
  const bool cuda = !in.device().is_cpu();
  const Signature sig{Kind::all_gather, in.dtype(), in.numel(), -1, 0, cuda};
  auto s = make_state(Kind::all_gather, options_.timeout, out, in);
  if (cuda) {  // NCCL takes this rank's block of out as in, as MPI_IN_PLACE
    run_nccl(*comm_, options_, sig, *s, in, async,
             [&](detail::NcclComm& c) { return c.all_gather(in.raw_data(), out.raw_data(), n, name); });
    return Work(std::move(s));
  }
  const void* send = in_place ? MPI_IN_PLACE : in.raw_data();
  void* recv = out.raw_data();
  MPI_Comm comm = comm_->comm;
  run(
      *comm_, options_, sig, *s, async, [=] { return MPI_Allgather(send, n, MPI_BYTE, recv, n, MPI_BYTE, comm); },
      "MPI_Allgather", [=](MPI_Request* r) { return MPI_Iallgather(send, n, MPI_BYTE, recv, n, MPI_BYTE, comm, r); },
      "MPI_Iallgather");
  return Work(std::move(s));
}

Work ProcessGroup::reduce_scatter(const Tensor& out, const Tensor& in, ReduceOp op, bool async) {
  const char* name = op_name(Kind::reduce_scatter);
  check_in_out(name, in, out, false, comm_->size);
  TG_CHECK(!overlap(in, out), name, "out", "expected a buffer apart from in's, got an overlapping one");
  const MPI_Datatype type = reduce_type(in.dtype(), name, "in");
  const int n = count_of(out.numel(), name, "out");
  count_of(in.numel(), name, "in");
  const bool cuda = !in.device().is_cpu();
  const Signature sig{Kind::reduce_scatter, in.dtype(), out.numel(), -1, std::int64_t(op), cuda};
  auto s = make_state(Kind::reduce_scatter, options_.timeout, out, in,
                      op == ReduceOp::avg && !cuda ? comm_->size : 0);
  if (cuda) {
    run_nccl(*comm_, options_, sig, *s, in, async, [&](detail::NcclComm& c) {
      return c.reduce_scatter(in.raw_data(), out.raw_data(), out.numel(), in.dtype(), op == ReduceOp::avg, name);
    });
    return Work(std::move(s));
  }
  const MPI_Op mop = in.dtype() == DType::bf16 ? g_bf16_sum : MPI_SUM;
  const void* send = in.raw_data();
  void* recv = out.raw_data();
  MPI_Comm comm = comm_->comm;
  run(
      *comm_, options_, sig, *s, async, [=] { return MPI_Reduce_scatter_block(send, recv, n, type, mop, comm); },
      "MPI_Reduce_scatter_block",
      [=](MPI_Request* r) { return MPI_Ireduce_scatter_block(send, recv, n, type, mop, comm, r); },
      "MPI_Ireduce_scatter_block");
  return Work(std::move(s));
}

void ProcessGroup::barrier() {
  const char* name = op_name(Kind::barrier);
  const Signature sig{Kind::barrier, DType::f32, 0, -1, 0};
  MPI_Comm comm = comm_->comm;
  if (comm_->progress) {  // after the collectives queued before it, on that thread
    auto s = std::make_shared<Work::State>();
    s->op = name;
    s->timeout = options_.timeout;
    run(
        *comm_, options_, sig, *s, false, [=] { return MPI_Barrier(comm); }, "MPI_Barrier",
        [](MPI_Request*) { return MPI_SUCCESS; }, "");
    return;
  }
  if (options_.check_args) check_same(comm, sig, options_.timeout, false);
  const Watched watched(name, options_.timeout);
  check_mpi(MPI_Barrier(comm), name, "MPI_Barrier");
}

}  // namespace tg::dist
