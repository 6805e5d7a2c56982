// The fused optimizer kernels (kernels/optimizer.hpp) on every CPU path against the
// reference formulas in double, over several parameters of odd sizes at once, and the
// argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/optimizer.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

template <class T>
struct Model {
  std::vector<std::vector<T>> p, g, m, v;
  std::vector<ParamSlot<T>> slots() {
    std::vector<ParamSlot<T>> s;
    for (std::size_t i = 0; i < p.size(); ++i)
      s.push_back({p[i].data(), g[i].data(), m[i].data(), v[i].data(), index_t(p[i].size())});
    return s;
  }
};

template <class T>
Model<T> random_model(testing::Rng& rng) {
  Model<T> md;
  for (index_t n : {index_t(1), index_t(7), index_t(33), index_t(70001)}) {  // one over the chunk and thread cut
    md.p.push_back(testing::random_vec<T>(rng, n, -1, 1));
    md.g.push_back(testing::random_vec<T>(rng, n, -1, 1));
    md.m.push_back(testing::random_vec<T>(rng, n, -0.1, 0.1));
    std::vector<T> v = testing::random_vec<T>(rng, n, 0, 0.01);
    md.v.push_back(v);
  }
  return md;
}

template <class T>
void expect_close(const Model<T>& got, const Model<T>& want, double tol, const std::string& what) {
  for (std::size_t i = 0; i < got.p.size(); ++i) {
    EXPECT_TRUE(testing::rel_close(got.p[i], want.p[i], tol)) << what << " param " << i;
    EXPECT_TRUE(testing::rel_close(got.m[i], want.m[i], tol)) << what << " m " << i;
    EXPECT_TRUE(testing::rel_close(got.v[i], want.v[i], tol)) << what << " v " << i;
  }
}

// Float: a few roundings of each update; 1e-6 relative in norm. Double: ~1e-14.
template <class T>
double tol() {
  return std::is_same_v<T, float> ? 1e-6 : 1e-13;
}

template <class T>
void body() {
  TG_TEST_RNG(rng);
  for (cpu::Isa isa : cpu::supported_isas()) {
    const TypedOps<T>& ops = cpu::ops(isa).get<T>();
    for (int rep = 0; rep < 6; ++rep) {
      Model<T> a = random_model<T>(rng), b = a;
      AdamConfig ac{rng.uniform(1e-4, 1e-2), 0.9, 0.999, 1e-8, rep % 2 ? 0.01 : 0.0, rep % 3 == 0, index_t(rep + 1)};
      auto sa = a.slots(), sb = b.slots();
      ops.adam_step(ac, sa);
      adam_step_ref<T>(ac, sb);
      expect_close(a, b, tol<T>(), std::string(cpu::isa_name(isa)) + " adam");
      Model<T> c = random_model<T>(rng), d = c;
      SgdConfig sc{0.05, rep % 2 ? 0.9 : 0.0, rep == 4 ? 0.1 : 0.0, rep % 3 ? 1e-3 : 0.0, rep == 3, rep < 2};
      auto sc1 = c.slots(), sd = d.slots();
      ops.sgd_step(sc, sc1);
      sgd_step_ref<T>(sc, sd);
      expect_close(c, d, tol<T>(), std::string(cpu::isa_name(isa)) + " sgd");
      // Live scalars: the rate and the count read from memory, the config's own values
      // (poisoned here) ignored.
      const float live[2] = {float(ac.lr), float(ac.step)};
      AdamConfig al = ac;
      al.lr = std::nan(""), al.step = -5, al.live = live;
      Model<T> e = random_model<T>(rng), f = e;
      AdamConfig af = ac;
      af.lr = double(live[0]);  // the rate as the f32 slot holds it
      auto se = e.slots(), sf = f.slots();
      ops.adam_step(al, se);
      adam_step_ref<T>(af, sf);
      expect_close(e, f, tol<T>(), std::string(cpu::isa_name(isa)) + " adam, live scalars");
      SgdConfig sl = sc;
      sl.lr = std::nan(""), sl.live = live;
      SgdConfig sf2 = sc;
      sf2.lr = double(live[0]);
      Model<T> h = random_model<T>(rng), k = h;
      auto sh = h.slots(), sk = k.slots();
      ops.sgd_step(sl, sh);
      sgd_step_ref<T>(sf2, sk);
      expect_close(h, k, tol<T>(), std::string(cpu::isa_name(isa)) + " sgd, live scalars");
    }
  }
}

TEST(Optimizer, AdamAndSgdMatchTheReferenceOnEveryPath) {
  body<float>();
  body<double>();
}

TEST(Optimizer, AdamFirstStepMovesEachParameterByAboutLr) {
  // After one step from zero moments, m_hat = g and v_hat = g^2: the step is
  // lr g / (|g| + eps) = lr sign(g) (up to eps).
  std::vector<float> p = {1, 1, 1}, g = {0.5f, -2, 1e-3f}, m(3, 0), v(3, 0);
  std::vector<ParamSlot<float>> s = {{p.data(), g.data(), m.data(), v.data(), 3}};
  cpu::ops().f32.adam_step({0.1, 0.9, 0.999, 1e-8, 0, false, 1}, s);
  EXPECT_NEAR(p[0], 0.9f, 1e-6);
  EXPECT_NEAR(p[1], 1.1f, 1e-6);
  EXPECT_NEAR(p[2], 0.9f, 1e-4);
}

TEST(Optimizer, SlotChecksCatchMissingStateAndOverlap) {
  std::vector<float> p(4), g(4), m(4);
  std::vector<ParamSlot<float>> missing = {{p.data(), g.data(), nullptr, nullptr, 4}};
  EXPECT_THROW(check_param_slots<float>("adam", missing, true, true), Error);
  std::vector<ParamSlot<float>> overlap = {{p.data(), g.data(), p.data() + 1, nullptr, 2}};
  EXPECT_THROW(check_param_slots<float>("sgd", overlap, true, false), Error);
  std::vector<ParamSlot<float>> fine = {{p.data(), g.data(), m.data(), nullptr, 4}};
  EXPECT_NO_THROW(check_param_slots<float>("sgd", fine, true, false));
}

}  // namespace
}  // namespace tg
