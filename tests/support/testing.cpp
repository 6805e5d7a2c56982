#include "tests/support/testing.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string_view>

#include "tilegrad/kernels/half.hpp"

namespace tg::testing {

std::uint64_t base_seed() {
  static const std::uint64_t seed = [] {
    const char* env = std::getenv("TG_TEST_SEED");
    if (env == nullptr || *env == '\0') return std::uint64_t(20261128);
    if (std::string_view(env) == "random")
      return std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    return std::uint64_t(std::strtoull(env, nullptr, 10));
  }();
  return seed;
}

Rng Rng::for_current_test() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "";
  // FNV-1a of the test name, mixed into the base seed.
  std::uint64_t h = 1469598103934665603ull;
  for (char c : name) h = (h ^ std::uint8_t(c)) * 1099511628211ull;
  return Rng(base_seed() ^ h);
}

template <class T>
bool Mat<T>::padding_untouched() const {
  for (std::size_t k = 0; k < data.size(); ++k) {
    const index_t i = index_t(k) / std::max<index_t>(ld, 1);
    const index_t j = index_t(k) - i * ld;
    const bool inside = i < rows && j < cols;
    if (!inside && !std::isnan(data[k])) return false;
  }
  return true;
}
template struct Mat<float>;
template struct Mat<double>;

std::vector<index_t> interesting_sizes() { return {0, 1, 2, 3, 7, 8, 9, 13, 16, 17, 33, 64, 65, 257}; }

std::vector<index_t> mixed_sizes(Rng& rng, int count, index_t max) {
  std::vector<index_t> v;
  for (index_t s : interesting_sizes())
    if (s <= max && int(v.size()) < count) v.push_back(s);
  while (int(v.size()) < count) v.push_back(rng.integer(0, max));
  return v;
}

index_t random_ld(Rng& rng, index_t cols) { return rng.coin() ? cols : cols + rng.integer(1, 17); }

template <class T, class U>
::testing::AssertionResult rel_close(const T* out, index_t out_ld, const U* ref, index_t ref_ld,
                                     index_t rows, index_t cols, double tol, double floor) {
  double num = 0, den = 0, worst = -1;
  index_t wi = 0, wj = 0;
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) {
      const double o = double(out[i * out_ld + j]);
      const double r = double(ref[i * ref_ld + j]);
      if (std::isnan(o) || std::isnan(r))
        return ::testing::AssertionFailure()
               << "NaN at (" << i << ", " << j << "): out = " << o << ", ref = " << r;
      if (std::isinf(r) || std::isinf(o)) {
        if (o != r)
          return ::testing::AssertionFailure()
                 << "infinity mismatch at (" << i << ", " << j << "): out = " << o << ", ref = " << r;
        continue;
      }
      const double d = (o - r) * (o - r);
      num += d;
      den += r * r;
      if (d > worst) {
        worst = d;
        wi = i;
        wj = j;
      }
    }
  const double scale = std::max(std::sqrt(den), floor);
  const double err = scale > 0 ? std::sqrt(num) / scale : std::sqrt(num);
  if (err <= tol) return ::testing::AssertionSuccess() << "relative error " << err;
  std::ostringstream os;
  os.precision(9);
  os << "relative error " << err << " exceeds tolerance " << tol << " over " << rows << "x"
     << cols << " (||ref|| = " << std::sqrt(den) << ", floor " << floor << "); worst at (" << wi << ", " << wj
     << "): out = " << double(out[wi * out_ld + wj]) << ", ref = " << double(ref[wi * ref_ld + wj]);
  return ::testing::AssertionFailure() << os.str();
}

#define TG_INSTANTIATE(T, U)                                                                   \
  template ::testing::AssertionResult rel_close(const T*, index_t, const U*, index_t, index_t,  \
                                                index_t, double, double);
TG_INSTANTIATE(float, float)
TG_INSTANTIATE(float, double)
TG_INSTANTIATE(double, double)
TG_INSTANTIATE(double, float)
#undef TG_INSTANTIATE

std::vector<double> central_diff(const std::function<double(const std::vector<double>&)>& f,
                                 std::vector<double> x, double h) {
  std::vector<double> g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double fp = f(x);
    x[i] = x0 - h;
    const double fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

bool near(double got, double want, double tol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::isfinite(got) && std::fabs(got - want) <= tol * (1 + std::fabs(want));
}

::testing::AssertionResult all_near(const std::vector<float>& got, const std::vector<float>& want, double tol) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "sizes differ";
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!near(got[i], want[i], tol))
      return ::testing::AssertionFailure() << "element " << i << ": got " << got[i] << ", want " << want[i];
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult elementwise_close(const std::vector<float>& got, const std::vector<double>& want,
                                             index_t rows, index_t cols, index_t ld, double tol) {
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < ld; ++j) {
      const std::size_t k = std::size_t(i * ld + j);
      if (j >= cols) {
        if (!std::isnan(got[k])) return ::testing::AssertionFailure() << "wrote the padding at (" << i << ", " << j << ")";
        continue;
      }
      const double g = got[k], w = want[k];
      if (!near(g, w, tol)) return ::testing::AssertionFailure() << "(" << i << ", " << j << "): got " << g << ", want " << w;
    }
  return ::testing::AssertionSuccess();
}

Rounded16 round16(const std::vector<float>& v, bool f16) {
  Rounded16 r{std::vector<std::uint16_t>(v.size()), std::vector<double>(v.size())};
  for (std::size_t i = 0; i < v.size(); ++i) {
    r.bits[i] = f16 ? f16_bits_from_float(v[i]) : bf16_bits_from_float(v[i]);
    r.values[i] = f16 ? float_from_f16_bits(r.bits[i]) : float_from_bf16_bits(r.bits[i]);
  }
  return r;
}

::testing::AssertionResult pads_untouched(const std::vector<float>& out, const std::vector<float>& before,
                                          index_t rows, index_t cols, index_t ld) {
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = cols; j < ld; ++j) {
      const std::size_t k = std::size_t(i * ld + j);
      if (std::isnan(out[k]) != std::isnan(before[k]) || (!std::isnan(before[k]) && out[k] != before[k]))
        return ::testing::AssertionFailure() << "wrote outside the matrix at (" << i << ", " << j << ")";
    }
  return ::testing::AssertionSuccess();
}

}  // namespace tg::testing
