// Small helpers several test files share: restoring the OpenMP thread count after a test
// changes it, and the message of the tg::Error a call throws.
#pragma once

#include <functional>
#include <string>

#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::testing {

// Restores the thread count a test found when it ends (the test may set any other).
struct ThreadsGuard {
  int saved = cpu::num_threads();
  ~ThreadsGuard() { cpu::set_num_threads(saved); }
};

// The what() of the tg::Error that f throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace tg::testing
