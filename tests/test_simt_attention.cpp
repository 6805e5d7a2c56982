// The attention kernels, bf16 on tensor cores (cuda/attention_bf16.cuh) and FP32
// (cuda/attention.cuh), their own source, run on the CPU by the SIMT emulator
// (tests/simt): forward and backward against the double reference, as the GPU tests do
// (test_cuda_ops) and with their bounds: bf16 1e-2 on the rounded inputs (P and dS
// rounded to bf16, the outputs rounded to bf16), FP32 the CPU kernel's bound times 4. This checks what a GPU
// test would check of the kernels' logic: fragment layouts, ldmatrix(.trans) addressing,
// the cp.async double buffer and its waits, masks, causal skips, GQA, zero padding of
// head dims, bounds; not their speed, and not the hardware's own semantics, which the
// emulator takes from the PTX ISA. The emulator's checks are tested first.
#include "tests/simt/simt.hpp"
// The kernels, compiled for the host against the emulator.
#include "tilegrad/cuda/attention.cuh"
#include "tilegrad/cuda/attention_bf16.cuh"
#include "tilegrad/cuda/attention_wgmma.cuh"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "tilegrad/kernels/attention.hpp"
#include "tilegrad/kernels/half.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using cuda::attn16::u16;
namespace a16 = cuda::attn16;
constexpr float kInf = std::numeric_limits<float>::infinity();

void run(a16::Grid grid, int threads, std::size_t smem_bytes, const std::function<void()>& kernel) {
  simt::launch({grid.x, grid.y, 1}, {unsigned(threads), 1, 1}, smem_bytes, kernel);
}

// The running block's dynamic shared memory, as the kernels see it.
u16* shared16() { return static_cast<u16*>(simt::dynamic_shared()); }

// ---- the emulator's own checks ----

// A warp-wide sum by shuffles, a tile through a cp.async double buffer, and ldmatrix +
// mma on a 16 x 16 x 8 product: the emulator gives what CUDA would.
TEST(Simt, ShufflesCopiesAndTensorCoreFragmentsComputeWhatCudaWould) {
  std::vector<float> sums(64, -1);
  run({1, 1}, 64, 0, [&] {
    float v = float(threadIdx.x);
    for (int m = 16; m > 0; m /= 2) v += __shfl_xor_sync(0xffffffffu, v, m);
    sums[threadIdx.x] = v;
  });
  for (int i = 0; i < 64; ++i) EXPECT_EQ(sums[std::size_t(i)], i < 32 ? 496.0f : 1520.0f) << i;

  // A (16 x 16) and B^T (8 x 16) bf16 rows in shared memory, 24 values a row (16-byte
  // aligned rows), B^T's columns 12-15 zero-filled by short copies; D = A B by one mma
  // from ldmatrix fragments, against the double product.
  TG_TEST_RNG(rng);
  std::vector<u16> a(16 * 24), bt(8 * 24);
  for (u16& x : a) x = bf16_bits_from_float(float(rng.uniform(-1, 1)));
  for (u16& x : bt) x = bf16_bits_from_float(float(rng.uniform(-1, 1)));
  std::vector<float> d(16 * 8, std::nanf(""));
  run({1, 1}, 32, 2 * (16 + 8) * 24, [&] {
    u16* sa = shared16();
    u16* sb = sa + 16 * 24;
    const int lane = int(threadIdx.x), g = lane / 4, t = lane % 4, at = (lane / 2) * 24 + 8 * (lane % 2);
    cuda::cp_async16(sa + at, &a[std::size_t(at)], 16);  // half lane % 2 of row lane / 2
    cuda::cp_async_commit();
    if (lane < 16) cuda::cp_async16(sb + at, &bt[std::size_t(at)], lane % 2 ? 8 : 16);
    cuda::cp_async_commit();
    cuda::cp_async_wait_all();
    __syncthreads();
    unsigned af[4], bf[4];
    cuda::ldmatrix_x4(af, sa + (lane % 8 + 8 * ((lane / 8) % 2)) * 24 + 8 * (lane / 16));
    cuda::ldmatrix_x4(bf, sb + (lane % 8) * 24 + 8 * (lane / 8 % 2));  // b0, b1 (matrices 2, 3 repeat them)
    float c[4] = {1, 1, 1, 1};
    cuda::mma16(c, af, bf[0], bf[1]);
    d[std::size_t(g * 8 + 2 * t)] = c[0], d[std::size_t(g * 8 + 2 * t + 1)] = c[1];
    d[std::size_t((g + 8) * 8 + 2 * t)] = c[2], d[std::size_t((g + 8) * 8 + 2 * t + 1)] = c[3];
  });
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j) {
      double want = 1;
      for (int k = 0; k < 12; ++k)
        want += double(float_from_bf16_bits(a[std::size_t(i * 24 + k)])) * float_from_bf16_bits(bt[std::size_t(j * 24 + k)]);
      EXPECT_NEAR(d[std::size_t(i * 8 + j)], want, 1e-6 * (1 + std::fabs(want))) << i << ", " << j;
    }
}

// ldmatrix's wavefronts: rows 144 bytes apart (64 values + 8 of padding) fall in distinct
// bank groups, one wavefront per matrix; rows 128 bytes apart all in one: 8 per matrix.
TEST(Simt, LdmatrixBankConflictsAreCounted) {
  for (int pitch : {72, 64}) {
    const simt::Stats before = simt::stats();
    run({1, 1}, 32, std::size_t(32 * pitch * 2), [&] {
      unsigned r[4];
      cuda::ldmatrix_x4(r, shared16() + int(threadIdx.x) * pitch);
    });
    const long long phases = simt::stats().ldmatrix_phases - before.ldmatrix_phases;
    EXPECT_EQ(simt::stats().ldmatrix_instructions - before.ldmatrix_instructions, 1);
    EXPECT_EQ(phases, pitch == 72 ? 4 : 32) << "pitch " << pitch;
  }
}

