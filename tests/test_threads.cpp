// Several user threads using tilegrad at once give what running them one after another
// gives, bit for bit: independent models training in parallel threads (each its own
// generator, graph and optimizer; grad mode and autocast are per thread), and inference
// threads sharing one model under no_grad; a Profiler recording training runs on several
// threads, each on its own track, changing no bit. Built under ThreadSanitizer
// (TG_SANITIZE=thread, OpenMP off) this test is the race check.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "tilegrad/nn/nn.hpp"
#include "tests/support/testing.hpp"

namespace tg::nn {
namespace {

// A run's result as bits: every loss, then every parameter.
std::vector<std::uint32_t> bits(const std::vector<float>& v) {
  std::vector<std::uint32_t> b(v.size());
  std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
  return b;
}

std::shared_ptr<Sequential> make_model(Generator* g) {
  auto m = std::make_shared<Sequential>();
  m->add(std::make_shared<Linear>(12, 32, true, Activation{Act::gelu_tanh}, g));
  m->add(std::make_shared<LayerNorm>(32));
  m->add(std::make_shared<Linear>(32, 5, true, Activation{}, g));
  return m;
}

// One training run from its seed: 30 AdamW steps of cross-entropy (with dropout in the
// mix, drawn from the run's own generator), one of them under grad-disabled evaluation.
std::vector<std::uint32_t> train(std::uint64_t seed) {
  Generator g(seed);
  auto model = make_model(&g);
  AdamW opt(model->parameters(), 1e-2);
  const Tensor x = Tensor::randn({64, 12}, {}, &g);
  std::vector<std::int64_t> labels(64);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = std::int64_t((i * 7 + seed) % 5);
  const Tensor y = Tensor::from_vector(labels, {64});
  std::vector<float> out;
  for (int step = 0; step < 30; ++step) {
    if (step == 15) {
      NoGradGuard no_grad;
      out.push_back(float(cross_entropy((*model)(x), y).item()));
    }
    const Tensor loss = cross_entropy(dropout((*model)(x), 0.1, true, &g), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    out.push_back(float(loss.item()));
  }
  for (const Tensor& p : model->parameters())
    for (float v : p.to_vector<float>()) out.push_back(v);
  return bits(out);
}

TEST(Threads, IndependentTrainingRunsInParallelMatchThemRunOneByOne) {
  constexpr int kRuns = 4;
  std::vector<std::vector<std::uint32_t>> alone(kRuns), together(kRuns);
  for (int r = 0; r < kRuns; ++r) alone[std::size_t(r)] = train(100 + std::uint64_t(r));
  std::vector<std::thread> threads;
  for (int r = 0; r < kRuns; ++r)
    threads.emplace_back([&, r] { together[std::size_t(r)] = train(100 + std::uint64_t(r)); });
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < kRuns; ++r) EXPECT_EQ(together[std::size_t(r)], alone[std::size_t(r)]) << "run " << r;
  EXPECT_NE(alone[0], alone[1]);  // the seeds matter: the comparison could fail
}

TEST(Threads, InferenceThreadsShareOneModelUnderNoGrad) {
  Generator g(7);
  const auto model = make_model(&g);
  constexpr int kThreads = 4;
  std::vector<Tensor> inputs;
  for (int t = 0; t < kThreads; ++t) inputs.push_back(Tensor::randn({16, 12}, {}, &g));
  auto infer = [&](int t) {
    NoGradGuard no_grad;
    std::vector<float> out;
    for (int rep = 0; rep < 20; ++rep)
      for (float v : softmax((*model)(inputs[std::size_t(t)])).to_vector<float>()) out.push_back(v);
    return bits(out);
  };
  std::vector<std::vector<std::uint32_t>> alone(kThreads), together(kThreads);
  for (int t = 0; t < kThreads; ++t) alone[std::size_t(t)] = infer(t);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back([&, t] { together[std::size_t(t)] = infer(t); });
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(together[std::size_t(t)], alone[std::size_t(t)]) << "thread " << t;
  // Grad mode is per thread: the workers' NoGradGuards left this one's on.
  EXPECT_TRUE(grad_enabled());
}

TEST(Threads, AProfilerRecordsEveryThreadOnItsOwnTrackAndChangesNoBit) {
  constexpr int kRuns = 3;
  std::vector<std::vector<std::uint32_t>> alone(kRuns), together(kRuns);
  for (int r = 0; r < kRuns; ++r) alone[std::size_t(r)] = train(200 + std::uint64_t(r));
  Profiler prof;
  std::vector<std::thread> threads;
  for (int r = 0; r < kRuns; ++r)
    threads.emplace_back([&, r] { together[std::size_t(r)] = train(200 + std::uint64_t(r)); });
  for (std::thread& t : threads) t.join();
  prof.stop();
  for (int r = 0; r < kRuns; ++r) EXPECT_EQ(together[std::size_t(r)], alone[std::size_t(r)]) << "run " << r;
  // Each worker's kernels on its own track, nested in that track's scopes; every track has
  // the run's 30 AdamW steps.
  const std::vector<ProfileEvent>& evs = prof.events();
  std::vector<int> adam(kRuns + 1, 0);
  for (const ProfileEvent& e : evs) {
    ASSERT_GE(e.thread, 0);
    ASSERT_LT(e.thread, kRuns);  // the main thread ran no op while recording
    if (e.kind == ProfileEvent::Kind::kernel && e.name == "adam_step") ++adam[std::size_t(e.thread)];
    if (e.parent >= 0) {
      EXPECT_EQ(evs[std::size_t(e.parent)].thread, e.thread);
    }
  }
  for (int t = 0; t < kRuns; ++t) EXPECT_EQ(adam[std::size_t(t)], 30) << "track " << t;
}

}  // namespace
}  // namespace tg::nn
