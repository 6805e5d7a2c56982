// Random cases of the op tests that run on more than one backend (test_cuda_ops on a GPU,
// test_simt_ops on the SIMT emulator): the inputs, their references, and the checks with
// their bounds, so that both backends are held to the same thing.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tilegrad/kernels/cross_entropy.hpp"
#include "tilegrad/kernels/layer_norm.hpp"
#include "tilegrad/kernels/optimizer.hpp"
#include "tests/support/testing.hpp"

namespace tg::testing {

// Layer norm of rows x cols (x in rows of ldx, y and dy of ldy), affine or not.
struct LayerNormCase {
  index_t rows, cols, ldx, ldy;
  bool affine;
  float eps = 1e-5f;
  Mat<float> x, dy;
  std::vector<float> gamma, beta;
  Mat<double> y_ref, dx_ref;
  std::vector<double> mean_ref, rstd_ref, dgamma_ref, dbeta_ref;

  // `huge`: one value a row of either sign in U(1e20, 3e38), finite values whose
  // (x - mean)^2 overflows float.
  LayerNormCase(Rng& rng, index_t cols_, bool affine_, index_t max_rows, bool huge = false)
      : rows(rng.integer(1, max_rows)), cols(cols_), ldx(random_ld(rng, cols_)), ldy(random_ld(rng, cols_)),
        affine(affine_), x(random_mat<float>(rng, rows, cols, ldx, -2, 3)), dy(random_mat<float>(rng, rows, cols, ldy)),
        gamma(random_vec<float>(rng, cols, 0.5, 1.5)), beta(random_vec<float>(rng, cols)),
        y_ref(poisoned_mat<double>(rows, cols, ldy)), dx_ref(poisoned_mat<double>(rows, cols, ldx)),
        mean_ref(static_cast<std::size_t>(rows)), rstd_ref(static_cast<std::size_t>(rows)),
        dgamma_ref(static_cast<std::size_t>(cols)), dbeta_ref(static_cast<std::size_t>(cols)) {
    if (huge)
      for (index_t i = 0; i < rows; ++i)
        x.at(i, rng.integer(0, cols - 1)) = float((i % 2 ? -1 : 1) * rng.uniform(1e20, 3e38));
    const std::vector<double> xd(x.data.begin(), x.data.end()), dyd(dy.data.begin(), dy.data.end());
    const std::vector<double> gd(gamma.begin(), gamma.end()), bd(beta.begin(), beta.end());
    layer_norm_forward_ref<double>(rows, cols, xd.data(), ldx, affine ? gd.data() : nullptr, affine ? bd.data() : nullptr,
                                   eps, y_ref.ptr(), ldy, mean_ref.data(), rstd_ref.data());
    layer_norm_backward_ref<double>(rows, cols, xd.data(), ldx, dyd.data(), ldy, affine ? gd.data() : nullptr,
                                    mean_ref.data(), rstd_ref.data(), eps, dx_ref.ptr(), ldx, dgamma_ref.data(),
                                    dbeta_ref.data());
  }
  const float* g() const { return affine ? gamma.data() : nullptr; }
  const float* b() const { return affine ? beta.data() : nullptr; }

  // Forward: elementwise after two row reductions in float: 1e-5 relative norm.
  void check_forward(const Mat<float>& y, const std::vector<float>& mean, const std::vector<float>& rstd) const {
    EXPECT_TRUE(rel_close(y, y_ref, 1e-5));
    EXPECT_TRUE(y.padding_untouched());
    EXPECT_TRUE(rel_close(mean, mean_ref, 1e-5));
    EXPECT_TRUE(rel_close(rstd, rstd_ref, 1e-5));
  }
  // Backward: two more row reductions and a cancellation (g - mean g - xhat mean(g xhat)):
  // 1e-4 relative norm; the column sums accumulate in double: 1e-5.
  void check_backward(const Mat<float>& dx, const std::vector<float>& dgamma, const std::vector<float>& dbeta) const {
    EXPECT_TRUE(rel_close(dx, dx_ref, 1e-4));
    EXPECT_TRUE(dx.padding_untouched());
    EXPECT_TRUE(rel_close(dgamma, dgamma_ref, 1e-5));
    EXPECT_TRUE(rel_close(dbeta, dbeta_ref, 1e-5));
  }
};

// Fused cross-entropy of rows x classes logits (rows of ld), targets with about one in
// seven ignored (-100), smoothing, an upstream gradient per row.
struct CrossEntropyCase {
  static constexpr index_t kIgnore = -100;
  index_t rows, classes, ld;
  double smoothing;
  Mat<float> z;
  std::vector<index_t> target;
  index_t kept = 0;  // targets not ignored
  std::vector<float> up, loss_ref, lse_ref;
  Mat<float> dz_ref;

