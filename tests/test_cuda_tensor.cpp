// Autograd tensors on cuda (the CUDA op table behind them): a graph of most op kinds
// gives the CPU's values and gradients; cross_entropy's mean on the device; an MLP
// 784-256-256-10 training step at batch 1024 matches the CPU step and, once warm, makes
// no host<->device copy, no host wait and no driver allocation (the transfer counters
// and the caching allocator's statistics say so) until the loss is read; a captured SGD
// step (CUDA graph) replays like eager steps, a captured AdamW step follows a schedule
// set between replays, capturing an optimizer's first step is a clear error; copy_
// across devices. Runs where a GPU exists; skips elsewhere.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tilegrad/autograd/autograd.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/nn/nn.hpp"
#include "tests/support/device_vec.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

const Device kGpu = Device::cuda(0);

::testing::AssertionResult same_values(const Tensor& gpu, const Tensor& cpu, double tol) {
  if (gpu.device() != kGpu) return ::testing::AssertionFailure() << "expected a tensor on cuda:0, got " << gpu.device().str();
  const std::vector<float> a = gpu.to_vector<float>(), b = cpu.to_vector<float>();
  return testing::rel_close(a, b, tol);
}

TEST(CudaTensor, MovesToTheDeviceAndBack) {
  TG_REQUIRE_GPU();
  const Tensor x = Tensor::randn({37, 11});
  const Tensor d = x.to(kGpu);
  EXPECT_EQ(d.device(), kGpu);
  EXPECT_EQ(d.to(Device::cpu()).to_vector<float>(), x.to_vector<float>());
  // A non-contiguous view goes over contiguous.
  const Tensor t = d.transpose(0, 1);
  EXPECT_EQ(t.to(Device::cpu()).to_vector<float>(), x.transpose(0, 1).to_vector<float>());
}

// A profiled step on the device: its kernels on the device's events (inside the recorded
// time, each with a duration), the copies by direction with their bytes.
TEST(CudaTensor, AProfilerTimesDeviceKernelsByEventsAndRecordsCopies) {
  TG_REQUIRE_GPU();
  const Tensor a = Tensor::randn({256, 128}), b = Tensor::randn({128, 64});
  Profiler prof;
  const Tensor da = a.to(kGpu), db = b.to(kGpu);
  const Tensor y = relu(matmul(da, db)).to(Device::cpu());
  prof.stop();
  int gemms = 0, copies = 0;
  for (const ProfileEvent& e : prof.events()) {
    if (e.kind == ProfileEvent::Kind::kernel) {
      EXPECT_EQ(std::string(e.device), "cuda");
      EXPECT_GT(e.end_us, e.start_us) << e.name;
      EXPECT_LE(e.end_us, prof.wall_ms() * 1000.0 + 1.0) << e.name;
      gemms += e.name == "gemm";
    }
    if (e.kind == ProfileEvent::Kind::copy) {
      ++copies;
      EXPECT_GT(e.bytes, 0);
    }
  }
  EXPECT_EQ(gemms, 1);
  EXPECT_EQ(copies, 3);
  EXPECT_EQ(y.size(0), 256);
}

