#include "tilegrad/nn/safetensors.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_set>

#include "tilegrad/kernels/error.hpp"
#include "tilegrad/nn/json.hpp"

namespace tg::nn {

namespace {

constexpr std::uint64_t kMaxHeader = std::uint64_t(100) << 20;  // as the reference implementation

const char* dtype_tag(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
    default: return nullptr;
  }
}

bool dtype_from_tag(const std::string& s, DType& t) {
  if (s == "F32") t = DType::f32;
  else if (s == "F64") t = DType::f64;
  else if (s == "I64") t = DType::i64;
  else if (s == "BF16") t = DType::bf16;
  else if (s == "F16") t = DType::f16;
  else return false;
  return true;
}

// Bytes of a contiguous host copy of t (little-endian: this library runs on x86-64).
std::string bytes_of(const Tensor& t) {
  const Tensor c = t.detach().to(Device::cpu()).contiguous();
  return std::string(static_cast<const char*>(c.raw_data()), std::size_t(c.numel()) * dtype_size(c.dtype()));
}

// A JSON shape array as written, for messages: "[4611686018427387904, 4]".
std::string dims_text(const std::vector<Json>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += dims[i].integral ? std::to_string(dims[i].integer) : "?";
  }
  return s + "]";
}

}  // namespace


void save_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata) {
  // The header is JSON, so UTF-8: a name or metadata string that is not would make a
  // file no reader accepts (this one's included).
  auto check_utf8 = [](const std::string& s, const char* arg, const char* what) {
    const std::size_t at = utf8_error(s);
    TG_CHECK(at == std::string::npos, "save_safetensors", arg, what, " ", json_quote(s.substr(0, at)),
             "... is not valid UTF-8 at byte ", at, " (the header is JSON, which must be UTF-8)");
  };
  for (const auto& [k, v] : metadata) check_utf8(k, "metadata", "key"), check_utf8(v, "metadata", "value");
  for (const auto& [name, t] : tensors) check_utf8(name, "tensors", "name");
  std::string header = "{";
  std::string data;
  bool first = true;
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (auto it = metadata.begin(); it != metadata.end(); ++it) {
      if (it != metadata.begin()) header += ',';
      header += json_quote(it->first);
      header += ':';
      header += json_quote(it->second);
    }
    header += "}";
    first = false;
  }
  for (const auto& [name, t] : tensors) {  // a std::map: sorted by name, as the reference writes them
    TG_CHECK(name != "__metadata__", "save_safetensors", "tensors", "the name __metadata__ is reserved");
    TG_CHECK(t.defined(), "save_safetensors", "tensors", "tensor ", name, " is undefined");
    const char* tag = dtype_tag(t.dtype());
    TG_CHECK(tag != nullptr, "save_safetensors", "tensors", "tensor ", name, " has dtype ", dtype_name(t.dtype()),
             "; F32, F64, BF16, F16 and I64 are supported");
    const std::size_t begin = data.size();
    data += bytes_of(t);
    // Appended piece by piece (GCC 12 warns falsely on chained operator+ here).
    if (!first) header += ',';
    header += json_quote(name);
    header += ":{\"dtype\":\"";
    header += tag;
    header += "\",\"shape\":[";
    for (int d = 0; d < t.dim(); ++d) {
      if (d) header += ',';
      header += std::to_string(t.size(d));
    }
    header += "],\"data_offsets\":[";
    header += std::to_string(begin);
    header += ',';
    header += std::to_string(data.size());
    header += "]}";
    first = false;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  for (int k = 0; k < 8; ++k) out[std::size_t(k)] = char((n >> (8 * k)) & 0xFF);
  out += header;
  out += data;
  write_file_atomic(path, out);
}

