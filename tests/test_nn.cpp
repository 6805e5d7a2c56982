// nn: modules (names, state_dict, strict loading), layers against hand-written
// compositions of autograd ops and through gradcheck, initializations' statistics,
// losses, optimizers' first steps against the formulas, schedules against their closed
// forms, data loading, scalers and metrics.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <set>

#include "tilegrad/kernels/error.hpp"
#include "tilegrad/nn/nn.hpp"
#include "tests/support/guards.hpp"
#include "tests/support/testing.hpp"

namespace tg::nn {
namespace {

TensorOptions f64() { return TensorOptions().with_dtype(DType::f64); }

using testing::error_of;

struct Mlp : Module {
  std::shared_ptr<Linear> fc1, fc2;
  explicit Mlp(Generator* g) {
    fc1 = register_module("fc1", std::make_shared<Linear>(4, 8, true, Activation{Act::relu}, g));
    fc2 = register_module("fc2", std::make_shared<Linear>(8, 3, true, Activation{}, g));
  }
  Tensor forward(const Tensor& x) override { return (*fc2)((*fc1)(x)); }
};

TEST(Module, NamesParametersByPathAndCountsThem) {
  Generator g(1);
  Sequential seq;
  seq.add(std::make_shared<Mlp>(&g)).add(std::make_shared<ReLU>()).add(std::make_shared<LayerNorm>(3));
  std::vector<std::string> names;
  for (auto& [n, t] : seq.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"0.fc1.weight", "0.fc1.bias", "0.fc2.weight", "0.fc2.bias", "2.weight",
                                             "2.bias"}));
  EXPECT_EQ(seq.parameter_count(), 4 * 8 + 8 + 8 * 3 + 3 + 3 + 3);
  EXPECT_EQ(seq.parameters()[0].name(), "0.fc1.weight");  // to_dot shows these names
  EXPECT_NE(seq.summary().find("Linear(4 -> 8, relu)"), std::string::npos) << seq.summary();
}

TEST(Module, StateDictRoundTripsAndStrictLoadingListsEveryProblem) {
  Generator g1(1), g2(2);
  Mlp a(&g1), b(&g2);
  b.load_state_dict(a.state_dict());
  EXPECT_EQ(a.fc1->weight.to_vector<float>(), b.fc1->weight.to_vector<float>());
  StateDict bad = a.state_dict();
  bad.erase("fc2.bias");
  bad["fc3.weight"] = Tensor::zeros({1});
  bad["fc1.weight"] = Tensor::zeros({4, 4});
  const std::string e = error_of([&] { b.load_state_dict(bad); });
  for (const char* want : {"missing keys: fc2.bias", "unexpected keys: fc3.weight", "fc1.weight (checkpoint (4, 4)"})
    EXPECT_NE(e.find(want), std::string::npos) << want << " in: " << e;
  StateDict partial = a.state_dict();
  partial.erase("fc2.bias");
  EXPECT_NO_THROW(b.load_state_dict(partial, /*strict=*/false));
}

TEST(Module, ToKeepsTheParameterHandlesValid) {
  Generator g(3);
  Mlp m(&g);
  const Tensor w = m.parameters()[0];
  m.to(DType::f64);
  EXPECT_EQ(w.dtype(), DType::f64);  // the same handle sees the conversion
  EXPECT_EQ(m.fc1->weight.dtype(), DType::f64);
  const Tensor y = m(Tensor::ones({2, 4}, f64()));
  EXPECT_EQ(y.dtype(), DType::f64);
}

