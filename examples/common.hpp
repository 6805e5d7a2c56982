// What every example shares: the command line (--device cpu|cuda, --threads, --seed,
// --epochs, --out DIR, plus the example's own flags), the final `result key=value ...`
// line that scripts read, and small CSV writing.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tilegrad/cpu/isa.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/kernels/types.hpp"

namespace examples {

// A bad command line: its message names the flag and what it expected. parse_args
// prints it with the usage and exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// s as a whole decimal integer of type I in [lo, hi], or a UsageError naming the flag
// (std::stoi and friends take "3abc" as 3 and "-1" as 2^64 - 1 for an unsigned).
template <class I = long long>
I parse_integer(const std::string& flag, const std::string& s, I lo = std::numeric_limits<I>::min(),
                I hi = std::numeric_limits<I>::max()) {
  I v = 0;
  const char* end = s.data() + s.size();
  const auto [p, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc() || p != end || v < lo || v > hi)
    throw UsageError("bad value for --" + flag + ": expected an integer in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "], got '" + s + "'");
  return v;
}

struct Args {
  tg::Device device = tg::Device::cpu();
  int threads = 0;  // 0: leave OpenMP's default
  std::uint64_t seed = 0;
  int epochs = -1;  // -1: the example's default
  std::string out;  // where files go ("" = none)
  std::map<std::string, std::string> flags;  // the example's own --name value / --name

  bool has(const std::string& name) const { return flags.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback) const {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : it->second;
  }
  // The flag's value as a finite number, or `fallback` when absent; a UsageError naming
  // the flag otherwise.
  double number(const std::string& name, double fallback) const {
    auto it = flags.find(name);
    if (it == flags.end()) return fallback;
    const std::string& s = it->second;
    double v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v))
      throw UsageError("bad value for --" + name + ": expected a finite number, got '" + s + "'");
    return v;
  }
  // The flag's value as an integer in [lo, hi] (sizes, counts), or `fallback` when absent.
  tg::index_t count(const std::string& name, tg::index_t fallback, tg::index_t lo, tg::index_t hi) const {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : parse_integer<tg::index_t>(name, it->second, lo, hi);
  }
  // --amp bf16|f16 as the autocast dtype (f32 when absent: autocast off).
  tg::DType amp() const {
    const std::string v = get("amp", "off");
    if (v == "off") return tg::DType::f32;
    if (v == "bf16") return tg::DType::bf16;
    if (v == "f16") return tg::DType::f16;
    throw UsageError("bad value for --amp: expected bf16 or f16, got '" + v + "'");
  }
  // How --amp reads in a run's opening line.
  static const char* amp_name(tg::DType amp) {
    return amp == tg::DType::f32 ? "f32" : amp == tg::DType::bf16 ? "bf16 autocast" : "f16 autocast + loss scaling";
  }
};

// The command line as Args, without side effects: `own` lists the example's own flags
// ("resume=" takes a value, "quick" is a switch). Throws UsageError on an unknown flag,
// a missing value, or a value out of its range (--threads 1-4096, --epochs 1-10^6,
// --seed any 64-bit unsigned, --device as Device::parse takes it).
inline Args parse_command_line(int argc, const char* const* argv, const std::vector<std::string>& own = {}) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError("missing value after " + k);
      return argv[++i];
    };
    if (k == "--device") {
      const std::string v = value();
      try {
        a.device = tg::Device::parse(v);
      } catch (const tg::Error& e) {
        throw UsageError(std::string("bad value for --device: ") + e.what());
      }
    } else if (k == "--threads") {
      a.threads = int(parse_integer<long long>("threads", value(), 1, 4096));
    } else if (k == "--seed") {
      a.seed = parse_integer<std::uint64_t>("seed", value());
    } else if (k == "--epochs") {
      a.epochs = int(parse_integer<long long>("epochs", value(), 1, 1000000));
    } else if (k == "--out") {
      a.out = value();
      if (a.out.empty()) throw UsageError("bad value for --out: expected a directory, got ''");
    } else if (k == "-h" || k == "--help") {
      throw UsageError("help");
    } else {
      bool known = false;
      for (const std::string& o : own) {
        const bool takes_value = !o.empty() && o.back() == '=';
        const std::string name = takes_value ? o.substr(0, o.size() - 1) : o;
        if (k == "--" + name) {
          a.flags[name] = takes_value ? value() : "1";
          known = true;
        }
      }
      if (!known) throw UsageError("unknown argument " + k);
    }
  }
  return a;
}

// parse_command_line, then what a run needs: a bad command line prints its message and
// the usage and exits 2, as does a UsageError from a flag read later (Args::number,
// count, amp); another exception that reaches main (a missing data file) ends the run
// with its message and exit status 1, not an abort. Sets the thread count and makes
// --out's directory. `devices`: the example moves its model and data to --device (else
// only cpu is accepted).
inline Args parse_args(int argc, char** argv, const std::string& usage, const std::vector<std::string>& own = {},
                       bool devices = false) {
  static std::string usage_line;
  usage_line = std::string("usage: ") + argv[0] + " [--device cpu|cuda] [--threads N] [--seed N] [--epochs N] [--out DIR]" +
               usage;
  Args a;
  try {
    a = parse_command_line(argc, argv, own);
    if (!a.device.is_cpu() && !devices)
      throw UsageError("this example runs on the CPU only (mlp_fashion and tiny_transformer take --device cuda)");
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: %s\n%s\n", argv[0], e.what(), usage_line.c_str());
    std::exit(2);
  }
  std::set_terminate([] {
    int status = 1;
    if (std::exception_ptr e = std::current_exception()) {
      try {
        std::rethrow_exception(e);
      } catch (const UsageError& x) {
        std::fprintf(stderr, "%s\n%s\n", x.what(), usage_line.c_str());
        status = 2;
      } catch (const std::exception& x) {
        std::fprintf(stderr, "error: %s\n", x.what());
      } catch (...) {
        std::fprintf(stderr, "error: unknown exception\n");
      }
    }
    std::fflush(stdout);
    std::_Exit(status);
  });
  if (a.threads > 0) tg::cpu::set_num_threads(a.threads);
  if (!a.out.empty()) std::filesystem::create_directories(a.out);
  return a;
}

// The machine-readable last line: "result k1=v1 k2=v2".
class Result {
 public:
  Result& add(const std::string& k, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    items_.push_back(k + "=" + buf);
    return *this;
  }
  Result& add(const std::string& k, const std::string& v) {
    items_.push_back(k + "=" + v);
    return *this;
  }
  void print() const {
    std::string line = "result";
    for (const std::string& s : items_) line += " " + s;
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }

 private:
  std::vector<std::string> items_;
};

// Writes a CSV with a header; rows of doubles.
inline void write_csv(const std::string& path, const std::vector<std::string>& header,
                      const std::vector<std::vector<double>>& rows) {
  std::ofstream f(path);
  TG_CHECK(f.good(), "write_csv", "path", "cannot write ", path);
  for (std::size_t i = 0; i < header.size(); ++i) f << (i ? "," : "") << header[i];
  f << "\n";
  f.precision(9);
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) f << (i ? "," : "") << r[i];
    f << "\n";
  }
}

}  // namespace examples
