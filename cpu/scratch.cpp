// ZeroScratch's members, compiled without ISA flags (cpu/scratch.hpp says why).
#include "tilegrad/cpu/scratch.hpp"

#include <algorithm>
#include <new>

namespace tg::cpu {

template <class T>
ZeroScratch<T>::ZeroScratch(std::size_t n) : p_(nullptr), n_(0), cap_(0) {
  zero(n);
}

template <class T>
ZeroScratch<T>::~ZeroScratch() {
  ::operator delete(p_, std::align_val_t(64));
}

template <class T>
void ZeroScratch<T>::zero(std::size_t n) {
  if (n > cap_) {
    T* grown = static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64)));
    ::operator delete(p_, std::align_val_t(64));
    p_ = grown;
    cap_ = n;
  }
  std::fill(p_, p_ + n, T(0));
  n_ = n;
}

template <class T>
T* ZeroScratch<T>::data() const {
  return p_;
}

template <class T>
std::size_t ZeroScratch<T>::size() const {
  return n_;
}

template class ZeroScratch<float>;
template class ZeroScratch<double>;

}  // namespace tg::cpu
