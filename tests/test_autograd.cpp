// The engine: deep chains, gradient accumulation, retain_graph, create_graph, hooks,
// the version counter, anomaly mode, no_grad, graph export, and memory that stays flat
// over a thousand training steps.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "tilegrad/autograd/autograd.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tests/support/guards.hpp"

namespace tg {
namespace {

TensorOptions f64_grad() { return TensorOptions().with_dtype(DType::f64).with_requires_grad(); }

using testing::error_of;

TEST(Autograd, ChainOfAHundredThousandOpsNeedsNoRecursion) {
  const Tensor x = Tensor::full({}, 1.0, f64_grad());
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = y * 1.00001 + 0.0;
  y.backward();
  EXPECT_NEAR(x.grad().item(), std::pow(1.00001, 100000), 1e-9);
}

TEST(Autograd, GradientsAccumulateAcrossBackwardsAndFanOut) {
  const Tensor x = Tensor::full({}, 3.0, f64_grad());
  const Tensor y = x * x + x;  // x used twice: gradients from both uses add
  y.backward({}, /*retain_graph=*/true);
  EXPECT_EQ(x.grad().item(), 7.0);
  y.backward();
  EXPECT_EQ(x.grad().item(), 14.0);
}

TEST(Autograd, ASecondBackwardThroughAFreedGraphIsAClearError) {
  const Tensor x = Tensor::full({2}, 2.0, f64_grad());
  const Tensor y = sum(exp(x));
  y.backward();
  const std::string e = error_of([&] { y.backward(); });
  EXPECT_NE(e.find("second time"), std::string::npos) << e;
  EXPECT_NE(e.find("retain_graph"), std::string::npos) << e;
}

TEST(Autograd, CreateGraphGivesSecondDerivatives) {
  const Tensor x = Tensor::full({}, 2.0, f64_grad());
  const Tensor y = pow(x, 3);
  const Tensor dy = grad(y, {x}, {}, /*create_graph=*/true)[0];  // 3 x^2 = 12
  EXPECT_EQ(dy.item(), 12.0);
  EXPECT_TRUE(dy.requires_grad());
  const Tensor d2y = grad(dy, {x})[0];  // 6 x = 12
  EXPECT_NEAR(d2y.item(), 12.0, 1e-12);
  EXPECT_FALSE(x.grad().defined());  // grad() leaves .grad alone
}

TEST(Autograd, ModifyingASavedTensorInPlaceIsCaughtAndNamesTheOp) {
  Tensor x = Tensor::full({3}, 1.0, f64_grad());
  Tensor w = Tensor::full({3}, 2.0, TensorOptions().with_dtype(DType::f64));
  const Tensor y = sum(mul(x, w));  // MulBackward saved w for x's gradient
  w.add_(Tensor::ones({3}, TensorOptions().with_dtype(DType::f64)));
  const std::string e = error_of([&] { y.backward(); });
  EXPECT_NE(e.find("MulBackward"), std::string::npos) << e;
  EXPECT_NE(e.find("modified in place"), std::string::npos) << e;
  EXPECT_NE(e.find("test_autograd.cpp"), std::string::npos) << e;  // where the op was created
}

TEST(Autograd, HooksInspectAndReplaceGradients) {
  const Tensor x = Tensor::full({2}, 1.0, f64_grad());
  const Tensor h = x * 3.0;
  int seen = 0;
  h.register_hook([&](const Tensor& g) {
    ++seen;
    return g * 2.0;  // doubles what flows into h
  });
  x.register_hook([&](const Tensor& g) {
    EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{6, 6}));
    return Tensor();  // inspect only
  });
  int accumulated = 0;
  x.register_post_accumulate_grad_hook([&](const Tensor& leaf) {
    ++accumulated;
    EXPECT_TRUE(leaf.grad().defined());
  });
  sum(h).backward();
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(accumulated, 1);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{6, 6}));
}

// A leaf's gradient is accumulated the moment it is complete: in y = sum((x * a) * w),
// w's .grad (and its post-accumulate hook) is done before the backward of x * a, the op
// created earlier, runs (its hook is called first thing when it does). Without that the
// leaves waited for every op node, and a data-parallel bucket could start only when
// backward had ended.
TEST(Autograd, LeafGradientsAreAccumulatedAsSoonAsTheyAreComplete) {
  const Tensor x = Tensor::full({3}, 1.5, f64_grad()), w = Tensor::full({3}, 2.0, f64_grad());
  const Tensor h = x * 3.0;
  std::vector<std::string> order;
  h.register_hook([&](const Tensor&) {
    order.push_back("h");
    return Tensor();
  });
  w.register_post_accumulate_grad_hook([&](const Tensor&) { order.push_back("w"); });
  x.register_post_accumulate_grad_hook([&](const Tensor&) { order.push_back("x"); });
  sum(h * w).backward();
  EXPECT_EQ(order, (std::vector<std::string>{"w", "h", "x"}));
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{4.5, 4.5, 4.5}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{6, 6, 6}));
}

