// tg_accuracy: the worst error, in ulp of the exact result, of each implementation of
// each activation forward that bench_eltwise times: ours (every CPU path), oneDNN's
// eltwise primitive, Eigen's array expressions and the libm loop, over a strided sweep
// of float bit patterns (every 4093rd: ~1M finite inputs, each exponent's range
// covered), against the double reference (kernels/reference). Speed rows mean
// little without this: cpu/vmath/NOTES.md quotes both.
//
//   build/bench/tg_accuracy [STRIDE]
//
// A result that overflows float (|f| > FLT_MAX) is skipped; everything else, tails
// included, is scored, since a probability of 1e-30 or a gelu of -1e-37 is a value a
// model computes with (a tail flushed to 0 or lost to cancellation scores ~2^24 ulp:
// the relative error is 100%). A second column restricts to |x| <= 4, where most
// activations' inputs lie.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/peers/peers.hpp"
#include "tilegrad/cpu/activation.hpp"
#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/kernels/activation.hpp"
#ifdef TG_PEER_ONEDNN
#include "bench/peers/onednn_prims.hpp"
#endif

namespace {

using tg::Act;
using tg::index_t;

// One ulp of float at the magnitude of d (subnormal spacing below FLT_MIN).
double ulp_of(double d) {
  const double a = std::fabs(d);
  if (a < 0x1p-126) return 0x1p-149;
  int e = 0;
  std::frexp(a, &e);
  return std::ldexp(1.0, e - 24);
}

struct Worst {
  double ulp = 0, ulp_central = 0;  // everywhere; over |x| <= 4
  float at = 0;
};

Worst score(Act a, const std::vector<float>& x, const std::vector<float>& y) {
  Worst w;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double exact = tg::act_value({a, 0.01f}, x[i]);
    if (std::fabs(exact) > double(3.4028234663852886e38f)) continue;
    double e = std::fabs(double(y[i]) - exact) / ulp_of(exact);
    if (std::isnan(e)) e = INFINITY;  // NaN where a number was due counts as worst
    if (e > w.ulp) {
      w.ulp = e;
      w.at = x[i];
    }
    if (std::fabs(x[i]) <= 4.0f) w.ulp_central = std::max(w.ulp_central, e);
  }
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t stride = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 4093;
  if (stride == 0) {
    std::fprintf(stderr, "tg_accuracy: STRIDE must be a positive integer\n");
    return 2;
  }
  std::vector<float> x;
  for (std::uint64_t k = 0; k < (std::uint64_t(1) << 32); k += stride) {
    const float v = std::bit_cast<float>(std::uint32_t(k));
    if (std::isfinite(v)) x.push_back(v);
  }
  const index_t n = index_t(x.size());
  std::vector<float> y(x.size());
  std::printf("max error in ulp of the exact result over %lld finite floats (every %llu-th bit pattern)\n",
              static_cast<long long>(n), static_cast<unsigned long long>(stride));
  std::printf("%-10s %-16s %14s  %-16s %s\n", "act", "impl", "max ulp", "at x", "max ulp, |x| <= 4");
  auto report = [&](Act a, const std::string& who) {
    const Worst w = score(a, x, y);
    std::printf("%-10s %-16s %14.4g  %-16.9g %.4g\n", tg::act_name(a), who.c_str(), w.ulp, double(w.at),
                w.ulp_central);
  };
  for (Act a : {Act::gelu_erf, Act::gelu_tanh, Act::silu, Act::sigmoid, Act::tanh}) {
    tg::cpu::act_forward_portable({a}, 1, n, x.data(), n, nullptr, y.data(), n);
    report(a, "tilegrad/scalar");
#if TG_X86_PATHS
    if (tg::cpu::isa_supported(tg::cpu::Isa::avx2)) {
      tg::cpu::act_forward_avx2({a}, 1, n, x.data(), n, nullptr, y.data(), n);
      report(a, "tilegrad/avx2");
    }
#endif
#if TG_NEON_PATHS
    tg::cpu::act_forward_neon({a}, 1, n, x.data(), n, nullptr, y.data(), n);
    report(a, "tilegrad/neon");
#endif
#ifdef TG_PEER_ONEDNN
    try {
      tg::peers::OnednnPrimitive prim(tg::peers::OnednnPrimitive::Kind::eltwise_fwd, 1, n, {a});
      prim.run(x.data(), nullptr, y.data());
      report(a, "onednn");
    } catch (const std::exception& e) {
      std::printf("%-10s %-16s refused: %s\n", tg::act_name(a), "onednn", e.what());
    }
#endif
    for (const auto& p : tg::peers::norm_peers()) {
      p.act_fwd({a}, n, x.data(), y.data());
      report(a, p.name);
    }
  }
  return 0;
}
