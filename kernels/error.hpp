// tg::Error and the argument checks of the public API.
//
// Every public entry checks its inputs and throws tg::Error with a message that names
// the op, the argument, what was expected and what came:
//
//   TG_CHECK(lda >= K, "gemm", "lda", "expected lda >= K = ", K, " (A is MxK, not transposed), got ", lda);
//   -> "gemm: argument 'lda': expected lda >= K = 64 (A is MxK, not transposed), got 32"
//
// Kernels below the API trust their input; TG_DEBUG_ASSERT guards their invariants in
// debug builds and compiles to nothing in Release.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

namespace tg {

class Error : public std::runtime_error {
 public:
  Error(std::string op, std::string arg, const std::string& what);
  const std::string& op() const noexcept { return op_; }
  const std::string& arg() const noexcept { return arg_; }

 private:
  std::string op_;
  std::string arg_;
};

namespace detail {

// Cold and out of line: the checks that call it stay a few compares on the hot path.
template <class... Parts>
[[noreturn, gnu::cold, gnu::noinline]] void throw_error(const char* op, const char* arg,
                                                        const Parts&... parts) {
  std::ostringstream what;
  (what << ... << parts);
  throw Error(op, arg, what.str());
}

[[noreturn]] void assert_fail(const char* cond, const char* file, int line);

}  // namespace detail

namespace detail {
[[noreturn]] void overflow(std::int64_t a, char how, std::int64_t b, const char* op, const char* arg);
}

// a * b and a + b for sizes, or a tg::Error naming op and arg when int64 overflows.
// Inline: argument checks call them on every entry, and tiny GEMMs take tens of ns.
inline std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* op, const char* arg) {
  std::int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) [[unlikely]] detail::overflow(a, '*', b, op, arg);
  return r;
}
inline std::int64_t checked_add(std::int64_t a, std::int64_t b, const char* op, const char* arg) {
  std::int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) [[unlikely]] detail::overflow(a, '+', b, op, arg);
  return r;
}

}  // namespace tg

#define TG_CHECK(cond, op, arg, ...)                          \
  do {                                                        \
    if (!(cond)) [[unlikely]]                                 \
      ::tg::detail::throw_error((op), (arg), __VA_ARGS__);    \
  } while (0)

#ifdef NDEBUG
#define TG_DEBUG_ASSERT(cond) ((void)0)
#else
#define TG_DEBUG_ASSERT(cond) \
  ((cond) ? (void)0 : ::tg::detail::assert_fail(#cond, __FILE__, __LINE__))
#endif
