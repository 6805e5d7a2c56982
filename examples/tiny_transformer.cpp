// A character-level transformer trained on a text file: the one example that runs the
// fused attention forward and backward inside a real model. Characters become one-hot
// rows through a bias-free Linear (an embedding lookup as a product), a learned position
// embedding is added, pre-norm transformer blocks with causal self-attention follow, and
// a final LayerNorm and Linear give the next character's logits; cross-entropy, AdamW,
// gradient clipping. Prints the training and validation loss every round of steps, then
// a sample continued from the text's opening.
//
//   build/examples/tiny_transformer                       # the GPL-3 text Debian ships
//   build/examples/tiny_transformer FILE --epochs 20      # rounds of --steps steps
// Options: --steps N (per round, 50), --batch N (16), --context N (64), --embed N (64),
// --heads N (4), --layers N (2), --lr X (3e-3), --sample N (200 characters), --profile FILE
// (steps 6-25 recorded by tg::Profiler: examples/profile.hpp), --amp bf16|f16
// (mixed precision: the Linear layers under AutocastGuard, f32 master weights; f16 with
// nn::GradScaler, unscaled before the gradient clipping), --dist (a rank of an mpirun
// job, in builds with MPI: dist::DataParallel; every rank draws the same global batch of
// --batch windows and trains on its part of it, so the run is the single process's with
// the gradient summed in another order; the clipping sees the averaged gradient; rank 0
// prints).
//   OMP_NUM_THREADS=1 mpirun -np 2 build/examples/tiny_transformer --dist
// Ends with `result train_loss=... val_loss=... steps=... seconds=... tokens_per_s=...`.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>

#include "examples/common.hpp"
#include "examples/dist.hpp"
#include "examples/profile.hpp"
#include "tilegrad/nn/nn.hpp"
#ifdef TG_HAVE_DIST
#include "tilegrad/dist/data_parallel.hpp"
#endif

using namespace tg;

