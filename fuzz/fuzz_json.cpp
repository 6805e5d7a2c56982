// The JSON reader on arbitrary text: a value or a tg::Error, nothing else. Every string
// it returns is well-formed UTF-8, and json_quote of it parses back to the same string.
#include "fuzz/fuzz.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/nn/json.hpp"

namespace {
void check(const tg::nn::Json& v) {
  using tg::nn::Json;
  auto round_trip = [](const std::string& s) {
    if (tg::nn::utf8_error(s) != std::string::npos) __builtin_trap();
    const Json back = tg::nn::parse_json(tg::nn::json_quote(s), "quoted");
    if (back.kind != Json::Kind::string || back.string != s) __builtin_trap();
  };
  if (v.kind == Json::Kind::string) round_trip(v.string);
  for (const Json& e : v.array) check(e);
  for (const tg::nn::JsonMember& m : v.object) round_trip(m.key), check(m.value);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tg::nn::Json v;
  try {
    v = tg::nn::parse_json(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz input");
  } catch (const tg::Error&) {
    return 0;
  }
  check(v);
  return 0;
}
