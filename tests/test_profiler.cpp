// The profiler: the costs of kernels/cost.hpp against hand formulas and brute-force
// counts; the events of known steps (one kernel event per dispatch, each inside its
// scopes); the Chrome trace as JSON with the trace-event fields, properly nested; the CSV
// against the rows; training bit for bit the same with profiling on and off; and its
// errors.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <optional>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tilegrad/autograd/profiler.hpp"
#include "tilegrad/kernels/cost.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/nn/json.hpp"
#include "tilegrad/nn/nn.hpp"
#include "tests/support/guards.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using Kind = ProfileEvent::Kind;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("tg_profiler_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::vector<const ProfileEvent*> kernels_named(const std::vector<ProfileEvent>& evs, const std::string& name) {
  std::vector<const ProfileEvent*> out;
  for (const ProfileEvent& e : evs)
    if (e.kind == Kind::kernel && e.name == name) out.push_back(&e);
  return out;
}

TEST(ProfilerCost, GemmIsTwoMnkAndEachOperandOnce) {
  TG_TEST_RNG(rng);
  for (int trial = 0; trial < 20; ++trial) {
    const index_t M = rng.integer(0, 300), N = rng.integer(0, 300), K = rng.integer(0, 300);
    const bool beta = rng.coin(), bias = rng.coin();
    const float b = 1.0f;
    GemmEpilogue<float> ep;
    ep.bias = bias ? &b : nullptr;
    const OpCost c = gemm_cost<float>(Trans::N, Trans::T, M, N, K, 1.0f, nullptr, K, nullptr, K, beta ? 0.5f : 0.0f,
                                      nullptr, N, ep);
    EXPECT_EQ(c.flops, 2.0 * double(M) * double(N) * double(K));
    EXPECT_EQ(c.bytes, 4.0 * double(M * K + K * N + (beta ? 2 : 1) * M * N + (bias ? N : 0)));
    const OpCost d = gemm_cost<double>(Trans::N, Trans::N, M, N, K, 1.0, nullptr, K, nullptr, N, 0.0, nullptr, N, {});
    EXPECT_EQ(d.bytes, 8.0 * double(M * K + K * N + M * N));
  }
}

// The causal count in closed form against counting every (query, key) pair the mask
// leaves visible (aligned bottom-right: j <= i + Sk - Sq).
TEST(ProfilerCost, AttentionCountsTheVisiblePairs) {
  TG_TEST_RNG(rng);
  for (int trial = 0; trial < 40; ++trial) {
    AttentionForwardArgs<float> a;
    a.dims = {rng.integer(1, 3), 4, 2, rng.integer(0, 70), rng.integer(0, 70), rng.integer(1, 16)};
    a.causal = rng.coin();
    double pairs = 0;
    for (index_t i = 0; i < a.dims.seq_q; ++i)
      for (index_t j = 0; j < a.dims.seq_k; ++j) pairs += !a.causal || j <= i + a.dims.seq_k - a.dims.seq_q;
    const double bh = double(a.dims.batch * a.dims.heads);
    EXPECT_EQ(attention_forward_cost(a).flops, 4.0 * bh * pairs * double(a.dims.head_dim))
        << a.dims.seq_q << "x" << a.dims.seq_k << (a.causal ? " causal" : "");
    AttentionBackwardArgs<float> b;
    b.dims = a.dims;
    b.causal = a.causal;
    EXPECT_EQ(attention_backward_cost(b).flops, 10.0 * bh * pairs * double(a.dims.head_dim));
  }
}

