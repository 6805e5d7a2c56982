// Tensor: factories, views without copies, contiguous(), printing, in-place writes and
// the version counter, devices and dtypes at the API boundary.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "tilegrad/autograd/autograd.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg {
namespace {

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

TEST(Tensor, FactoriesFillWhatTheySay) {
  EXPECT_EQ(values(Tensor::zeros({2, 3})), std::vector<float>(6, 0.0f));
  EXPECT_EQ(values(Tensor::ones({4})), std::vector<float>(4, 1.0f));
  EXPECT_EQ(values(Tensor::full({2, 2}, 2.5)), std::vector<float>(4, 2.5f));
  EXPECT_EQ(values(Tensor::arange(0, 5)), (std::vector<float>{0, 1, 2, 3, 4}));
  EXPECT_EQ(values(Tensor::arange(1, 2, 0.25)), (std::vector<float>{1, 1.25f, 1.5f, 1.75f}));
  const Tensor v = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(v.dtype(), DType::f64);
  EXPECT_EQ(v.to_vector<double>(), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  EXPECT_THROW(Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}), Error);
  const Tensor s = Tensor::full({}, 3.0);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item(), 3.0);
  EXPECT_THROW(Tensor::ones({2}).item(), Error);
}

TEST(Tensor, RandomFactoriesAreReproducibleFromTheirGenerator) {
  Generator a(17), b(17);
  const Tensor x = Tensor::rand({1000}, {}, &a), y = Tensor::rand({1000}, {}, &b);
  EXPECT_EQ(values(x), values(y));
  const Tensor z = Tensor::rand({1000}, {}, &a);  // the next draw differs
  EXPECT_NE(values(x), values(z));
  const std::vector<float> n = values(Tensor::randn({20000}, {}, &a));
  double m = 0, s = 0;
  for (float v : n) m += v, s += double(v) * v;
  m /= double(n.size());
  EXPECT_NEAR(m, 0.0, 0.03);
  EXPECT_NEAR(std::sqrt(s / double(n.size()) - m * m), 1.0, 0.03);
  manual_seed(5);
  const Tensor g1 = Tensor::rand({8});
  manual_seed(5);
  EXPECT_EQ(values(Tensor::rand({8})), values(g1));
}

TEST(Tensor, ViewsShareStorageAndKnowTheirLayout) {
  const Tensor x = Tensor::arange(0, 24).reshape({2, 3, 4});
  const Tensor t = x.transpose(0, 2);  // (4, 3, 2)
  EXPECT_EQ(t.storage(), x.storage());
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(std::vector<index_t>(t.sizes().begin(), t.sizes().end()), (std::vector<index_t>{4, 3, 2}));
  // t[i, j, k] = x[k, j, i]
  const std::vector<float> tv = values(t);
  EXPECT_EQ(tv[std::size_t((1 * 3 + 2) * 2 + 1)], 1 * 12 + 2 * 4 + 1);
  const Tensor s = x.slice(2, 1, 4, 2);  // columns 1 and 3
  EXPECT_EQ(values(s), (std::vector<float>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23}));
  EXPECT_EQ(s.storage(), x.storage());
  EXPECT_EQ(values(x.select(1, -1)), (std::vector<float>{8, 9, 10, 11, 20, 21, 22, 23}));
  const Tensor e = Tensor::arange(0, 3).reshape({3, 1}).expand({3, 4});
  EXPECT_EQ(e.strides()[1], 0);
  EXPECT_EQ(values(e), (std::vector<float>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}));
  EXPECT_EQ(x.unsqueeze(1).dim(), 4);
  EXPECT_EQ(x.unsqueeze(1).squeeze().dim(), 3);
  EXPECT_THROW(x.transpose(0, 1).view({6, 4}), Error);  // not contiguous: view refuses,
  const Tensor r = x.transpose(0, 1).reshape({6, 4});   // reshape copies
  EXPECT_NE(r.storage(), x.storage());
  EXPECT_TRUE(r.is_contiguous());
  EXPECT_EQ(x.contiguous().storage(), x.storage());  // already contiguous: no copy
  EXPECT_EQ(x.view({-1, 4}).size(0), 6);
  EXPECT_THROW(x.view({5, -1}), Error);
  EXPECT_THROW(x.expand({2, 3, 5}), Error);
  EXPECT_THROW(x.permute({0, 0, 1}), Error);
}