TEST(Layers, MatchTheirCompositionOfAutogradOps) {
  Generator g(4);
  const Tensor x = Tensor::randn({5, 4}, {}, &g);
  Linear lin(4, 6, true, Activation{Act::tanh}, &g);
  const Tensor want = tanh(matmul(x, lin.weight.t()) + lin.bias);
  EXPECT_TRUE(testing::rel_close(lin(x).to_vector<float>(), want.to_vector<float>(), 1e-6));
  LayerNorm ln(4);
  const Tensor mu = mean(x, {1}, true), var = mean((x - mu) * (x - mu), {1}, true);
  EXPECT_TRUE(testing::rel_close(ln(x).to_vector<float>(), ((x - mu) / sqrt(var + 1e-5)).to_vector<float>(), 1e-5));
  // Multi-head attention as per-head softmax(q k^T / sqrt(d)) v.
  MultiheadAttention mha(8, 2, true, &g);
  const Tensor s = Tensor::randn({2, 3, 8}, {}, &g);
  const Tensor q = (*mha.q_proj)(s), k = (*mha.k_proj)(s), v = (*mha.v_proj)(s);
  std::vector<Tensor> heads;
  for (int h = 0; h < 2; ++h) {
    const Tensor qh = q.slice(2, 4 * h, 4 * h + 4), kh = k.slice(2, 4 * h, 4 * h + 4), vh = v.slice(2, 4 * h, 4 * h + 4);
    heads.push_back(matmul(softmax(matmul(qh, kh.transpose(1, 2)) * 0.5), vh));
  }
  const Tensor ref = (*mha.out_proj)(cat(heads, 2));
  EXPECT_TRUE(testing::rel_close(mha.forward(s).to_vector<float>(), ref.to_vector<float>(), 1e-5));
  Dropout drop(0.5, &g);
  drop.eval();
  EXPECT_EQ(drop(x).to_vector<float>(), x.to_vector<float>());
}

TEST(Layers, GradientsPassGradcheck) {
  Generator g(5);
  Linear lin(3, 4, true, Activation{Act::silu}, &g);
  TransformerBlock block(8, 2, 16, 0.0, true, &g);
  lin.to(DType::f64);
  block.to(DType::f64);
  const Tensor x = Tensor::randn({2, 3}, f64().with_requires_grad(), &g);
  const Tensor s = Tensor::randn({1, 3, 8}, f64().with_requires_grad(), &g);
  std::vector<Tensor> lin_in = {x};
  for (const Tensor& p : lin.parameters()) lin_in.push_back(p);
  GradcheckResult r = gradcheck([&](const std::vector<Tensor>&) { return lin(x); }, lin_in);
  EXPECT_TRUE(r.ok) << r.report;
  std::vector<Tensor> block_in = {s};
  for (const Tensor& p : block.parameters()) block_in.push_back(p);
  r = gradcheck([&](const std::vector<Tensor>&) { return block(s); }, block_in);
  EXPECT_TRUE(r.ok) << r.report;
}

TEST(Init, DrawsHaveTheStatedVariance) {
  Generator g(6);
  const Tensor w = Tensor::empty({400, 300});
  auto stats = [](const Tensor& t) {
    const std::vector<double> v = t.to_vector<double>();
    double m = 0, s = 0;
    for (double x : v) m += x;
    m /= double(v.size());
    for (double x : v) s += (x - m) * (x - m);
    return std::pair{m, s / double(v.size())};
  };
  init::xavier_uniform_(w, 1.0, &g);
  EXPECT_NEAR(stats(w).second, 2.0 / 700, 2.0 / 700 * 0.03);
  init::kaiming_normal_(w, 0.0, init::FanMode::fan_in, &g);
  EXPECT_NEAR(stats(w).second, 2.0 / 300, 2.0 / 300 * 0.03);
  Linear lin(300, 400, true, {}, &g);  // U(-1/sqrt(300), 1/sqrt(300)): variance 1/900
  EXPECT_NEAR(stats(lin.weight).second, 1.0 / 900, 1.0 / 900 * 0.03);
  const std::vector<float> b = lin.bias.to_vector<float>();
  for (float v : b) EXPECT_LE(std::fabs(v), 1 / std::sqrt(300.0f));
}

TEST(Losses, MatchTheirFormulas) {
  const Tensor x = Tensor::from_vector(std::vector<double>{-2, 0, 3}, {3});
  const Tensor t = Tensor::from_vector(std::vector<double>{0, 1, 1}, {3});
  EXPECT_NEAR(L1Loss{}(x, t).item(), (2 + 1 + 2) / 3.0, 1e-12);
  EXPECT_NEAR(MSELoss{Reduction::sum}(x, t).item(), 4 + 1 + 4, 1e-12);
  double bce = 0;
  for (int i = 0; i < 3; ++i) {
    const double xi = std::vector<double>{-2, 0, 3}[std::size_t(i)], ti = std::vector<double>{0, 1, 1}[std::size_t(i)];
    const double p = 1 / (1 + std::exp(-xi));
    bce -= ti * std::log(p) + (1 - ti) * std::log(1 - p);
  }
  EXPECT_NEAR(BCEWithLogitsLoss{}(x, t).item(), bce / 3, 1e-12);
  // Its gradient at the kink x = 0 is sigmoid(0) - t, not a subgradient of relu/abs.
  const Tensor z = Tensor::zeros({1}, f64().with_requires_grad());
  BCEWithLogitsLoss{}(z, Tensor::zeros({1}, f64())).backward();
  EXPECT_NEAR(z.grad().item(), 0.5, 1e-12);
  const Tensor logits = Tensor::zeros({2, 4}, f64());
  const Tensor cls = Tensor::from_vector(std::vector<std::int64_t>{1, 3}, {2});
  EXPECT_NEAR(CrossEntropyLoss{}(logits, cls).item(), std::log(4.0), 1e-12);
}