TEST(ProfilerCost, RowOpsAndOptimizersCountEveryElement) {
  const index_t r = 37, c = 129;
  EXPECT_EQ(softmax_forward_cost<float>(r, c, nullptr, c, nullptr, c).bytes, 4.0 * 2 * r * c);
  EXPECT_EQ(softmax_backward_cost<double>(r, c, nullptr, c, nullptr, c, nullptr, c).bytes, 8.0 * 3 * r * c);
  const float g = 1;
  EXPECT_EQ(layer_norm_forward_cost<float>(r, c, nullptr, c, &g, &g, 1e-5, nullptr, c, nullptr, nullptr).bytes,
            4.0 * (2 * r * c + 2 * c));
  const Shape x({r, c}), y({c});
  EXPECT_EQ(binary_cost<float>(Binary::add, x, nullptr, y, nullptr, x, nullptr).bytes, 4.0 * (2 * r * c + c));
  std::vector<ParamSlot<float>> slots{{nullptr, nullptr, nullptr, nullptr, 100}, {nullptr, nullptr, nullptr, nullptr, 28}};
  EXPECT_EQ(adam_step_cost<float>({}, slots).bytes, 7.0 * 4 * 128);
  EXPECT_EQ(sgd_step_cost<float>({}, slots).bytes, 3.0 * 4 * 128);
}

TEST(Profiler, OneKernelEventPerDispatchWithCallerAndCost) {
  Generator gen(3);
  const Tensor a = Tensor::randn({7, 5}, TensorOptions().with_requires_grad(), &gen);
  const Tensor b = Tensor::randn({5, 9}, TensorOptions().with_requires_grad(), &gen);
  Profiler prof;
  const Tensor y = matmul(a, b);
  const Tensor s = softmax(relu(y));
  prof.stop();
  const std::vector<ProfileEvent>& evs = prof.events();
  const auto gemms = kernels_named(evs, "gemm");
  ASSERT_EQ(gemms.size(), 1u);
  EXPECT_EQ(std::string(gemms[0]->caller), "matmul");
  EXPECT_FALSE(gemms[0]->in_backward);
  EXPECT_EQ(gemms[0]->flops, 2.0 * 7 * 9 * 5);
  EXPECT_EQ(gemms[0]->shape(), "7x9x5 nn");
  EXPECT_EQ(std::string(gemms[0]->device), "cpu");
  EXPECT_EQ(std::string(gemms[0]->dtype), "f32");
  EXPECT_EQ(kernels_named(evs, "act_forward").size(), 1u);
  EXPECT_EQ(kernels_named(evs, "softmax_forward").size(), 1u);
  for (const ProfileEvent& e : evs) {
    EXPECT_LE(e.start_us, e.end_us);
    EXPECT_GE(e.start_us, 0);
    EXPECT_LE(e.end_us, prof.wall_ms() * 1000.0);
  }
}

// The backward of a matmul runs two GEMMs inside its node's scope, named after the node,
// and their rows say backward.
TEST(Profiler, BackwardKernelsNestInTheirNodesScope) {
  Generator gen(4);
  const Tensor a = Tensor::randn({6, 4}, TensorOptions().with_requires_grad(), &gen);
  const Tensor b = Tensor::randn({4, 3}, TensorOptions().with_requires_grad(), &gen);
  const Tensor loss = sum(matmul(a, b));
  Profiler prof;
  loss.backward();
  prof.stop();
  const std::vector<ProfileEvent>& evs = prof.events();
  const auto gemms = kernels_named(evs, "gemm");
  ASSERT_EQ(gemms.size(), 2u);
  for (const ProfileEvent* g : gemms) {
    ASSERT_GE(g->parent, 0);
    const ProfileEvent& scope = evs[std::size_t(g->parent)];
    EXPECT_EQ(scope.kind, Kind::backward);
    EXPECT_EQ(scope.name.rfind("backward:", 0), 0u) << scope.name;
    EXPECT_GE(g->start_us, scope.start_us);
    EXPECT_LE(g->end_us, scope.end_us);
    EXPECT_EQ(g->depth, scope.depth + 1);
    EXPECT_TRUE(g->in_backward);
  }
}

