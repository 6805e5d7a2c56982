// Kokkos as a second oracle for reductions: a TeamPolicy with one team per row and a
// TeamThreadRange parallel_reduce, written against the default execution space so a
// Kokkos build with OpenMP or CUDA runs it in parallel. Compiled as C++17 (Debian's
// Kokkos 3.4 is C++14-era code).
#include <Kokkos_Core.hpp>

#include <string>
#include <vector>

namespace tg {

// Plain long in the interface: this C++17 unit cannot include tilegrad's C++20 headers.
std::vector<double> kokkos_row_sums(const std::vector<double>& x, long rows, long cols,
                                    std::string* devices) {
  // Kokkos may be initialized once per process; a ScopeGuard would finalize it early.
  if (!Kokkos::is_initialized()) Kokkos::initialize();
  *devices = TG_KOKKOS_DEVICES;
  std::vector<double> out(static_cast<std::size_t>(rows));
  {
    Kokkos::View<double**, Kokkos::LayoutRight> dx("x", rows, cols);
    Kokkos::View<double*> dy("y", rows);
    auto hx = Kokkos::create_mirror_view(dx);
    for (long i = 0; i < rows; ++i)
      for (long j = 0; j < cols; ++j) hx(i, j) = x[std::size_t(i * cols + j)];
    Kokkos::deep_copy(dx, hx);
    using Team = Kokkos::TeamPolicy<>::member_type;
    Kokkos::parallel_for(
        "row_sums", Kokkos::TeamPolicy<>(int(rows), Kokkos::AUTO), KOKKOS_LAMBDA(const Team& t) {
          const int i = t.league_rank();
          double s = 0;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(t, int(cols)), [&](int j, double& acc) { acc += dx(i, j); }, s);
          Kokkos::single(Kokkos::PerTeam(t), [&] { dy(i) = s; });
        });
    auto hy = Kokkos::create_mirror_view(dy);
    Kokkos::deep_copy(hy, dy);
    for (long i = 0; i < rows; ++i) out[std::size_t(i)] = hy(i);
  }
  return out;
}

}  // namespace tg
