// What every example shares: the command line (--device cpu|cuda, --threads, --seed,
// --epochs, --out DIR, plus the example's own flags), the final `result key=value ...`
// line that scripts read, and small CSV writing.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cpu/isa.hpp"
#include "kernels/error.hpp"
#include "kernels/types.hpp"

namespace examples {

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
  // The flag's value as a number, or `fallback` when absent; exits 2 with a message
  // naming the flag when the value is not a number.
  double number(const std::string& name, double fallback) const {
    auto it = flags.find(name);
    if (it == flags.end()) return fallback;
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(it->second, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != it->second.size()) {
      std::fprintf(stderr, "bad value for --%s: expected a number, got '%s'\n", name.c_str(), it->second.c_str());
      std::exit(2);
    }
    return v;
  }
  // --amp bf16|f16 as the autocast dtype (f32 when absent: autocast off); exits 2 with a
  // message naming the flag on anything else.
  tg::DType amp() const {
    const std::string v = get("amp", "off");
    if (v == "off") return tg::DType::f32;
    if (v == "bf16") return tg::DType::bf16;
    if (v == "f16") return tg::DType::f16;
    std::fprintf(stderr, "bad value for --amp: expected bf16 or f16, got '%s'\n", v.c_str());
    std::exit(2);
  }
  // How --amp reads in a run's opening line.
  static const char* amp_name(tg::DType amp) {
    return amp == tg::DType::f32 ? "f32" : amp == tg::DType::bf16 ? "bf16 autocast" : "f16 autocast + loss scaling";
  }
};

// Parses argv; `own` lists the example's own flags ("resume" takes a value when it is
// given as "resume=", a switch otherwise). Prints usage and exits 2 on anything else.
// `devices`: the example moves its model and data to --device (else only cpu is accepted).
inline Args parse_args(int argc, char** argv, const std::string& usage, const std::vector<std::string>& own = {},
                       bool devices = false) {
  Args a;
  auto fail = [&](const std::string& why) {
    std::fprintf(stderr, "%s: %s\nusage: %s [--device cpu|cuda] [--threads N] [--seed N] [--epochs N] [--out DIR]%s\n",
                 argv[0], why.c_str(), argv[0], usage.c_str());
    std::exit(2);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail("missing value after " + k);
      return argv[++i];
    };
    try {
      if (k == "--device") a.device = tg::Device::parse(value());
      else if (k == "--threads") a.threads = std::stoi(value());
      else if (k == "--seed") a.seed = std::stoull(value());
      else if (k == "--epochs") a.epochs = std::stoi(value());
      else if (k == "--out") a.out = value();
      else if (k == "-h" || k == "--help") fail("help");
      else {
        bool known = false;
        for (const std::string& o : own) {
          const bool takes_value = !o.empty() && o.back() == '=';
          const std::string name = takes_value ? o.substr(0, o.size() - 1) : o;
          if (k == "--" + name) {
            a.flags[name] = takes_value ? value() : "1";
            known = true;
          }
        }
        if (!known) fail("unknown argument " + k);
      }
    } catch (const std::exception& e) {
      fail(std::string("bad value: ") + e.what());
    }
  }
  // A tg::Error that reaches main (a bad flag value, a missing data file) ends the run
  // with its message and exit status 1, not an abort.
  std::set_terminate([] {
    if (std::exception_ptr e = std::current_exception()) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::fprintf(stderr, "error: %s\n", x.what());
      } catch (...) {
        std::fprintf(stderr, "error: unknown exception\n");
      }
    }
    std::fflush(stdout);
    std::_Exit(1);
  });
  if (a.threads > 0) tg::cpu::set_num_threads(a.threads);
  if (!a.device.is_cpu() && !devices) fail("this example runs on the CPU only (mlp_fashion and tiny_transformer take --device cuda)");
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