TEST(Autograd, NoGradRecordsNothingAndDetachStopsGradients) {
  const Tensor x = Tensor::full({2}, 1.0, f64_grad());
  {
    NoGradGuard no_grad;
    const Tensor y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_FALSE(y.grad_fn());
  }
  const Tensor y = x.detach() * x;  // only the second factor carries a gradient
  sum(y).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 1}));
  EXPECT_NE(error_of([&] { Tensor::ones({2}).backward(); }).find("requires grad"), std::string::npos);
  EXPECT_NE(error_of([&] { (x * 2.0).backward(); }).find("grad_output"), std::string::npos);  // not a scalar
}

TEST(Autograd, AnomalyModeNamesTheOpThatMadeANaN) {
  const Tensor x = Tensor::full({2}, -1.0, f64_grad());
  EXPECT_NO_THROW(log(x));  // off: NaN flows silently, as in PyTorch
  AnomalyGuard on;
  std::string e = error_of([&] { (void)log(x); });
  EXPECT_NE(e.find("NaN produced by the forward of LogBackward"), std::string::npos) << e;
  EXPECT_NE(e.find("test_autograd.cpp"), std::string::npos) << e;
  EXPECT_NE(e.find("inputs (2,)"), std::string::npos) << e;
  // Backward: sqrt is finite at 0, its derivative is not.
  const Tensor z = Tensor::zeros({1}, f64_grad());
  const Tensor s = sum(sqrt(z));
  e = error_of([&] { s.backward(); });
  EXPECT_NE(e.find("Inf produced by the backward of SqrtBackward"), std::string::npos) << e;
}

TEST(Autograd, ToDotShowsOpsLeavesAndSavedBytes) {
  Tensor w = Tensor::randn({4, 3}, TensorOptions().with_requires_grad());
  w.set_name("layer.weight");
  const Tensor x = Tensor::randn({2, 3});
  const Tensor loss = mean(relu(linear(x, w, {})));
  const std::string dot = to_dot(loss);
  for (const char* want : {"digraph", "LinearBackward", "ActivationBackward", "MeanBackward", "layer.weight",
                           "(4, 3) f32", "saved"})
    EXPECT_NE(dot.find(want), std::string::npos) << want << " missing in\n" << dot;
}

TEST(Autograd, TrainingStepsKeepTheNumberOfLiveBuffersConstant) {
  Generator gen(1);
  Tensor w1 = Tensor::randn({16, 8}, {}, &gen) * 0.3, w2 = Tensor::randn({1, 16}, {}, &gen) * 0.3;
  Tensor b1 = Tensor::zeros({16});
  for (Tensor* p : {&w1, &w2, &b1}) p->requires_grad_();
  const Tensor x = Tensor::randn({32, 8}, {}, &gen), t = Tensor::randn({32, 1}, {}, &gen);
  std::size_t live_at_10 = 0;
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < 1000; ++step) {
    {
      const Tensor loss = mse_loss(linear(linear(x, w1, b1, {Act::tanh}), w2, {}), t);
      loss.backward();
      NoGradGuard no_grad;
      for (Tensor* p : {&w1, &w2, &b1}) {
        p->add_(p->grad(), -0.05);
        p->set_grad({});
      }
      if (step == 0) first_loss = loss.item();
      last_loss = loss.item();
    }
    if (step == 10) live_at_10 = buffer_stats().live_buffers;  // parameters and data only
  }
  EXPECT_EQ(buffer_stats().live_buffers, live_at_10);
  EXPECT_LT(last_loss, 0.5 * first_loss);  // and it trained
}

TEST(Autograd, SameInputsGiveTheSameBits) {
  auto run = [] {
    Generator gen(9);
    Tensor w = Tensor::randn({64, 32}, TensorOptions().with_requires_grad(), &gen);
    const Tensor x = Tensor::randn({128, 32}, {}, &gen);
    sum(softmax(matmul(x, w.t()))).backward();
    return w.grad().to_vector<float>();
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
}  // namespace tg