// Modules are scopes named by path; ranges and optimizer steps are scopes too.
TEST(Profiler, ModulesRangesAndOptimizerStepsAreScopes) {
  Generator gen(5);
  auto model = std::make_shared<nn::Sequential>();
  model->add(std::make_shared<nn::Linear>(8, 16, true, Activation{Act::relu}, &gen));
  model->add(std::make_shared<nn::Linear>(16, 4, true, Activation{}, &gen));
  nn::Adam opt(model->parameters());
  const Tensor x = Tensor::randn({5, 8}, {}, &gen);
  Profiler prof;
  {
    auto r = profile_range("step");
    Tensor loss = sum((*model)(x));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  prof.stop();
  const std::vector<ProfileEvent>& evs = prof.events();
  std::map<std::string, const ProfileEvent*> scopes;
  for (const ProfileEvent& e : evs)
    if (e.kind != Kind::kernel) scopes[e.name] = &e;
  ASSERT_TRUE(scopes.count("step"));
  ASSERT_TRUE(scopes.count("Sequential"));
  ASSERT_TRUE(scopes.count("Sequential.0"));
  ASSERT_TRUE(scopes.count("Sequential.1"));
  ASSERT_TRUE(scopes.count("Adam.step"));
  EXPECT_EQ(scopes["Sequential.0"]->kind, Kind::module);
  EXPECT_EQ(evs[std::size_t(scopes["Sequential.0"]->parent)].name, "Sequential");
  EXPECT_EQ(evs[std::size_t(scopes["Sequential"]->parent)].name, "step");
  EXPECT_EQ(scopes["Adam.step"]->kind, Kind::optimizer);
  // Every event sits inside its parent, on its parent's thread.
  for (const ProfileEvent& e : evs) {
    if (e.parent < 0) continue;
    const ProfileEvent& p = evs[std::size_t(e.parent)];
    EXPECT_EQ(p.thread, e.thread);
    EXPECT_GE(e.start_us, p.start_us) << e.name << " in " << p.name;
    EXPECT_LE(e.end_us, p.end_us) << e.name << " in " << p.name;
  }
  const auto modules = prof.module_rows();
  ASSERT_EQ(modules.size(), 3u);
  EXPECT_EQ(modules[0].name, "Sequential");  // inclusive: the largest
  EXPECT_EQ(kernels_named(evs, "adam_step").size(), 1u);
}

// The trace is JSON with the trace-event fields; each event's [ts, ts + dur] lies inside
// the one it is nested in; the op rows add up to the recorded time.
TEST(Profiler, ChromeTraceIsValidAndNested) {
  Generator gen(6);
  nn::Linear layer(32, 16, true, Activation{Act::gelu_tanh}, &gen);
  const Tensor x = Tensor::randn({10, 32}, {}, &gen);
  Profiler prof;
  for (int i = 0; i < 3; ++i) sum(layer(x)).backward();
  prof.stop();
  const std::string path = temp_path("trace.json");
  prof.write_chrome_trace(path);
  const nn::Json doc = nn::parse_json(read_file(path), path);
  std::filesystem::remove(path);
  ASSERT_EQ(doc.kind, nn::Json::Kind::object);
  const nn::Json* events = nullptr;
  for (const nn::JsonMember& m : doc.object)
    if (m.key == "traceEvents") events = &m.value;
  ASSERT_NE(events, nullptr);
  ASSERT_EQ(events->kind, nn::Json::Kind::array);
  std::size_t complete = 0;
  for (const nn::Json& e : events->array) {
    ASSERT_EQ(e.kind, nn::Json::Kind::object);
    std::map<std::string, const nn::Json*> f;
    for (const nn::JsonMember& m : e.object) f[m.key] = &m.value;
    for (const char* key : {"name", "ph", "pid", "tid"}) EXPECT_TRUE(f.count(key)) << key;
    if (f["ph"]->string != "X") continue;
    ++complete;
    ASSERT_TRUE(f.count("ts") && f.count("dur") && f.count("cat"));
    EXPECT_GE(f["dur"]->number, 0);
  }
  EXPECT_EQ(complete, prof.events().size());
  double rows_ms = 0;
  for (const ProfileRow& r : prof.op_rows()) rows_ms += r.total_ms;
  EXPECT_NEAR(rows_ms, prof.wall_ms(), 1e-6 * std::max(1.0, prof.wall_ms()));
}

TEST(Profiler, CsvHoldsTheTablesRows) {
  Generator gen(7);
  nn::Linear layer(16, 8, true, Activation{}, &gen);
  const Tensor x = Tensor::randn({4, 16}, {}, &gen);
  Profiler prof;
  sum(layer(x)).backward();
  prof.stop();
  const Roofline roof{100.0, 10.0};
  const std::string path = temp_path("rows.csv");
  prof.write_csv(path, roof);
  std::istringstream in(read_file(path));
  std::filesystem::remove(path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "table,name,calls,total_ms,mean_us,share,gflops,gbs,roofline,bound");
  std::vector<std::pair<std::string, long long>> csv_ops;
  std::size_t module_lines = 0, machine_lines = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
    ASSERT_GE(cells.size(), 9u) << line;
    if (cells[0] == "op") csv_ops.push_back({cells[1], std::stoll(cells[2])});
    if (cells[0] == "module") ++module_lines;
    if (cells[0] == "machine") {
      ++machine_lines;
      EXPECT_EQ(std::stod(cells[6]), roof.peak_gflops);
      EXPECT_EQ(std::stod(cells[7]), roof.bandwidth_gbs);
    }
  }
  const std::vector<ProfileRow> rows = prof.op_rows(roof);
  ASSERT_EQ(csv_ops.size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(csv_ops[i].first, rows[i].name);
    EXPECT_EQ(csv_ops[i].second, rows[i].calls);
  }
  EXPECT_EQ(module_lines, prof.module_rows().size());
  EXPECT_EQ(machine_lines, 1u);
  const std::string table = prof.table(roof);
  for (const ProfileRow& r : rows) EXPECT_NE(table.find(r.name), std::string::npos) << r.name;
}