TEST(Optimizers, FirstStepsFollowTheFormulas) {
  // SGD with momentum 0.9 and a constant gradient 1: buffers 1, 1.9, 2.71; p -= lr b.
  Tensor p = Tensor::zeros({1}, f64().with_requires_grad());
  SGD sgd({p}, 0.1, 0.9);
  double want = 0, b = 0;
  for (int k = 0; k < 3; ++k) {
    p.set_grad(Tensor::ones({1}, f64()));
    sgd.step();
    b = k == 0 ? 1 : 0.9 * b + 1;
    want -= 0.1 * b;
    EXPECT_NEAR(p.item(), want, 1e-12) << "step " << k;
  }
  // Adam: with a constant gradient g, m_hat = g and v_hat = g^2 at every step, so each
  // step moves by lr g / (|g| + eps).
  Tensor q = Tensor::zeros({1}, f64().with_requires_grad());
  Adam adam({q}, 0.01);
  for (int k = 0; k < 3; ++k) {
    q.set_grad(Tensor::full({1}, 4.0, f64()));
    adam.step();
  }
  EXPECT_NEAR(q.item(), -3 * 0.01 * 4 / (4 + 1e-8), 1e-12);
  // AdamW decays the parameter itself: p (1 - lr wd) before the Adam step.
  Tensor r = Tensor::ones({1}, f64().with_requires_grad());
  AdamW adamw({r}, 0.1, 0.9, 0.999, 1e-8, 0.5);
  r.set_grad(Tensor::zeros({1}, f64()));
  adamw.step();
  EXPECT_NEAR(r.item(), 1 - 0.1 * 0.5, 1e-12);
  EXPECT_EQ(adamw.steps(), 1);
}

TEST(Optimizers, ClipGradNormScalesToTheLimit) {
  Tensor a = Tensor::zeros({2}, f64().with_requires_grad()), b = Tensor::zeros({1}, f64().with_requires_grad());
  a.set_grad(Tensor::from_vector(std::vector<double>{3, 0}, {2}));
  b.set_grad(Tensor::from_vector(std::vector<double>{4}, {1}));
  EXPECT_NEAR(clip_grad_norm({a, b}, 1.0), 5.0, 1e-12);
  EXPECT_NEAR(a.grad().to_vector<double>()[0], 3 / (5 + 1e-6), 1e-12);
  EXPECT_NEAR(b.grad().item(), 4 / (5 + 1e-6), 1e-12);
}

