// ShardedOptimizer: the flat layout, the shard's inner optimizer, the step's
// reduce-scatter and all-gather, and the state dict's gather and re-shard
// (dist/sharded_optimizer.hpp).
#include "tilegrad/dist/sharded_optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>

#include "tilegrad/autograd/modes.hpp"
#include "tilegrad/autograd/ops.hpp"
#include "tilegrad/dist/replicate.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::dist {

namespace {
constexpr const char* kOp = "dist.ShardedOptimizer";

Tensor flat_tensor(index_t n, DType t, Device d) {
  return Tensor::zeros({n}, TensorOptions().with_dtype(t).with_device(d));
}

// "state.<i>.<name>" -> i and name; false for other keys.
bool parse_state_key(const std::string& key, std::size_t& i, std::string& name) {
  if (key.rfind("state.", 0) != 0) return false;
  const std::size_t dot = key.find('.', 6);
  if (dot == std::string::npos || dot == 6) return false;
  const std::string num = key.substr(6, dot - 6);
  if (!std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; }) || num.size() > 9) return false;
  i = std::size_t(std::stoul(num));
  name = key.substr(dot + 1);
  return !name.empty();
}
}  // namespace

struct ShardedOptimizer::State {
  ProcessGroup group;  // the user's: construction's checks
  ProcessGroup comm;   // a duplicate without the per-call argument check (the layout is
                       // checked once, at construction)
  std::vector<Tensor> params;
  std::vector<index_t> offset;  // per parameter: its first element in the flat layout
  DType dtype = DType::f32;
  Device device = Device::cpu();  // the parameters', where the flat arrays and the shard's state live
  index_t n = 0, shard = 0;       // elements without padding; a shard's
  Tensor flat;                    // N * shard elements: gradients in, parameters out
  Tensor param_shard, grad_shard;
  std::unique_ptr<nn::Optimizer> inner;
  double max_norm = 0, last_norm = std::numeric_limits<double>::quiet_NaN();

  State(const ProcessGroup& g) : group(g), comm(g.duplicate(Options{g.options().timeout, false})) {}

  index_t begin() const { return index_t(group.rank()) * shard; }
  // Parameter i's elements in a flat array laid out as the parameters.
  Tensor slot(const Tensor& flat_all, std::size_t i) const {
    return make_view(flat_all, Shape(params[i].sizes()), offset[i]);
  }
  // This rank's shard of a flat array of N * shard elements.
  Tensor mine(const Tensor& flat_all) const { return flat_all.slice(0, begin(), begin() + shard); }
  // param_shard = this rank's elements of the parameters (the padding past them is left
  // as it is: zeros, which a step with zero gradients keeps).
  void read_shard() {
    const index_t b = begin(), e = b + shard;
    for (std::size_t i = 0; i < params.size(); ++i) {
      const index_t o = offset[i], m = params[i].numel();
      const index_t lo = std::max(b, o), hi = std::min(e, o + m);
      if (lo < hi) param_shard.slice(0, lo - b, hi - b).copy_(params[i].reshape({m}).slice(0, lo - o, hi - o));
    }
  }
};

ShardedOptimizer::ShardedOptimizer(std::vector<Tensor> params, const ProcessGroup& group, const Factory& make)
    : nn::Optimizer(params, 0), s_(std::make_unique<State>(group)) {
  State& s = *s_;
  TG_CHECK(bool(make), kOp, "make", "expected an optimizer factory, got none");
  s.params = std::move(params);
  // One device for all (checked there); CUDA parameters' collectives run over NCCL.
  replicate_parameters(s.group, s.params, {}, kOp, "params");
  if (!s.params.empty()) s.dtype = s.params[0].dtype(), s.device = s.params[0].device();
  for (std::size_t i = 0; i < s.params.size(); ++i) {
    TG_CHECK(s.params[i].dtype() == s.dtype, kOp, "params", "parameter ", i, " is ", dtype_name(s.params[i].dtype()),
             " where parameter 0 is ", dtype_name(s.dtype), ": expected one dtype");
    s.offset.push_back(s.n);
    s.n += s.params[i].numel();
  }
  const index_t N = group.size();
  s.shard = (s.n + N - 1) / N;
  s.flat = flat_tensor(N * s.shard, s.dtype, s.device);
  s.grad_shard = flat_tensor(s.shard, s.dtype, s.device);
  // The shard the inner optimizer updates: this rank's elements of the (equal)
  // parameters, read from them at each step, so that parameters loaded or changed
  // between steps are the ones stepped.
  s.param_shard = flat_tensor(s.shard, s.dtype, s.device);
  s.param_shard.requires_grad_(true);
  s.inner = make({s.param_shard});
  TG_CHECK(s.inner != nullptr, kOp, "make", "the factory returned no optimizer");
  TG_CHECK(s.inner->params().size() == 1 && s.inner->params()[0].impl_ptr() == s.param_shard.impl_ptr(), kOp, "make",
           "expected the factory's optimizer over the one shard tensor it was given");
  lr_ = s.inner->lr();
}

ShardedOptimizer::~ShardedOptimizer() = default;

