// Collectives between processes: a ProcessGroup over MPI for CPU tensors, and over NCCL
// for CUDA tensors where the build has CUDA and NCCL (dist/nccl_comm.hpp).
//
// Every process of an `mpirun -np N` job makes ProcessGroup::world() and then calls the
// same collectives in the same order, as with MPI itself or torch.distributed:
//
//   tg::dist::ProcessGroup pg = tg::dist::ProcessGroup::world();
//   pg.all_reduce(grad, tg::dist::ReduceOp::avg);                  // blocking
//   tg::dist::Work w = pg.all_reduce(grad, ReduceOp::sum, true);   // asynchronous
//   ... backward continues ...
//   w.wait();
//
// Tensors: contiguous; the reductions take f32, f64 and bf16 (bf16 adds in float and
// rounds each partial sum once), broadcast and all_gather any dtype. CPU tensors go over
// MPI. CUDA tensors go over NCCL, bootstrapped through MPI by the group's first
// collective on them (rank 0's unique id broadcast), one device a rank: stream-ordered
// on a communication stream of the group's own, after the caller's current stream's
// work; a blocking call makes the current stream wait for it (the host does not), an
// asynchronous one at Work::wait, and Work::test asks the device (no host waits in a
// step). The deadline below applies to CPU collectives; a CUDA one that never completes
// shows as a stream that never drains (NCCL's asynchronous errors are read by test()
// and wait()). A collective writes
// its output in place and bumps the storage's version, like an in-place op; a tensor
// that requires grad is refused while grad mode is on (wrap parameter broadcasts in
// NoGradGuard, as DDP does).
//
// Checked across ranks: before each collective the ranks compare what they were given
// (the collective, dtype, element count, root and op) with one small all-reduce, so a
// rank that passes a different shape or dtype gets a tg::Error naming the argument on
// every rank instead of a hang or a silent mix of buffers (Options::check_args turns it
// off). Every rank makes a collective the same way, blocking or asynchronous: MPI never
// matches the one with the other (the check catches that too).
//
// Every collective has a deadline (Options::timeout) for a rank that never arrives (it
// skipped the call, threw, or died). A blocking call is MPI's blocking collective
// (the fastest), which cannot time out: a watchdog thread ends the job at the deadline
// with a message naming the collective, the rank and the time waited (MPI_Abort; mpirun
// then stops every rank). An asynchronous call's Work::wait throws a tg::Error instead;
// the collective stays pending in MPI, and may be waited on again should the late rank
// come.
//
// Progress: MPI (OpenMPI's non-blocking collectives, at least) moves an asynchronous
// collective along only inside MPI calls. By default those are the caller's: Work::test()
// drives it, and while the caller computes for milliseconds without one, the collective
// waits. With Options::progress_thread the group has a thread of its own that makes every
// one of its collectives, in the order they were called, each as MPI's blocking
// collective: an asynchronous one then runs while the caller computes (what overlaps a
// data-parallel all-reduce with backward), and Work::test() only looks. That thread needs
// a core to run on beside the caller's compute, and MPI_THREAD_MULTIPLE (requested at
// initialization; a group that asks for the thread where MPI does not provide it is an
// error). Its asynchronous collectives' deadline: Work::wait throws at the timeout, as
// without the thread, and the job ends (MPI_Abort) if the collective is still not done
// after as long again (at least 10 s more): that thread cannot leave a blocking MPI call.
//
// Threads otherwise: a group is used by one thread at a time; OpenMP regions in the
// kernels never call MPI.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "tilegrad/autograd/tensor.hpp"

namespace tg::dist {

enum class ReduceOp { sum, avg };

struct Options {
  // A collective not complete after this long is an error on the ranks waiting.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // Compare the arguments across ranks before each collective (one 64-byte all-reduce).
  bool check_args = true;
  // Make this group's collectives on a thread of its own (see "Progress" above).
  bool progress_thread = false;
};

// The handle of a collective: complete when made by a blocking call.
class Work {
 public:
  Work() = default;
  // Blocks until the collective is complete on this rank (its output written, an avg
  // divided), or throws tg::Error at the group's timeout; may be called again after a
  // timeout, and returns at once when complete.
  void wait();
  // Drives MPI's progress once; true when complete (output final).
  bool test();
  bool completed() const;

  struct State;  // dist/process_group.cpp

 private:
  explicit Work(std::shared_ptr<State> s) : s_(std::move(s)) {}
  std::shared_ptr<State> s_;
  friend class ProcessGroup;
};

class ProcessGroup {
 public:
  // Every process of the job, in MPI_COMM_WORLD's rank order, on a communicator of its
  // own (a duplicate: its traffic never matches another group's). Initializes MPI the
  // first time (MPI_Finalize then runs at exit).
  static ProcessGroup world(Options options = {});
  // The same ranks on a fresh communicator (collectives on it never match this one's),
  // with this group's options or others.
  ProcessGroup duplicate() const;
  ProcessGroup duplicate(Options options) const;

  int rank() const;
  int size() const;
  const Options& options() const;

  // t = op over the ranks of t, in place.
  Work all_reduce(const Tensor& t, ReduceOp op = ReduceOp::sum, bool async = false);
  // t = root's t, in place.
  Work broadcast(const Tensor& t, int root, bool async = false);
  // out = the ranks' `in` concatenated in rank order: out has size() * in.numel()
  // elements of in's dtype (its shape is the caller's: flat, or [size, ...in]).
  Work all_gather(const Tensor& out, const Tensor& in, bool async = false);
  // out = block rank() of op over the ranks' `in`, which has size() * out.numel()
  // elements, block r at [r * n, (r + 1) * n).
  Work reduce_scatter(const Tensor& out, const Tensor& in, ReduceOp op = ReduceOp::sum, bool async = false);
  // Returns once every rank has called it (or throws at the timeout).
  void barrier();

  struct Comm;  // dist/process_group.cpp

 private:
  ProcessGroup(std::shared_ptr<Comm> c, Options o) : comm_(std::move(c)), options_(o) {}
  std::shared_ptr<Comm> comm_;
  Options options_;
};

}  // namespace tg::dist
