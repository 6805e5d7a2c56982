// Shape: the sizes and strides (in elements) of a strided view of rank <= 8.
//
// Construction validates: sizes >= 0, strides >= 0, rank <= kMaxRank, and that the
// element count and the storage extent fit in int64; a violation throws tg::Error.
// After that numel() and extent() are plain reads.
#pragma once

#include <array>
#include <initializer_list>
#include <span>
#include <string>

#include "tilegrad/kernels/types.hpp"

namespace tg {

class Shape {
 public:
  static constexpr int kMaxRank = 8;

  Shape() = default;  // rank 0: a scalar, numel() == 1
  // Row-major contiguous strides for the given sizes.
  Shape(std::initializer_list<index_t> sizes);
  explicit Shape(std::span<const index_t> sizes);
  Shape(std::span<const index_t> sizes, std::span<const index_t> strides);

  int rank() const { return rank_; }
  index_t size(int d) const;    // throws tg::Error unless 0 <= d < rank()
  index_t stride(int d) const;  // idem
  std::span<const index_t> sizes() const { return {sizes_.data(), std::size_t(rank_)}; }
  std::span<const index_t> strides() const { return {strides_.data(), std::size_t(rank_)}; }

  index_t numel() const { return numel_; }
  // Elements of storage the view reaches: 1 + sum (size_d - 1) * stride_d, 0 if empty.
  index_t extent() const { return extent_; }
  bool is_contiguous() const;  // row-major, no gaps (size-1 dims may have any stride)

  std::string str() const;  // "(2, 3)" or "(2, 3):(1, 2)" when not contiguous

  friend bool operator==(const Shape& a, const Shape& b);

 private:
  void init(std::span<const index_t> sizes, std::span<const index_t> strides);

  int rank_ = 0;
  std::array<index_t, kMaxRank> sizes_{};
  std::array<index_t, kMaxRank> strides_{};
  index_t numel_ = 1;
  index_t extent_ = 1;
};

}  // namespace tg
