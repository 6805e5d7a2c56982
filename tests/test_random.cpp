// Counter-based random numbers and dropout (kernels/random.hpp): Philox against the
// published known-answer vectors, the distributions' moments, streams that depend only
// on (seed, offset, i), and dropout's mask shared by forward and backward.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tilegrad/cpu/ops.hpp"
#include "tilegrad/kernels/ops.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/random.hpp"

namespace tg {
namespace {

// Random123's kat_vectors for philox4x32_10: (counter, key) -> output.
TEST(Philox, MatchesTheKnownAnswerVectors) {
  EXPECT_EQ(Philox::block(0, 0, 0), (std::array<std::uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(Philox::block(~0ull, ~0ull, ~0ull),
            (std::array<std::uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  // pi's digits: counter (243f6a88 85a308d3 13198a2e 03707344), key (a4093822 299f31d0)
  EXPECT_EQ(Philox::block(0x299f31d0a4093822ull, 0x85a308d3243f6a88ull, 0x0370734413198a2eull),
            (std::array<std::uint32_t, 4>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

const OpTable& table() { return cpu::ops(); }

TEST(Random, UniformHasTheMomentsOfItsRangeAndStaysInIt) {
  const index_t n = 1 << 18;
  std::vector<float> y(n);
  table().f32.random(Random::uniform, n, y.data(), -2.0, 3.0, 42, 0);
  double sum = 0, sq = 0;
  for (float v : y) {
    ASSERT_GE(v, -2.0f);
    ASSERT_LT(v, 3.0f);
    sum += v;
    sq += double(v) * v;
  }
  const double mean = sum / n, var = sq / n - mean * mean;
  // Mean 0.5, variance 25/12; the standard error of the mean is 0.0028, of the variance ~0.005.
  EXPECT_NEAR(mean, 0.5, 0.015);
  EXPECT_NEAR(var, 25.0 / 12.0, 0.03);
}

TEST(Random, NormalHasItsMeanStdAndTails) {
  const index_t n = 1 << 18;
  std::vector<double> y(n);
  table().f64.random(Random::normal, n, y.data(), 1.0, 2.0, 7, 3);
  double sum = 0, sq = 0, beyond2 = 0;
  for (double v : y) {
    ASSERT_TRUE(std::isfinite(v));
    sum += v;
    sq += v * v;
    beyond2 += std::fabs(v - 1.0) > 4.0;
  }
  const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  EXPECT_NEAR(mean, 1.0, 0.02);
  EXPECT_NEAR(sd, 2.0, 0.02);
  EXPECT_NEAR(beyond2 / n, 0.0455, 0.003);  // P(|z| > 2)
}

TEST(Random, ElementsDependOnlyOnSeedOffsetAndIndex) {
  std::vector<float> all(1000), tail(400), other(1000);
  table().f32.random(Random::uniform, 1000, all.data(), 0, 1, 5, 9);
  // The same elements drawn as a prefix: equal (the tail is a different i range, so it
  // is compared against the reference, which computes element by element).
  std::vector<float> prefix(600);
  table().f32.random(Random::uniform, 600, prefix.data(), 0, 1, 5, 9);
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), all.begin()));
  std::vector<float> ref(1000);
  random_ref<float>(Random::uniform, 1000, ref.data(), 0, 1, 5, 9);
  EXPECT_EQ(all, ref);
  // Another offset or seed is another stream.
  table().f32.random(Random::uniform, 1000, other.data(), 0, 1, 5, 10);
  int same = 0;
  for (int i = 0; i < 1000; ++i) same += other[i] == all[i];
  EXPECT_LT(same, 5);
}

TEST(Dropout, KeepsAboutOneMinusPScaledAndBackwardUsesTheSameMask) {
  const index_t n = 1 << 16;
  const double p = 0.3;
  std::vector<float> x(n, 1.0f), y(n), dy(n, 2.0f), dx(n);
  table().f32.dropout(n, x.data(), y.data(), p, 11, 4);
  table().f32.dropout(n, dy.data(), dx.data(), p, 11, 4);
  index_t kept = 0;
  for (index_t i = 0; i < n; ++i) {
    ASSERT_TRUE(y[i] == 0.0f || std::fabs(y[i] - float(1 / (1 - p))) < 1e-6f) << i;
    ASSERT_EQ(y[i] == 0.0f, dx[i] == 0.0f) << "backward mask differs at " << i;
    kept += y[i] != 0.0f;
  }
  EXPECT_NEAR(double(kept) / n, 1 - p, 0.01);  // standard error 0.0018
  // p = 0 is the identity.
  table().f32.dropout(n, dy.data(), dx.data(), 0.0, 11, 4);
  EXPECT_EQ(dx, dy);
}

TEST(Dropout, ChecksItsProbability) {
  float v = 1;
  EXPECT_THROW(check_dropout("dropout", 1, &v, &v, 1.0, 4), Error);
  EXPECT_THROW(check_dropout("dropout", 1, &v, &v, -0.1, 4), Error);
  EXPECT_NO_THROW(check_dropout("dropout", 1, &v, &v, 0.5, 4));
}

}  // namespace
}  // namespace tg