TEST(CudaTensor, AGraphOfMostOpKindsGivesTheCpuValuesAndGradients) {
  TG_REQUIRE_GPU();
  Generator g(11);
  const TensorOptions req = TensorOptions().with_requires_grad();
  const Tensor x = Tensor::randn({64, 40}, req, &g), w = Tensor::randn({48, 40}, req, &g);
  const Tensor b = Tensor::randn({48}, req, &g), gamma = Tensor::rand({48}, req, &g), beta = Tensor::randn({48}, req, &g);
  std::vector<std::int64_t> classes(64);
  for (std::size_t i = 0; i < classes.size(); ++i) classes[i] = i % 9 == 4 ? -100 : std::int64_t(i * 7 % 48);
  const index_t n64[] = {64};
  const Tensor target = Tensor::from_vector(classes, n64);

  auto f = [&](const Tensor& x_, const Tensor& w_, const Tensor& b_, const Tensor& ga, const Tensor& be,
               const Tensor& t_) {
    const Tensor h = linear(x_, w_, b_, Activation{Act::gelu_erf});
    const Tensor z = layer_norm(h, ga, be);
    const Tensor s = softmax(z);
    const Tensor m = max(z, {1}, true);                      // (64, 1), broadcast below
    const Tensor r = where(gt(z, m * 0.5), z - m, exp(z) * 0.1);  // masks and broadcasting
    return cross_entropy(z, t_) + mean(sum(s * r, {0})) + mean(pow(abs(h), 1.5)) + sum(sqrt(clamp(z, 0.1, 2.0))) * 1e-2;
  };
  const Tensor loss_cpu = f(x, w, b, gamma, beta, target);
  loss_cpu.backward();

  std::vector<Tensor> leaves = {x, w, b, gamma, beta};
  std::vector<Tensor> dev;
  for (const Tensor& l : leaves) dev.push_back(l.detach().to(kGpu).requires_grad_(true));
  const Tensor loss_gpu = f(dev[0], dev[1], dev[2], dev[3], dev[4], target.to(kGpu));
  EXPECT_EQ(loss_gpu.device(), kGpu);
  loss_gpu.backward();
  // Float on both sides, different summation orders (double on the device): 1e-5 for
  // the loss, 1e-4 relative norm for the gradients (layer norm's backward cancels).
  EXPECT_NEAR(loss_gpu.item(), loss_cpu.item(), 1e-5 * (1 + std::fabs(loss_cpu.item())));
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    ASSERT_TRUE(dev[i].grad().defined()) << "leaf " << i;
    EXPECT_TRUE(same_values(dev[i].grad(), leaves[i].grad(), 1e-4)) << "gradient of leaf " << i;
  }
}

TEST(CudaTensor, AttentionOnTheDeviceGivesTheCpuValuesAndGradients) {
  TG_REQUIRE_GPU();
  Generator g(12);
  const TensorOptions req = TensorOptions().with_requires_grad();
  Tensor q = Tensor::randn({2, 4, 37, 32}, req, &g), k = Tensor::randn({2, 2, 45, 32}, req, &g),
         v = Tensor::randn({2, 2, 45, 32}, req, &g);
  for (bool causal : {false, true}) {
    for (Tensor* t : {&q, &k, &v}) t->set_grad({});
    const Tensor w = Tensor::randn({2, 4, 37, 32}, {}, &g);
    const Tensor loss_cpu = sum(scaled_dot_product_attention(q, k, v, {}, causal) * w);
    loss_cpu.backward();
    std::vector<Tensor> dev;
    for (const Tensor& t : {q, k, v}) dev.push_back(t.detach().to(kGpu).requires_grad_(true));
    const Tensor loss_gpu = sum(scaled_dot_product_attention(dev[0], dev[1], dev[2], {}, causal) * w.to(kGpu));
    loss_gpu.backward();
    EXPECT_NEAR(loss_gpu.item(), loss_cpu.item(), 1e-4 * (1 + std::fabs(loss_cpu.item()))) << causal;
    const Tensor leaves[] = {q, k, v};
    for (std::size_t i = 0; i < 3; ++i)
      EXPECT_TRUE(same_values(dev[i].grad(), leaves[i].grad(), 1e-4)) << "gradient " << i << (causal ? " causal" : "");
  }
}

TEST(CudaTensor, MixingDevicesInOneOpIsAClearError) {
  TG_REQUIRE_GPU();
  const Tensor a = Tensor::ones({3}), b = Tensor::ones({3}, TensorOptions().with_device(kGpu));
  try {
    (void)add(a, b);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("device"), std::string::npos) << e.what();
  }
}

// The MLP 784-256-256-10 (ReLU) of the examples and the CUDA issue's targets.
std::shared_ptr<nn::Sequential> mlp784(Generator* g) { return nn::mlp({784, 256, 256, 10}, Activation{Act::relu}, g); }

