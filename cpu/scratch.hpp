// Zero-filled scratch arrays for the kernels of every ISA path. A std::vector<float> in a
// path's unit (*_avx512.cpp, *_avx2.cpp) instantiates std::vector's fill and grow loops
// there, with that unit's instructions, as weak symbols that the linker then shares
// with the other paths' units: an AVX-512 loop could serve the portable path
// (tests/isa_units_check.py finds them). This array's members are all compiled once,
// without ISA flags, in cpu/scratch.cpp; the header declares them only.
#pragma once

#include <cstddef>

namespace tg::cpu {

template <class T>  // float or double
class ZeroScratch {
 public:
  explicit ZeroScratch(std::size_t n = 0);  // n zeros
  ~ZeroScratch();
  ZeroScratch(const ZeroScratch&) = delete;
  ZeroScratch& operator=(const ZeroScratch&) = delete;
  void zero(std::size_t n);  // n zeros, reusing the storage when it is large enough
  T* data() const;
  std::size_t size() const;

 private:
  T* p_;
  std::size_t n_, cap_;
};

extern template class ZeroScratch<float>;
extern template class ZeroScratch<double>;

}  // namespace tg::cpu