namespace {

struct CharModel : nn::Module {
  index_t vocab, context;
  std::shared_ptr<nn::Linear> tok, head;
  std::shared_ptr<nn::LayerNorm> ln;
  std::vector<std::shared_ptr<nn::TransformerBlock>> blocks;
  Tensor pos;
  CharModel(index_t v, index_t t, index_t embed, index_t heads, index_t layers, Generator* g) : vocab(v), context(t) {
    tok = register_module("tok", std::make_shared<nn::Linear>(v, embed, false, Activation{}, g));
    pos = register_parameter("pos", nn::init::normal_(Tensor::empty({t, embed}), 0.0, 0.02, g));
    for (index_t l = 0; l < layers; ++l)
      blocks.push_back(register_module("block" + std::to_string(l),
                                       std::make_shared<nn::TransformerBlock>(embed, heads, 4 * embed, 0.0, true, g)));
    ln = register_module("ln", std::make_shared<nn::LayerNorm>(embed));
    head = register_module("head", std::make_shared<nn::Linear>(embed, v, true, Activation{}, g));
  }
  // onehot: (batch, T, vocab), T <= context; returns (batch, T, vocab) logits.
  Tensor forward(const Tensor& onehot) override {
    Tensor x = (*tok)(onehot) + pos.slice(0, 0, onehot.size(1));
    for (const auto& b : blocks) x = (*b)(x);
    return (*head)((*ln)(x));
  }
  std::string type_name() const override { return "CharModel"; }
};

// One-hot rows of the windows starting at `starts`, T characters each.
Tensor one_hot(const std::vector<index_t>& ids, const std::vector<index_t>& starts, index_t T, index_t vocab) {
  std::vector<float> v(starts.size() * std::size_t(T * vocab), 0.0f);
  for (std::size_t b = 0; b < starts.size(); ++b)
    for (index_t t = 0; t < T; ++t) v[(b * std::size_t(T) + std::size_t(t)) * std::size_t(vocab) + std::size_t(ids[std::size_t(starts[b] + t)])] = 1.0f;
  return Tensor::from_vector(v, {index_t(starts.size()), T, vocab});
}

Tensor targets(const std::vector<index_t>& ids, const std::vector<index_t>& starts, index_t T) {
  std::vector<std::int64_t> v;
  for (index_t s : starts)
    for (index_t t = 0; t < T; ++t) v.push_back(std::int64_t(ids[std::size_t(s + t + 1)]));
  return Tensor::from_vector(v, {index_t(v.size())});
}

double loss_of(CharModel& m, const std::vector<index_t>& ids, const std::vector<index_t>& starts, index_t T, Device dev) {
  const Tensor logits = m(one_hot(ids, starts, T, m.vocab).to(dev));
  return cross_entropy(logits.reshape({-1, m.vocab}), targets(ids, starts, T).to(dev)).item();
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = "/usr/share/common-licenses/GPL-3";
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {  // a first argument that is not a flag is the text file
    if (i == 1 && argv[i][0] != '-') path = argv[i];
    else rest.push_back(argv[i]);
  }
  const examples::Args args = examples::parse_args(
      int(rest.size()), rest.data(),
      " [FILE] [--steps N] [--batch N] [--context N] [--embed N] [--heads N] [--layers N] [--lr X] [--sample N] "
      "[--amp bf16|f16] [--profile FILE] [--dist]",
      {"steps=", "batch=", "context=", "embed=", "heads=", "layers=", "lr=", "sample=", "amp=", "profile=", "dist"},
      /*devices=*/true);
  const DType amp = args.amp();
  const Device dev = args.device;
  const int rounds = args.epochs > 0 ? args.epochs : 8;
  const index_t steps = args.count("steps", 50, 1, index_t(1) << 30), batch = args.count("batch", 16, 1, 1 << 16);
  const index_t T = args.count("context", 64, 2, 1 << 16), embed = args.count("embed", 64, 1, 1 << 16);
  const index_t heads = args.count("heads", 4, 1, 1024), layers = args.count("layers", 2, 1, 1024);
  const double lr = args.number("lr", 3e-3);
  const index_t sample_len = args.count("sample", 200, 0, index_t(1) << 24);
  const bool distributed = args.has("dist");
  examples::DistJob job;
  if (distributed) {
    if (!dev.is_cpu() || amp == DType::f16) {
      std::fprintf(stderr, "tiny_transformer: --dist trains on the CPU, without --amp f16\n");
      return 2;
    }
    if (const int status = examples::join_dist("tiny_transformer", job)) return status;
  }
  const int rank = job.rank, ranks = job.ranks;
  if (batch < ranks) {
    std::fprintf(stderr, "tiny_transformer: --batch %lld is fewer windows than the %d ranks\n",
                 static_cast<long long>(batch), ranks);
    return 2;
  }
#ifdef TG_HAVE_DIST
  dist::ProcessGroup* group = job.group.get();
#endif
  // This rank's windows of each global batch: [part_begin, part_end).
  const index_t part_begin = batch * rank / ranks, part_end = batch * (rank + 1) / ranks;

  nn::CharCorpus corpus;
  try {
    corpus = nn::read_char_corpus(path);
  } catch (const Error& e) {
    std::fprintf(stderr, "tiny_transformer: %s\n", e.what());
    return 1;
  }
  const std::string& alphabet = corpus.alphabet;
  const std::vector<index_t>& ids = corpus.ids;
  const index_t vocab = index_t(alphabet.size()), n = index_t(ids.size()), n_train = n * 9 / 10;
  if (n_train < T + 2 || n - n_train < T + 2) {
    std::fprintf(stderr, "tiny_transformer: %s is too short for a context of %lld\n", path.c_str(), static_cast<long long>(T));
    return 1;
  }
  std::printf("tiny_transformer: %s, %lld characters (%lld distinct), 90%% for training; %lld layers, embed %lld, "
              "%lld heads, context %lld, batch %lld, AdamW lr %g, %d threads, %s, %s\n",
              path.c_str(), static_cast<long long>(n), static_cast<long long>(vocab), static_cast<long long>(layers),
              static_cast<long long>(embed), static_cast<long long>(heads), static_cast<long long>(T),
              static_cast<long long>(batch), lr, cpu::num_threads(), dev.str().c_str(),
              examples::Args::amp_name(amp));

  Generator gen(args.seed);
  CharModel model(vocab, T, embed, heads, layers, &gen);
  model.to(dev);  // the parameters (and the optimizer's state) live on --device
  nn::AdamW opt(model.parameters(), lr, 0.9, 0.99, 1e-8, 0.01);
#ifdef TG_HAVE_DIST
  // The model stays on this stack; DataParallel holds it by a handle that does not own it.
  std::unique_ptr<dist::DataParallel> ddp;
  if (group) ddp = std::make_unique<dist::DataParallel>(std::shared_ptr<nn::Module>(&model, [](nn::Module*) {}), *group);
#endif
  nn::GradScalerOptions scaling;
  scaling.enabled = amp == DType::f16;  // bf16 has f32's range: no scaling
  nn::GradScaler scaler(scaling);
  std::mt19937_64 rng(args.seed + 1);
  std::uniform_int_distribution<index_t> train_pos(0, n_train - T - 2), val_pos(n_train, n - T - 2);
  std::vector<index_t> val_starts;
  for (int i = 0; i < 8; ++i) val_starts.push_back(val_pos(rng));

  examples::StepProfile profile(args.get("profile", ""), dev);
  double seconds = 0, last_train = 0, last_val = 0;
  for (int r = 0; r < rounds; ++r) {
    const auto start = std::chrono::steady_clock::now();
    double total = 0;
    for (index_t s = 0; s < steps; ++s) {
      profile.before_step();
      std::vector<index_t> starts;
      for (index_t b = 0; b < batch; ++b) {
        const index_t at = train_pos(rng);  // every rank draws the whole batch: the same stream
        if (b >= part_begin && b < part_end) starts.push_back(at);
      }
      Tensor loss;
      {
        AutocastGuard autocast(amp);  // f32: off
        const Tensor logits = model(one_hot(ids, starts, T, vocab).to(dev));
        loss = cross_entropy(logits.reshape({-1, vocab}), targets(ids, starts, T).to(dev));
      }
      opt.zero_grad();
      scaler.scale(loss).backward();
#ifdef TG_HAVE_DIST
      if (ddp) ddp->synchronize();  // .grad = the ranks' average: the global batch's gradient
#endif
      scaler.unscale(opt);  // the clipping sees the true gradients
      nn::clip_grad_norm(model.parameters(), 1.0);
      scaler.step(opt);     // without scaling: opt.step()
      total += loss.item() * double(part_end - part_begin) / double(batch);  // this rank's share of the batch mean
      profile.after_step();
    }
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    profile.finish();
    NoGradGuard no_grad;
#ifdef TG_HAVE_DIST
    if (group) {  // the ranks' shares summed: the global batches' mean loss
      Tensor t = Tensor::full({1}, total, TensorOptions().with_dtype(DType::f64));
      group->all_reduce(t);
      total = t.item();
    }
#endif
    last_train = total / double(steps);
    last_val = loss_of(model, ids, val_starts, T, dev);
    std::printf("round %d/%d  steps %lld  train loss %.4f  val loss %.4f  (uniform: %.4f)\n", r + 1, rounds,
                static_cast<long long>((r + 1) * steps), last_train, last_val, std::log(double(vocab)));
  }

  // A sample: the text's opening continued, sampling at temperature 0.8.
  NoGradGuard no_grad;
  std::vector<index_t> out(ids.begin(), ids.begin() + std::min<index_t>(T / 2, n));
  std::uniform_real_distribution<double> u(0, 1);
  for (index_t k = 0; k < sample_len; ++k) {
    const index_t len = std::min<index_t>(T, index_t(out.size()));
    const std::vector<index_t> window(out.end() - len, out.end());
    const Tensor logits = model(one_hot(window, {0}, len, vocab).to(dev));
    const Tensor last = softmax(logits.select(0, 0).select(0, len - 1) * (1 / 0.8));
    const std::vector<float> p = last.to_vector<float>();
    double x = u(rng), acc = 0;
    index_t pick = vocab - 1;
    for (index_t c = 0; c < vocab; ++c)
      if ((acc += double(p[std::size_t(c)])) >= x) {
        pick = c;
        break;
      }
    out.push_back(pick);
  }
  std::string sample;
  for (index_t c : out) sample.push_back(alphabet[std::size_t(c)]);
  std::printf("sample:\n%s\n", sample.c_str());
  const double tokens = double(rounds) * double(steps) * double(batch * T);
  examples::Result()
      .add("train_loss", last_train)
      .add("val_loss", last_val)
      .add("steps", double(rounds) * double(steps))
      .add("seconds", seconds)
      .add("tokens_per_s", seconds > 0 ? tokens / seconds : 0)
      .print();
  return 0;
}
