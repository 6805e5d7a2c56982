#include "tilegrad/kernels/error.hpp"

#include <string>

namespace tg {

namespace {
std::string compose(const std::string& op, const std::string& arg, const std::string& what) {
  if (arg.empty()) return op + ": " + what;
  return op + ": argument '" + arg + "': " + what;
}
}  // namespace

Error::Error(std::string op, std::string arg, const std::string& what)
    : std::runtime_error(compose(op, arg, what)), op_(std::move(op)), arg_(std::move(arg)) {}

namespace detail {
void assert_fail(const char* cond, const char* file, int line) {
  // A library never aborts: an internal invariant failing is reported like any error.
  throw Error("internal", "", std::string("assertion '") + cond + "' failed at " + file + ":" +
                                  std::to_string(line));
}
}  // namespace detail

namespace detail {
void overflow(std::int64_t a, char how, std::int64_t b, const char* op, const char* arg) {
  throw_error(op, arg, "expected a size that fits in int64, got ", a, " ", how, " ", b, " (overflow)");
}
}  // namespace detail

}  // namespace tg
