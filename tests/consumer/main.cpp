// Trains a linear regression with tilegrad, built outside its tree (tests/consumer.sh):
// minibatch SGD through autograd on a synthetic problem, then checks that the fit
// explains the data (R^2 near the noise's bound) and that the headers and the library
// are of one version. Exit 0 on success, 1 with a message otherwise.
#include <cstdio>
#include <cstring>
#include <exception>

#include <tilegrad/nn/nn.hpp>
#include <tilegrad/version.hpp>

int main() try {
  using namespace tg;
  const nn::Regression problem = nn::make_regression(2000, 8, 1.0, 7);
  Generator gen(7);
  nn::Linear model(8, 1, true, {}, &gen);
  nn::SGD sgd(model.parameters(), 0.01);
  nn::DataLoader loader(problem.data, 32, true, 7);
  for (int epoch = 0; epoch < 20; ++epoch)
    for (const nn::Batch& b : loader) {
      const Tensor loss = mse_loss(model(b.x), b.y);
      sgd.zero_grad();
      loss.backward();
      sgd.step();
    }
  NoGradGuard no_grad;
  const double r2 = nn::r2_score(model(problem.data.x()), problem.data.y());
  std::printf("tilegrad %s: linear regression, 2000 samples, 8 features, R^2 %.6f\n", version(), r2);
  if (std::strcmp(version(), TILEGRAD_VERSION_STRING) != 0) {
    std::fprintf(stderr, "headers of tilegrad %s, library of %s\n", TILEGRAD_VERSION_STRING, version());
    return 1;
  }
  if (!(r2 > 0.99)) {
    std::fprintf(stderr, "the model did not fit: R^2 %.6f (expected > 0.99)\n", r2);
    return 1;
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "consumer: %s\n", e.what());
  return 1;
}