// Live scalars (the rate and the step count in a tensor, as on a device, where a CUDA
// graph's replays need them): the same steps as host scalars under a schedule, a count
// that the state dict carries, a resumed optimizer that goes on the same way.
TEST(Optimizers, LiveScalarsStepLikeHostScalarsAndResume) {
  Generator g(5);
  const Tensor init = Tensor::randn({37}, {}, &g), grads = Tensor::randn({7, 37}, {}, &g);
  auto param = [&] { return init.clone().detach().requires_grad_(); };
  auto make = [](int kind, const Tensor& p) -> std::unique_ptr<Optimizer> {
    if (kind == 0) return std::make_unique<SGD>(std::vector<Tensor>{p}, 0.1, 0.9, 0.0, 1e-3, true);
    if (kind == 1) return std::make_unique<Adam>(std::vector<Tensor>{p}, 0.05, 0.9, 0.99, 1e-8, 0.01);
    return std::make_unique<AdamW>(std::vector<Tensor>{p}, 0.05);
  };
  for (int kind = 0; kind < 3; ++kind) {
    Tensor pa = param(), pb = param();
    const auto a = make(kind, pa), b = make(kind, pb);
    b->use_live_scalars();
    EXPECT_TRUE(b->live_scalars());
    EXPECT_FALSE(a->live_scalars());
    CosineAnnealingLR sa(*a, 6), sb(*b, 6);
    for (index_t k = 0; k < 5; ++k) {
      pa.set_grad(grads.select(0, k).contiguous());
      pb.set_grad(grads.select(0, k).contiguous());
      a->step(), b->step();
      sa.step(), sb.step();
    }
    EXPECT_EQ(b->steps(), 5) << kind;
    EXPECT_EQ(a->steps(), 5) << kind;
    EXPECT_DOUBLE_EQ(b->lr(), a->lr());
    // The kernel read the rate as f32: 1e-6 of the parameters, not bits.
    EXPECT_TRUE(testing::rel_close(pb.to_vector<float>(), pa.to_vector<float>(), 1e-6)) << kind;
    // Resume from b's state into a fresh optimizer with live scalars: the count and the
    // next step as b's.
    Tensor pc = pb.detach().clone().requires_grad_();
    const auto c = make(kind, pc);
    c->use_live_scalars();
    c->load_state_dict(b->state_dict());
    EXPECT_EQ(c->steps(), 5) << kind;
    EXPECT_DOUBLE_EQ(c->lr(), b->lr());
    pb.set_grad(grads.select(0, 5).contiguous());
    pc.set_grad(grads.select(0, 5).contiguous());
    b->step(), c->step();
    EXPECT_EQ(pc.to_vector<float>(), pb.to_vector<float>()) << kind;
    EXPECT_EQ(c->steps(), 6) << kind;
  }
  Tensor q = Tensor::zeros({1}, TensorOptions().with_requires_grad());
  SGD opt({q}, 0.1);
  opt.use_live_scalars();
  EXPECT_NE(error_of([&] { opt.set_lr(-1); }).find("lr"), std::string::npos);
}

TEST(Schedules, FollowTheirClosedForms) {
  Tensor p = Tensor::zeros({1}, TensorOptions().with_requires_grad());
  SGD opt({p}, 1.0);
  StepLR step(opt, 3, 0.5);
  for (int e = 1; e <= 7; ++e) {
    step.step();
    EXPECT_DOUBLE_EQ(opt.lr(), std::pow(0.5, e / 3)) << e;
  }
  opt.set_lr(0.1);
  CosineAnnealingLR cosine(opt, 10, 0.01);
  for (int e = 1; e <= 10; ++e) {
    cosine.step();
    EXPECT_NEAR(opt.lr(), 0.01 + 0.09 * (1 + std::cos(std::numbers::pi * e / 10)) / 2, 1e-15);
  }
  opt.set_lr(1.0);
  LinearWarmup warm(opt, 4, 0.0, std::make_unique<ExponentialLR>(opt, 0.5));
  EXPECT_DOUBLE_EQ(opt.lr(), 0.0);
  const std::vector<double> want = {0.25, 0.5, 0.75, 1.0, 0.5, 0.25};
  for (double w : want) {
    warm.step();
    EXPECT_DOUBLE_EQ(opt.lr(), w);
  }
}

TEST(Data, LoaderCoversEveryRowOnceAndShufflesReproducibly) {
  std::vector<float> xv(23 * 2);
  std::vector<std::int64_t> yv(23);
  for (int i = 0; i < 23; ++i) xv[std::size_t(2 * i)] = float(i), xv[std::size_t(2 * i + 1)] = float(-i), yv[std::size_t(i)] = i;
  const TensorDataset ds(Tensor::from_vector(xv, {23, 2}), Tensor::from_vector(yv, {23}));
  DataLoader a(ds, 5, true, 42), b(ds, 5, true, 42), last(ds, 5, false, 0, true);
  EXPECT_EQ(a.batches(), 5);
  EXPECT_EQ(last.batches(), 4);  // drop_last
  std::multiset<std::int64_t> seen;
  std::vector<std::int64_t> first_epoch;
  for (const Batch& batch : a) {
    const auto y = batch.y.to_vector<std::int64_t>();
    const auto x = batch.x.to_vector<float>();
    for (std::size_t i = 0; i < y.size(); ++i) {
      EXPECT_EQ(x[2 * i], float(y[i]));  // rows stay together
      seen.insert(y[i]);
      first_epoch.push_back(y[i]);
    }
  }
  EXPECT_EQ(seen.size(), 23u);
  EXPECT_EQ(std::set<std::int64_t>(seen.begin(), seen.end()).size(), 23u);
  std::vector<std::int64_t> again;
  for (const Batch& batch : b)
    for (auto v : batch.y.to_vector<std::int64_t>()) again.push_back(v);
  EXPECT_EQ(again, first_epoch);  // same seed, same epoch: same order
  std::vector<std::int64_t> second;
  for (const Batch& batch : a)
    for (auto v : batch.y.to_vector<std::int64_t>()) second.push_back(v);
  EXPECT_NE(second, first_epoch);  // the next epoch is another permutation
}