  CrossEntropyCase(Rng& rng, index_t classes_, double smoothing_, index_t min_rows, index_t max_rows)
      : rows(rng.integer(min_rows, max_rows)),
        classes(classes_),
        ld(random_ld(rng, classes_)),
        smoothing(smoothing_),
        z(random_mat<float>(rng, rows, classes, ld, -4, 4)),
        target(static_cast<std::size_t>(rows)),
        up(random_vec<float>(rng, rows)),
        loss_ref(static_cast<std::size_t>(rows)),
        lse_ref(2 * static_cast<std::size_t>(rows)),  // (max, log sum) pairs
        dz_ref(poisoned_mat<float>(rows, classes, ld)) {
    for (index_t& t : target) {
      t = rng.integer(0, 6) == 0 ? kIgnore : rng.integer(0, classes - 1);
      kept += t != kIgnore;
    }
    cross_entropy_forward_ref<float>(rows, classes, z.ptr(), ld, target.data(), kIgnore, smoothing, loss_ref.data(),
                                     lse_ref.data());
    cross_entropy_backward_ref<float>(rows, classes, z.ptr(), ld, target.data(), kIgnore, smoothing, lse_ref.data(),
                                      up.data(), dz_ref.ptr(), ld);
  }

  // Sums in double, one exp per element in float: 1e-5 relative norm. A loss is lse
  // minus terms of its size, so its error is measured against ||lse|| at least (one class
  // gives losses of 0, the reference's rounding noise: the emulated test found that a
  // bare norm-relative bound compares noise with noise); dz against the upstream
  // gradient's norm, its natural size.
  void check_forward(const std::vector<float>& loss, const std::vector<float>& lse) const {
    EXPECT_TRUE(rel_close(loss, loss_ref, 1e-5, norm(lse_ref)));
    EXPECT_TRUE(rel_close(lse, lse_ref, 1e-5));
  }
  void check_backward(const Mat<float>& dz) const {
    EXPECT_TRUE(rel_close(dz, dz_ref, 1e-5, norm(up)));
    EXPECT_TRUE(dz.padding_untouched());
  }
};

// One optimizer step over 30 parameters (more than one launch's 24 slots): sizes 0, 1, odd
// and past one 4096-element chunk (up to big_max). `which`: 0 SGD, 1 SGD with momentum and
// dampening, 2 Nesterov on its first step, 3 Adam, 4 AdamW. The inputs, and the reference
// step's results; run() takes the slots of the backend's copies and steps them.
struct OptimizerCase {
  int which;
  std::vector<index_t> sizes;
  std::vector<std::vector<float>> p, g, m, v;  // the inputs
  std::vector<std::vector<float>> p_ref, m_ref, v_ref;
  SgdConfig sgd;
  AdamConfig adam;
  std::string name;

  OptimizerCase(Rng& rng, int which_, index_t big_max) : which(which_) {
    for (int i = 0; i < 30; ++i)
      sizes.push_back(i == 0 ? 0 : i % 5 == 0 ? rng.integer(4097, big_max) : rng.integer(1, 300));
    for (index_t n : sizes) {
      p.push_back(random_vec<float>(rng, n));
      g.push_back(random_vec<float>(rng, n));
      m.push_back(random_vec<float>(rng, n, -0.1, 0.1));
      v.push_back(random_vec<float>(rng, n, 0, 0.1));
    }
    sgd.lr = 0.05, sgd.momentum = which == 0 ? 0.0 : 0.9, sgd.nesterov = which == 2, sgd.weight_decay = 0.01;
    sgd.dampening = which == 1 ? 0.1 : 0.0, sgd.first_step = which == 2;
    adam.lr = 0.01, adam.weight_decay = 0.05, adam.decoupled = which == 4, adam.step = 7;
    name = is_sgd() ? "sgd " + std::to_string(which) : which == 4 ? "adamw" : "adam";
    p_ref = p, m_ref = m, v_ref = v;
    std::vector<std::vector<float>> g_ref = g;
    std::vector<ParamSlot<float>> ref = slots(p_ref.data(), g_ref.data(), m_ref.data(), v_ref.data());
    if (is_sgd()) sgd_step_ref<float>(sgd, ref);
    else adam_step_ref<float>(adam, ref);
  }
  bool is_sgd() const { return which < 3; }
  // Slots over arrays of the parameters' buffers (the momentum left out where SGD has none).
  template <class P>
  std::vector<ParamSlot<float>> slots(P* ps, P* gs, P* ms, P* vs) const {
    std::vector<ParamSlot<float>> out;
    for (std::size_t k = 0; k < sizes.size(); ++k)
      out.push_back({ptr(ps[k]), ptr(gs[k]), is_sgd() && sgd.momentum == 0 ? nullptr : ptr(ms[k]), ptr(vs[k]), sizes[k]});
    return out;
  }
  // Float against double per element: a few roundings (Adam's division and sqrt).
  void check(std::size_t k, const std::vector<float>& p_got, const std::vector<float>& m_got,
             const std::vector<float>& v_got) const {
    EXPECT_TRUE(all_near(p_got, p_ref[k], 2e-6)) << name << " param " << k;
    EXPECT_TRUE(all_near(m_got, m_ref[k], 2e-6)) << name << " m " << k;
    EXPECT_TRUE(all_near(v_got, v_ref[k], 2e-6)) << name << " v " << k;
  }

 private:
  static float* ptr(std::vector<float>& x) { return x.data(); }
  template <class D>
  static auto ptr(D& x) -> decltype(x.ptr()) {
    return x.ptr();
  }
};

}  // namespace tg::testing
