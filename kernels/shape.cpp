#include "tilegrad/kernels/shape.hpp"

#include <sstream>
#include <vector>

#include "tilegrad/kernels/error.hpp"

namespace tg {

namespace {
// Row-major strides of a contiguous tensor (rank checked by the caller); the element
// count is checked in init(). No heap: Tensors build Shapes on every op.
std::array<index_t, Shape::kMaxRank> contiguous_strides(std::span<const index_t> sizes) {
  std::array<index_t, Shape::kMaxRank> strides{};
  index_t s = 1;
  for (std::size_t d = sizes.size(); d-- > 0;) {
    strides[d] = s;
    if (sizes[d] > 0) s = checked_mul(s, sizes[d], "Shape", "sizes");
  }
  return strides;
}
}  // namespace

Shape::Shape(std::initializer_list<index_t> sizes)
    : Shape(std::span<const index_t>(sizes.begin(), sizes.size())) {}

Shape::Shape(std::span<const index_t> sizes) {
  TG_CHECK(sizes.size() <= std::size_t(kMaxRank), "Shape", "sizes", "expected rank <= ",
           kMaxRank, ", got ", sizes.size());
  for (index_t s : sizes) TG_CHECK(s >= 0, "Shape", "sizes", "expected sizes >= 0, got ", s);
  const std::array<index_t, kMaxRank> strides = contiguous_strides(sizes);
  init(sizes, std::span<const index_t>(strides.data(), sizes.size()));
}

Shape::Shape(std::span<const index_t> sizes, std::span<const index_t> strides) {
  init(sizes, strides);
}

void Shape::init(std::span<const index_t> sizes, std::span<const index_t> strides) {
  TG_CHECK(sizes.size() <= std::size_t(kMaxRank), "Shape", "sizes", "expected rank <= ",
           kMaxRank, ", got ", sizes.size());
  TG_CHECK(strides.size() == sizes.size(), "Shape", "strides", "expected ", sizes.size(),
           " strides (one per size), got ", strides.size());
  rank_ = int(sizes.size());
  numel_ = 1;
  index_t last = 0;  // offset of the last element
  for (int d = 0; d < rank_; ++d) {
    TG_CHECK(sizes[d] >= 0, "Shape", "sizes", "expected sizes >= 0, got ", sizes[d], " at dim ", d);
    TG_CHECK(strides[d] >= 0, "Shape", "strides", "expected strides >= 0, got ", strides[d],
             " at dim ", d);
    sizes_[d] = sizes[d];
    strides_[d] = strides[d];
    numel_ = checked_mul(numel_, sizes[d], "Shape", "sizes");
    if (sizes[d] > 0)
      last = checked_add(last, checked_mul(sizes[d] - 1, strides[d], "Shape", "strides"), "Shape",
                         "strides");
  }
  extent_ = numel_ == 0 ? 0 : checked_add(last, 1, "Shape", "strides");
}

index_t Shape::size(int d) const {
  TG_CHECK(d >= 0 && d < rank_, "Shape::size", "d", "expected 0 <= d < ", rank_, ", got ", d);
  return sizes_[d];
}

index_t Shape::stride(int d) const {
  TG_CHECK(d >= 0 && d < rank_, "Shape::stride", "d", "expected 0 <= d < ", rank_, ", got ", d);
  return strides_[d];
}

bool Shape::is_contiguous() const {
  if (numel_ == 0) return true;
  index_t expected = 1;
  for (int d = rank_; d-- > 0;) {
    if (sizes_[d] == 1) continue;
    if (strides_[d] != expected) return false;
    expected *= sizes_[d];
  }
  return true;
}

std::string Shape::str() const {
  std::ostringstream os;
  auto list = [&](const std::array<index_t, kMaxRank>& v) {
    os << '(';
    for (int d = 0; d < rank_; ++d) os << (d ? ", " : "") << v[d];
    if (rank_ == 1) os << ',';
    os << ')';
  };
  list(sizes_);
  if (!is_contiguous()) {
    os << ':';
    list(strides_);
  }
  return os.str();
}

bool operator==(const Shape& a, const Shape& b) {
  if (a.rank_ != b.rank_) return false;
  for (int d = 0; d < a.rank_; ++d)
    if (a.sizes_[d] != b.sizes_[d] || a.strides_[d] != b.strides_[d]) return false;
  return true;
}

}  // namespace tg
