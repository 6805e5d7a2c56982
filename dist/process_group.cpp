// ProcessGroup over MPI. Blocking calls are MPI's blocking collectives (MPI_Allreduce,
// ...: OpenMPI's tuned algorithms, 1.3-1.6x faster than its non-blocking ones at 1-256
// MiB on one machine) under a watchdog; asynchronous calls are the non-blocking ones
// (MPI_Iallreduce, ...) completed by Work under a deadline. The arguments are compared
// across ranks first.
#include "tilegrad/dist/process_group.hpp"

#include <mpi.h>

#include <cstdint>
#include <atomic>
#include <cstdio>
#include <cstdlib>
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
// that initialized MPI itself finalizes it too).
MPI_Op g_bf16_sum = MPI_OP_NULL;
int g_world_rank = 0;
void ensure_mpi() {
  static std::once_flag once;
  std::call_once(once, [] {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "dist.world", "MPI_Init_thread");
      std::atexit([] {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
      });
    }
    check_mpi(MPI_Op_create(&bf16_sum, 1, &g_bf16_sum), "dist.world", "MPI_Op_create");
    MPI_Comm_rank(MPI_COMM_WORLD, &g_world_rank);
  });
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
    if (now >= deadline) {
      const double waited = std::chrono::duration<double>(now - start).count();
      TG_CHECK(false, op, "timeout", "rank ", g_world_rank, " waited ", waited,
               " s for the other ranks (one that did not make this call, threw, or died); "
               "the collective stays pending: wait() again, or end the job");
    }
    if (now - start > std::chrono::seconds(1)) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    } else if (now - start > std::chrono::milliseconds(10)) {
      std::this_thread::yield();
    }
  }
}

// A blocking MPI call cannot time out, so a watchdog thread watches it: armed with a
// deadline around the call, it ends the job with a message (MPI_Abort: mpirun then stops
// every rank) when the call outlives it. Arming and disarming are two atomic stores (a
// 4 KiB all-reduce takes a few microseconds: waking a thread per call would double
// that); the thread looks every 20 ms, so the job ends at most that much late. One per
// process, started on first use and never destroyed (it outlives static destructors).
class Watchdog {
 public:
  static Watchdog& get() {
    static Watchdog* w = new Watchdog;
    return *w;
  }
  void arm(const char* op, std::chrono::milliseconds timeout) {
    op_.store(op, std::memory_order_relaxed);
    timeout_ms_.store(timeout.count(), std::memory_order_relaxed);
    deadline_ns_.store(now_ns() + std::int64_t(timeout.count()) * 1000000, std::memory_order_release);
  }
  void disarm() { deadline_ns_.store(0, std::memory_order_release); }

 private:
  static std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  Watchdog() { std::thread([this] { run(); }).detach(); }
  void run() {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      const std::int64_t deadline = deadline_ns_.load(std::memory_order_acquire);
      if (deadline == 0 || now_ns() < deadline) continue;
      std::fprintf(stderr,
                   "tilegrad: %s: rank %d waited %.1f s for the other ranks (one that did not make this call, "
                   "threw, or died): ending the job\n",
                   op_.load(std::memory_order_relaxed), g_world_rank,
                   double(timeout_ms_.load(std::memory_order_relaxed)) / 1000.0);
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
      std::_Exit(1);
    }
  }
  std::atomic<std::int64_t> deadline_ns_{0};  // 0: disarmed
  std::atomic<const char*> op_{""};
  std::atomic<std::int64_t> timeout_ms_{0};
};

struct Watched {
  Watched(const char* op, std::chrono::milliseconds timeout) { Watchdog::get().arm(op, timeout); }
  ~Watched() { Watchdog::get().disarm(); }
  Watched(const Watched&) = delete;
  Watched& operator=(const Watched&) = delete;
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
  ~Comm() {
    if (comm != MPI_COMM_NULL && mpi_live()) MPI_Comm_free(&comm);
  }
};

struct Work::State {
  MPI_Request request = MPI_REQUEST_NULL;
  // CUDA tensors: the collective's end event on the NCCL stream (see nccl_comm.hpp).
  std::shared_ptr<detail::NcclComm> nccl;
  void* event = nullptr;
  ~State() { detail::NcclComm::release(event); }
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
};

bool Work::completed() const { return !s_ || s_->done; }

bool Work::test() {
  if (completed()) return true;
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
  wait_request(s_->request, s_->op, s_->timeout);
  s_->finish();
}

ProcessGroup ProcessGroup::world(Options options) {
  ensure_mpi();
  auto c = std::make_shared<Comm>();
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &c->comm), "dist.world", "MPI_Comm_dup");
  MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(c->comm, &c->rank);
  MPI_Comm_size(c->comm, &c->size);
  return ProcessGroup(std::move(c), options);
}

ProcessGroup ProcessGroup::duplicate() const { return duplicate(options_); }

