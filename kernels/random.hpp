// Counter-based random numbers (Philox4x32-10; Salmon, Moraes, Dror & Shaw 2011,
// "Parallel random numbers: as easy as 1, 2, 3"), and dropout built on them.
//
// Element i of a draw with (seed, offset) is a pure function of (seed, offset, i): any
// thread, any device and any split of the array produce the same values, and dropout's
// backward regenerates its mask instead of storing it. A generator hands out offsets;
// two draws with the same seed and different offsets are independent streams.
//
//   philox(seed, counter) -> 4 x uint32, counter = (i, offset)   (64 + 64 bits)
//   uniform:  y[i] = lo + (hi - lo) u,  u = (w0 >> 8) 2^-24 in [0, 1)
//   normal:   y[i] = mean + std sqrt(-2 ln u1) cos(2 pi u2),  u1 in (0, 1] from w0, u2 from w1
//   dropout:  keep[i] = u >= p (u from w0);  y[i] = keep ? x[i] / (1 - p) : 0
//             backward: dx[i] = keep ? dy[i] / (1 - p) : 0, the same keep
// p in [0, 1): p = 0 copies; arrays are contiguous, n elements; y may equal x (in place).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "tilegrad/kernels/types.hpp"

namespace tg {

struct Philox {
  // The 10-round Philox4x32 block for a 128-bit counter and 64-bit key.
  static constexpr std::array<std::uint32_t, 4> block(std::uint64_t key, std::uint64_t ctr_lo,
                                                      std::uint64_t ctr_hi) {
    std::uint32_t c0 = std::uint32_t(ctr_lo), c1 = std::uint32_t(ctr_lo >> 32);
    std::uint32_t c2 = std::uint32_t(ctr_hi), c3 = std::uint32_t(ctr_hi >> 32);
    std::uint32_t k0 = std::uint32_t(key), k1 = std::uint32_t(key >> 32);
    for (int r = 0; r < 10; ++r) {
      const std::uint64_t p0 = std::uint64_t(0xD2511F53u) * c0, p1 = std::uint64_t(0xCD9E8D57u) * c2;
      const std::uint32_t n0 = std::uint32_t(p1 >> 32) ^ c1 ^ k0, n2 = std::uint32_t(p0 >> 32) ^ c3 ^ k1;
      c1 = std::uint32_t(p1);
      c3 = std::uint32_t(p0);
      c0 = n0;
      c2 = n2;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    return {c0, c1, c2, c3};
  }
  // u in [0, 1) with 24 random bits: exact in float.
  static constexpr double unit(std::uint32_t w) { return double(w >> 8) * 0x1p-24; }
};

enum class Random : std::uint8_t { uniform, normal };

void check_random(const char* op, index_t n, const void* y);
void check_dropout(const char* op, index_t n, const void* x, const void* y, double p, std::size_t elem);

// y[0, n) from distribution kind with parameters (a, b) = (lo, hi) or (mean, std).
template <class T>
void random_ref(Random kind, index_t n, T* y, double a, double b, std::uint64_t seed, std::uint64_t offset);
// y = dropout(x), or (backward) dx = the same mask applied to dy: the same function.
template <class T>
void dropout_ref(index_t n, const T* x, T* y, double p, std::uint64_t seed, std::uint64_t offset);

}  // namespace tg
