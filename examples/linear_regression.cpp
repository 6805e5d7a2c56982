// Linear regression, twice.
//
// 1. The four-point set x = 1, 2, 3, 4, y = 2, 4, 6, 8, fitted by batch gradient descent
//    on h(x) = t0 + t1 x with the cost J = (1 / 2m) sum (h(x) - y)^2, learning rate 0.1,
//    from t = (0, 0); checked against the normal equations (the exact least-squares
//    answer, t0 = 0, t1 = 2), then h(5) predicted.
// 2. A synthetic problem (make_regression: n samples, d features, Gaussian noise sigma)
//    fitted with minibatch SGD through autograd, train/test MSE and R^2 beside the
//    closed-form solution on the same split.
//
//   build/examples/linear_regression [--epochs N] [--seed N] [--samples N --features D --noise S] [--profile FILE]
// Ends with `result t0=... t1=... h5=... test_r2=... closed_test_r2=...`.
#include <cmath>
#include <cstdio>
#include <vector>

#include "examples/common.hpp"
#include "examples/profile.hpp"
#include "tilegrad/nn/nn.hpp"

using namespace tg;

namespace {

// Least squares by the normal equations, in double: solves (A^T A) w = A^T y with a
// Cholesky factorization; A gets a column of ones for the intercept (w[0]).
std::vector<double> least_squares(const Tensor& x, const Tensor& y) {
  const index_t n = x.size(0), d = x.size(1) + 1;
  const std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
  std::vector<double> ata(std::size_t(d * d), 0.0), aty(std::size_t(d), 0.0);
  for (index_t i = 0; i < n; ++i)
    for (index_t a = 0; a < d; ++a) {
      const double va = a == 0 ? 1.0 : xv[std::size_t(i * (d - 1) + a - 1)];
      aty[std::size_t(a)] += va * yv[std::size_t(i)];
      for (index_t b = 0; b < d; ++b) {
        const double vb = b == 0 ? 1.0 : xv[std::size_t(i * (d - 1) + b - 1)];
        ata[std::size_t(a * d + b)] += va * vb;
      }
    }
  std::vector<double> l(std::size_t(d * d), 0.0);  // A^T A = L L^T
  for (index_t i = 0; i < d; ++i)
    for (index_t j = 0; j <= i; ++j) {
      double s = ata[std::size_t(i * d + j)];
      for (index_t k = 0; k < j; ++k) s -= l[std::size_t(i * d + k)] * l[std::size_t(j * d + k)];
      l[std::size_t(i * d + j)] = i == j ? std::sqrt(s) : s / l[std::size_t(j * d + j)];
    }
  std::vector<double> z(static_cast<std::size_t>(d)), w(static_cast<std::size_t>(d));
  for (index_t i = 0; i < d; ++i) {
    double s = aty[std::size_t(i)];
    for (index_t k = 0; k < i; ++k) s -= l[std::size_t(i * d + k)] * z[std::size_t(k)];
    z[std::size_t(i)] = s / l[std::size_t(i * d + i)];
  }
  for (index_t i = d - 1; i >= 0; --i) {
    double s = z[std::size_t(i)];
    for (index_t k = i + 1; k < d; ++k) s -= l[std::size_t(k * d + i)] * w[std::size_t(k)];
    w[std::size_t(i)] = s / l[std::size_t(i * d + i)];
  }
  return w;
}

Tensor predict(const Tensor& x, const std::vector<double>& w) {
  std::vector<double> coef(w.begin() + 1, w.end());
  return matmul(x.to(DType::f64), Tensor::from_vector(coef, {index_t(coef.size())})) + w[0];
}

}  // namespace

