// The IDX reader (plain and gzip) on arbitrary bytes: dims whose product is the payload
// it returns, or a tg::Error.
#include "fuzz/fuzz.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/nn/io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const tg::nn::IdxArray a = tg::nn::read_idx(tg::fuzz::as_file(data, size, ".idx"));
    std::size_t n = 1;
    for (const tg::index_t d : a.dims) n *= std::size_t(d);
    if (a.dims.empty() || a.dims.size() > 4 || n != a.bytes.size()) __builtin_trap();
  } catch (const tg::Error&) {
  }
  return 0;
}
