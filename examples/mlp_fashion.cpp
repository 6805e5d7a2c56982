// Fashion-MNIST with an MLP 784 -> 256 -> 256 -> 10 (ReLU), cross-entropy, AdamW and a
// cosine learning-rate schedule after a linear warmup, inputs scaled to [0, 1], from
// Debian's dataset-fashion-mnist package. Prints a progress bar per epoch with
// samples/s, the test accuracy after each epoch, then macro precision/recall/F1 and
// the confusion matrix; saves a safetensors checkpoint after every epoch and resumes
// from one with --resume.
//
//   build/examples/mlp_fashion                     # the full recipe (15 epochs)
//   build/examples/mlp_fashion --quick             # 2 epochs (scripts/run)
//   build/examples/mlp_fashion --out DIR           # DIR/checkpoint.safetensors each epoch
//   build/examples/mlp_fashion --resume DIR/checkpoint.safetensors
//   OMP_NUM_THREADS=1 mpirun -np 2 build/examples/mlp_fashion --dist   # two ranks
//   OMP_NUM_THREADS=1 mpirun -np 2 build/examples/mlp_fashion --dist --shard-optimizer
// Options: --data DIR (the four IDX files), --batch 128, --lr 1e-3, --limit N (first N
// training images, for tests), --stop-after N (stop after epoch N as if interrupted; the
// schedule still spans --epochs), --target ACC (stop after the first epoch whose test
// accuracy reaches ACC; the schedule still spans --epochs: time-to-accuracy runs), --amp
// bf16|f16 (mixed precision: the Linear layers multiply under AutocastGuard, f32 master
// weights; f16 with nn::GradScaler's loss scaling), --cuda-graph (with --device cuda: the
// training step, forward, backward and AdamW, captured once in a CUDA graph and replayed
// for every full batch, the schedule's rate and AdamW's step count read on the device;
// not with --amp f16, whose scaler decides on the host whether to skip a step), --profile
// FILE (steps 6-25 of the first epoch recorded by tg::Profiler: FILE a Chrome trace, its
// .csv the tables, which are also printed; examples/profile.hpp), --dist (a rank of an
// mpirun job, in builds with MPI: dist::DataParallel, each rank 1/N of every batch of
// --batch, so the run is the single process's with the gradient summed in another order;
// rank 0 prints and checkpoints, every rank resumes), --shard-optimizer (with --dist:
// AdamW's state sharded across the ranks, dist::ShardedOptimizer, in place of
// DataParallel: the same updates, 1/N of the state a rank). Ends with
// `result test_accuracy=... macro_f1=... epochs=... seconds=... samples_per_s=... seconds_to_88=...`.
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "tilegrad/cuda/runtime.hpp"
#include "examples/common.hpp"
#include "examples/dist.hpp"
#include "examples/profile.hpp"
#include "tilegrad/nn/nn.hpp"
#ifdef TG_HAVE_DIST
#include "tilegrad/dist/checkpoint.hpp"
#include "tilegrad/dist/data_parallel.hpp"
#include "tilegrad/dist/sharded_optimizer.hpp"
#endif

using namespace tg;

namespace {

const std::vector<std::string> kClasses = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                                           "Sandal",  "Shirt",   "Sneaker",  "Bag",   "Boot"};

struct Mlp : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2, fc3;
  explicit Mlp(Generator* g) {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(784, 256, true, Activation{Act::relu}, g));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(256, 256, true, Activation{Act::relu}, g));
    fc3 = register_module("fc3", std::make_shared<nn::Linear>(256, 10, true, Activation{}, g));
  }
  Tensor forward(const Tensor& x) override { return (*fc3)((*fc2)((*fc1)(x))); }
  std::string type_name() const override { return "Mlp"; }
};

