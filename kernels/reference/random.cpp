// Reference random draws and dropout: one Philox block per element (counter = (i,
// offset)), words as kernels/random.hpp says. Backends must produce the same bits.
#include <cmath>
#include <numbers>

#include "tilegrad/kernels/random.hpp"

namespace tg {

template <class T>
void random_ref(Random kind, index_t n, T* y, double a, double b, std::uint64_t seed, std::uint64_t offset) {
  for (index_t i = 0; i < n; ++i) {
    const auto w = Philox::block(seed, std::uint64_t(i), offset);
    if (kind == Random::uniform) {
      y[i] = T(a + (b - a) * Philox::unit(w[0]));
    } else {
      const double u1 = 1.0 - Philox::unit(w[0]);  // (0, 1]: log is finite
      const double u2 = Philox::unit(w[1]);
      y[i] = T(a + b * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
    }
  }
}

template <class T>
void dropout_ref(index_t n, const T* x, T* y, double p, std::uint64_t seed, std::uint64_t offset) {
  const double scale = 1.0 / (1.0 - p);
  for (index_t i = 0; i < n; ++i) {
    const bool keep = Philox::unit(Philox::block(seed, std::uint64_t(i), offset)[0]) >= p;
    y[i] = keep ? T(double(x[i]) * scale) : T(0);
  }
}

template void random_ref<float>(Random, index_t, float*, double, double, std::uint64_t, std::uint64_t);
template void random_ref<double>(Random, index_t, double*, double, double, std::uint64_t, std::uint64_t);
template void dropout_ref<float>(index_t, const float*, float*, double, std::uint64_t, std::uint64_t);
template void dropout_ref<double>(index_t, const double*, double*, double, std::uint64_t, std::uint64_t);

}  // namespace tg