void ShardedOptimizer::step() {
  State& s = *s_;
  NoGradGuard no_grad;
  // 1. Gradients laid out flat (zeros for none and for the padding), averaged, scattered.
  for (std::size_t i = 0; i < s.params.size(); ++i) {
    Tensor slot = s.slot(s.flat, i);
    if (const Tensor g = s.params[i].grad(); g.defined()) {
      slot.copy_(g);
    } else {
      slot.zero_();
    }
  }
  if (s.flat.numel() > s.n) s.flat.slice(0, s.n, s.flat.numel()).zero_();  // the padding (all_gather wrote it)
  s.comm.reduce_scatter(s.grad_shard, s.flat, ReduceOp::avg);
  if (s.max_norm > 0) {
    Tensor sq = Tensor::zeros({1}, TensorOptions().with_dtype(DType::f64));
    sq.data<double>()[0] = sum(s.grad_shard * s.grad_shard).item();
    s.comm.all_reduce(sq, ReduceOp::sum);
    s.last_norm = std::sqrt(sq.data<double>()[0]);
    if (s.last_norm > s.max_norm) s.grad_shard.mul_(s.max_norm / (s.last_norm + 1e-6));
  }
  // 2. The shard's update by the inner optimizer's fused kernel.
  s.read_shard();
  Tensor handle = s.param_shard;
  handle.set_grad(s.grad_shard);
  if (s.inner->lr() != lr_) s.inner->set_lr(lr_);
  s.inner->step();
  steps_ = s.inner->steps();
  // 3. Every rank's shard into every rank's parameters.
  s.comm.all_gather(s.flat, s.param_shard);
  for (std::size_t i = 0; i < s.params.size(); ++i) s.params[i].copy_(s.slot(s.flat, i));
}

void ShardedOptimizer::set_max_grad_norm(double max_norm) {
  TG_CHECK(max_norm >= 0 && std::isfinite(max_norm), kOp, "max_norm", "expected a finite norm >= 0, got ", max_norm);
  s_->max_norm = max_norm;
}
double ShardedOptimizer::last_grad_norm() const { return s_->last_norm; }

nn::Optimizer& ShardedOptimizer::inner() { return *s_->inner; }
index_t ShardedOptimizer::shard_begin() const { return s_->begin(); }
index_t ShardedOptimizer::shard_end() const { return s_->begin() + s_->shard; }
index_t ShardedOptimizer::total_elements() const { return s_->n; }

nn::StateDict ShardedOptimizer::state_dict() const {
  State& s = *s_;
  if (s.inner->lr() != lr_) s.inner->set_lr(lr_);  // a rate set since the last step
  nn::StateDict inner = s.inner->state_dict();
  // The inner optimizer's buffer names, in a fixed order on every rank (a map's).
  nn::StateDict out;
  std::vector<std::string> names;
  for (const auto& [key, t] : inner) {
    std::size_t i = 0;
    std::string name;
    if (parse_state_key(key, i, name)) {
      names.push_back(name);
    } else {
      out[key] = t;  // lr, steps
    }
  }
  // Every rank made the same buffers (their first steps were the same steps): checked,
  // since the gathers below must match.
  const int N = s.group.size();
  Tensor mine = Tensor::zeros({1}, TensorOptions().with_dtype(DType::i64));
  Tensor counts = Tensor::zeros({index_t(N)}, TensorOptions().with_dtype(DType::i64));
  mine.data<std::int64_t>()[0] = std::int64_t(names.size());
  s.group.all_gather(counts, mine);
  for (int r = 0; r < N; ++r)
    TG_CHECK(counts.data<std::int64_t>()[r] == std::int64_t(names.size()), kOp, "state_dict", "rank ", r, " has ",
             counts.data<std::int64_t>()[r], " state buffers where rank ", s.group.rank(), " has ", names.size());
  NoGradGuard no_grad;
  for (const std::string& name : names) {
    Tensor all = flat_tensor(s.flat.numel(), s.dtype, s.device);
    s.group.all_gather(all, inner.at("state.0." + name).reshape({s.shard}));
    for (std::size_t i = 0; i < s.params.size(); ++i) {
      Tensor t = make_tensor(s.params[i].sizes(), s.dtype, Device::cpu());
      t.copy_(s.slot(all, i));
      out["state." + std::to_string(i) + "." + name] = t;
    }
  }
  return out;
}

void ShardedOptimizer::load_state_dict(const nn::StateDict& state) {
  State& s = *s_;
  nn::StateDict inner;
  std::map<std::string, Tensor> flats;  // buffer name -> the whole layout, zeros where absent
  NoGradGuard no_grad;
  for (const auto& [key, t] : state) {
    std::size_t i = 0;
    std::string name;
    if (!parse_state_key(key, i, name)) {
      inner[key] = t;  // lr, steps, and whatever the inner optimizer refuses
      continue;
    }
    TG_CHECK(i < s.params.size(), kOp, "state", "key ", key, " names parameter ", i, " of ", s.params.size());
    TG_CHECK(t.numel() == s.params[i].numel(), kOp, "state", "key ", key, " has ", t.numel(),
             " elements where parameter ", i, " has ", s.params[i].numel());
    Tensor& flat = flats[name];
    if (!flat.defined()) flat = flat_tensor(s.flat.numel(), s.dtype, s.device);
    s.slot(flat, i).copy_(t.reshape(s.params[i].sizes()));
  }
  for (auto& [name, flat] : flats) {
    Tensor shard = make_tensor(std::vector<index_t>{s.shard}, s.dtype, s.device);
    shard.copy_(s.mine(flat));
    inner["state.0." + name] = shard;
  }
  s.inner->load_state_dict(inner);
  lr_ = s.inner->lr();
  steps_ = s.inner->steps();
}

}  // namespace tg::dist
