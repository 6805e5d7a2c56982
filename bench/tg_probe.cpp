// A fixed amount of one kernel's work, for instruction counting (scripts/perf-compare
// --callgrind): the same calls on the same data every run, one thread, so that
// valgrind's instruction count is the same to the last instruction from run to run and
// moves only when the code does. Timers cannot give that on this shared machine.
//
//   build/bench/tg_probe --list            the ops, one per line
//   build/bench/tg_probe OP [--calls N]    run OP N times (default 3) after one warm-up
//
// TG_PLANT_SLOWDOWN=OP makes OP do its work twice per call: a deliberate regression
// that scripts/perf-compare's test must flag, and nothing else with it. It lives here,
// in the driver, so the library's kernels carry no test hooks.
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tilegrad/cpu/activation.hpp"
#include "tilegrad/cpu/attention.hpp"
#include "tilegrad/cpu/gemm.hpp"
#include "tilegrad/cpu/layer_norm.hpp"
#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/cpu/reduce.hpp"
#include "tilegrad/cpu/softmax.hpp"
#include "tilegrad/kernels/error.hpp"

namespace {

using tg::index_t;

std::vector<float> data(std::size_t n, std::uint32_t seed) {
  std::vector<float> v(n);
  std::uint32_t s = seed * 2654435761u + 1;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = float(s >> 8) * (2.0f / 16777216.0f) - 1.0f;
  }
  return v;
}

struct Probe {
  std::string name;
  std::function<void()> run;
};