ProcessGroup ProcessGroup::duplicate(Options options) const {
  auto c = std::make_shared<Comm>();
  check_mpi(MPI_Comm_dup(comm_->comm, &c->comm), "dist.duplicate", "MPI_Comm_dup");
  MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
  c->rank = comm_->rank;
  c->size = comm_->size;
  return ProcessGroup(std::move(c), options);
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

// Runs a collective the caller's way: blocking, MPI's blocking call under the watchdog,
// then the Work's completion (an avg's division) at once; asynchronous, the non-blocking
// call, completed by Work::wait or test.
template <class Blocking, class NonBlocking>
void run(Work::State& s, bool async, std::chrono::milliseconds timeout, Blocking blocking, const char* blocking_name,
         NonBlocking nonblocking, const char* nonblocking_name) {
  if (async) {
    check_mpi(nonblocking(&s.request), s.op, nonblocking_name);
    return;
  }
  {
    const Watched watched(s.op, timeout);
    check_mpi(blocking(), s.op, blocking_name);
  }
  s.finish();
}

// A collective on CUDA tensors: `call` queues it on the group's NCCL stream and returns
// its end event; a blocking call makes the current stream wait for it at once (stream
// order, no host wait), an asynchronous one at Work::wait.
template <class Call>
void run_nccl(Work::State& s, ProcessGroup::Comm& c, const Tensor& t, bool async, Call call) {
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
  if (options_.check_args) {
    check_same(comm_->comm, {Kind::all_reduce, t.dtype(), n, -1, std::int64_t(op), cuda}, options_.timeout, async);
  }
  auto s = make_state(Kind::all_reduce, options_.timeout, t, {}, op == ReduceOp::avg && !cuda ? comm_->size : 0);
  if (cuda) {
    run_nccl(*s, *comm_, t, async, [&](detail::NcclComm& c) {
      return c.all_reduce(t.raw_data(), t.numel(), t.dtype(), op == ReduceOp::avg, name);
    });
    return Work(std::move(s));
  }
  const MPI_Op mop = t.dtype() == DType::bf16 ? g_bf16_sum : MPI_SUM;
  MPI_Comm comm = comm_->comm;
  void* data = t.raw_data();
  run(
      *s, async, options_.timeout, [&] { return MPI_Allreduce(MPI_IN_PLACE, data, n, type, mop, comm); },
      "MPI_Allreduce", [&](MPI_Request* r) { return MPI_Iallreduce(MPI_IN_PLACE, data, n, type, mop, comm, r); },
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
  if (options_.check_args) {
    check_same(comm_->comm, {Kind::broadcast, t.dtype(), t.numel(), root, 0, cuda}, options_.timeout, async);
  }
  auto s = make_state(Kind::broadcast, options_.timeout, t);
  if (cuda) {
    run_nccl(*s, *comm_, t, async, [&](detail::NcclComm& c) { return c.broadcast(t.raw_data(), bytes, root, name); });
    return Work(std::move(s));
  }
  MPI_Comm comm = comm_->comm;
  run(
      *s, async, options_.timeout, [&] { return MPI_Bcast(t.raw_data(), n, MPI_BYTE, root, comm); }, "MPI_Bcast",
      [&](MPI_Request* r) { return MPI_Ibcast(t.raw_data(), n, MPI_BYTE, root, comm, r); }, "MPI_Ibcast");
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
  if (options_.check_args) {
    check_same(comm_->comm, {Kind::all_gather, in.dtype(), in.numel(), -1, 0, cuda}, options_.timeout, async);
  }
  auto s = make_state(Kind::all_gather, options_.timeout, out, in);
  if (cuda) {  // NCCL takes this rank's block of out as in, as MPI_IN_PLACE
    run_nccl(*s, *comm_, in, async,
             [&](detail::NcclComm& c) { return c.all_gather(in.raw_data(), out.raw_data(), n, name); });
    return Work(std::move(s));
  }
  const void* send = in_place ? MPI_IN_PLACE : in.raw_data();
  MPI_Comm comm = comm_->comm;
  run(
      *s, async, options_.timeout, [&] { return MPI_Allgather(send, n, MPI_BYTE, out.raw_data(), n, MPI_BYTE, comm); },
      "MPI_Allgather",
      [&](MPI_Request* r) { return MPI_Iallgather(send, n, MPI_BYTE, out.raw_data(), n, MPI_BYTE, comm, r); },
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
  if (options_.check_args) {
    check_same(comm_->comm, {Kind::reduce_scatter, in.dtype(), out.numel(), -1, std::int64_t(op), cuda},
               options_.timeout, async);
  }
  auto s = make_state(Kind::reduce_scatter, options_.timeout, out, in,
                      op == ReduceOp::avg && !cuda ? comm_->size : 0);
  if (cuda) {
    run_nccl(*s, *comm_, in, async, [&](detail::NcclComm& c) {
      return c.reduce_scatter(in.raw_data(), out.raw_data(), out.numel(), in.dtype(), op == ReduceOp::avg, name);
    });
    return Work(std::move(s));
  }
  const MPI_Op mop = in.dtype() == DType::bf16 ? g_bf16_sum : MPI_SUM;
  MPI_Comm comm = comm_->comm;
  run(
      *s, async, options_.timeout,
      [&] { return MPI_Reduce_scatter_block(in.raw_data(), out.raw_data(), n, type, mop, comm); },
      "MPI_Reduce_scatter_block",
      [&](MPI_Request* r) { return MPI_Ireduce_scatter_block(in.raw_data(), out.raw_data(), n, type, mop, comm, r); },
      "MPI_Ireduce_scatter_block");
  return Work(std::move(s));
}

void ProcessGroup::barrier() {
  const char* name = op_name(Kind::barrier);
  if (options_.check_args) check_same(comm_->comm, {Kind::barrier, DType::f32, 0, -1, 0}, options_.timeout, false);
  const Watched watched(name, options_.timeout);
  check_mpi(MPI_Barrier(comm_->comm), name, "MPI_Barrier");
}

}  // namespace tg::dist