// A copy lands at its issuer's wait, not before: a tile read before that wait reads the
// poison (0xffff, NaN in bf16) that shared memory starts with.
TEST(Simt, ACopyReadBeforeItsWaitReadsThePoison) {
  const std::vector<u16> src(8, 0x3f80);  // 1.0
  std::vector<u16> early(32), late(32);
  run({1, 1}, 32, 16, [&] {
    if (threadIdx.x == 0) cuda::cp_async16(shared16(), src.data(), 16);
    cuda::cp_async_commit();
    __syncthreads();
    early[threadIdx.x] = shared16()[threadIdx.x % 8];
    __syncthreads();
    cuda::cp_async_wait<0>();
    __syncthreads();
    late[threadIdx.x] = shared16()[threadIdx.x % 8];
  });
  for (int i = 0; i < 32; ++i) EXPECT_EQ(early[std::size_t(i)], 0xffff) << i;
  for (int i = 0; i < 32; ++i) EXPECT_EQ(late[std::size_t(i)], 0x3f80) << i;
}

// Lanes at different warp-wide instructions, or a collective that part of a warp never
// reaches, are errors, not wrong numbers.
TEST(Simt, DivergentCollectivesAndDeadlocksAreErrors) {
  auto message = [](const std::function<void()>& kernel) {
    try {
      simt::launch({1, 1, 1}, {32, 1, 1}, 16, kernel);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string divergent = message([] {
    if (threadIdx.x < 16) {
      (void)__shfl_xor_sync(0xffffffffu, 1.0f, 1);
    } else {
      unsigned r[4];
      cuda::ldmatrix_x4(r, shared16());
    }
  });
  EXPECT_NE(divergent.find("shfl.xor"), std::string::npos) << divergent;
  EXPECT_NE(divergent.find("ldmatrix.x4"), std::string::npos) << divergent;
  const std::string deadlock = message([] {
    if (threadIdx.x < 16) (void)__shfl_xor_sync(0xffffffffu, 1.0f, 1);
  });
  EXPECT_NE(deadlock.find("deadlock"), std::string::npos) << deadlock;
}

// Global atomics: every thread's add lands (one fiber at a time), and sm_90's pair add at
// an address that is not 8-byte aligned is an error (the hardware faults).
TEST(Simt, AtomicAddsLandAndMisalignedPairsAreErrors) {
  alignas(8) static float sums[4];
  sums[0] = sums[1] = sums[2] = sums[3] = 0.0f;
  simt::launch({3, 1, 1}, {64, 1, 1}, 0, [] {
    atomicAdd(&sums[0], 1.0f);
    atomicAdd(reinterpret_cast<float2*>(&sums[2]), make_float2(0.5f, float(threadIdx.x)));
  });
  EXPECT_EQ(sums[0], 192.0f);
  EXPECT_EQ(sums[2], 96.0f);
  EXPECT_EQ(sums[3], 3.0f * (63 * 64 / 2));
  try {
    simt::launch({1, 1, 1}, {32, 1, 1}, 0, [] { atomicAdd(reinterpret_cast<float2*>(&sums[1]), make_float2(1, 1)); });
    ADD_FAILURE() << "expected an error for a misaligned float2 add";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("8-byte aligned"), std::string::npos) << e.what();
  }
}

// ---- the attention kernels ----

// A dense (n0, n1, n2, n3) 16-bit tensor (bf16, or f16), (b, h, s, d) in memory or
// (b, s, h, d), with its values decoded exactly (the reference's inputs).
struct Tensor16 {
  index_t n1, n2, n3;
  bool bshd, f16;
  std::vector<u16> bits;
  std::vector<double> values;
  Tensor16(testing::Rng& rng, index_t a, index_t b, index_t c, index_t d, bool seq_major, bool is_f16)
      : n1(b), n2(c), n3(d), bshd(seq_major), f16(is_f16) {
    testing::Rounded16 r = testing::round16(testing::random_vec<float>(rng, a * b * c * d), f16);
    bits = std::move(r.bits), values = std::move(r.values);
  }
  template <class T>
  View4<T> view(T* p) const {
    return bshd ? View4<T>{p, n1 * n2 * n3, n3, n1 * n3, 1} : View4<T>{p, n1 * n2 * n3, n2 * n3, n3, 1};
  }
  std::vector<double> decoded(const std::vector<u16>& out) const {
    std::vector<double> v(out.size());
    for (std::size_t i = 0; i < out.size(); ++i) v[i] = f16 ? float_from_f16_bits(out[i]) : float_from_bf16_bits(out[i]);
    return v;
  }
};

template <int kD, bool kF16>
void run_forward(const a16::Fwd16& f) {
  run(a16::fwd_grid(f), a16::kFwdThreads, a16::smem_fwd<kD>(), [&] { a16::attention_fwd_16<kD, kF16>(f); });
}
// As attention_bf16.cu's launch_bwd: with f.dq_acc set, the atomic path (the buffer
// zeroed, the dK / dV kernel adding dS K into it, dQ written from it).
template <int kD, bool kF16>
void run_backward(const a16::Bwd16& f, float* dd) {
  const a16::i64 rows = a16::i64(f.B) * f.H * f.Sq;
  if (rows > 0) run({a16::bwd_dot_blocks(rows), 1}, a16::kDotThreads, 0, [&] { a16::attention_bwd_dot_16<kF16>(f, dd); });
  if (f.dq_acc) {
    std::fill_n(f.dq_acc, rows * f.D, 0.0f);
    if (f.Sk > 0)
      run(a16::bwd_kv_grid(f), a16::kThreads, a16::smem_bwd_kv<kD, true>(),
          [&] { a16::attention_bwd_kv_16<kD, kF16, true>(f); });
    if (rows > 0) run({a16::bwd_dot_blocks(rows), 1}, a16::kDotThreads, 0, [&] { a16::attention_bwd_dq_16<kF16>(f); });
    return;
  }
  if (f.Sk > 0)
    run(a16::bwd_kv_grid(f), a16::kThreads, a16::smem_bwd_kv<kD>(), [&] { a16::attention_bwd_kv_16<kD, kF16>(f); });
  if (f.Sq > 0)
    run(a16::bwd_q_grid(f), a16::kThreads, a16::smem_bwd_q<kD>(), [&] { a16::attention_bwd_q_16<kD, kF16>(f); });
}

// One random forward case: the shape (batch and heads drawn, the rest given), Q, K, V
// rounded to the 16-bit type, a mask (Sq, Sk) per batch broadcast over heads (a tenth
// -inf, row 0 all -inf) when `masked`, the double reference's O and lse, and poisoned
// outputs with the kernels' arguments over them.
struct Case16 {
  AttentionDims d;
  bool f16, causal, bshd, masked;
  float scale;
  Tensor16 q, k, v;
  index_t msb;
  std::vector<u16> mask_bits;
  std::vector<double> mask_values, o_ref, lse_ref;
  AttentionForwardArgs<double> ra;
  std::vector<u16> o;
  std::vector<float> lse;
  a16::Fwd16 f;

  static AttentionDims draw(testing::Rng& rng, index_t sq, index_t sk, index_t head_dim) {
    AttentionDims d;
    d.batch = rng.integer(1, 2);
    d.kv_heads = rng.integer(1, 2);
    d.heads = d.kv_heads * rng.integer(1, 2);
    d.seq_q = sq, d.seq_k = sk, d.head_dim = head_dim;
    return d;
  }
  Case16(testing::Rng& rng, const AttentionDims& dims, bool is_f16, bool is_causal, bool is_bshd, bool is_masked)
      : d(dims), f16(is_f16), causal(is_causal), bshd(is_bshd), masked(is_masked),
        scale(float(1 / std::sqrt(double(dims.head_dim)))),
        q(rng, d.batch, d.heads, d.seq_q, d.head_dim, bshd, f16),
        k(rng, d.batch, d.kv_heads, d.seq_k, d.head_dim, bshd, f16),
        v(rng, d.batch, d.kv_heads, d.seq_k, d.head_dim, bshd, f16),
        msb(d.seq_q * d.seq_k) {
    mask_bits.resize(std::size_t(d.batch * msb)), mask_values.resize(mask_bits.size());
    for (std::size_t i = 0; i < mask_bits.size(); ++i) {
      const bool hide = rng.integer(0, 9) == 0 || index_t(i) % msb < d.seq_k;
      const float m = hide ? -kInf : float(rng.uniform(-2, 2));
      mask_bits[i] = f16 ? f16_bits_from_float(m) : bf16_bits_from_float(m);
      mask_values[i] = f16 ? float_from_f16_bits(mask_bits[i]) : float_from_bf16_bits(mask_bits[i]);
    }
    o_ref.resize(q.values.size()), lse_ref.resize(std::size_t(d.batch * d.heads * d.seq_q));
    ra.dims = d, ra.scale = scale, ra.causal = causal;
    ra.q = q.view<const double>(q.values.data()), ra.k = k.view<const double>(k.values.data());
    ra.v = v.view<const double>(v.values.data());
    if (masked) ra.mask = {mask_values.data(), msb, 0, d.seq_k, 1};
    ra.o = q.view<double>(o_ref.data()), ra.lse = lse_ref.data();
    attention_forward_ref<double>(ra);
    o.assign(q.bits.size(), 0x7fc0);
    lse.assign(lse_ref.size(), std::nanf(""));
    f = a16::Fwd16{int(d.batch), int(d.heads), int(d.kv_heads), int(d.seq_q), int(d.seq_k), int(d.head_dim), scale,
                   causal, q.view<const u16>(q.bits.data()), k.view<const u16>(k.bits.data()),
                   v.view<const u16>(v.bits.data()), {}, q.view<u16>(o.data()), lse.data()};
    if (masked) f.mask = {mask_bits.data(), msb, 0, d.seq_k, 1};
  }
  Case16(const Case16&) = delete;
  std::string what() const {
    std::ostringstream w;
    w << (f16 ? "f16 " : "bf16 ") << "B" << d.batch << " H" << d.heads << "/" << d.kv_heads << " Sq" << d.seq_q << " Sk"
      << d.seq_k << " D" << d.head_dim << (causal ? " causal" : "") << (masked ? " mask" : "") << (bshd ? " bshd" : " bhsd");
    return w.str();
  }
  // O and lse (as the kernels left them) against the reference; O's relative norm error.
  double check_forward() const {
    const std::vector<double> got = q.decoded(o);
    EXPECT_TRUE(testing::rel_close(got, o_ref, 1e-2)) << "O";
    EXPECT_TRUE(testing::rel_close(std::vector<double>(lse.begin(), lse.end()), lse_ref, 1e-5)) << "lse";
    return testing::relative_error(got, o_ref);
  }
};

// Random shapes as the GPU test draws them (smaller: the emulator runs a thread at a
// time): odd lengths, grouped heads, both layouts, causal rows that see nothing, Sk == 0,
// both compiled head dims and zero-padded ones, a mask broadcast over heads with -inf
// entries and a fully masked row; outputs poisoned before each call. Reps 0-11 in bf16,
// 12-23 in f16 (the same kernels with mma .f16 and f16 rounding).
TEST(SimtAttention, SixteenBitKernelsMatchTheReferenceOnTheirRoundedInputs) {
  TG_TEST_RNG(rng);
  const index_t seqs[] = {0, 1, 33, 64, 65, 130};
  const index_t dims[] = {64, 128, 8, 40, 72, 120};
  double worst = 0, worst_bwd = 0, worst_atomic = 0;
  const simt::Stats start = simt::stats();
  for (int rep = 0; rep < 24; ++rep) {
    const bool f16 = rep >= 12;
    const AttentionDims shape = Case16::draw(rng, seqs[rng.integer(1, 5)], seqs[rng.integer(rep % 12 == 5 ? 0 : 1, 5)],
                                             dims[rep % 6]);
    Case16 cs(rng, shape, f16, rep % 4 >= 2, rng.coin(), rep % 3 == 1);
    SCOPED_TRACE(cs.what());
    // (The names the backward below uses.)
    const AttentionDims& d = cs.d;
    const Tensor16 &q = cs.q, &k = cs.k, &v = cs.v, g(rng, d.batch, d.heads, d.seq_q, d.head_dim, cs.bshd, f16);
    const float scale = cs.scale;
    const bool causal = cs.causal;
    const AttentionForwardArgs<double>& ra = cs.ra;
    const std::vector<double>&o_ref = cs.o_ref, &lse_ref = cs.lse_ref;
    const a16::Fwd16& f = cs.f;
    std::vector<u16>& o = cs.o;
    std::vector<float>& lse = cs.lse;
    if (d.head_dim <= 64) f16 ? run_forward<64, true>(f) : run_forward<64, false>(f);
    else f16 ? run_forward<128, true>(f) : run_forward<128, false>(f);
    worst = std::max(worst, cs.check_forward());

    // The backward from the kernels' O and lse against the reference's from its own; dO
    // is g's values.
    std::vector<double> dq_ref(q.values.size()), dk_ref(k.values.size()), dv_ref(v.values.size());
    AttentionBackwardArgs<double> rb;
    rb.dims = d, rb.scale = scale, rb.causal = causal, rb.q = ra.q, rb.k = ra.k, rb.v = ra.v, rb.mask = ra.mask;
    rb.o = q.view<const double>(o_ref.data()), rb.d_o = g.view<const double>(g.values.data()), rb.lse = lse_ref.data();
    rb.dq = q.view<double>(dq_ref.data()), rb.dk = k.view<double>(dk_ref.data()), rb.dv = v.view<double>(dv_ref.data());
    attention_backward_ref<double>(rb);
    std::vector<u16> dq(q.bits.size(), 0x7fc0), dk(k.bits.size(), 0x7fc0), dv(v.bits.size(), 0x7fc0);
    std::vector<float> dd(lse.size() + 1, std::nanf(""));
    a16::Bwd16 b{int(d.batch), int(d.heads), int(d.kv_heads), int(d.seq_q), int(d.seq_k), int(d.head_dim), scale,
                   causal, f.q, f.k, f.v, q.view<const u16>(o.data()), g.view<const u16>(g.bits.data()), f.mask,
                   q.view<u16>(dq.data()), k.view<u16>(dk.data()), v.view<u16>(dv.data()), lse.data(), dd.data()};
    if (d.head_dim <= 64) f16 ? run_backward<64, true>(b, dd.data()) : run_backward<64, false>(b, dd.data());
    else f16 ? run_backward<128, true>(b, dd.data()) : run_backward<128, false>(b, dd.data());
    const std::vector<double> gq = q.decoded(dq), gk = k.decoded(dk), gv = v.decoded(dv);
    EXPECT_TRUE(testing::rel_close(gq, dq_ref, 1e-2)) << "dQ";
    EXPECT_TRUE(testing::rel_close(gk, dk_ref, 1e-2)) << "dK";
    EXPECT_TRUE(testing::rel_close(gv, dv_ref, 1e-2)) << "dV";
    worst_bwd = std::max({worst_bwd, testing::relative_error(gq, dq_ref), testing::relative_error(gk, dk_ref),
                          testing::relative_error(gv, dv_ref)});

    // The atomic path (AttentionBackwardPath::atomic_dq): dQ within the same bound; dK
    // and dV are the same arithmetic as above (only dQ's sums move): within 1e-3 of it
    // (the GPU test's bound; a compiler may contract a kernel variant differently).
    std::vector<u16> dq2(q.bits.size(), 0x7fc0), dk2(k.bits.size(), 0x7fc0), dv2(v.bits.size(), 0x7fc0);
    std::vector<float> acc(std::size_t(d.batch * d.heads * d.seq_q * d.head_dim) + 1, std::nanf(""));
    a16::Bwd16 b2 = b;
    b2.dq = q.view<u16>(dq2.data()), b2.dk = k.view<u16>(dk2.data()), b2.dv = v.view<u16>(dv2.data());
    b2.dq_acc = acc.data();
    if (d.head_dim <= 64) f16 ? run_backward<64, true>(b2, dd.data()) : run_backward<64, false>(b2, dd.data());
    else f16 ? run_backward<128, true>(b2, dd.data()) : run_backward<128, false>(b2, dd.data());
    const std::vector<double> gq2 = q.decoded(dq2);
    EXPECT_TRUE(testing::rel_close(gq2, dq_ref, 1e-2)) << "dQ, atomic path";
    EXPECT_TRUE(testing::rel_close(k.decoded(dk2), gk, 1e-3)) << "dK, atomic path";
    EXPECT_TRUE(testing::rel_close(v.decoded(dv2), gv, 1e-3)) << "dV, atomic path";
    worst_atomic = std::max(worst_atomic, testing::relative_error(gq2, dq_ref));
  }
  // Every ldmatrix reads its 8 x 8 matrices without a bank conflict (the rows padded by 8
  // elements: 16-byte groups of consecutive rows fall in distinct banks).
  const long long instructions = simt::stats().ldmatrix_instructions - start.ldmatrix_instructions;
  const long long phases = simt::stats().ldmatrix_phases - start.ldmatrix_phases;
  EXPECT_GT(instructions, 0);
  EXPECT_EQ(phases, 4 * instructions) << "ldmatrix bank conflicts: " << phases - 4 * instructions << " extra wavefronts";
  std::printf("emulated 16-bit attention: worst relative norm error forward %.2e, backward %.2e, atomic dQ %.2e "
              "(bound 1e-2); %lld blocks, %lld collectives, %lld fiber switches; %lld ldmatrix, %lld wavefronts\n",
              worst, worst_bwd, worst_atomic, simt::stats().blocks, simt::stats().collectives, simt::stats().switches, instructions,
              phases);
}

// ---- the Hopper forward (cuda/attention_wgmma.cuh) ----

namespace wd = cuda::detail;

// A map as cuda/attention_wgmma.cu encodes it.
simt::TensorMap emulated_map(const wd::AttnMap& a, const void* base) {
  simt::TensorMap t;
  t.base = base, t.elem_bytes = 2;
  for (int i = 0; i < 4; ++i) t.dims[i] = (long long)a.dims[i], t.box[i] = int(a.box[i]);
  t.row_bytes = (long long)a.strides[0], t.outer_bytes[0] = (long long)a.strides[1], t.outer_bytes[1] = (long long)a.strides[2];
  t.swizzle128 = true;
  return t;
}

// As attention_wgmma.cu's launch: V^T into a scratch array (left uninitialized there:
// poisoned here), then the kernel on the three maps.
template <int kD, bool kF16>
void run_forward_wgmma(const a16::Fwd16& f) {
  const wd::AttnMaps maps = wd::attn_maps(f, kD);
  std::vector<u16> vt(std::size_t(f.B) * f.Hkv * f.D * maps.ldt + 8, 0x7fc0);
  if (f.Sk > 0)
    simt::launch({unsigned((f.Sk + 31) / 32), unsigned((f.D + 31) / 32), unsigned(f.B * f.Hkv)}, {32, 8, 1}, 0,
                 [&] { wd::attention_transpose_v(f.v, f.Hkv, f.Sk, f.D, vt.data(), maps.ldt); });
  const simt::TensorMap mq = emulated_map(maps.q, f.q.data), mk = emulated_map(maps.k, f.k.data),
                        mv = emulated_map(maps.vt, vt.data());
  const a16::Grid grid = wd::attn_grid(f);
  run(grid, wd::kAttnThreads, wd::attn_smem_bytes<kD>(),
      [&] { wd::attention_fwd_wgmma<kD, kF16 ? wd::kF16 : wd::kBf16>(mq, mk, mv, f); });
}

// The same random shapes as the mma.sync test (longer keys: up to 6 tiles of 128 run the
// ring of 2 stages round three times), outputs poisoned, with copies landing at their
// wait and at issue.
TEST(SimtAttention, HopperForwardMatchesTheReference) {
  TG_TEST_RNG(rng);
  const index_t seqs[] = {0, 1, 33, 128, 129, 300}, keys[] = {0, 1, 33, 129, 300, 641};
  const index_t dims[] = {64, 128, 8, 40, 72, 120};
  double worst = 0;
  for (int rep = 0; rep < 16; ++rep) {
    const bool f16 = rep >= 8;
    simt::set_copy_timing(rep % 2 ? simt::CopyTiming::at_issue : simt::CopyTiming::at_wait);
    const AttentionDims d = Case16::draw(rng, seqs[rng.integer(1, 5)],
                                         keys[rep % 4 == 1 ? 5 : rng.integer(rep % 8 == 5 ? 0 : 1, 5)], dims[rep % 6]);
    Case16 cs(rng, d, f16, rep % 4 >= 2, rng.coin(), rep % 3 == 1);
    SCOPED_TRACE(cs.what());
    if (d.seq_q > 0) {
      if (d.head_dim <= 64) f16 ? run_forward_wgmma<64, true>(cs.f) : run_forward_wgmma<64, false>(cs.f);
      else f16 ? run_forward_wgmma<128, true>(cs.f) : run_forward_wgmma<128, false>(cs.f);
    }
    worst = std::max(worst, cs.check_forward());
  }
  simt::set_copy_timing(simt::CopyTiming::at_wait);
  std::printf("emulated Hopper attention forward: worst relative norm error %.2e (bound 1e-2)\n", worst);
}

// The FP32 kernels on the same kinds of shapes, head dims in all four compiled widths
// (and zero-padded ones between), strided layouts, an FP32 mask with -inf entries.
TEST(SimtAttention, Fp32KernelsMatchTheReference) {
  TG_TEST_RNG(rng);
  namespace a32 = cuda::attn32;
  const index_t seqs[] = {1, 7, 33, 64, 65, 130};
  const index_t dims[] = {16, 33, 64, 100, 128, 200, 256};
  for (int rep = 0; rep < 14; ++rep) {
    AttentionDims d;
    d.batch = rng.integer(1, 2);
    d.kv_heads = rng.integer(1, 2);
    d.heads = d.kv_heads * rng.integer(1, 2);
    d.seq_q = seqs[rng.integer(0, 5)], d.seq_k = seqs[rng.integer(0, 5)];
    d.head_dim = dims[rep % 7];
    const bool causal = rep % 4 >= 2, masked = rep % 3 == 0, bshd = rng.coin();
    std::ostringstream what;
    what << "B" << d.batch << " H" << d.heads << "/" << d.kv_heads << " Sq" << d.seq_q << " Sk" << d.seq_k << " D"
         << d.head_dim << (causal ? " causal" : "") << (masked ? " mask" : "") << (bshd ? " bshd" : " bhsd");
    SCOPED_TRACE(what.str());
    auto dense = [&](index_t n1, index_t n2) { return testing::random_vec<float>(rng, d.batch * n1 * n2 * d.head_dim); };
    auto view = [&](auto* p, index_t n1, index_t n2) {
      using P = std::remove_pointer_t<decltype(p)>;
      const index_t D = d.head_dim;
      return bshd ? View4<P>{p, n1 * n2 * D, D, n1 * D, 1} : View4<P>{p, n1 * n2 * D, n2 * D, D, 1};
    };
    const std::vector<float> q = dense(d.heads, d.seq_q), k = dense(d.kv_heads, d.seq_k), v = dense(d.kv_heads, d.seq_k),
                             g = dense(d.heads, d.seq_q);
    std::vector<float> mask = testing::random_vec<float>(rng, d.seq_q * d.seq_k, -2, 2);
    for (float& x : mask)
      if (rng.integer(0, 9) == 0) x = -kInf;
    auto widen = [](const std::vector<float>& f) { return std::vector<double>(f.begin(), f.end()); };
    const std::vector<double> qd = widen(q), kd = widen(k), vd = widen(v), gd = widen(g), md = widen(mask);
    const float scale = float(1 / std::sqrt(double(d.head_dim)));
    std::vector<double> o_ref(q.size()), lse_ref(std::size_t(d.batch * d.heads * d.seq_q));
    AttentionForwardArgs<double> ra;
    ra.dims = d, ra.scale = scale, ra.causal = causal;
    ra.q = view(qd.data(), d.heads, d.seq_q), ra.k = view(kd.data(), d.kv_heads, d.seq_k);
    ra.v = view(vd.data(), d.kv_heads, d.seq_k), ra.o = view(o_ref.data(), d.heads, d.seq_q), ra.lse = lse_ref.data();
    if (masked) ra.mask = {md.data(), 0, 0, d.seq_k, 1};
    attention_forward_ref<double>(ra);

    std::vector<float> o(q.size(), std::nanf("")), lse(lse_ref.size(), std::nanf(""));
    a32::Fwd f{int(d.batch), int(d.heads), int(d.kv_heads), int(d.seq_q), int(d.seq_k), int(d.head_dim), scale,
               causal, view(q.data(), d.heads, d.seq_q), view(k.data(), d.kv_heads, d.seq_k),
               view(v.data(), d.kv_heads, d.seq_k),
               masked ? View4<const float>{mask.data(), 0, 0, d.seq_k, 1} : View4<const float>{},
               view(o.data(), d.heads, d.seq_q), lse.data(), false};
    const simt::Dim3 fgrid{unsigned((d.seq_q + a32::kTile - 1) / a32::kTile), unsigned(d.heads), unsigned(d.batch)};
    auto fwd = [&]<int kD>() {
      simt::launch(fgrid, {a32::kThreads, 1, 1}, a32::smem_bytes<kD>(), [&] { a32::attention_fwd<kD>(f); });
    };
    const double tol = 4 * (2e-6 * std::sqrt(double(d.head_dim + d.seq_k)) + 1e-6);
    // K and V by loads, and by the cp.async double buffer (when the head dim keeps rows on
    // 16 bytes, as the host requires) with its copies landing late and early.
    for (int way = 0; way < 3; ++way) {
      if (way > 0 && d.head_dim % 4 != 0) break;
      f.async_kv = way > 0;
      simt::set_copy_timing(way == 2 ? simt::CopyTiming::at_issue : simt::CopyTiming::at_wait);
      std::fill(o.begin(), o.end(), std::nanf("")), std::fill(lse.begin(), lse.end(), std::nanf(""));
      if (d.head_dim <= 32) fwd.operator()<32>();
      else if (d.head_dim <= 64) fwd.operator()<64>();
      else if (d.head_dim <= 128) fwd.operator()<128>();
      else fwd.operator()<256>();
      EXPECT_TRUE(testing::rel_close(o, o_ref, tol)) << "O, way " << way;
      EXPECT_TRUE(testing::rel_close(lse, lse_ref, 1e-5)) << "lse, way " << way;
    }
    simt::set_copy_timing(simt::CopyTiming::at_wait);
    if (d.head_dim > 128) continue;  // the backward's limit

    std::vector<double> dq_ref(q.size()), dk_ref(k.size()), dv_ref(v.size());
    AttentionBackwardArgs<double> rb;
    rb.dims = d, rb.scale = scale, rb.causal = causal, rb.q = ra.q, rb.k = ra.k, rb.v = ra.v, rb.mask = ra.mask;
    rb.o = view(static_cast<const double*>(o_ref.data()), d.heads, d.seq_q);
    rb.d_o = view(static_cast<const double*>(gd.data()), d.heads, d.seq_q), rb.lse = lse_ref.data();
    rb.dq = view(dq_ref.data(), d.heads, d.seq_q), rb.dk = view(dk_ref.data(), d.kv_heads, d.seq_k);
    rb.dv = view(dv_ref.data(), d.kv_heads, d.seq_k);
    attention_backward_ref<double>(rb);
    std::vector<float> dq(q.size(), std::nanf("")), dk(k.size(), std::nanf("")), dv(v.size(), std::nanf(""));
    std::vector<float> dvec(lse.size() + 1, std::nanf(""));
    const View4<const float> ov = view(static_cast<const float*>(o.data()), d.heads, d.seq_q);
    const View4<const float> gv = view(g.data(), d.heads, d.seq_q);
    const int rows = int(d.batch * d.heads * d.seq_q);
    simt::launch({unsigned((rows + 7) / 8), 1, 1}, {256, 1, 1}, 0,
                 [&] { a32::attention_bwd_dot(rows, int(d.heads), int(d.seq_q), int(d.head_dim), ov, gv, dvec.data()); });
    const a32::Bwd w{int(d.batch), int(d.heads), int(d.kv_heads), int(d.seq_q), int(d.seq_k), int(d.head_dim), scale,
                     causal, f.q, f.k, f.v, ov, gv, f.mask, lse.data(), dvec.data(),
                     view(dq.data(), d.heads, d.seq_q), view(dk.data(), d.kv_heads, d.seq_k),
                     view(dv.data(), d.kv_heads, d.seq_k)};
    auto bwd = [&]<int kD>() {
      const std::size_t bytes = a32::bwd_smem_bytes<kD>();
      simt::launch({unsigned((d.seq_k + a32::kTile - 1) / a32::kTile), unsigned(d.kv_heads), unsigned(d.batch)},
                   {a32::kThreads, 1, 1}, bytes, [&] { a32::attention_bwd_kv<kD>(w); });
      simt::launch({unsigned((d.seq_q + a32::kTile - 1) / a32::kTile), unsigned(d.heads), unsigned(d.batch)},
                   {a32::kThreads, 1, 1}, bytes, [&] { a32::attention_bwd_q<kD>(w); });
    };
    if (d.head_dim <= 32) bwd.operator()<32>();
    else if (d.head_dim <= 64) bwd.operator()<64>();
    else bwd.operator()<128>();
    EXPECT_TRUE(testing::rel_close(dq, dq_ref, 10 * tol)) << "dQ";
    EXPECT_TRUE(testing::rel_close(dk, dk_ref, 10 * tol)) << "dK";
    EXPECT_TRUE(testing::rel_close(dv, dv_ref, 10 * tol)) << "dV";
  }
}

// The elementwise check (testing::elementwise_close: both NaN, the same infinity, or
// within tol (1 + |want|)) of a flat output; 16-bit outputs decoded are exact in float.
::testing::AssertionResult agrees(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  const index_t n = index_t(want.size());
  return testing::elementwise_close(got, want, 1, n, n, tol);
}
::testing::AssertionResult agrees(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  return agrees(std::vector<float>(got.begin(), got.end()), want, tol);
}

// Where a NaN or an infinity meets the mask, the fp32 kernels keep the contract of
// kernels/attention.hpp as the CPU kernels do (cases the ops fuzzer found on the CPU):
//   row 0: fully masked, beside a value row holding +inf: o = 0, lse = -inf, zero dQ;
//   row 1: one key masked, the masked key's value row holding +inf: o NaN where that
//          component is (0 * inf), as IEEE arithmetic forms it;
//   row 2: every key masked but one whose mask is NaN (a NaN score): o and lse NaN;
//   row 3: a plain row.
// Against the double reference element by element: NaN where it is NaN, else close.
TEST(SimtAttention, Fp32KernelsKeepTheContractWhereNaNAndInfinityMeetTheMask) {
  TG_TEST_RNG(rng);
  namespace a32 = cuda::attn32;
  AttentionDims d;
  d.batch = 1, d.heads = 1, d.kv_heads = 1, d.seq_q = 4, d.seq_k = 5, d.head_dim = 16;
  const index_t D = d.head_dim, Sq = d.seq_q, Sk = d.seq_k;
  std::vector<float> q = testing::random_vec<float>(rng, Sq * D), k = testing::random_vec<float>(rng, Sk * D),
                     v = testing::random_vec<float>(rng, Sk * D), g = testing::random_vec<float>(rng, Sq * D);
  v[std::size_t(2 * D + 3)] = kInf;  // key 2's value, component 3
  std::vector<float> mask = testing::random_vec<float>(rng, Sq * Sk, -2, 2);
  for (index_t j = 0; j < Sk; ++j) mask[std::size_t(0 * Sk + j)] = -kInf;  // row 0: all masked
  mask[std::size_t(1 * Sk + 2)] = -kInf;                                   // row 1: key 2 masked
  for (index_t j = 0; j < Sk; ++j) mask[std::size_t(2 * Sk + j)] = j == 4 ? std::nanf("") : -kInf;  // row 2
  auto widen = [](const std::vector<float>& f) { return std::vector<double>(f.begin(), f.end()); };
  const std::vector<double> qd = widen(q), kd = widen(k), vd = widen(v), gd = widen(g), md = widen(mask);
  auto view = [&](auto* p, index_t n) { return View4<std::remove_pointer_t<decltype(p)>>{p, n * D, n * D, D, 1}; };
  const float scale = float(1 / std::sqrt(double(D)));
  std::vector<double> o_ref(q.size()), lse_ref(static_cast<std::size_t>(Sq));
  AttentionForwardArgs<double> ra;
  ra.dims = d, ra.scale = scale, ra.causal = false;
  ra.q = view(qd.data(), Sq), ra.k = view(kd.data(), Sk), ra.v = view(vd.data(), Sk);
  ra.mask = {md.data(), 0, 0, Sk, 1}, ra.o = view(o_ref.data(), Sq), ra.lse = lse_ref.data();
  attention_forward_ref<double>(ra);

  EXPECT_EQ(o_ref[0], 0.0);  // the contract, as the reference has it
  EXPECT_TRUE(std::isnan(o_ref[std::size_t(1 * D + 3)]) && std::isnan(lse_ref[2]) && lse_ref[0] == -kInf);

  std::vector<float> o(q.size(), std::nanf("")), lse(static_cast<std::size_t>(Sq), std::nanf(""));
  const View4<const float> mv{mask.data(), 0, 0, Sk, 1};
  a32::Fwd f{1,
             1,
             1,
             int(Sq),
             int(Sk),
             int(D),
             scale,
             false,
             view(static_cast<const float*>(q.data()), Sq),
             view(static_cast<const float*>(k.data()), Sk),
             view(static_cast<const float*>(v.data()), Sk),
             mv,
             view(o.data(), Sq),
             lse.data(),
             false};
  simt::launch({1, 1, 1}, {a32::kThreads, 1, 1}, a32::smem_bytes<32>(), [&] { a32::attention_fwd<32>(f); });
  EXPECT_TRUE(agrees(o, o_ref, 1e-5)) << "O";
  EXPECT_TRUE(agrees(lse, lse_ref, 1e-5)) << "lse";

  std::vector<double> dq_ref(q.size()), dk_ref(k.size()), dv_ref(v.size());
  AttentionBackwardArgs<double> rb;
  rb.dims = d, rb.scale = scale, rb.causal = false, rb.q = ra.q, rb.k = ra.k, rb.v = ra.v, rb.mask = ra.mask;
  rb.o = view(static_cast<const double*>(o_ref.data()), Sq), rb.d_o = view(static_cast<const double*>(gd.data()), Sq);
  rb.lse = lse_ref.data(), rb.dq = view(dq_ref.data(), Sq), rb.dk = view(dk_ref.data(), Sk);
  rb.dv = view(dv_ref.data(), Sk);
  attention_backward_ref<double>(rb);
  std::vector<float> dq(q.size(), std::nanf("")), dk(k.size(), std::nanf("")), dv(v.size(), std::nanf(""));
  std::vector<float> dvec(std::size_t(Sq) + 1, std::nanf(""));
  const View4<const float> ov = view(static_cast<const float*>(o.data()), Sq);
  const View4<const float> gv = view(static_cast<const float*>(g.data()), Sq);
  simt::launch({1, 1, 1}, {256, 1, 1}, 0,
               [&] { a32::attention_bwd_dot(int(Sq), 1, int(Sq), int(D), ov, gv, dvec.data()); });
  const a32::Bwd w{1,
                   1,
                   1,
                   int(Sq),
                   int(Sk),
                   int(D),
                   scale,
                   false,
                   f.q,
                   f.k,
                   f.v,
                   ov,
                   gv,
                   mv,
                   lse.data(),
                   dvec.data(),
                   view(dq.data(), Sq),
                   view(dk.data(), Sk),
                   view(dv.data(), Sk)};
  simt::launch({1, 1, 1}, {a32::kThreads, 1, 1}, a32::bwd_smem_bytes<32>(), [&] { a32::attention_bwd_kv<32>(w); });
  simt::launch({1, 1, 1}, {a32::kThreads, 1, 1}, a32::bwd_smem_bytes<32>(), [&] { a32::attention_bwd_q<32>(w); });
  for (index_t c = 0; c < D; ++c) EXPECT_EQ(dq[std::size_t(c)], 0.0f) << "dQ of the fully masked row, " << c;
  EXPECT_TRUE(agrees(dq, dq_ref, 1e-4)) << "dQ";
  EXPECT_TRUE(agrees(dk, dk_ref, 1e-4)) << "dK";
  EXPECT_TRUE(agrees(dv, dv_ref, 1e-4)) << "dV";
}

// The same contract in the 16-bit kernels (mma.sync forward and both backward paths, the
// Hopper forward): the cases of the fp32 test above, on inputs rounded to bf16 and f16.
TEST(SimtAttention, SixteenBitKernelsKeepTheContractWhereNaNAndInfinityMeetTheMask) {
  TG_TEST_RNG(rng);
  for (const bool f16 : {false, true}) {
    AttentionDims shape;
    shape.batch = 1, shape.heads = 1, shape.kv_heads = 1, shape.seq_q = 4, shape.seq_k = 5, shape.head_dim = 64;
    Case16 cs(rng, shape, f16, false, false, true);  // row 0 of the mask is all -inf
    SCOPED_TRACE(cs.what());
    const index_t D = 64, Sk = 5;
    auto bits = [&](float x) { return f16 ? f16_bits_from_float(x) : bf16_bits_from_float(x); };
    auto set_mask = [&](index_t i, index_t j, float x) {
      cs.mask_bits[std::size_t(i * Sk + j)] = bits(x), cs.mask_values[std::size_t(i * Sk + j)] = double(x);
    };
    cs.v.bits[std::size_t(2 * D + 3)] = bits(kInf), cs.v.values[std::size_t(2 * D + 3)] = double(kInf);
    set_mask(1, 2, -kInf);
    for (index_t j = 0; j < Sk; ++j) set_mask(2, j, j == 4 ? std::nanf("") : -kInf);
    attention_forward_ref<double>(cs.ra);  // again, on the changed inputs
    ASSERT_TRUE(std::isnan(cs.lse_ref[2]) && std::isnan(cs.o_ref[std::size_t(D + 3)]) && cs.o_ref[3] == 0.0);
    f16 ? run_forward<64, true>(cs.f) : run_forward<64, false>(cs.f);
    EXPECT_TRUE(agrees(cs.q.decoded(cs.o), cs.o_ref, 2e-2)) << "O";
    EXPECT_TRUE(agrees(cs.lse, cs.lse_ref, 1e-5)) << "lse";

    const Tensor16 g(rng, 1, 1, 4, D, false, f16);
    std::vector<double> dq_ref(cs.q.values.size()), dk_ref(cs.k.values.size()), dv_ref(cs.v.values.size());
    AttentionBackwardArgs<double> rb;
    rb.dims = cs.d, rb.scale = cs.scale, rb.causal = false, rb.q = cs.ra.q, rb.k = cs.ra.k, rb.v = cs.ra.v;
    rb.mask = cs.ra.mask, rb.o = cs.q.view<const double>(cs.o_ref.data());
    rb.d_o = g.view<const double>(g.values.data()), rb.lse = cs.lse_ref.data();
    rb.dq = cs.q.view<double>(dq_ref.data()), rb.dk = cs.k.view<double>(dk_ref.data());
    rb.dv = cs.v.view<double>(dv_ref.data());
    attention_backward_ref<double>(rb);
    for (const bool atomic : {false, true}) {
      std::vector<u16> dq(cs.q.bits.size(), 0x7fc0), dk(cs.k.bits.size(), 0x7fc0), dv(cs.v.bits.size(), 0x7fc0);
      std::vector<float> dd(cs.lse.size() + 1, std::nanf("")), acc(cs.q.bits.size() + 1, std::nanf(""));
      a16::Bwd16 b{1,
                   1,
                   1,
                   4,
                   int(Sk),
                   int(D),
                   cs.scale,
                   false,
                   cs.f.q,
                   cs.f.k,
                   cs.f.v,
                   cs.q.view<const u16>(cs.o.data()),
                   g.view<const u16>(g.bits.data()),
                   cs.f.mask,
                   cs.q.view<u16>(dq.data()),
                   cs.k.view<u16>(dk.data()),
                   cs.v.view<u16>(dv.data()),
                   cs.lse.data(),
                   dd.data()};
      if (atomic) b.dq_acc = acc.data();
      f16 ? run_backward<64, true>(b, dd.data()) : run_backward<64, false>(b, dd.data());
      const std::vector<double> gq = cs.q.decoded(dq);
      for (index_t c = 0; c < D; ++c) EXPECT_EQ(gq[std::size_t(c)], 0.0) << "dQ of the fully masked row, " << c;
      EXPECT_TRUE(agrees(gq, dq_ref, 2e-2)) << "dQ" << (atomic ? ", atomic path" : "");
      EXPECT_TRUE(agrees(cs.k.decoded(dk), dk_ref, 2e-2)) << "dK" << (atomic ? ", atomic path" : "");
      EXPECT_TRUE(agrees(cs.v.decoded(dv), dv_ref, 2e-2)) << "dV" << (atomic ? ", atomic path" : "");
    }

    std::fill(cs.o.begin(), cs.o.end(), u16(0x7fc0)), std::fill(cs.lse.begin(), cs.lse.end(), std::nanf(""));
    f16 ? run_forward_wgmma<64, true>(cs.f) : run_forward_wgmma<64, false>(cs.f);
    EXPECT_TRUE(agrees(cs.q.decoded(cs.o), cs.o_ref, 2e-2)) << "O, Hopper forward";
    EXPECT_TRUE(agrees(cs.lse, cs.lse_ref, 1e-5)) << "lse, Hopper forward";
  }
}

}  // namespace
}  // namespace tg