// Sharded loaders (one per rank, same seed): each global batch's parts are disjoint, in
// order, and together are the unsharded loader's batch; a last partial batch of 3 rows
// splits 1 / 2 over two ranks.
TEST(Data, ShardsPartitionEveryBatchAcrossRanks) {
  std::vector<float> xv(23);
  std::vector<std::int64_t> yv(23);
  for (int i = 0; i < 23; ++i) xv[std::size_t(i)] = float(i), yv[std::size_t(i)] = i;
  const TensorDataset ds(Tensor::from_vector(xv, {23, 1}), Tensor::from_vector(yv, {23}));
  for (int ranks : {1, 2, 3, 5}) {
    DataLoader whole(ds, 5, true, 7);
    std::vector<DataLoader> parts;
    for (int r = 0; r < ranks; ++r) {
      parts.emplace_back(ds, 5, true, 7);
      parts.back().set_shard(r, ranks);
    }
    for (index_t epoch = 0; epoch < 2; ++epoch) {
      whole.set_epoch(epoch);
      for (DataLoader& p : parts) p.set_epoch(epoch);
      for (index_t b = 0; b < whole.batches(); ++b) {
        std::vector<std::int64_t> joined;
        for (DataLoader& p : parts) {
          const Batch part = p.batch(b);
          const auto y = part.y.to_vector<std::int64_t>();
          EXPECT_EQ(index_t(y.size()), part.size);
          joined.insert(joined.end(), y.begin(), y.end());
        }
        EXPECT_EQ(joined, whole.batch(b).y.to_vector<std::int64_t>()) << ranks << " ranks, batch " << b;
      }
    }
  }
  DataLoader last(ds, 5, false), other(ds, 5, false);
  last.set_shard(0, 2), other.set_shard(1, 2);
  EXPECT_EQ(last.batch(4).size, 1);
  EXPECT_EQ(other.batch(4).size, 2);
  DataLoader bad(ds, 5, false);
  EXPECT_THROW(bad.set_shard(0, 6), Error);
  EXPECT_THROW(bad.set_shard(2, 2), Error);
}

// Sampling loaders (one per rank, same seed): each epoch, rank r holds elements r, r + N,
// ... of the unsharded loader's permutation; the parts are disjoint and of one size
// (pad: every sample at least once, the first n mod N... of the permutation twice; drop:
// n - n mod N distinct samples), every rank runs the same number of batches, and the
// parts change with the epoch. n = 23 against 1, 2, 3, 5 ranks and 30 (more ranks than
// samples: pad repeats the permutation).
TEST(Data, SamplerGivesEachRankAnEqualDisjointPartOfThePermutation) {
  std::vector<float> xv(23);
  std::vector<std::int64_t> yv(23);
  for (int i = 0; i < 23; ++i) xv[std::size_t(i)] = float(i), yv[std::size_t(i)] = i;
  const TensorDataset ds(Tensor::from_vector(xv, {23, 1}), Tensor::from_vector(yv, {23}));
  const index_t n = 23;
  for (auto rem : {DataLoader::Remainder::pad, DataLoader::Remainder::drop})
    for (int ranks : {1, 2, 3, 5, 30}) {
      const bool pad = rem == DataLoader::Remainder::pad;
      const index_t per = pad ? (n + ranks - 1) / ranks : n / ranks;
      DataLoader whole(ds, 1000, true, 7);
      std::vector<DataLoader> parts;
      for (int r = 0; r < ranks; ++r) {
        parts.emplace_back(ds, 4, true, 7);
        parts.back().set_sampler(r, ranks, rem);
      }
      std::vector<std::int64_t> previous;
      for (index_t epoch = 0; epoch < 2; ++epoch) {
        whole.set_epoch(epoch);
        const auto perm = whole.batch(0).y.to_vector<std::int64_t>();
        std::vector<std::int64_t> seen;
        for (int r = 0; r < ranks; ++r) {
          DataLoader& p = parts[std::size_t(r)];
          p.set_epoch(epoch);
          EXPECT_EQ(p.batches(), (per + 3) / 4);
          std::vector<std::int64_t> mine;
          for (index_t b = 0; b < p.batches(); ++b) {
            const auto y = p.batch(b).y.to_vector<std::int64_t>();
            mine.insert(mine.end(), y.begin(), y.end());
          }
          ASSERT_EQ(index_t(mine.size()), per) << ranks << " ranks";
          for (index_t k = 0; k < per; ++k)
            EXPECT_EQ(mine[std::size_t(k)], perm[std::size_t((r + k * ranks) % n)]) << ranks << " ranks, rank " << r;
          seen.insert(seen.end(), mine.begin(), mine.end());
        }
        std::vector<std::int64_t> distinct = seen;
        std::sort(distinct.begin(), distinct.end());
        distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
        // pad: every sample; drop: n - n mod N samples, each once.
        EXPECT_EQ(index_t(distinct.size()), pad ? n : n - n % ranks) << ranks << " ranks";
        if (!pad) {
          EXPECT_EQ(distinct.size(), seen.size());
        }
        if (ranks > 1 && per > 0 && epoch == 1) {
          EXPECT_NE(seen, previous);  // another epoch, another split
        }
        previous = seen;
      }
    }
  DataLoader a(ds, 4, true, 7);
  a.set_shard(0, 2);
  EXPECT_THROW(a.set_sampler(0, 2), Error);
  DataLoader b(ds, 4, true, 7);
  EXPECT_THROW(b.set_sampler(3, 3), Error);
  EXPECT_THROW(b.set_sampler(0, 0), Error);
  b.set_sampler(1, 2);
  EXPECT_THROW(b.set_shard(0, 2), Error);
}

