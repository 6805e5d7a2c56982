// Shared pieces of the fuzz targets (fuzz/README.md): the entry point each defines, and
// a scratch file for the loaders that read paths.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace tg::fuzz {

// A scratch file name, one per process and suffix (under /dev/shm where it exists, so
// the disk is not the bottleneck).
inline std::string scratch_path(const char* suffix) {
  const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  return std::string(dir) + "/tg_fuzz_" + std::to_string(getpid()) + suffix;
}

// The input as a file, for loaders that take a path: rewritten per input.
inline std::string as_file(const std::uint8_t* data, std::size_t size, const char* suffix) {
  const std::string path = scratch_path(suffix);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path);
  const bool ok = std::fwrite(data, 1, size, f) == size;
  std::fclose(f);
  if (!ok) throw std::runtime_error("cannot write " + path);
  return path;
}

}  // namespace tg::fuzz