TEST(Tensor, InPlaceWritesBumpTheVersionAndRespectViews) {
  Tensor x = Tensor::zeros({3, 4});
  const std::uint64_t v0 = x.version();
  x.slice(1, 1, 3).fill_(7);
  EXPECT_GT(x.version(), v0);
  EXPECT_EQ(values(x), (std::vector<float>{0, 7, 7, 0, 0, 7, 7, 0, 0, 7, 7, 0}));
  x.add_(Tensor::ones({4}), 2.0);  // broadcast over rows
  EXPECT_EQ(values(x)[1], 9.0f);
  x.mul_(0.5);
  EXPECT_EQ(values(x)[0], 1.0f);
  x.copy_(Tensor::arange(0, 4));
  EXPECT_EQ(values(x)[7], 3.0f);
  Tensor leaf = Tensor::ones({2}, TensorOptions().with_requires_grad());
  EXPECT_THROW(leaf.zero_(), Error);  // would silently break its gradients
  {
    NoGradGuard no_grad;
    EXPECT_NO_THROW(leaf.zero_());
  }
}

TEST(Tensor, PrintsLikeNumPyWithItsMetadata) {
  const Tensor x = Tensor::arange(0, 6).reshape({2, 3});
  const std::string s = x.str();
  EXPECT_NE(s.find("[[0.0000, 1.0000, 2.0000],"), std::string::npos) << s;
  EXPECT_NE(s.find("shape=(2, 3), dtype=f32, device=cpu"), std::string::npos) << s;
  const std::string big = Tensor::zeros({2000}).str();
  EXPECT_NE(big.find("..."), std::string::npos);
  EXPECT_LT(big.size(), 200u);
  const Tensor y = Tensor::ones({2}, TensorOptions().with_requires_grad()) * 2.0;
  EXPECT_NE(y.str().find("grad_fn=MulScalarBackward"), std::string::npos) << y.str();
  std::ostringstream os;
  os << Tensor::from_vector(std::vector<std::int64_t>{3, 4}, {2});
  EXPECT_NE(os.str().find("[3, 4]"), std::string::npos) << os.str();
}

TEST(Tensor, MixingDtypesOrDevicesIsAClearError) {
  const Tensor a = Tensor::ones({2}), b = Tensor::ones({2}, TensorOptions().with_dtype(DType::f64));
  try {
    (void)(a + b);
    ADD_FAILURE() << "no error for f32 + f64";
  } catch (const Error& e) {
    EXPECT_EQ(e.arg(), "dtype");
    EXPECT_NE(std::string(e.what()).find("add"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)(Tensor::ones({2}) + Tensor::ones({3})), Error);  // shapes do not broadcast
  EXPECT_THROW(Tensor().numel(), Error);
  if (cuda::device_count() == 0) {
    EXPECT_THROW(Tensor::ones({2}, TensorOptions().with_device(Device::cuda())), Error);
  }
}

TEST(Tensor, ConvertsBetweenDtypes) {
  const Tensor x = Tensor::arange(0, 4).to(DType::f64);
  EXPECT_EQ(x.dtype(), DType::f64);
  EXPECT_EQ(x.to(DType::i64).to_vector<std::int64_t>(), (std::vector<std::int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(x.to(DType::f32).to_vector<float>(), (std::vector<float>{0, 1, 2, 3}));
}

}  // namespace
}  // namespace tg