// Predicted classes of `x`, in batches (no graph).
std::vector<index_t> predict(Mlp& model, const Tensor& x) {
  NoGradGuard no_grad;
  std::vector<index_t> out;
  for (index_t b = 0; b < x.size(0); b += 1000) {
    const std::vector<index_t> p = nn::argmax_rows(model(x.slice(0, b, b + 1000).to(model.fc1->weight.device())));
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const examples::Args args = examples::parse_args(
      argc, argv,
      " [--quick] [--resume FILE] [--data DIR] [--batch N] [--lr X] [--limit N] [--stop-after N] [--target ACC] "
      "[--amp bf16|f16] [--cuda-graph] [--profile FILE] [--dist [--shard-optimizer]]",
      {"quick", "resume=", "data=", "batch=", "lr=", "limit=", "stop-after=", "target=", "amp=", "cuda-graph", "profile=",
       "dist", "shard-optimizer"},
      /*devices=*/true);
  const DType amp = args.amp();
  const bool graphed = args.has("cuda-graph");
  if (graphed && (args.device.is_cpu() || amp == DType::f16)) {
    std::fprintf(stderr, "mlp_fashion: --cuda-graph needs --device cuda%s\n",
                 amp == DType::f16 ? " and no --amp f16 (its loss scaler decides on the host whether to skip a step)"
                                   : "");
    return 2;
  }
  // --dist: one rank of an `mpirun -np N` job (dist::DataParallel): each rank trains on
  // its part of every global batch of --batch; only rank 0 prints and writes checkpoints.
  // --shard-optimizer: AdamW's state sharded across the ranks (dist::ShardedOptimizer,
  // ZeRO stage 1) in place of DataParallel's all-reduce.
  const bool distributed = args.has("dist"), sharded = args.has("shard-optimizer");
  if (sharded && !distributed) {
    std::fprintf(stderr, "mlp_fashion: --shard-optimizer needs --dist\n");
    return 2;
  }
  examples::DistJob job;
  if (distributed) {
    if (!args.device.is_cpu() || amp == DType::f16 || graphed) {
      std::fprintf(stderr, "mlp_fashion: --dist trains on the CPU, without --amp f16 and --cuda-graph\n");
      return 2;
    }
    if (const int status = examples::join_dist("mlp_fashion", job)) return status;
  }
  const int rank = job.rank, ranks = job.ranks;
#ifdef TG_HAVE_DIST
  dist::ProcessGroup* group = job.group.get();
#endif
  const int epochs = args.epochs > 0 ? args.epochs : args.has("quick") ? 2 : 15;
  const index_t batch = args.count("batch", 128, 1, index_t(1) << 20);
  const double lr = args.number("lr", 1e-3);
  const double target = args.number("target", 2);  // above 1: never stops early

  nn::FashionMnist data = nn::load_fashion_mnist(args.get("data", nn::kFashionMnistDir));
  if (args.has("limit")) {
    const index_t n = std::min<index_t>(args.count("limit", 0, 0, index_t(1) << 40), data.train_x.size(0));
    data.train_x = data.train_x.slice(0, 0, n).contiguous();
    data.train_y = data.train_y.slice(0, 0, n).contiguous();
  }
  const nn::TensorDataset train(data.train_x, data.train_y);
  std::vector<index_t> truth;
  for (std::int64_t v : data.test_y.to_vector<std::int64_t>()) truth.push_back(index_t(v));
  std::printf("mlp_fashion: %lld training and %lld test images, MLP 784-256-256-10, AdamW lr %g, batch %lld, %d epochs, "
              "%d threads, %s%s, %s",
              static_cast<long long>(train.size()), static_cast<long long>(truth.size()), lr,
              static_cast<long long>(batch), epochs, cpu::num_threads(), args.device.str().c_str(),
              graphed ? " (CUDA graph)" : "", examples::Args::amp_name(amp));
  if (distributed) std::printf(", %d ranks (%lld rows of each batch a rank)", ranks, static_cast<long long>(batch / ranks));
  std::printf("\n");

  Generator gen(args.seed);
  Mlp model(&gen);
  model.to(args.device);  // the parameters (and so the optimizer's state) live on --device
  auto adamw = [&](std::vector<Tensor> params) {
    return std::make_unique<nn::AdamW>(std::move(params), lr, 0.9, 0.999, 1e-8, 1e-4);
  };
  std::unique_ptr<nn::Optimizer> optimizer;
#ifdef TG_HAVE_DIST
  if (sharded) optimizer = std::make_unique<dist::ShardedOptimizer>(model.parameters(), *group, adamw);
#endif
  if (!optimizer) optimizer = adamw(model.parameters());
  nn::Optimizer& opt = *optimizer;
  nn::GradScalerOptions scaling;
  scaling.enabled = amp == DType::f16;  // bf16 has f32's range: no scaling
  nn::GradScaler scaler(scaling);
  nn::DataLoader loader(train, batch, true, args.seed);
  if (distributed) loader.set_shard(rank, ranks);
  const index_t steps_per_epoch = loader.batches();
  const index_t warmup = std::min<index_t>(steps_per_epoch, 500);  // the schedule counts steps
  nn::LinearWarmup sched(opt, warmup, 0.1,
                         std::make_unique<nn::CosineAnnealingLR>(opt, std::max<index_t>(1, epochs * steps_per_epoch - warmup)));
  int first_epoch = 0, last_epoch = 0;
  if (args.has("resume")) {
    const auto extra = nn::load_checkpoint(args.get("resume", ""), {&model, &opt, &sched, &gen});
    first_epoch = int(extra.at("epoch"));
    std::printf("resumed from %s after epoch %d\n", args.get("resume", "").c_str(), first_epoch);
  }

#ifdef TG_HAVE_DIST
  // The model stays on this stack; DataParallel holds it by a handle that does not own it.
  std::unique_ptr<dist::DataParallel> ddp;
  if (distributed && !sharded)
    ddp = std::make_unique<dist::DataParallel>(std::shared_ptr<nn::Module>(&model, [](nn::Module*) {}), *group);
#endif
  // One training step on (x, y), on the device.
  auto train_step = [&](const Tensor& x, const Tensor& y) {
    Tensor loss;
    {
      AutocastGuard autocast(amp);  // f32: off
      loss = cross_entropy(model(x), y);
    }
    opt.zero_grad();
    scaler.scale(loss).backward();
#ifdef TG_HAVE_DIST
    if (ddp) ddp->synchronize();  // .grad = the ranks' average: the global batch's gradient
#endif
    scaler.step(opt);  // without scaling: opt.step()
    return loss;
  };
  // --cuda-graph: the step on a stream of its own, captured once the optimizer has its
  // state (after an eager step, which on a device also makes its live scalars), replayed
  // on each full batch after the batch is copied into the graph's inputs (gx, gy); its
  // loss (gloss) is rewritten by every replay. A last partial batch runs eagerly.
  std::unique_ptr<cuda::Stream> stream;
  std::unique_ptr<cuda::StreamGuard> on_stream;
  std::unique_ptr<cuda::Graph> graph;
  Tensor gx, gy, gloss;
  if (graphed) {
    stream = std::make_unique<cuda::Stream>(args.device.index);
    on_stream = std::make_unique<cuda::StreamGuard>(*stream);
    graph = std::make_unique<cuda::Graph>(*stream);
  }

  examples::StepProfile profile(args.get("profile", ""), args.device);
  double train_seconds = 0, seconds_to_88 = -1;
  nn::ClassReport report;
  const int stop = std::min(epochs, int(args.count("stop-after", epochs, 1, 1000000)));
  for (int e = first_epoch; e < stop; ++e) {
    last_epoch = e + 1;
    loader.set_epoch(e);
    nn::ProgressBar bar("epoch " + std::to_string(e + 1) + "/" + std::to_string(epochs), loader.batches());
    const auto start = std::chrono::steady_clock::now();
    // The epoch's loss is summed where the model runs and read once at the end (on a GPU
    // reading it every step would wait for every step).
    Tensor total = Tensor::zeros({}, TensorOptions().with_device(args.device));
    for (index_t k = 0; k < loader.batches(); ++k) {
      profile.before_step();
      const nn::Batch b = loader.batch(k);
      Tensor loss;
      if (graphed && opt.live_scalars() && b.size == batch) {
        if (!graph->captured()) {
          gx = b.x.to(args.device), gy = b.y.to(args.device);
          graph->capture([&] { gloss = train_step(gx, gy); });  // records; the replay below runs it
        } else {
          gx.copy_(b.x), gy.copy_(b.y);
        }
        graph->replay();
        loss = gloss;
      } else {
        loss = train_step(b.x.to(args.device), b.y.to(args.device));
      }
      sched.step();  // between replays: the graph's AdamW reads the rate on the device
      total.add_(loss.detach(), double(b.size));
      profile.after_step();
      if (k % 20 == 0 && bar.active()) bar.update(k, "loss " + std::to_string(loss.item()).substr(0, 6));
    }
#ifdef TG_HAVE_DIST
    if (group) group->all_reduce(total);  // the epoch's loss over every rank's rows
#endif
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    train_seconds += secs;
    profile.finish();  // reports once the recorded steps are done (or the epoch ends first)
    report = nn::classification_report(truth, predict(model, data.test_x), 10);
    if (seconds_to_88 < 0 && report.accuracy >= 0.88) seconds_to_88 = train_seconds;
    char msg[160];
    std::snprintf(msg, sizeof msg, "loss %.6f  test accuracy %.4f  %.0f samples/s", total.item() / double(train.size()),
                  report.accuracy, double(train.size()) / secs);
    bar.finish(msg);
    if (!bar.active()) std::printf("epoch %d/%d  %s  %.1f s\n", e + 1, epochs, msg, secs);
    if (!args.out.empty()) {
      const std::string path = args.out + "/checkpoint.safetensors";
      const std::map<std::string, double> extra = {{"epoch", double(e + 1)}};
#ifdef TG_HAVE_DIST
      if (group) {
        dist::save_checkpoint(*group, path, {&model, &opt, &sched, &gen}, extra);  // rank 0 writes, all wait
      } else
#endif
        nn::save_checkpoint(path, {&model, &opt, &sched, &gen}, extra);
    }
    if (report.accuracy >= target) break;
  }
  if (first_epoch >= stop) report = nn::classification_report(truth, predict(model, data.test_x), 10);
  std::printf("test accuracy %.4f, macro precision %.4f, recall %.4f, F1 %.4f\n", report.accuracy,
              report.macro_precision, report.macro_recall, report.macro_f1);
  std::printf("%s", report.confusion.str(kClasses).c_str());
  const double trained = double(train.size()) * double(std::max(0, last_epoch - first_epoch));
  examples::Result()
      .add("test_accuracy", report.accuracy)
      .add("macro_f1", report.macro_f1)
      .add("epochs", double(std::max(first_epoch, last_epoch)))
      .add("seconds", train_seconds)
      .add("samples_per_s", train_seconds > 0 ? trained / train_seconds : 0)
      .add("seconds_to_88", seconds_to_88)
      .add("skipped_steps", double(scaler.skipped_steps()))
      .add("ranks", double(ranks))
      .print();
  return 0;
}
