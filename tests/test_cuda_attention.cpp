// The CUDA fused attention against the double reference of kernels/: FP32
// (cuda/attention.cu) forward and backward with GQA, causal rows, masks with -inf, two
// layouts, head dims 1-256 (the backward to 128); 16-bit (cuda/attention_bf16.cu and the
// Hopper forward, bf16 and f16) on the rounded inputs, both dQ paths. Outputs poisoned
// with NaN. Runs where a GPU exists; skips elsewhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "tilegrad/cuda/attention.hpp"
#include "tilegrad/cuda/gemm.hpp"
#include "tilegrad/cuda/runtime.hpp"
#include "tilegrad/kernels/attention.hpp"
#include "tilegrad/kernels/buffer.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/half.hpp"
#include "tests/support/device_vec.hpp"
#include "tests/support/testing.hpp"

namespace tg {
namespace {

using testing::near;
using testing::Rng;
using Dev = testing::DeviceVec;
constexpr float kNaN = testing::kPoison<float>;

// A dense (n0, n1, n2, n3) tensor, (b, h, s, d) in memory or (b, s, h, d).
struct Dense4 {
  index_t n0, n1, n2, n3;
  bool bshd;
  std::vector<float> data;
  Dense4(Rng& rng, index_t a, index_t b, index_t c, index_t d, bool seq_major)
      : n0(a), n1(b), n2(c), n3(d), bshd(seq_major), data(testing::random_vec<float>(rng, a * b * c * d)) {}
  template <class T>
  View4<T> view(T* p) const {
    return bshd ? View4<T>{p, n1 * n2 * n3, n3, n1 * n3, 1} : View4<T>{p, n1 * n2 * n3, n2 * n3, n3, 1};
  }
};

TEST(CudaAttention, AttentionForwardAndBackwardMatchTheReference) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  const index_t seqs[] = {1, 7, 33, 64, 65, 130};
  const index_t dims[] = {1, 16, 33, 64, 100, 128, 200, 256};
  for (int rep = 0; rep < 40; ++rep) {
    AttentionDims d;
    d.batch = rng.integer(1, 2);
    d.kv_heads = rng.integer(1, 2);
    d.heads = d.kv_heads * rng.integer(1, 2);
    d.seq_q = seqs[rng.integer(0, 5)], d.seq_k = seqs[rng.integer(0, 5)];
    d.head_dim = dims[rep % 8];
    const bool causal = rng.coin(), masked = rng.integer(0, 2) == 0, bshd = rng.coin();
    const std::string what = std::string("B") + std::to_string(d.batch) + " H" + std::to_string(d.heads) + "/" +
                             std::to_string(d.kv_heads) + " Sq" + std::to_string(d.seq_q) + " Sk" +
                             std::to_string(d.seq_k) + " D" + std::to_string(d.head_dim) + (causal ? " causal" : "") +
                             (masked ? " mask" : "") + (bshd ? " bshd" : " bhsd");
    SCOPED_TRACE(what);
    const Dense4 q(rng, d.batch, d.heads, d.seq_q, d.head_dim, bshd), k(rng, d.batch, d.kv_heads, d.seq_k, d.head_dim, bshd),
        v(rng, d.batch, d.kv_heads, d.seq_k, d.head_dim, bshd);
    // An additive mask broadcast over batch and heads, with some -inf entries.
    std::vector<float> mask = testing::random_vec<float>(rng, d.seq_q * d.seq_k, -2, 2);
    for (float& x : mask)
      if (rng.integer(0, 9) == 0) x = -std::numeric_limits<float>::infinity();
    const View4<const float> mask_view{mask.data(), 0, 0, d.seq_k, 1};

    // The reference in double, on the same numbers and strides.
    auto widen = [](const std::vector<float>& f) { return std::vector<double>(f.begin(), f.end()); };
    const std::vector<double> qd = widen(q.data), kd = widen(k.data), vd = widen(v.data), md = widen(mask);
    std::vector<double> o_ref(q.data.size(), 0.0), lse_ref(std::size_t(d.batch * d.heads * d.seq_q), 0.0);
    AttentionForwardArgs<double> ra;
    ra.dims = d, ra.scale = float(1 / std::sqrt(double(d.head_dim))), ra.causal = causal;
    ra.q = q.view<const double>(qd.data()), ra.k = k.view<const double>(kd.data()), ra.v = v.view<const double>(vd.data());
    if (masked) ra.mask = View4<const double>{md.data(), 0, 0, d.seq_k, 1};
    ra.o = q.view<double>(o_ref.data()), ra.lse = lse_ref.data();
    attention_forward_ref<double>(ra);

    Dev dq(q.data), dk(k.data), dv(v.data), dm(mask), dout(std::vector<float>(q.data.size(), kNaN));
    Dev dlse(std::vector<float>(lse_ref.size(), kNaN));
    AttentionForwardArgs<float> fa;
    fa.dims = d, fa.scale = ra.scale, fa.causal = causal;
    fa.q = q.view<const float>(dq.ptr()), fa.k = k.view<const float>(dk.ptr()), fa.v = v.view<const float>(dv.ptr());
    if (masked) fa.mask = View4<const float>{dm.ptr(), mask_view.sb, mask_view.sh, mask_view.ss, mask_view.sd};
    fa.o = q.view<float>(dout.ptr()), fa.lse = dlse.ptr();
    cuda::attention_forward(fa);
    // The CPU kernel's bound (2e-6 sqrt(D + Sk) + 1e-6) times 4: __expf is within
    // 2 + 1.16 |x| ulp where the CPU's vector exp is within 2.
    const double tol = 4 * (2e-6 * std::sqrt(double(d.head_dim + d.seq_k)) + 1e-6);
    EXPECT_TRUE(testing::rel_close(dout.download(q.data.size()), o_ref, tol));
    const std::vector<float> lse = dlse.download(lse_ref.size());
    for (std::size_t i = 0; i < lse.size(); ++i)
      ASSERT_TRUE(near(lse[i], lse_ref[i], 1e-5)) << "lse " << i << ": got " << lse[i] << ", want " << lse_ref[i];
    if (d.head_dim > 128) continue;  // the CUDA backward's limit

    // Backward from our forward's O and lse, against the reference's (which recomputes).
    const Dense4 g(rng, d.batch, d.heads, d.seq_q, d.head_dim, bshd);
    const std::vector<double> gd = widen(g.data);
    std::vector<double> dq_ref(q.data.size()), dk_ref(k.data.size()), dv_ref(v.data.size());
    AttentionBackwardArgs<double> rb;
    rb.dims = d, rb.scale = ra.scale, rb.causal = causal, rb.q = ra.q, rb.k = ra.k, rb.v = ra.v;
    rb.o = q.view<const double>(o_ref.data()), rb.d_o = g.view<const double>(gd.data()), rb.mask = ra.mask;
    rb.lse = lse_ref.data();
    rb.dq = q.view<double>(dq_ref.data()), rb.dk = k.view<double>(dk_ref.data()), rb.dv = v.view<double>(dv_ref.data());
    attention_backward_ref<double>(rb);
    Dev dg(g.data), ddq(std::vector<float>(q.data.size(), kNaN)), ddk(std::vector<float>(k.data.size(), kNaN)),
        ddv(std::vector<float>(v.data.size(), kNaN));
    AttentionBackwardArgs<float> fb;
    fb.dims = d, fb.scale = fa.scale, fb.causal = causal, fb.q = fa.q, fb.k = fa.k, fb.v = fa.v, fb.mask = fa.mask;
    fb.o = q.view<const float>(dout.ptr()), fb.d_o = g.view<const float>(dg.ptr()), fb.lse = dlse.ptr();
    fb.dq = q.view<float>(ddq.ptr()), fb.dk = k.view<float>(ddk.ptr()), fb.dv = v.view<float>(ddv.ptr());
    cuda::attention_backward(fb);
    // Ten times the forward's bound, as the CPU kernel's test: D_i and dS cancel.
    EXPECT_TRUE(testing::rel_close(ddq.download(q.data.size()), dq_ref, 10 * tol)) << "dQ";
    EXPECT_TRUE(testing::rel_close(ddk.download(k.data.size()), dk_ref, 10 * tol)) << "dK";
    EXPECT_TRUE(testing::rel_close(ddv.download(v.data.size()), dv_ref, 10 * tol)) << "dV";
  }
}

// 16-bit (bf16, f16) tensor-core attention, forward and backward: against the double
// reference on the rounded inputs. The error comes from P rounded to bf16 before P V (2^-9 relative per weight)
// and O rounded to bf16 (2^-9): bound 1e-2 in norm (docs/design.md's bf16 range); lse is
// FP32 from unrounded probabilities: 1e-5. Odd lengths, grouped heads, both layouts,
// causal rows that see nothing (Sq > Sk), Sk == 0, every compiled head dim and
// zero-padded ones, and a bf16 additive mask broadcast over batch or heads with -inf
// entries (rows of only -inf among them).
template <class H>
void attention_forward16(const AttentionForwardArgs<H>& a, float* lse,
                         cuda::AttentionForwardPath path = cuda::AttentionForwardPath::mma_sync) {
  if constexpr (std::is_same_v<H, float16>) cuda::attention_forward_f16(a, lse, path);
  else cuda::attention_forward_bf16(a, lse, path);
}
template <class H>
void attention_backward16(const AttentionBackwardArgs<H>& a, const float* lse,
                          cuda::AttentionBackwardPath path = cuda::AttentionBackwardPath::deterministic) {
  if constexpr (std::is_same_v<H, float16>) cuda::attention_backward_f16(a, lse, path);
  else cuda::attention_backward_bf16(a, lse, path);
}

// One 16-bit type's run of the test below (H: H or float16).
template <class H>
void check_attention16(testing::Rng& rng, int reps) {
  constexpr bool f16 = std::is_same_v<H, float16>;
  const index_t seqs[] = {0, 1, 33, 64, 65, 130, 257};
  const index_t dims[] = {64, 128, 8, 40, 72, 120};
  double worst = 0, worst_bwd = 0, worst_atomic = 0, worst_wgmma = 0;
  for (int rep = 0; rep < reps; ++rep) {
    AttentionDims d;
    d.batch = rng.integer(1, 2);
    d.kv_heads = rng.integer(1, 2);
    d.heads = d.kv_heads * rng.integer(1, 3);
    d.seq_q = seqs[rng.integer(1, 6)], d.seq_k = seqs[rng.integer(rep % 6 == 0 ? 0 : 1, 6)];
    d.head_dim = dims[rep % 6];
    const bool causal = rng.coin(), bshd = rng.coin(), masked = rep % 3 == 2;
    std::ostringstream what;
    what << (f16 ? "f16 " : "bf16 ") << "B" << d.batch << " H" << d.heads << "/" << d.kv_heads << " Sq" << d.seq_q << " Sk" << d.seq_k << " D"
         << d.head_dim << (causal ? " causal" : "") << (masked ? " mask" : "") << (bshd ? " bshd" : " bhsd");
    SCOPED_TRACE(what.str());
    const Dense4 q(rng, d.batch, d.heads, d.seq_q, d.head_dim, bshd), k(rng, d.batch, d.kv_heads, d.seq_k, d.head_dim, bshd),
        v(rng, d.batch, d.kv_heads, d.seq_k, d.head_dim, bshd);
    // Round to bf16: the kernel's inputs, and the reference's (decoded exactly).
    auto round = [](const std::vector<float>& f, std::vector<std::uint16_t>& bits, std::vector<double>& dec) {
      testing::Rounded16 r = testing::round16(f, f16);
      bits = std::move(r.bits), dec = std::move(r.values);
    };
    std::vector<std::uint16_t> qb, kb, vb;
    std::vector<double> qd, kd, vd;
    round(q.data, qb, qd), round(k.data, kb, kd), round(v.data, vb, vd);
    // The mask (Sq, Sk) per batch, broadcast over heads (stride 0); a tenth -inf, and the
    // first row all -inf (a fully masked row).
    std::vector<float> mf = testing::random_vec<float>(rng, d.batch * d.seq_q * d.seq_k, -2, 2);
    for (std::size_t i = 0; i < mf.size(); ++i)
      if (rng.integer(0, 9) == 0 || index_t(i) % (d.seq_q * d.seq_k) < d.seq_k) mf[i] = -std::numeric_limits<float>::infinity();
    std::vector<std::uint16_t> mb;
    std::vector<double> md;
    round(mf, mb, md);
    const index_t msb = d.seq_q * d.seq_k;
    std::vector<double> o_ref(q.data.size(), 0.0), lse_ref(std::size_t(d.batch * d.heads * d.seq_q), 0.0);
    AttentionForwardArgs<double> ra;
    ra.dims = d, ra.scale = float(1 / std::sqrt(double(d.head_dim))), ra.causal = causal;
    ra.q = q.view<const double>(qd.data()), ra.k = k.view<const double>(kd.data()), ra.v = v.view<const double>(vd.data());
    if (masked) ra.mask = View4<const double>{md.data(), msb, 0, d.seq_k, 1};
    ra.o = q.view<double>(o_ref.data()), ra.lse = lse_ref.data();
    attention_forward_ref<double>(ra);
    auto upload = [](const std::vector<std::uint16_t>& h) {
      Buffer buf(std::max<std::size_t>(h.size(), 8) * 2, Device::cuda(0));
      if (!h.empty()) cuda::copy_bytes(buf.data(), true, h.data(), false, h.size() * 2);
      return buf;
    };
    Buffer dq = upload(qb), dk = upload(kb), dv = upload(vb);
    Buffer dout = upload(std::vector<std::uint16_t>(q.data.size(), 0x7fc0));  // NaN-poisoned
    Dev dlse(std::vector<float>(lse_ref.size(), kNaN));
    AttentionForwardArgs<H> fa;
    fa.dims = d, fa.scale = ra.scale, fa.causal = causal;
    fa.q = q.view<const H>(dq.as<H>()), fa.k = k.view<const H>(dk.as<H>());
    fa.v = v.view<const H>(dv.as<H>()), fa.o = q.view<H>(dout.as<H>());
    Buffer dmask = upload(mb);
    if (masked) fa.mask = View4<const H>{dmask.as<H>(), msb, 0, d.seq_k, 1};
    attention_forward16(fa, dlse.ptr());
    std::vector<std::uint16_t> ob(q.data.size());
    if (!ob.empty()) cuda::copy_bytes(ob.data(), false, dout.data(), true, ob.size() * 2);
    std::vector<double> o(ob.size());
    for (std::size_t i = 0; i < ob.size(); ++i) o[i] = (f16 ? float_from_f16_bits(ob[i]) : float_from_bf16_bits(ob[i]));
    EXPECT_TRUE(testing::rel_close(o, o_ref, 1e-2));
    EXPECT_TRUE(testing::rel_close(dlse.download(lse_ref.size()), lse_ref, 1e-5));
    worst = std::max(worst, testing::relative_error(o, o_ref));
    // The Hopper kernel (wgmma, TMA) where the device has it, into fresh poisoned outputs.
    if (cuda::half_gemm_wgmma_available() && d.seq_q > 0) {
      Buffer wout = upload(std::vector<std::uint16_t>(q.data.size(), 0x7fc0));
      Dev wlse(std::vector<float>(lse_ref.size(), kNaN));
      AttentionForwardArgs<H> wa = fa;
      wa.o = q.view<H>(wout.as<H>());
      attention_forward16(wa, wlse.ptr(), cuda::AttentionForwardPath::wgmma);
      std::vector<std::uint16_t> wb(q.data.size());
      cuda::copy_bytes(wb.data(), false, wout.data(), true, wb.size() * 2);
      std::vector<double> wo(wb.size());
      for (std::size_t i = 0; i < wb.size(); ++i) wo[i] = f16 ? float_from_f16_bits(wb[i]) : float_from_bf16_bits(wb[i]);
      EXPECT_TRUE(testing::rel_close(wo, o_ref, 1e-2)) << "O, wgmma path";
      EXPECT_TRUE(testing::rel_close(wlse.download(lse_ref.size()), lse_ref, 1e-5)) << "lse, wgmma path";
      worst_wgmma = std::max(worst_wgmma, testing::relative_error(wo, o_ref));
    }

    // The backward from our O and lse, against the reference backward from its own: dO
    // rounded to bf16; P and dS rounded to bf16 inside (as the forward's P), dq, dk, dv
    // written as bf16; bound 1e-2 like the forward.
    std::vector<std::uint16_t> gb;
    std::vector<double> gd;
    const std::vector<float> gf = testing::random_vec<float>(rng, index_t(q.data.size()));
    round(gf, gb, gd);
    std::vector<double> dq_ref(q.data.size(), 0.0), dk_ref(k.data.size(), 0.0), dv_ref(v.data.size(), 0.0);
    AttentionBackwardArgs<double> rb;
    rb.dims = d, rb.scale = ra.scale, rb.causal = causal, rb.q = ra.q, rb.k = ra.k, rb.v = ra.v, rb.mask = ra.mask;
    rb.o = q.view<const double>(o_ref.data()), rb.d_o = q.view<const double>(gd.data()), rb.lse = lse_ref.data();
    rb.dq = q.view<double>(dq_ref.data()), rb.dk = k.view<double>(dk_ref.data()), rb.dv = v.view<double>(dv_ref.data());
    attention_backward_ref<double>(rb);
    Buffer dgo = upload(gb);
    Buffer ddq = upload(std::vector<std::uint16_t>(q.data.size(), 0x7fc0)), ddk = upload(std::vector<std::uint16_t>(k.data.size(), 0x7fc0));
    Buffer ddv = upload(std::vector<std::uint16_t>(v.data.size(), 0x7fc0));
    AttentionBackwardArgs<H> ba;
    ba.dims = d, ba.scale = fa.scale, ba.causal = causal, ba.q = fa.q, ba.k = fa.k, ba.v = fa.v, ba.mask = fa.mask;
    ba.o = q.view<const H>(dout.as<H>()), ba.d_o = q.view<const H>(dgo.as<H>());
    ba.dq = q.view<H>(ddq.as<H>()), ba.dk = k.view<H>(ddk.as<H>());
    ba.dv = v.view<H>(ddv.as<H>());
    attention_backward16(ba, dlse.ptr());
    auto decode = [](Buffer& buf, std::size_t n) {
      std::vector<std::uint16_t> h(n);
      if (n) cuda::copy_bytes(h.data(), false, buf.data(), true, n * 2);
      std::vector<double> out(n);
      for (std::size_t i = 0; i < n; ++i) out[i] = (f16 ? float_from_f16_bits(h[i]) : float_from_bf16_bits(h[i]));
      return out;
    };
    const std::vector<double> gq = decode(ddq, q.data.size()), gk = decode(ddk, k.data.size());
    const std::vector<double> gv = decode(ddv, v.data.size());
    EXPECT_TRUE(testing::rel_close(gq, dq_ref, 1e-2)) << "dq";
    EXPECT_TRUE(testing::rel_close(gk, dk_ref, 1e-2)) << "dk";
    EXPECT_TRUE(testing::rel_close(gv, dv_ref, 1e-2)) << "dv";
    worst_bwd = std::max({worst_bwd, testing::relative_error(gq, dq_ref), testing::relative_error(gk, dk_ref),
                          testing::relative_error(gv, dv_ref)});

    // The atomic path into fresh poisoned outputs: dQ within the same bound; dK and dV
    // are the same arithmetic as the deterministic path's (only dQ's sums move), so
    // within 1e-3 of its results (not bit-equal: the compiler may contract a kernel
    // variant's products differently).
    Buffer adq = upload(std::vector<std::uint16_t>(q.data.size(), 0x7fc0)), adk = upload(std::vector<std::uint16_t>(k.data.size(), 0x7fc0));
    Buffer adv = upload(std::vector<std::uint16_t>(v.data.size(), 0x7fc0));
    AttentionBackwardArgs<H> aa = ba;
    aa.dq = q.view<H>(adq.as<H>()), aa.dk = k.view<H>(adk.as<H>()), aa.dv = v.view<H>(adv.as<H>());
    attention_backward16(aa, dlse.ptr(), cuda::AttentionBackwardPath::atomic_dq);
    const std::vector<double> aq = decode(adq, q.data.size());
    EXPECT_TRUE(testing::rel_close(aq, dq_ref, 1e-2)) << "dq, atomic path";
    EXPECT_TRUE(testing::rel_close(decode(adk, k.data.size()), gk, 1e-3)) << "dk, atomic path";
    EXPECT_TRUE(testing::rel_close(decode(adv, v.data.size()), gv, 1e-3)) << "dv, atomic path";
    worst_atomic = std::max(worst_atomic, testing::relative_error(aq, dq_ref));
  }
  const std::string name = f16 ? "f16" : "bf16";
  ::testing::Test::RecordProperty(name + "_attention_worst_relative_error", std::to_string(worst));
  ::testing::Test::RecordProperty(name + "_attention_backward_worst_relative_error", std::to_string(worst_bwd));
  ::testing::Test::RecordProperty(name + "_attention_atomic_dq_worst_relative_error", std::to_string(worst_atomic));
  ::testing::Test::RecordProperty(name + "_attention_wgmma_worst_relative_error", std::to_string(worst_wgmma));
  std::printf("%s attention: worst relative norm error forward %.2e (wgmma %.2e), backward %.2e, atomic dQ %.2e "
              "(bound 1e-2)\n",
              name.c_str(), worst, worst_wgmma, worst_bwd, worst_atomic);
}

// Both 16-bit types (the same kernels; f16's P and dS are rounded to f16, closer).
TEST(CudaAttention, SixteenBitAttentionMatchesTheReferenceOnItsRoundedInputs) {
  TG_REQUIRE_GPU();
  TG_TEST_RNG(rng);
  check_attention16<bfloat16>(rng, 36);
  check_attention16<float16>(rng, 24);
  // What the path does not take is a clear error: a head dim it has no kernel for.
  for (index_t bad_dim : {index_t(100), index_t(136)}) {
    AttentionForwardArgs<bfloat16> bad;
    bad.dims = {1, 1, 1, 4, 4, bad_dim};
    Buffer any(4096, Device::cuda(0));
    bad.q = {any.as<bfloat16>(), 0, 0, 136, 1}, bad.k = bad.q, bad.v = bad.q, bad.o = {any.as<bfloat16>(), 0, 0, 136, 1};
    try {
      cuda::attention_forward_bf16(bad, nullptr);
      ADD_FAILURE() << "expected tg::Error for head dim " << bad_dim;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("head_dim"), std::string::npos) << e.what();
    }
  }
  // A forward path that does not exist, and the wgmma path where the device has none.
  {
    AttentionForwardArgs<bfloat16> fwd;
    fwd.dims = {1, 1, 1, 4, 4, 64};
    Buffer buf(8192, Device::cuda(0));
    fwd.q = {buf.as<bfloat16>(), 0, 0, 64, 1}, fwd.k = fwd.q, fwd.v = fwd.q, fwd.o = {buf.as<bfloat16>() + 2048, 0, 0, 64, 1};
    const std::vector<cuda::AttentionForwardPath> bad_paths =
        cuda::half_gemm_wgmma_available()
            ? std::vector<cuda::AttentionForwardPath>{static_cast<cuda::AttentionForwardPath>(9)}
            : std::vector<cuda::AttentionForwardPath>{static_cast<cuda::AttentionForwardPath>(9), cuda::AttentionForwardPath::wgmma};
    for (cuda::AttentionForwardPath p : bad_paths) {
      try {
        cuda::attention_forward_bf16(fwd, nullptr, p);
        ADD_FAILURE() << "expected tg::Error for forward path " << int(p);
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("path"), std::string::npos) << e.what();
      }
    }
  }
  // And a backward path that does not exist.
  AttentionBackwardArgs<bfloat16> bad;
  bad.dims = {1, 1, 1, 4, 4, 64};
  Buffer any(4096, Device::cuda(0));
  try {
    cuda::attention_backward_bf16(bad, any.as<float>(), static_cast<cuda::AttentionBackwardPath>(7));
    ADD_FAILURE() << "expected tg::Error for backward path 7";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("path"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tg
