// DataParallel: the parameters' broadcast and check, the gradient buckets, their hooks
// and their all-reduces (dist/data_parallel.hpp).
#include "tilegrad/dist/data_parallel.hpp"

#include <algorithm>
#include <string>
#include <unordered_map>

#include "tilegrad/autograd/modes.hpp"
#include "tilegrad/dist/replicate.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::dist {

namespace {
constexpr const char* kOp = "dist.DataParallel";

struct Bucket {
  std::vector<int> params;  // indices into State::params
  Tensor flat;              // the bucket's gradients, contiguous
  int ready = 0;            // parameters whose gradient is in flat this step
  Work work;
};

}  // namespace

struct DataParallel::State {
  ProcessGroup group;    // the user's: construction's broadcasts and checks
  ProcessGroup buckets;  // a duplicate without the per-call argument check (the layout is
                         // checked once, at construction)
  std::vector<Tensor> params;
  std::unordered_map<const TensorImpl*, int> index;  // parameter -> its index
  std::vector<int> bucket_of;     // per parameter: its bucket
  std::vector<index_t> offset_of;  // per parameter: its first element in the bucket's flat
  std::vector<char> ready;         // per parameter, this step
  std::vector<Bucket> bs;
  int next = 0;  // the next bucket to start
  std::size_t waiting = 0;  // parameters still without their gradient this step
  int started_in_backward = 0, last_started_in_backward = 0;
  bool no_sync = false;

  State(const ProcessGroup& g) : group(g), buckets(g.duplicate(unchecked(g.options()))) {}
  static Options unchecked(Options o) {
    o.check_args = false;
    return o;
  }

  void start_ready_buckets() {
    while (next < int(bs.size()) && bs[std::size_t(next)].ready == int(bs[std::size_t(next)].params.size())) {
      Bucket& b = bs[std::size_t(next++)];
      b.work = buckets.all_reduce(b.flat, ReduceOp::avg, true);
    }
  }

  // Parameter p's slot in its bucket's flat buffer, shaped like p.
  Tensor slot(int p) const {
    return make_view(bs[std::size_t(bucket_of[std::size_t(p)])].flat, Shape(params[std::size_t(p)].sizes()),
                     offset_of[std::size_t(p)]);
  }

  // A parameter's gradient (or zeros, g undefined) into its bucket's slot.
  void put(int p, const Tensor& g) {
    Bucket& b = bs[std::size_t(bucket_of[std::size_t(p)])];
    Tensor slot = this->slot(p);
    NoGradGuard no_grad;
    if (g.defined()) {
      slot.copy_(g);
    } else {
      slot.zero_();
    }
    ready[std::size_t(p)] = 1;
    ++b.ready;
    --waiting;
  }

  void on_gradient(const Tensor& leaf) {
    if (no_sync) return;
    const auto it = index.find(leaf.impl_ptr().get());
    if (it == index.end() || ready[std::size_t(it->second)]) return;
    put(it->second, leaf.grad());
    const int before = next;
    start_ready_buckets();
    if (waiting > 0) started_in_backward += next - before;  // backward has more to do
    // OpenMPI moves a non-blocking collective along only inside MPI calls: each hook
    // drives the buckets in flight once.
    for (int k = 0; k < next; ++k) bs[std::size_t(k)].work.test();
  }
};