TEST(Data, SplitsAndScalers) {
  Generator g(7);
  const Tensor x = Tensor::randn({100, 3}, {}, &g) * 5.0 + 2.0;
  const TensorDataset ds(x, Tensor::zeros({100}));
  const auto parts = split(ds, {0.7, 0.2, 0.1}, 9);
  EXPECT_EQ(parts[0].size() + parts[1].size() + parts[2].size(), 100);
  EXPECT_EQ(parts[0].size(), 70);
  StandardScaler sc;
  const Tensor z = sc.fit(parts[0].x()).transform(parts[0].x());
  const std::vector<float> m = mean(z, {0}).to_vector<float>();
  for (float v : m) EXPECT_NEAR(v, 0.0f, 1e-5);
  EXPECT_TRUE(testing::rel_close(sc.inverse_transform(z).to_vector<float>(), parts[0].x().to_vector<float>(), 1e-6));
  MinMaxScaler mm;
  const std::vector<float> u = mm.fit(parts[0].x()).transform(parts[0].x()).to_vector<float>();
  EXPECT_NEAR(*std::min_element(u.begin(), u.end()), 0.0f, 1e-6);
  EXPECT_NEAR(*std::max_element(u.begin(), u.end()), 1.0f, 1e-6);
}

TEST(Metrics, MatchHandCounts) {
  const std::vector<index_t> truth = {0, 0, 1, 1, 2, 2, 2}, pred = {0, 1, 1, 1, 2, 0, 2};
  const ClassReport r = classification_report(truth, pred, 3);
  EXPECT_NEAR(r.accuracy, 5.0 / 7, 1e-12);
  EXPECT_NEAR(r.precision[1], 2.0 / 3, 1e-12);
  EXPECT_NEAR(r.recall[2], 2.0 / 3, 1e-12);
  EXPECT_NEAR(r.f1[0], 0.5, 1e-12);  // p = 1/2, r = 1/2
  EXPECT_NEAR(r.macro_recall, (0.5 + 1 + 2.0 / 3) / 3, 1e-12);
  EXPECT_NEAR(r.weighted_recall, r.accuracy, 1e-12);  // weighted recall is accuracy
  EXPECT_EQ(r.confusion.at(2, 0), 1);
  EXPECT_NE(r.confusion.str({"a", "b", "c"}).find("predicted"), std::string::npos);
  const Tensor p = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}), t = Tensor::from_vector(std::vector<double>{1, 2, 4}, {3});
  EXPECT_NEAR(mse(p, t), 1.0 / 3, 1e-12);
  EXPECT_NEAR(mae(p, t), 1.0 / 3, 1e-12);
  EXPECT_NEAR(r2_score(p, t), 1 - 3.0 / 14, 1e-12);  // SS_res 1, SS_tot 14/3 around the mean 7/3
}

}  // namespace
}  // namespace tg::nn
