// The safetensors reader on arbitrary bytes: it returns tensors whose bytes are the
// file's, or throws tg::Error; anything else (a crash, a sanitizer report, another
// exception, a hang) is a finding. A file it accepts must survive a write and a second
// read with the same names, shapes, dtypes and bytes.
#include <cstring>

#include "fuzz/fuzz.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/nn/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tg;
  nn::StateDict dict;
  nn::Metadata meta;
  try {
    dict = nn::parse_safetensors(std::string(reinterpret_cast<const char*>(data), size), "fuzz input", &meta);
  } catch (const Error&) {
    return 0;
  }
  const std::string path = fuzz::scratch_path(".st");
  nn::save_safetensors(path, dict, meta);
  nn::Metadata meta2;
  const nn::StateDict again = nn::load_safetensors(path, &meta2);
  if (again.size() != dict.size() || meta2 != meta) __builtin_trap();
  for (const auto& [name, t] : dict) {
    const Tensor& u = again.at(name);
    if (u.dtype() != t.dtype() || u.shape().str() != t.shape().str()) __builtin_trap();
    const std::size_t bytes = std::size_t(t.numel()) * dtype_size(t.dtype());
    if (bytes && std::memcmp(u.raw_data(), t.contiguous().raw_data(), bytes) != 0) __builtin_trap();
  }
  return 0;
}
