#include "tilegrad/nn/checkpoint.hpp"

#include <bit>

#include "tilegrad/kernels/error.hpp"
#include "tilegrad/nn/safetensors.hpp"

namespace tg::nn {

namespace {
Tensor i64(std::uint64_t v) {
  return Tensor::from_vector(std::vector<std::int64_t>{std::bit_cast<std::int64_t>(v)}, {});
}
StateDict with_prefix(const std::string& prefix, const StateDict& in, StateDict& out) {
  for (const auto& [k, v] : in) out[prefix + k] = v;
  return out;
}
StateDict under(const std::string& prefix, const StateDict& all) {
  StateDict out;
  for (const auto& [k, v] : all)
    if (k.rfind(prefix, 0) == 0) out[k.substr(prefix.size())] = v;
  return out;
}
}  // namespace

void save_checkpoint(const std::string& path, const TrainingState& state, const std::map<std::string, double>& extra,
                     const StateDict* optimizer_state) {
  TG_CHECK(state.model != nullptr, "save_checkpoint", "state", "expected a model");
  StateDict all;
  with_prefix("model.", state.model->state_dict(), all);
  if (optimizer_state) {
    with_prefix("optimizer.", *optimizer_state, all);
  } else if (state.optimizer) {
    with_prefix("optimizer.", state.optimizer->state_dict(), all);
  }
  if (state.scheduler) with_prefix("scheduler.", state.scheduler->state_dict(), all);
  if (state.generator) {
    all["rng.seed"] = i64(state.generator->seed());
    all["rng.offset"] = i64(state.generator->offset());
  }
  for (const auto& [k, v] : extra) all["extra." + k] = Tensor::full({}, v, TensorOptions().with_dtype(DType::f64));
  save_safetensors(path, all, {{"format", "tilegrad checkpoint"}});
}

std::map<std::string, double> load_checkpoint(const std::string& path, const TrainingState& state) {
  TG_CHECK(state.model != nullptr, "load_checkpoint", "state", "expected a model");
  const StateDict all = load_safetensors(path);
  state.model->load_state_dict(under("model.", all));
  if (state.optimizer) state.optimizer->load_state_dict(under("optimizer.", all));
  if (state.scheduler) state.scheduler->load_state_dict(under("scheduler.", all));
  if (state.generator) {
    TG_CHECK(all.count("rng.seed") && all.count("rng.offset"), "load_checkpoint", "path", path,
             ": no generator state in this checkpoint");
    auto u64 = [&](const char* k) { return std::bit_cast<std::uint64_t>(all.at(k).to_vector<std::int64_t>().at(0)); };
    state.generator->set_state(u64("rng.seed"), u64("rng.offset"));
  }
  std::map<std::string, double> extra;
  for (const auto& [k, v] : under("extra.", all)) extra[k] = v.item();
  return extra;
}

}  // namespace tg::nn