int main(int argc, char** argv) {
  const examples::Args args =
      examples::parse_args(argc, argv, " [--samples N] [--features D] [--noise S] [--profile FILE]",
                           {"samples=", "features=", "noise=", "profile="});
  examples::Result result;

  // ---- 1. four points, batch gradient descent ----
  const Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {4});
  const Tensor y = Tensor::from_vector(std::vector<double>{2, 4, 6, 8}, {4});
  Tensor t0 = Tensor::zeros({}, TensorOptions().with_dtype(DType::f64).with_requires_grad());
  Tensor t1 = Tensor::zeros({}, TensorOptions().with_dtype(DType::f64).with_requires_grad());
  nn::SGD gd({t0, t1}, 0.1);
  const int iterations = args.epochs > 0 ? args.epochs : 1500;
  std::printf("four points: batch gradient descent, lr 0.1, %d iterations\n", iterations);
  double cost = 0;
  for (int it = 0; it <= iterations; ++it) {
    const Tensor h = t0 + t1 * x;
    const Tensor J = mean((h - y) * (h - y)) * 0.5;  // (1 / 2m) sum (h - y)^2
    cost = J.item();
    if (it == iterations) break;
    if (it < 5 || (it + 1) % (iterations / 10) == 0)
      std::printf("  iteration %5d  t0 = %+.6f  t1 = %+.6f  cost = %.6e\n", it, t0.item(), t1.item(), cost);
    gd.zero_grad();
    J.backward();
    gd.step();
  }
  const std::vector<double> exact = least_squares(x.view({4, 1}), y);
  const double h5 = t0.item() + 5 * t1.item();
  std::printf("gradient descent: t0 = %.6f, t1 = %.6f, cost %.3e; normal equations: t0 = %.6f, t1 = %.6f\n",
              t0.item(), t1.item(), cost, exact[0], exact[1]);
  std::printf("h(5) = %.6f (exact %.6f)\n", h5, exact[0] + 5 * exact[1]);
  result.add("t0", t0.item()).add("t1", t1.item()).add("h5", h5).add("cost", cost);

  // ---- 2. a synthetic problem, minibatch SGD through autograd ----
  const index_t n = args.count("samples", 1000, 1, index_t(1) << 24), d = args.count("features", 10, 1, 1 << 16);
  const double noise = args.number("noise", 10);
  const nn::Regression problem = nn::make_regression(n, d, noise, args.seed);
  const std::vector<nn::TensorDataset> parts = nn::split(problem.data, {0.8, 0.2}, args.seed);
  const nn::TensorDataset &train = parts[0], &test = parts[1];
  Generator gen(args.seed);
  nn::Linear model(d, 1, true, {}, &gen);
  nn::SGD sgd(model.parameters(), 0.01);
  nn::DataLoader loader(train, 32, true, args.seed);
  const int epochs = 50;
  std::printf("\nsynthetic: %lld samples, %lld features, noise %.3g; linear model, SGD lr 0.01, batch 32, %d epochs\n",
              static_cast<long long>(n), static_cast<long long>(d), noise, epochs);
  examples::StepProfile profile(args.get("profile", ""), args.device);
  for (int e = 0; e < epochs; ++e) {
    double total = 0;
    for (const nn::Batch& b : loader) {
      profile.before_step();
      const Tensor loss = mse_loss(model(b.x), b.y);
      sgd.zero_grad();
      loss.backward();
      sgd.step();
      total += loss.item() * double(b.size);
      profile.after_step();
    }
    if ((e + 1) % 10 == 0 || e == 0) std::printf("  epoch %3d  train mse %.4f\n", e + 1, total / double(train.size()));
  }
  profile.finish();
  NoGradGuard no_grad;
  const Tensor pred_train = model(train.x()), pred_test = model(test.x());
  const std::vector<double> w = least_squares(train.x(), train.y());
  const Tensor closed_train = predict(train.x(), w).view({-1, 1}), closed_test = predict(test.x(), w).view({-1, 1});
  const Tensor ytr = train.y().to(DType::f64), yte = test.y().to(DType::f64);
  std::printf("            train mse  test mse   train R^2  test R^2\n");
  std::printf("SGD         %9.3f  %9.3f  %9.6f  %9.6f\n", nn::mse(pred_train, train.y()), nn::mse(pred_test, test.y()),
              nn::r2_score(pred_train, train.y()), nn::r2_score(pred_test, test.y()));
  std::printf("closed form %9.3f  %9.3f  %9.6f  %9.6f\n", nn::mse(closed_train, ytr), nn::mse(closed_test, yte),
              nn::r2_score(closed_train, ytr), nn::r2_score(closed_test, yte));
  result.add("test_mse", nn::mse(pred_test, test.y()))
      .add("test_r2", nn::r2_score(pred_test, test.y()))
      .add("closed_test_mse", nn::mse(closed_test, yte))
      .add("closed_test_r2", nn::r2_score(closed_test, yte));
  result.print();
  return 0;
}
