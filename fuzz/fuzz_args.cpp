// The examples' command line (examples/common.hpp) on arbitrary tokens (the input split
// at newlines, at most 32): Args within their stated ranges, or a UsageError; every
// value flag read back through Args::number, count and amp the way the examples read
// them gives a value in range or a UsageError. Another exception (std::stoi's
// out_of_range, a float-to-integer conversion out of range under UBSan) is a finding.
#include <cmath>
#include <string>
#include <vector>

#include "examples/common.hpp"
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> tokens{"example"};
  std::string cur;
  for (std::size_t i = 0; i < size && tokens.size() < 33; ++i) {
    if (data[i] == '\n') tokens.push_back(cur), cur.clear();
    else cur += char(data[i]);
  }
  if (tokens.size() < 33) tokens.push_back(cur);
  std::vector<const char*> argv;
  for (const std::string& t : tokens) argv.push_back(t.c_str());
  const std::vector<std::string> own = {"quick", "resume=", "batch=", "lr=", "limit=", "amp=", "heads="};
  examples::Args a;
  try {
    a = examples::parse_command_line(int(argv.size()), argv.data(), own);
  } catch (const examples::UsageError&) {
    return 0;
  }
  if (a.threads < 0 || a.threads > 4096 || a.epochs == 0 || a.epochs < -1 || a.epochs > 1000000) __builtin_trap();
  try {
    if (!std::isfinite(a.number("lr", 1e-3))) __builtin_trap();
  } catch (const examples::UsageError&) {
  }
  try {
    const tg::index_t b = a.count("batch", 128, 1, tg::index_t(1) << 20);
    if (b < 1 || b > (tg::index_t(1) << 20)) __builtin_trap();
  } catch (const examples::UsageError&) {
  }
  try {
    (void)a.amp();
  } catch (const examples::UsageError&) {
  }
  return 0;
}