TEST(CudaTensor, AnMlpTrainingStepMatchesTheCpuAndStaysOnTheDevice) {
  TG_REQUIRE_GPU();
  Generator g_cpu(5), g_gpu(5), g_data(6);
  const auto cpu_model = mlp784(&g_cpu), gpu_model = mlp784(&g_gpu);
  gpu_model->to(kGpu);
  const Tensor x = Tensor::randn({1024, 784}, {}, &g_data);
  std::vector<std::int64_t> labels(1024);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = std::int64_t((i * 2654435761u) % 10);
  const index_t n[] = {1024};
  const Tensor y = Tensor::from_vector(labels, n);
  const Tensor xg = x.to(kGpu), yg = y.to(kGpu);
  nn::AdamW cpu_opt(cpu_model->parameters(), 1e-3, 0.9, 0.999, 1e-8, 1e-4);
  nn::AdamW gpu_opt(gpu_model->parameters(), 1e-3, 0.9, 0.999, 1e-8, 1e-4);
  auto step = [](nn::Module& m, nn::Optimizer& opt, const Tensor& xb, const Tensor& yb) {
    Tensor loss = cross_entropy(m(xb), yb);
    opt.zero_grad();
    loss.backward();
    opt.step();
    return loss;
  };

  // One step on each: the same loss, and parameters that moved the same way (Adam's
  // first step is lr sign(g) where |g| >> eps: elements with g near 0 may differ).
  const double l_cpu = step(*cpu_model, cpu_opt, x, y).item();
  const double l_gpu = step(*gpu_model, gpu_opt, xg, yg).item();
  EXPECT_NEAR(l_gpu, l_cpu, 1e-5 * (1 + std::fabs(l_cpu)));
  const auto pc = cpu_model->parameters(), pg = gpu_model->parameters();
  ASSERT_EQ(pc.size(), pg.size());
  for (std::size_t i = 0; i < pc.size(); ++i) EXPECT_TRUE(same_values(pg[i], pc[i], 1e-3)) << "parameter " << i;

  // Warm: nothing crosses the bus, nothing waits, the allocator asks the driver for nothing.
  // Warm up in the pattern measured below (the previous loss alive during a step).
  Tensor loss;
  for (int i = 0; i < 3; ++i) loss = step(*gpu_model, gpu_opt, xg, yg);
  cuda::reset_transfer_stats();
  const cuda::AllocatorStats before = cuda::allocator_stats(0);
  for (int i = 0; i < 5; ++i) loss = step(*gpu_model, gpu_opt, xg, yg);
  const cuda::TransferStats t = cuda::transfer_stats();
  EXPECT_EQ(t.host_to_device, 0u);
  EXPECT_EQ(t.device_to_host, 0u);
  EXPECT_EQ(t.synchronizations, 0u);
  const cuda::AllocatorStats after = cuda::allocator_stats(0);
  EXPECT_EQ(after.driver_allocations, before.driver_allocations);
  EXPECT_GT(after.allocations, before.allocations);  // every step allocates, from the cache
  RecordProperty("allocations_per_step", std::to_string((after.allocations - before.allocations) / 5));
  // Reading the loss: one copy back, one wait.
  const double last = loss.item();
  EXPECT_TRUE(std::isfinite(last));
  EXPECT_LT(last, l_gpu);
  EXPECT_EQ(cuda::transfer_stats().device_to_host, 1u);
  EXPECT_EQ(cuda::transfer_stats().synchronizations, 1u);
}