// Profiling changes no bit of training: the same steps with and without a Profiler.
TEST(Profiler, TrainingIsBitIdenticalWithProfilingOnAndOff) {
  auto train = [](bool profile) {
    Generator gen(11);
    auto model = std::make_shared<nn::Sequential>();
    model->add(std::make_shared<nn::Linear>(12, 24, true, Activation{Act::relu}, &gen));
    model->add(std::make_shared<nn::Linear>(24, 3, true, Activation{}, &gen));
    nn::AdamW opt(model->parameters(), 1e-2);
    const Tensor x = Tensor::randn({16, 12}, {}, &gen);
    const Tensor y = Tensor::from_vector(std::vector<std::int64_t>{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0}, {16});
    std::optional<Profiler> prof;
    if (profile) prof.emplace();
    for (int step = 0; step < 4; ++step) {
      Tensor loss = cross_entropy((*model)(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
    if (prof) {
      prof->stop();
      EXPECT_GT(prof->op_rows().size(), 1u);
    }
    std::vector<float> out;
    for (const Tensor& p : model->parameters()) {
      const Tensor c = p.detach().contiguous();
      out.insert(out.end(), c.data<float>(), c.data<float>() + c.numel());
    }
    return out;
  };
  const std::vector<float> off = train(false), on = train(true);
  ASSERT_EQ(off.size(), on.size());
  for (std::size_t i = 0; i < off.size(); ++i) ASSERT_EQ(std::bit_cast<std::uint32_t>(off[i]), std::bit_cast<std::uint32_t>(on[i])) << i;
}

TEST(Profiler, ErrorsNameTheCallAndWriteNoPartFiles) {
  Profiler prof;
  EXPECT_TRUE(profiling());
  EXPECT_NE(testing::error_of([] { Profiler second; }).find("Profiler"), std::string::npos);
  EXPECT_NE(testing::error_of([&] { (void)prof.events(); }).find("stopped"), std::string::npos);
  prof.stop();
  prof.stop();  // idempotent
  EXPECT_FALSE(profiling());
  const std::string dir = temp_path("no_such_dir");
  const std::string path = dir + "/trace.json";
  EXPECT_NE(testing::error_of([&] { prof.write_chrome_trace(path); }).find("write_chrome_trace"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_NE(testing::error_of([&] { prof.write_csv(""); }).find("path"), std::string::npos);
  // A scope opened while none records records nothing, and a new profiler starts empty.
  { auto r = profile_range("unrecorded"); }
  Profiler again;
  again.stop();
  EXPECT_TRUE(again.events().empty());
}

}  // namespace
}  // namespace tg
