// The CSV reader on arbitrary text, with the first byte choosing the separator and the
// fill: a (rows, columns) table with no NaN left in it, or a tg::Error.
#include <cmath>

#include "fuzz/fuzz.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/nn/io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const char seps[] = {',', ';', '\t', ' '};
  const char sep = seps[data[0] & 3];
  const tg::nn::Fill fill = data[0] & 4 ? tg::nn::Fill::median : tg::nn::Fill::mean;
  try {
    const tg::nn::CsvTable t = tg::nn::read_csv(tg::fuzz::as_file(data + 1, size - 1, ".csv"), fill, tg::DType::f64, sep);
    if (t.data.dim() != 2 || t.data.size(1) != tg::index_t(t.columns.size())) __builtin_trap();
    for (const double v : t.data.to_vector<double>())
      if (std::isnan(v)) __builtin_trap();
  } catch (const tg::Error&) {
  }
  return 0;
}
