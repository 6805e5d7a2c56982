// A small, strict JSON reader and writer for the safetensors header: RFC 8259 values,
// integers kept exact (64-bit) apart from doubles, nesting limited to 64 levels, every
// error a tg::Error with the byte offset. Strings must be well-formed UTF-8, as RFC
// 8259 requires of JSON text exchanged between systems (the reference safetensors
// implementation refuses a header that is not). Objects keep their keys in file order,
// duplicates included (the caller decides whether a duplicate is an error).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tilegrad/kernels/files.hpp"

namespace tg::nn {

struct JsonMember;  // a key and its value, defined below (a pair would need Json complete)

struct Json {
  enum class Kind { null, boolean, number, string, array, object } kind = Kind::null;
  bool boolean = false;
  double number = 0;
  bool integral = false;     // a number written without fraction or exponent
  std::int64_t integer = 0;  // its value, when integral and in range
  std::string string;
  std::vector<Json> array;
  std::vector<JsonMember> object;  // in file order, duplicates kept
};

struct JsonMember {
  std::string key;
  Json value;
};

// Parses one value spanning the whole text (surrounding whitespace allowed). `what`
// names the document in errors ("header of model.safetensors").
Json parse_json(std::string_view text, const std::string& what);
// A JSON string literal for s (kernels/files.hpp).
using tg::json_quote;
// Where s stops being well-formed UTF-8 (an overlong form, a surrogate, a code point
// past U+10FFFF, a stray or missing continuation byte): the byte offset, or npos.
std::size_t utf8_error(std::string_view s);

}  // namespace tg::nn
