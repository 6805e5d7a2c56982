// Grad mode, autocast and anomaly mode (autograd/modes.hpp).
#include "tilegrad/autograd/modes.hpp"

#include <atomic>

#include "tilegrad/kernels/error.hpp"

namespace tg {

namespace detail {
constinit thread_local bool t_grad_enabled = true;
}
namespace {
std::atomic<bool> g_anomaly{false};
}  // namespace

using detail::t_grad_enabled;
NoGradGuard::NoGradGuard() : saved_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = saved_; }
GradModeGuard::GradModeGuard(bool on) : saved_(t_grad_enabled) { t_grad_enabled = on; }
GradModeGuard::~GradModeGuard() { t_grad_enabled = saved_; }

namespace {
thread_local DType t_autocast = DType::f32;
}
DType autocast_dtype() { return t_autocast; }
AutocastGuard::AutocastGuard(DType dtype) : saved_(t_autocast) {
  TG_CHECK(dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16, "AutocastGuard", "dtype",
           "expected bf16, f16 (autocast on) or f32 (off), got ", dtype_name(dtype));
  t_autocast = dtype;
}
AutocastGuard::~AutocastGuard() { t_autocast = saved_; }

bool anomaly_enabled() { return g_anomaly.load(std::memory_order_relaxed); }
AnomalyGuard::AnomalyGuard(bool on) : saved_(g_anomaly.exchange(on)) {}
AnomalyGuard::~AnomalyGuard() { g_anomaly.store(saved_); }

}  // namespace tg
