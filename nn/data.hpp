// Data: a dataset of (features, targets) tensors, a loader that assembles contiguous
// batches (one allocation and one row copy per sample, no per-sample tensors), seeded
// shuffling, splits, scalers fitted on training data, and a progress bar.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tilegrad/autograd/autograd.hpp"

namespace tg::nn {

// Rows of x (N, ...) and y (N, ...) on the CPU; y may be f32/f64 or i64 class indices.
class TensorDataset {
 public:
  TensorDataset() = default;
  TensorDataset(Tensor x, Tensor y);
  index_t size() const { return x_.defined() ? x_.size(0) : 0; }
  const Tensor& x() const { return x_; }
  const Tensor& y() const { return y_; }
  // The rows at `rows`, in that order, as a new contiguous dataset.
  TensorDataset subset(const std::vector<index_t>& rows) const;

 private:
  Tensor x_, y_;
};

struct Batch {
  Tensor x, y;
  index_t size = 0;
};

// Batches of a dataset. With shuffle, epoch e visits the rows in a permutation drawn
// from (seed, e) alone, so a run resumed at epoch e sees what it would have seen.
class DataLoader {
 public:
  DataLoader(const TensorDataset& data, index_t batch_size, bool shuffle = false, std::uint64_t seed = 0,
             bool drop_last = false);
  index_t batches() const;     // per epoch
  // Data-parallel sharding (dist::DataParallel): every rank makes the same loader (same
  // seed: the same permutation each epoch) and takes part `rank` of `ranks` of each global
  // batch, rows [rank g / ranks, (rank + 1) g / ranks) of its g rows, so the ranks' parts
  // are disjoint and together are the batch. Batch::size is then the part's size; a last
  // partial batch splits into parts that differ by at most one row (drop_last avoids it).
  // batch_size must be at least `ranks`.
  void set_shard(int rank, int ranks);
  // Data-parallel sampling (PyTorch's DistributedSampler): every rank makes the same
  // loader (same seed) and takes part `rank` of `ranks` of each epoch's permutation, its
  // elements rank, rank + ranks, rank + 2 ranks, ...; batch_size is then each rank's
  // batch. The ranks' parts are disjoint and of one size, so every rank runs the same
  // number of batches. The remainder n mod ranks: `pad` repeats the permutation's first
  // elements until every rank has ceil(n / ranks) (those samples are seen twice that
  // epoch), `drop` leaves the permutation's last n mod ranks out (each rank has
  // floor(n / ranks); another epoch, other samples are left out). Not with set_shard.
  enum class Remainder { pad, drop };
  void set_sampler(int rank, int ranks, Remainder remainder = Remainder::pad);
  void set_epoch(index_t epoch);  // the permutation of that epoch (called by begin() with the next one)
  index_t epoch() const { return epoch_; }
  Batch batch(index_t b) const;  // the b-th batch of the current epoch

  class Iterator {
   public:
    Iterator(const DataLoader* l, index_t b) : loader_(l), b_(b) {}
    Batch operator*() const { return loader_->batch(b_); }
    Iterator& operator++() { ++b_; return *this; }
    bool operator!=(const Iterator& o) const { return b_ != o.b_; }

   private:
    const DataLoader* loader_;
    index_t b_;
  };
  // Each begin() starts the next epoch (the first is epoch 0).
  Iterator begin();
  Iterator end() const { return {this, batches()}; }

 private:
  const TensorDataset& data_;
  index_t batch_size_;
  bool shuffle_, drop_last_;
  std::uint64_t seed_;
  index_t epoch_ = -1;
  int rank_ = 0, ranks_ = 1;  // set_shard's
  int sample_rank_ = 0, sample_ranks_ = 1;  // set_sampler's
  Remainder remainder_ = Remainder::pad;
  std::vector<index_t> order_;  // the epoch's rows for this loader (its part, with set_sampler)
};

// A synthetic linear regression problem, as scikit-learn's make_regression: X (n, d)
// standard normal, the first `informative` coefficients 100 U(0, 1) (the rest 0),
// y = X coef + bias + noise N(0, 1), all from `seed`. y is (n, 1).
struct Regression {
  TensorDataset data;
  Tensor coef;  // (d)
  double bias = 0;
};
Regression make_regression(index_t n, index_t d, double noise, std::uint64_t seed, index_t informative = -1,
                           double bias = 0.0, DType dtype = DType::f32);

// A permutation of [0, n) from (seed, stream): Fisher-Yates on Philox draws.
std::vector<index_t> permutation(index_t n, std::uint64_t seed, std::uint64_t stream = 0);

// Splits into len(fractions) parts of the given fractions (the last takes the rest),
// after a seeded shuffle.
std::vector<TensorDataset> split(const TensorDataset& data, const std::vector<double>& fractions, std::uint64_t seed);

// Per column of an (N, F) tensor: (x - mean) / std (population std; a constant column
// keeps std 1), and (x - min) / (max - min) (constant: range 1). Fit on the training
// data, then transform the others.
class StandardScaler {
 public:
  StandardScaler& fit(const Tensor& x);
  Tensor transform(const Tensor& x) const;
  Tensor inverse_transform(const Tensor& x) const;
  Tensor mean, scale;
};
class MinMaxScaler {
 public:
  MinMaxScaler& fit(const Tensor& x);
  Tensor transform(const Tensor& x) const;
  Tensor inverse_transform(const Tensor& x) const;
  Tensor min, range;
};

// One line that redraws itself: label [#####.....] done/total, rate, ETA, and a caller
// message. Quiet (draws nothing) when `out` is not a terminal, so logs stay clean.
class ProgressBar {
 public:
  ProgressBar(std::string label, index_t total, std::FILE* out = stderr);
  void update(index_t done, const std::string& message = "");
  void finish(const std::string& message = "");  // the final line, kept on screen
  bool active() const { return tty_; }

 private:
  void draw(index_t done, const std::string& message, bool final_line);
  std::string label_;
  index_t total_;
  std::FILE* out_;
  bool tty_;
  double start_;
};

}  // namespace tg::nn