std::vector<Probe> probes() {
  std::vector<Probe> p;
  auto add = [&](std::string n, std::function<void()> f) { p.push_back({std::move(n), std::move(f)}); };
  {
    auto a = std::make_shared<std::vector<float>>(data(256 * 256, 1));
    auto b = std::make_shared<std::vector<float>>(data(256 * 256, 2));
    auto c = std::make_shared<std::vector<float>>(256 * 256);
    add("gemm_256", [=] {
      tg::cpu::gemm(tg::Trans::N, tg::Trans::N, 256, 256, 256, 1.0f, a->data(), 256, b->data(), 256, 0.0f, c->data(),
                    256, {});
    });
    add("gemm_tn_64x256x256", [=] {
      tg::cpu::gemm(tg::Trans::T, tg::Trans::N, 64, 256, 256, 1.0f, a->data(), 64, b->data(), 256, 0.0f, c->data(),
                    256, {});
    });
  }
  {
    const index_t rows = 256, cols = 1024, n = rows * cols;
    auto x = std::make_shared<std::vector<float>>(data(std::size_t(n), 3));
    auto dy = std::make_shared<std::vector<float>>(data(std::size_t(n), 4));
    auto y = std::make_shared<std::vector<float>>(std::size_t(n));
    auto dx = std::make_shared<std::vector<float>>(std::size_t(n));
    auto g = std::make_shared<std::vector<float>>(data(std::size_t(cols), 5));
    auto stats = std::make_shared<std::vector<float>>(std::size_t(4 * rows + 2 * cols));
    add("softmax_fwd", [=] { tg::cpu::softmax_forward(rows, cols, x->data(), cols, y->data(), cols); });
    add("softmax_bwd", [=] {
      tg::cpu::softmax_backward(rows, cols, y->data(), cols, dy->data(), cols, dx->data(), cols);
    });
    add("layer_norm_fwd", [=] {
      tg::cpu::layer_norm_forward(rows, cols, x->data(), cols, g->data(), nullptr, 1e-5f, y->data(), cols,
                                  stats->data(), stats->data() + rows);
    });
    add("layer_norm_bwd", [=] {
      float* s = stats->data();
      tg::cpu::layer_norm_backward(rows, cols, x->data(), cols, dy->data(), cols, g->data(), s, s + rows, 1e-5f,
                                   dx->data(), cols, s + 2 * rows, s + 2 * rows + cols);
    });
    add("gelu_erf_fwd", [=] {
      tg::cpu::act_forward({tg::Act::gelu_erf}, rows, cols, x->data(), cols, nullptr, y->data(), cols);
    });
    add("relu_fwd", [=] { tg::cpu::act_forward({tg::Act::relu}, rows, cols, x->data(), cols, nullptr, y->data(), cols); });
    add("reduce_sum_columns", [=] {
      tg::cpu::reduce_checked(tg::Reduce::sum, 1, rows, cols, x->data(), 0, cols, 1, y->data(), 0, 1);
    });
  }
  {
    const index_t n = 1 << 16;
    auto prm = std::make_shared<std::vector<float>>(data(std::size_t(n), 6));
    auto grad = std::make_shared<std::vector<float>>(data(std::size_t(n), 7));
    auto m = std::make_shared<std::vector<float>>(std::size_t(n));
    auto v = std::make_shared<std::vector<float>>(std::size_t(n));
    add("adamw_step", [=] {
      tg::AdamConfig c;
      c.decoupled = true, c.weight_decay = 1e-2;
      const tg::ParamSlot<float> slot{prm->data(), grad->data(), m->data(), v->data(), n};
      tg::cpu::ops().f32.adam_step(c, std::span<const tg::ParamSlot<float>>(&slot, 1));
    });
  }
  {
    const index_t H = 2, S = 128, D = 64, n = H * S * D;
    auto q = std::make_shared<std::vector<float>>(data(std::size_t(n), 8));
    auto k = std::make_shared<std::vector<float>>(data(std::size_t(n), 9));
    auto v = std::make_shared<std::vector<float>>(data(std::size_t(n), 10));
    auto o = std::make_shared<std::vector<float>>(std::size_t(n));
    auto d_o = std::make_shared<std::vector<float>>(data(std::size_t(n), 11));
    auto grads = std::make_shared<std::vector<float>>(std::size_t(3 * n));
    auto lse = std::make_shared<std::vector<float>>(std::size_t(H * S));
    auto view = [=](float* ptr) { return tg::View4<float>{ptr, H * S * D, S * D, D, 1}; };
    auto cview = [=](const float* ptr) { return tg::View4<const float>{ptr, H * S * D, S * D, D, 1}; };
    add("attention_fwd", [=] {
      tg::AttentionForwardArgs<float> a;
      a.dims = {1, H, H, S, S, D};
      a.scale = 0.125f, a.causal = true;
      a.q = cview(q->data()), a.k = cview(k->data()), a.v = cview(v->data()), a.o = view(o->data());
      a.lse = lse->data();
      tg::cpu::attention_forward(a);
    });
    add("attention_bwd", [=] {
      tg::AttentionBackwardArgs<float> a;
      a.dims = {1, H, H, S, S, D};
      a.scale = 0.125f, a.causal = true;
      a.q = cview(q->data()), a.k = cview(k->data()), a.v = cview(v->data());
      a.o = cview(o->data()), a.d_o = cview(d_o->data()), a.lse = lse->data();
      a.dq = view(grads->data()), a.dk = view(grads->data() + n), a.dv = view(grads->data() + 2 * n);
      tg::cpu::attention_backward(a);
    });
  }
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<Probe> all = probes();
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const Probe& p : all) std::printf("%s\n", p.name.c_str());
    return 0;
  }
  int calls = 3;
  if (argc == 4 && std::strcmp(argv[2], "--calls") == 0) calls = std::atoi(argv[3]);
  if (!(argc == 2 || argc == 4) || calls < 1) {
    std::fprintf(stderr, "usage: %s --list | OP [--calls N]\n", argv[0]);
    return 2;
  }
  const Probe* probe = nullptr;
  for (const Probe& p : all)
    if (p.name == argv[1]) probe = &p;
  if (!probe) {
    std::fprintf(stderr, "tg_probe: no op named '%s' (--list shows them)\n", argv[1]);
    return 2;
  }
  omp_set_num_threads(1);  // one thread: instruction counts without scheduling noise
  const char* plant = std::getenv("TG_PLANT_SLOWDOWN");
  const int per_call = plant && probe->name == plant ? 2 : 1;
  try {
    probe->run();  // warm-up: first-touch and one-time setup out of the comparison's way
    for (int i = 0; i < calls * per_call; ++i) probe->run();
  } catch (const tg::Error& e) {
    std::fprintf(stderr, "tg_probe: %s\n", e.what());
    return 1;
  }
  return 0;
}
