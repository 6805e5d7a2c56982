// --profile FILE for the examples: records a run of training steps after a warm-up with
// tg::Profiler, then writes FILE (Chrome's trace-event JSON: Perfetto and
// chrome://tracing open it) and FILE with .csv for .json (the tables), and prints the
// tables with each kernel's fraction of this machine's measured roofline (on the CPU:
// the FMA peak of the path in use and the copy bandwidth, bench/support/machine.hpp).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "bench/support/machine.hpp"
#include "tilegrad/autograd/profiler.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/types.hpp"

namespace examples {

class StepProfile {
 public:
  // Empty path: does nothing. Steps [warmup, warmup + steps) of the run are recorded.
  StepProfile(std::string path, tg::Device device, tg::index_t warmup = 5, tg::index_t steps = 20)
      : path_(std::move(path)), device_(device), warmup_(warmup), steps_(steps) {}

  bool enabled() const { return !path_.empty(); }

  // Around each training step, in order; the step count is this object's own. The last
  // recorded step stops the recording; finish() reports (outside any timed stretch: it
  // measures the machine's ceilings, about a second).
  void before_step() {
    if (!enabled() || step_ != warmup_) return;
    sync();
    prof_ = std::make_unique<tg::Profiler>();
    start_ = std::chrono::steady_clock::now();
  }
  void after_step() {
    if (!enabled()) return;
    ++step_;
    if (prof_ && prof_->running() && step_ == warmup_ + steps_) stop();
  }

  // Stops (a run shorter than warm-up + steps) and reports, once.
  void finish() {
    if (!prof_ || reported_) return;
    stop();
    reported_ = true;
    const double measured_ms = measured_ms_;
    const tg::index_t recorded = recorded_;
    tg::Roofline roof;
    if (device_.is_cpu()) {
      const tg::bench::Ceilings& c = tg::bench::ceilings();
      roof.peak_gflops = c.fma_gflops * double(tg::cpu::num_threads()) / double(std::max(1, c.threads));
      roof.bandwidth_gbs = c.copy_gbs;
    }
    std::string csv = path_;
    if (csv.size() > 5 && csv.compare(csv.size() - 5, 5, ".json") == 0) csv.resize(csv.size() - 5);
    csv += ".csv";
    prof_->write_chrome_trace(path_);
    prof_->write_csv(csv, roof, true);
    double rows_ms = 0;
    for (const tg::ProfileRow& r : prof_->op_rows(roof, true)) rows_ms += r.total_ms;
    std::printf("%s", prof_->table(roof, true).c_str());
    std::printf("profile: %lld steps after %lld of warm-up, %.3f ms a step measured around them; the op rows add up "
                "to %.3f ms (%.1f%% of the measured %.3f ms); trace %s, tables %s\n",
                static_cast<long long>(recorded), static_cast<long long>(warmup_),
                recorded > 0 ? measured_ms / double(recorded) : 0.0, rows_ms,
                measured_ms > 0 ? 100.0 * rows_ms / measured_ms : 0.0, measured_ms, path_.c_str(), csv.c_str());
  }

 private:
  void stop() {
    if (!prof_->running()) return;
    sync();
    measured_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
    prof_->stop();
    recorded_ = step_ - warmup_;
  }
  void sync() const {
    if (device_.is_cuda()) tg::cuda::synchronize();
  }

  std::string path_;
  tg::Device device_;
  tg::index_t warmup_, steps_, step_ = 0, recorded_ = 0;
  double measured_ms_ = 0;
  bool reported_ = false;
  std::unique_ptr<tg::Profiler> prof_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace examples
