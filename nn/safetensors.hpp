// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON ({name: {"dtype", "shape",
// "data_offsets": [begin, end]}, optional "__metadata__": {string: string}}), then the
// raw little-endian data, offsets relative to its start. Files round-trip with
// Python's safetensors and PyTorch (dtypes F32, F64, I64 here).
//
// Saving is atomic: a temporary file in the same directory, fsync, rename; a failure
// leaves no partial file. Loading trusts nothing before checking it: the header length
// against the file size, the JSON, each entry's dtype, shape and offsets (in bounds,
// consistent with dtype and shape, no overlap, no gap: together they cover the data
// exactly), no duplicate names. A corrupt or hostile file is a tg::Error saying what is
// wrong, never a crash or a read past the buffer.
#pragma once

#include <map>
#include <string>

#include "tilegrad/kernels/files.hpp"
#include "tilegrad/nn/module.hpp"

namespace tg::nn {

using Metadata = std::map<std::string, std::string>;

void save_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata = {});
StateDict load_safetensors(const std::string& path, Metadata* metadata = nullptr);
// The same from bytes in memory (load_safetensors reads the file, then calls this).
StateDict parse_safetensors(const std::string& bytes, const std::string& what, Metadata* metadata = nullptr);

// Writes bytes to path atomically (kernels/files.hpp).
using tg::write_file_atomic;

}  // namespace tg::nn