// Two MLPs 784-256-256-10 with the same weights on the GPU and a batch of `rows` for
// them: one trained by eager steps, the other by a captured step.
struct Twins {
  std::shared_ptr<nn::Sequential> eager, graphed;
  Tensor x, y;
  Twins(std::uint64_t seed, index_t rows) {
    Generator g_a(seed), g_b(seed), g_data(seed + 1);
    eager = mlp784(&g_a), graphed = mlp784(&g_b);
    eager->to(kGpu), graphed->to(kGpu);
    x = Tensor::randn({rows, 784}, TensorOptions().with_device(kGpu), &g_data);
    std::vector<std::int64_t> labels(static_cast<std::size_t>(rows));
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = std::int64_t(i % 10);
    const index_t n[] = {rows};
    y = Tensor::from_vector(labels, n, TensorOptions().with_device(kGpu));
  }
  Tensor step(nn::Module& m, nn::Optimizer& opt) const {
    Tensor loss = cross_entropy(m(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    return loss;
  }
  void expect_same_parameters() const {
    const auto pa = eager->parameters(), pb = graphed->parameters();
    for (std::size_t i = 0; i < pa.size(); ++i)
      EXPECT_TRUE(same_values(pb[i], pa[i].to(Device::cpu()), 1e-6)) << "parameter " << i;
  }
};

// A captured SGD step replayed n times leaves the parameters where n eager steps do.
TEST(CudaTensor, ACapturedSgdStepReplaysLikeEagerSteps) {
  TG_REQUIRE_GPU();
  const Twins t(9, 128);
  const auto &eager = t.eager, &graphed = t.graphed;
  nn::SGD opt_a(eager->parameters(), 0.05, 0.9), opt_b(graphed->parameters(), 0.05, 0.9);
  auto step = [&](nn::Module& m, nn::Optimizer& opt) { return t.step(m, opt); };
  cuda::Stream stream(0);
  cuda::StreamGuard on(stream);
  for (int i = 0; i < 3; ++i) step(*eager, opt_a), step(*graphed, opt_b);  // warm: momentum buffers exist
  cuda::Graph graph(stream);
  Tensor loss;
  graph.capture([&] { loss = step(*graphed, opt_b); });  // recorded, not run
  EXPECT_TRUE(graph.captured());
  EXPECT_GT(graph.node_count(), 10u);
  const cuda::AllocatorStats before = cuda::allocator_stats(0);
  for (int i = 0; i < 6; ++i) {
    const Tensor l = step(*eager, opt_a);
    graph.replay();
    if (i == 5) {
      EXPECT_NEAR(loss.item(), l.item(), 1e-6 * (1 + std::fabs(l.item())));
    }
  }
  EXPECT_EQ(cuda::allocator_stats(0).driver_allocations, before.driver_allocations);
  t.expect_same_parameters();
}

// A captured AdamW step under a warmup schedule set between replays: each replay reads
// the rate of its step and corrects for its own step count (live scalars on the device),
// so n replays leave the parameters, the rate and the count where n eager steps do.
TEST(CudaTensor, ACapturedAdamWStepFollowsItsScheduleLikeEagerSteps) {
  TG_REQUIRE_GPU();
  const Twins t(4, 64);
  const auto &eager = t.eager, &graphed = t.graphed;
  nn::AdamW opt_a(eager->parameters(), 1e-3), opt_b(graphed->parameters(), 1e-3);
  nn::LinearWarmup sched_a(opt_a, 5, 0.1), sched_b(opt_b, 5, 0.1);
  auto step = [&](nn::Module& m, nn::Optimizer& opt) { return t.step(m, opt); };
  cuda::Stream stream(0);
  cuda::StreamGuard on(stream);
  for (int i = 0; i < 2; ++i) step(*eager, opt_a), sched_a.step(), step(*graphed, opt_b), sched_b.step();
  cuda::Graph graph(stream);
  Tensor loss;
  graph.capture([&] { loss = step(*graphed, opt_b); });
  EXPECT_EQ(opt_b.steps(), 2);  // the capture ran nothing
  for (int i = 0; i < 6; ++i) {
    const Tensor l = step(*eager, opt_a);
    sched_a.step();
    graph.replay();
    sched_b.step();
    if (i == 5) {
      EXPECT_NEAR(loss.item(), l.item(), 1e-6 * (1 + std::fabs(l.item())));
    }
  }
  EXPECT_EQ(opt_a.steps(), 8);
  EXPECT_EQ(opt_b.steps(), 8);
  EXPECT_DOUBLE_EQ(opt_b.lr(), opt_a.lr());
  t.expect_same_parameters();
}

// The tg::Error message of capturing `work` into a graph on `stream` ("" when the capture
// succeeds, which these tests count as a failure).
std::string capture_error(const cuda::Stream& stream, const std::function<void()>& work) {
  cuda::Graph graph(stream);
  try {
    graph.capture(work);
  } catch (const Error& e) {
    EXPECT_FALSE(graph.captured());
    return e.what();
  }
  return "";
}

// Random draws read the generator's counter on the host: captured, every replay would
// repeat them, so dropout (training) and rand / randn on the device refuse capture with a
// tg::Error; so does a copy that involves the host (item(), a GradScaler's check), which
// waits for the stream. The stream works after each.
TEST(CudaTensor, RandomDrawsAndHostCopiesRefuseCapture) {
  TG_REQUIRE_GPU();
  const Tensor x = Tensor::ones({64}, TensorOptions().with_device(kGpu));
  cuda::Stream stream(0);
  cuda::StreamGuard on(stream);
  const std::function<void()> works[] = {
      [&] { (void)dropout(x, 0.5, true); },
      [&] { (void)Tensor::randn({8}, TensorOptions().with_device(kGpu)); },
      [&] { (void)sum(x).item(); },
      [&] {
        Tensor p = x.clone().detach().requires_grad_();
        nn::SGD opt({p}, 0.1);
        nn::GradScaler scaler;
        scaler.scale(sum(p)).backward();
        scaler.step(opt);
      },
  };
  for (const auto& work : works) {
    const std::string why = capture_error(stream, work);
    EXPECT_NE(why.find("CUDA graph"), std::string::npos) << "captured, or: " << why;
  }
  // The copy's direction, as the message gives it.
  EXPECT_NE(capture_error(stream, [&] { (void)sum(x).item(); }).find("a copy to the host"), std::string::npos);
  const Tensor host = Tensor::ones({64});
  Tensor dev = Tensor::zeros({64}, TensorOptions().with_device(kGpu));
  EXPECT_NE(capture_error(stream, [&] { dev.copy_(host); }).find("a copy from the host"), std::string::npos);
  cuda::Graph eval(stream);
  Tensor y;
  eval.capture([&] { y = dropout(x * 2.0, 0.5, false); });  // eval mode: no draw
  eval.replay();
  EXPECT_EQ(y.to(Device::cpu()).to_vector<float>(), std::vector<float>(64, 2.0f));
}

// copy_ across devices, like for like, is one transfer of the bytes, for every dtype
// (i64 class indices copied into a CUDA graph's inputs included); strided sources go
// through a staging copy.
TEST(CudaTensor, CopyAcrossDevicesTakesEveryDtypeAndStrides) {
  TG_REQUIRE_GPU();
  Generator g(8);
  const std::vector<std::int64_t> labels = {3, -1, 7, 0, 9};
  const index_t n[] = {5};
  const Tensor host_y = Tensor::from_vector(labels, n);
  Tensor dev_y = Tensor::zeros({5}, TensorOptions().with_dtype(DType::i64).with_device(kGpu));
  dev_y.copy_(host_y);
  EXPECT_EQ(dev_y.to(Device::cpu()).to_vector<std::int64_t>(), labels);
  const Tensor x = Tensor::randn({6, 4}, {}, &g);
  Tensor dev_x = Tensor::zeros({6, 4}, TensorOptions().with_device(kGpu));
  dev_x.copy_(x);
  Tensor back = Tensor::zeros({6, 4});
  back.copy_(dev_x);
  EXPECT_EQ(back.to_vector<float>(), x.to_vector<float>());
  Tensor dev_t = Tensor::zeros({4, 6}, TensorOptions().with_device(kGpu));
  dev_t.copy_(x.transpose(0, 1));  // strided source
  EXPECT_EQ(dev_t.to(Device::cpu()).to_vector<float>(), x.transpose(0, 1).contiguous().to_vector<float>());
}

// An optimizer's first step makes its state: inside a capture each replay would make it
// again, so capturing before a first step is a tg::Error, and the stream works after it.
TEST(CudaTensor, CapturingAnOptimizersFirstStepIsAClearError) {
  TG_REQUIRE_GPU();
  Generator g(3);
  const auto m = mlp784(&g);
  m->to(kGpu);
  const Tensor x = Tensor::randn({8, 784}, TensorOptions().with_device(kGpu), &g);
  nn::Adam opt(m->parameters());
  auto step = [&] {
    Tensor loss = mean((*m)(x));
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  cuda::Stream stream(0);
  cuda::StreamGuard on(stream);
  const std::string why = capture_error(stream, step);
  EXPECT_NE(why.find("step the optimizer once"), std::string::npos) << "captured, or: " << why;
  step();  // the stream works after the failed capture
  cuda::Graph again(stream);
  again.capture(step);
  again.replay();
  EXPECT_EQ(opt.steps(), 2);
}

// 16-bit tensors on the device: the conversions give the CPU's bits (kernels/half.hpp
// on both), strided sources included; matmul on the tensor cores (a's rows and b's
// columns contiguous) and through the widened f32 GEMM (other layouts) gives the CPU's
// products; autocast linear's values and gradients match the CPU's.
TEST(CudaTensor, SixteenBitCastsMatmulAndAutocastMatchTheCpu) {
  TG_REQUIRE_GPU();
  Generator g(21);
  for (DType dt : {DType::bf16, DType::f16}) {
    const Tensor x = Tensor::randn({67, 45}, {}, &g) * 3.0;
    const Tensor xt = x.transpose(0, 1);  // strided
    EXPECT_EQ(xt.to(kGpu).transpose(0, 1).to(dt).to(Device::cpu()).to_vector<double>(), x.to(dt).to_vector<double>());
    EXPECT_EQ(x.to(dt).to(kGpu).transpose(0, 1).contiguous().to(DType::f32).to(Device::cpu()).to_vector<double>(),
              xt.to(dt).to(DType::f32).to_vector<double>());
    const Tensor a = Tensor::randn({130, 72}, {}, &g).to(dt), w = Tensor::randn({129, 72}, {}, &g).to(dt);
    const Tensor b = Tensor::randn({72, 33}, {}, &g).to(dt);
    // Tensor cores: a (M x K) rows, w^T (K x N) columns contiguous; and the f32 fallback.
    const Tensor y1 = matmul(a.to(kGpu), w.to(kGpu).t()), y2 = matmul(a.to(kGpu), b.to(kGpu));
    EXPECT_EQ(y1.dtype(), DType::f32);
    EXPECT_TRUE(same_values(y1, matmul(a, w.t()), 1e-6));
    EXPECT_TRUE(same_values(y2, matmul(a, b), 1e-6));
    // Autocast linear, forward and backward.
    const TensorOptions req = TensorOptions().with_requires_grad();
    const Tensor xc = Tensor::randn({64, 40}, req, &g), wc = Tensor::randn({24, 40}, req, &g);
    const Tensor bc = Tensor::randn({24}, req, &g);
    const Tensor xg = xc.to(kGpu).detach().requires_grad_(), wg = wc.to(kGpu).detach().requires_grad_();
    const Tensor bg = bc.to(kGpu).detach().requires_grad_();
    Tensor yc, yg;
    {
      AutocastGuard amp(dt);
      yc = linear(xc, wc, bc, Activation{Act::gelu_erf});
      yg = linear(xg, wg, bg, Activation{Act::gelu_erf});
    }
    EXPECT_TRUE(same_values(yg, yc, 1e-5));
    sum(yc * yc).backward();
    sum(yg * yg).backward();
    // The gradients are rounded to 16 bits once; sums in another order may round a few
    // of them the other way (one 16-bit ulp: 2^-8 or 2^-11 relative).
    EXPECT_TRUE(same_values(wg.grad(), wc.grad(), dt == DType::bf16 ? 1e-2 : 2e-3));
    EXPECT_TRUE(same_values(xg.grad(), xc.grad(), dt == DType::bf16 ? 1e-2 : 2e-3));
    EXPECT_TRUE(same_values(bg.grad(), bc.grad(), 1e-5));
  }
}

// Autocast attention on the device, bf16 and f16: the 16-bit tensor-core kernels (the
// graph says so), within bf16's error of the CPU's f32 attention, forward and backward;
// with and without causal masking and an additive mask, at a compiled head dim and a
// padded one.
TEST(CudaTensor, AutocastAttentionUsesTheTensorCoreKernels) {
  TG_REQUIRE_GPU();
  Generator g(31);
  for (int rep = 0; rep < 8; ++rep) {
    const DType dt = rep >= 4 ? DType::f16 : DType::bf16;
    const bool causal = rep % 2 == 1, masked = rep % 4 >= 2;
    const index_t D = masked ? 40 : 64;
    SCOPED_TRACE(std::string(dtype_name(dt)) + (causal ? " causal" : "") + (masked ? " mask, D 40" : " D 64"));
    const TensorOptions req = TensorOptions().with_requires_grad();
    const Tensor q = Tensor::randn({2, 4, 70, D}, req, &g), k = Tensor::randn({2, 2, 75, D}, req, &g);
    const Tensor v = Tensor::randn({2, 2, 75, D}, req, &g), w = Tensor::randn({2, 4, 70, D}, {}, &g);
    // A mask broadcast over batch and heads; bf16 keeps these values to 2^-9.
    const Tensor mask = masked ? Tensor::randn({70, 75}, {}, &g) : Tensor();
    const Tensor qg = q.to(kGpu).detach().requires_grad_(), kg = k.to(kGpu).detach().requires_grad_();
    const Tensor vg = v.to(kGpu).detach().requires_grad_();
    Tensor yc, yg;
    {
      AutocastGuard amp(dt);
      yc = scaled_dot_product_attention(q, k, v, mask, causal);  // the CPU: f32
      yg = scaled_dot_product_attention(qg, kg, vg, masked ? mask.to(kGpu) : Tensor(), causal);
    }
    EXPECT_EQ(yg.dtype(), DType::f32);
    ASSERT_TRUE(yg.grad_fn());
    ASSERT_FALSE(yg.grad_fn()->next.empty());
    ASSERT_TRUE(yg.grad_fn()->next[0].node);
    EXPECT_STREQ(yg.grad_fn()->next[0].node->name(), "Attention16Backward");
    EXPECT_TRUE(same_values(yg, yc, 1e-2));
    sum(yc * w).backward();
    sum(yg * w.to(kGpu)).backward();
    EXPECT_TRUE(same_values(qg.grad(), q.grad(), 1e-2));
    EXPECT_TRUE(same_values(kg.grad(), k.grad(), 1e-2));
    EXPECT_TRUE(same_values(vg.grad(), v.grad(), 1e-2));
  }
}

// Attention on bf16 tensors on the device runs on the tensor-core kernels without casts:
// a bf16 result and bf16 gradients, within bf16's error of f32 attention on the same values.
TEST(CudaTensor, Bf16AttentionTakesBf16TensorsStraight) {
  TG_REQUIRE_GPU();
  Generator g(32);
  const Tensor q = Tensor::randn({1, 2, 50, 128}, {}, &g).to(DType::bf16), k = Tensor::randn({1, 2, 90, 128}, {}, &g).to(DType::bf16);
  const Tensor v = Tensor::randn({1, 2, 90, 128}, {}, &g).to(DType::bf16), w = Tensor::randn({1, 2, 50, 128}, {}, &g);
  const Tensor qg = q.to(kGpu).requires_grad_(), kg = k.to(kGpu).requires_grad_(), vg = v.to(kGpu).requires_grad_();
  const Tensor yg = scaled_dot_product_attention(qg, kg, vg, {}, true);
  EXPECT_EQ(yg.dtype(), DType::bf16);
  ASSERT_TRUE(yg.grad_fn());
  EXPECT_STREQ(yg.grad_fn()->name(), "Attention16Backward");
  const Tensor q32 = q.to(DType::f32).requires_grad_(), k32 = k.to(DType::f32).requires_grad_();
  const Tensor v32 = v.to(DType::f32).requires_grad_();
  const Tensor yc = scaled_dot_product_attention(q32, k32, v32, {}, true);
  EXPECT_TRUE(same_values(yg.to(DType::f32), yc, 1e-2));
  sum(yg.to(DType::f32) * w.to(kGpu)).backward();
  sum(yc * w).backward();
  for (const auto& [dev, cpu] : {std::pair{qg, q32}, {kg, k32}, {vg, v32}}) {
    ASSERT_TRUE(dev.grad().defined());
    EXPECT_EQ(dev.grad().dtype(), DType::bf16);
    EXPECT_TRUE(same_values(dev.grad().to(DType::f32), cpu.grad(), 1e-2));
  }
}

}  // namespace
}  // namespace tg
