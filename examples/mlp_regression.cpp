// The classic Keras quick-start regression, rebuilt: 100 samples of one feature with
// noise 10 (make_regression), an 80/20 train/test split, 10% of the training data held
// out for validation; Dense(10, ReLU) -> Dense(1), Adam (lr 1e-3), MSE, 100 epochs of
// batch 10. Prints the loss and validation loss per epoch and the test MSE; with --out,
// writes predictions.csv (test points and the fitted curve) and losses.csv, which
// scripts/plot-mlp-regression draws as a PNG.
//
//   build/examples/mlp_regression [--epochs 100] [--seed 0] [--lr 0.001] [--out DIR] [--profile FILE]
// The recipe's learning rate underfits targets of this size in 100 epochs (as it does
// in Keras); --lr 0.05 fits them.
// Ends with `result test_mse=... val_loss=... epochs=... seconds=...`.
#include <chrono>
#include <cstdio>

#include "examples/common.hpp"
#include "examples/profile.hpp"
#include "tilegrad/nn/nn.hpp"

using namespace tg;

int main(int argc, char** argv) {
  const examples::Args args = examples::parse_args(argc, argv, " [--lr 0.001] [--profile FILE]", {"lr=", "profile="});
  const double lr = args.number("lr", 0.001);
  const int epochs = args.epochs > 0 ? args.epochs : 100;
  const nn::Regression problem = nn::make_regression(100, 1, 10.0, args.seed);
  const std::vector<nn::TensorDataset> tt = nn::split(problem.data, {0.8, 0.2}, args.seed);
  const std::vector<nn::TensorDataset> tv = nn::split(tt[0], {0.9, 0.1}, args.seed + 1);
  const nn::TensorDataset &train = tv[0], &val = tv[1], &test = tt[1];
  std::printf("mlp_regression: %lld train, %lld validation, %lld test samples; Dense(10, relu) -> Dense(1), Adam\n",
              static_cast<long long>(train.size()), static_cast<long long>(val.size()),
              static_cast<long long>(test.size()));

  Generator gen(args.seed);
  nn::Sequential model;
  model.add(std::make_shared<nn::Linear>(1, 10, true, Activation{Act::relu}, &gen))
      .add(std::make_shared<nn::Linear>(10, 1, true, Activation{}, &gen));
  nn::Adam opt(model.parameters(), lr);
  nn::DataLoader loader(train, 10, true, args.seed);
  std::vector<std::vector<double>> losses;
  const auto start = std::chrono::steady_clock::now();
  double val_loss = 0;
  examples::StepProfile profile(args.get("profile", ""), args.device);
  for (int e = 1; e <= epochs; ++e) {
    double total = 0;
    for (const nn::Batch& b : loader) {
      profile.before_step();
      const Tensor loss = mse_loss(model(b.x), b.y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      total += loss.item() * double(b.size);
      profile.after_step();
    }
    {
      NoGradGuard no_grad;
      val_loss = mse_loss(model(val.x()), val.y()).item();
    }
    const double train_loss = total / double(train.size());
    losses.push_back({double(e), train_loss, val_loss});
    std::printf("epoch %3d/%d  loss %.4f  val_loss %.4f\n", e, epochs, train_loss, val_loss);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  profile.finish();
  NoGradGuard no_grad;
  const Tensor pred = model(test.x());
  const double test_mse = nn::mse(pred, test.y());
  std::printf("test mse %.4f (R^2 %.4f)\n", test_mse, nn::r2_score(pred, test.y()));
  if (!args.out.empty()) {
    std::vector<std::vector<double>> rows;
    const std::vector<double> tx = test.x().to_vector<double>(), ty = test.y().to_vector<double>(),
                              tp = pred.to_vector<double>();
    for (std::size_t i = 0; i < tx.size(); ++i) rows.push_back({tx[i], ty[i], tp[i], 1});
    const Tensor grid = Tensor::arange(-3.5, 3.5, 0.05).view({-1, 1});  // the fitted curve
    const std::vector<double> gx = grid.to_vector<double>(), gp = model(grid).to_vector<double>();
    for (std::size_t i = 0; i < gx.size(); ++i) rows.push_back({gx[i], 0, gp[i], 0});
    examples::write_csv(args.out + "/predictions.csv", {"x", "y", "prediction", "is_test_point"}, rows);
    examples::write_csv(args.out + "/losses.csv", {"epoch", "loss", "val_loss"}, losses);
    std::printf("wrote %s/predictions.csv and %s/losses.csv (scripts/plot-mlp-regression %s draws them)\n",
                args.out.c_str(), args.out.c_str(), args.out.c_str());
  }
  examples::Result()
      .add("test_mse", test_mse)
      .add("val_loss", val_loss)
      .add("epochs", double(epochs))
      .add("seconds", seconds)
      .print();
  return 0;
}