DataParallel::DataParallel(std::shared_ptr<nn::Module> module, const ProcessGroup& group, DataParallelOptions options)
    : module_(std::move(module)) {
  TG_CHECK(module_ != nullptr, kOp, "module", "expected a module, got null");
  TG_CHECK(options.bucket_mib > 0, kOp, "bucket_mib", "expected a positive size, got ", options.bucket_mib);
  s_ = std::make_shared<State>(group);
  State& s = *s_;
  s.params = module_->parameters();
  for (std::size_t i = 0; i < s.params.size(); ++i) s.index.emplace(s.params[i].impl_ptr().get(), int(i));
  std::vector<Tensor> buffers;
  if (options.broadcast_buffers)
    for (auto& [name, b] : module_->named_buffers()) buffers.push_back(b);
  replicate_parameters(s.group, s.params, buffers, kOp, "module");
  const Device device = s.params.empty() ? Device::cpu() : s.params[0].device();

  // Buckets: reverse registration order, a new one at the size cap or a dtype change.
  const auto cap = index_t(options.bucket_mib * 1024 * 1024);
  s.bucket_of.assign(s.params.size(), -1);
  s.offset_of.assign(s.params.size(), 0);
  s.ready.assign(s.params.size(), 0);
  s.waiting = s.params.size();
  index_t bytes = 0;
  for (int i = int(s.params.size()) - 1; i >= 0; --i) {
    const Tensor& p = s.params[std::size_t(i)];
    const index_t pb = p.numel() * index_t(dtype_size(p.dtype()));
    const bool fresh = s.bs.empty() || bytes + pb > cap ||
                       s.params[std::size_t(s.bs.back().params.front())].dtype() != p.dtype();
    if (fresh) {
      s.bs.emplace_back();
      bytes = 0;
    }
    Bucket& b = s.bs.back();
    s.offset_of[std::size_t(i)] = bytes / index_t(dtype_size(p.dtype()));  // one dtype a bucket
    b.params.push_back(i);
    s.bucket_of[std::size_t(i)] = int(s.bs.size()) - 1;
    bytes += pb;
  }
  for (Bucket& b : s.bs) {
    const Tensor& last = s.params[std::size_t(b.params.back())];
    b.flat = make_tensor(std::vector<index_t>{s.offset_of[std::size_t(b.params.back())] + last.numel()}, last.dtype(),
                         device);
  }

  // The hooks hold the state weakly: after this object is gone they do nothing.
  const std::weak_ptr<State> weak = s_;
  for (const Tensor& p : s.params)
    p.register_post_accumulate_grad_hook([weak](const Tensor& leaf) {
      if (const std::shared_ptr<State> st = weak.lock()) st->on_gradient(leaf);
    });
}

DataParallel::~DataParallel() = default;

const ProcessGroup& DataParallel::group() const { return s_->group; }

void DataParallel::synchronize() {
  State& s = *s_;
  if (s.no_sync) return;
  s.last_started_in_backward = s.started_in_backward;
  s.started_in_backward = 0;
  // Parameters without a gradient this step add zeros; then every bucket starts, in order.
  for (std::size_t p = 0; p < s.params.size(); ++p)
    if (!s.ready[p]) s.put(int(p), Tensor());
  s.start_ready_buckets();
  for (Bucket& b : s.bs) {
    b.work.wait();
    NoGradGuard no_grad;
    for (int p : b.params) {
      const Tensor& param = s.params[std::size_t(p)];
      const Tensor avg = s.slot(p);
      Tensor g = param.grad();
      if (g.defined() && g.is_contiguous() && g.dtype() == avg.dtype()) {
        g.copy_(avg);
      } else {
        Tensor fresh = make_tensor(param.sizes(), param.dtype(), param.device());
        fresh.copy_(avg);
        Tensor handle = param;
        handle.set_grad(fresh);
      }
    }
    b.ready = 0;
  }
  std::fill(s.ready.begin(), s.ready.end(), 0);
  s.waiting = s.params.size();
  s.next = 0;
}

std::vector<std::vector<int>> DataParallel::buckets() const {
  std::vector<std::vector<int>> out;
  for (const Bucket& b : s_->bs) out.push_back(b.params);
  return out;
}

int DataParallel::started_during_backward() const { return s_->last_started_in_backward; }

DataParallel::NoSync::NoSync(DataParallel& d) : d_(&d), saved_(d.s_->no_sync) { d.s_->no_sync = true; }
DataParallel::NoSync::~NoSync() { d_->s_->no_sync = saved_; }

}  // namespace tg::dist