StateDict load_safetensors(const std::string& path, Metadata* metadata) {
  std::ifstream in(path, std::ios::binary);
  TG_CHECK(in.good(), "load_safetensors", "path", "cannot open ", path, ": ", std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  TG_CHECK(!in.bad(), "load_safetensors", "path", "cannot read ", path);
  return parse_safetensors(s.str(), path, metadata);
}

StateDict parse_safetensors(const std::string& bytes, const std::string& what, Metadata* metadata) {
  const char* op = "load_safetensors";
  TG_CHECK(bytes.size() >= 8, op, "file", what, ": ", bytes.size(), " bytes, shorter than the 8-byte header length");
  std::uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | static_cast<unsigned char>(bytes[std::size_t(k)]);
  TG_CHECK(n <= kMaxHeader, op, "file", what, ": header length ", n, " exceeds the 100 MiB limit");
  TG_CHECK(n <= bytes.size() - 8, op, "file", what, ": header length ", n, " runs past the end of the file (",
           bytes.size(), " bytes)");
  const Json header = parse_json(std::string_view(bytes).substr(8, std::size_t(n)), what + " header");
  TG_CHECK(header.kind == Json::Kind::object, op, "file", what, ": the header is not a JSON object");
  const std::uint64_t data_size = bytes.size() - 8 - n;
  const char* data = bytes.data() + 8 + n;

  struct Entry {
    std::string name;
    DType dtype;
    std::vector<index_t> shape;
    std::uint64_t begin, end;
  };
  std::vector<Entry> entries;
  entries.reserve(header.object.size());
  std::unordered_set<std::string_view> names;  // a hash set: files of 10^5 entries load in linear time
  names.reserve(header.object.size());
  for (const auto& [name, v] : header.object) {
    TG_CHECK(names.insert(name).second, op, "file", what, ": duplicate name ", name);
    if (name == "__metadata__") {
      TG_CHECK(v.kind == Json::Kind::object, op, "file", what, ": __metadata__ must map strings to strings");
      for (const auto& [k, mv] : v.object) {
        TG_CHECK(mv.kind == Json::Kind::string, op, "file", what, ": __metadata__ value of ", k, " is not a string");
        if (metadata) (*metadata)[k] = mv.string;
      }
      continue;
    }
    TG_CHECK(v.kind == Json::Kind::object, op, "file", what, ": entry ", name, " is not an object");
    const Json *dt = nullptr, *shape = nullptr, *offsets = nullptr;
    for (const auto& [k, field] : v.object) {
      if (k == "dtype" && !dt) dt = &field;
      else if (k == "shape" && !shape) shape = &field;
      else if (k == "data_offsets" && !offsets) offsets = &field;
      else detail::throw_error(op, "file", what, ": entry ", name, " has an unexpected or repeated field ", k);
    }
    TG_CHECK(dt && shape && offsets, op, "file", what, ": entry ", name, " needs dtype, shape and data_offsets");
    Entry e{name, DType::f32, {}, 0, 0};
    TG_CHECK(dt->kind == Json::Kind::string && dtype_from_tag(dt->string, e.dtype), op, "file", what, ": entry ", name,
             " has dtype ", dt->kind == Json::Kind::string ? dt->string : "(not a string)",
             "; F32, F64, BF16, F16 and I64 are supported");
    TG_CHECK(shape->kind == Json::Kind::array && shape->array.size() <= std::size_t(Shape::kMaxRank), op, "file",
             what, ": entry ", name, " needs a shape of at most ", Shape::kMaxRank, " dims");
    // The element count, and the product of the non-zero dims (the largest stride a
    // tensor of this shape would have), must fit in int64: [2^62, 4] overflows the
    // first, [0, 2^62, 8] only the second.
    std::int64_t numel = 1, span = 1;
    for (const Json& d : shape->array) {
      TG_CHECK(d.kind == Json::Kind::number && d.integral && d.integer >= 0, op, "file", what, ": entry ", name,
               " has a shape entry that is not a non-negative integer");
      e.shape.push_back(d.integer);
      TG_CHECK(!__builtin_mul_overflow(numel, d.integer, &numel) &&
                   !__builtin_mul_overflow(span, std::max<std::int64_t>(d.integer, 1), &span),
               op, "file", what, ": entry ", name, " has shape ", dims_text(shape->array),
               ", whose element count or strides overflow 64-bit indexing");
    }
    TG_CHECK(offsets->kind == Json::Kind::array && offsets->array.size() == 2 &&
                 offsets->array[0].kind == Json::Kind::number && offsets->array[0].integral &&
                 offsets->array[0].integer >= 0 && offsets->array[1].kind == Json::Kind::number &&
                 offsets->array[1].integral && offsets->array[1].integer >= 0,
             op, "file", what, ": entry ", name, " needs data_offsets [begin, end] of non-negative integers");
    e.begin = std::uint64_t(offsets->array[0].integer);
    e.end = std::uint64_t(offsets->array[1].integer);
    TG_CHECK(e.begin <= e.end && e.end <= data_size, op, "file", what, ": entry ", name, " has data_offsets [", e.begin,
             ", ", e.end, "] outside the ", data_size, " data bytes");
    std::int64_t need = 0;
    TG_CHECK(!__builtin_mul_overflow(numel, std::int64_t(dtype_size(e.dtype)), &need), op, "file", what, ": entry ",
             name, " has shape ", dims_text(shape->array), " of ", dt->string, ", more than 2^63 bytes");
    TG_CHECK(std::uint64_t(need) == e.end - e.begin, op, "file", what, ": entry ", name, " holds ", e.end - e.begin,
             " bytes, its dtype and shape need ", need);
    entries.push_back(std::move(e));
  }
  // Together the entries must tile the data: sorted by offset, each starts where the
  // last ended, the last ends at the end.
  std::vector<const Entry*> order;
  for (const Entry& e : entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  std::uint64_t at = 0;
  for (const Entry* e : order) {
    TG_CHECK(e->begin == at, op, "file", what, ": entry ", e->name, " starts at byte ", e->begin,
             e->begin < at ? " inside the previous entry (overlap)" : " after a gap", " (expected ", at, ")");
    at = e->end;
  }
  TG_CHECK(at == data_size, op, "file", what, ": the entries cover ", at, " of the ", data_size, " data bytes");

  StateDict out;
  for (const Entry& e : entries) {
    Tensor t = make_tensor(e.shape, e.dtype, Device::cpu());
    if (e.end > e.begin) std::memcpy(t.raw_data(), data + e.begin, std::size_t(e.end - e.begin));
    out[e.name] = t;
  }
  return out;
}

}  // namespace tg::nn
