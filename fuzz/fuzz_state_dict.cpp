// A checkpoint file into a module: arbitrary bytes parsed as safetensors and loaded
// into a fixed model, strict and not: names, shapes and dtypes that do not match are a
// tg::Error, and a load that succeeds leaves every parameter with the file's values
// converted to its dtype.
#include <cmath>
#include <cstring>
#include <vector>

#include "fuzz/fuzz.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/nn/layers.hpp"
#include "tilegrad/nn/safetensors.hpp"

namespace {
// Equal values, NaN equal to NaN (a checkpoint may hold NaNs).
bool same_values(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tg;
  if (size == 0) return 0;
  const bool strict = data[0] & 1;
  nn::StateDict dict;
  try {
    dict = nn::parse_safetensors(std::string(reinterpret_cast<const char*>(data + 1), size - 1), "fuzz input");
  } catch (const Error&) {
    return 0;
  }
  static Generator gen(1);
  nn::Sequential model;
  model.add(std::make_shared<nn::Linear>(3, 4, true, Activation{Act::relu}, &gen));
  model.add(std::make_shared<nn::LayerNorm>(4));
  model.add(std::make_shared<nn::Linear>(4, 2, false, Activation{}, &gen));
  try {
    model.load_state_dict(dict, strict);
  } catch (const Error&) {
    return 0;
  }
  for (const auto& [name, t] : model.state_dict()) {
    const auto it = dict.find(name);
    if (it == dict.end()) {
      if (strict) __builtin_trap();
      continue;
    }
    if (!same_values(it->second.to(t.dtype()).to_vector<double>(), t.to_vector<double>())) __builtin_trap();
  }
  return 0;
}
