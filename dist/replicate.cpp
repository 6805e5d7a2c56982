// replicate_parameters (dist/replicate.hpp).
#include "tilegrad/dist/replicate.hpp"

#include <cstdint>
#include <cstring>
#include <string>

#include "tilegrad/autograd/modes.hpp"
#include "tilegrad/kernels/error.hpp"

namespace tg::dist {

namespace {

// FNV-1a over bytes: a fingerprint of the parameters, compared across ranks.
constexpr std::uint64_t kFnvBasis = 0xcbf29ce484222325ull;
std::uint64_t fnv(std::uint64_t h, const void* p, std::size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

Tensor i64_tensor(index_t n) { return make_tensor(std::vector<index_t>{n}, DType::i64, Device::cpu()); }

}  // namespace

void replicate_parameters(ProcessGroup& group, const std::vector<Tensor>& params, const std::vector<Tensor>& buffers,
                          const char* op, const char* arg) {
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    const std::string which = "parameter " + std::to_string(i);
    TG_CHECK(p.device() == params[0].device(), op, arg, which, " is on ", p.device().str(), ", parameter 0 on ",
             params[0].device().str(), ": expected every parameter on one device");
    TG_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64, op, arg, which, " is ", dtype_name(p.dtype()),
             ": expected f32 or f64");
    TG_CHECK(p.is_contiguous(), op, arg, which, " is not contiguous");
  }

  // The same parameter list on every rank: count, then each one's size and dtype, as a
  // fingerprint gathered from every rank.
  std::uint64_t layout = kFnvBasis;
  for (const Tensor& p : params) {
    const std::int64_t d[3] = {std::int64_t(p.dtype()), std::int64_t(p.numel()), std::int64_t(p.device().type)};
    layout = fnv(layout, d, sizeof d);
  }
  const int N = group.size();
  auto same_everywhere = [&](std::uint64_t v, const char* what) {
    Tensor mine = i64_tensor(1), all = i64_tensor(N);
    std::memcpy(mine.raw_data(), &v, 8);
    group.all_gather(all, mine);
    for (int r = 0; r < N; ++r)
      TG_CHECK(std::memcmp(all.data<std::int64_t>() + r, &v, 8) == 0, op, arg, "rank ", r, " has different ", what,
               " from rank ", group.rank());
  };
  same_everywhere(layout, "parameters (their count, sizes, dtypes or device kind)");

  // Rank 0's values everywhere, then checked.
  {
    NoGradGuard no_grad;
    for (const Tensor& p : params) group.broadcast(p, 0);
    for (const Tensor& b : buffers) group.broadcast(b, 0);
  }
  std::uint64_t values = kFnvBasis;
  for (const Tensor& p : params) {
    const Tensor host = p.device().is_cpu() ? p : p.detach().to(Device::cpu());
    values = fnv(values, host.raw_data(), std::size_t(host.numel()) * dtype_size(host.dtype()));
  }
  same_everywhere(values, "parameter values after the broadcast");
}

}  // namespace tg::dist
