#include "tilegrad/nn/json.hpp"

#include <charconv>
#include <cstdio>

#include "tilegrad/kernels/error.hpp"

namespace tg::nn {

namespace {

// Bytes of the well-formed UTF-8 sequence starting s (Unicode 15, table 3-7), 0 if
// there is none: a stray continuation byte, C0, C1, F5-FF, an overlong form, a
// surrogate (ED A0-BF), a code point past U+10FFFF (F4 90-BF), a short sequence.
std::size_t utf8_length(std::string_view s) {
  auto byte = [&](std::size_t k) { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0u; };
  const unsigned b0 = byte(0);
  if (b0 < 0x80) return s.empty() ? 0 : 1;
  std::size_t len;
  unsigned lo = 0x80, hi = 0xBF;  // the range allowed for the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) len = 2;
  else if (b0 >= 0xE0 && b0 <= 0xEF) len = 3, lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
  else if (b0 >= 0xF0 && b0 <= 0xF4) len = 4, lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
  else return 0;
  if (byte(1) < lo || byte(1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k)
    if (byte(k) < 0x80 || byte(k) > 0xBF) return 0;
  return len;
}

class Parser {
 public:
  Parser(std::string_view t, const std::string& what) : t_(t), what_(what) {}

  Json document() {
    Json v = value(0);
    skip_space();
    if (i_ != t_.size()) fail("trailing characters after the value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    detail::throw_error("json", "text", what_, ": invalid JSON at byte ", i_, ": ", why);
  }
  void skip_space() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    skip_space();
    if (i_ < t_.size() && t_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail(std::string("expected '") + c + "'");
  }
  bool literal(std::string_view word) {
    if (t_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  Json value(int depth) {
    if (depth > 64) fail("nesting deeper than 64 levels");
    skip_space();
    if (i_ >= t_.size()) fail("unexpected end");
    Json v;
    const char c = t_[i_];
    if (c == '{') {
      ++i_;
      v.kind = Json::Kind::object;
      if (eat('}')) return v;
      do {
        skip_space();
        if (i_ >= t_.size() || t_[i_] != '"') fail("expected a string key");
        std::string key = string();
        expect(':');
        v.object.push_back({std::move(key), value(depth + 1)});
      } while (eat(','));
      expect('}');
    } else if (c == '[') {
      ++i_;
      v.kind = Json::Kind::array;
      if (eat(']')) return v;
      do v.array.push_back(value(depth + 1));
      while (eat(','));
      expect(']');
    } else if (c == '"') {
      v.kind = Json::Kind::string;
      v.string = string();
    } else if (literal("true")) {
      v.kind = Json::Kind::boolean, v.boolean = true;
    } else if (literal("false")) {
      v.kind = Json::Kind::boolean;
    } else if (literal("null")) {
      v.kind = Json::Kind::null;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      number(v);
    } else {
      fail(std::string("unexpected character '") + c + "'");
    }
    return v;
  }

  void number(Json& v) {
    const std::size_t start = i_;
    if (t_[i_] == '-') ++i_;
    if (i_ >= t_.size() || !(t_[i_] >= '0' && t_[i_] <= '9')) fail("a digit must follow '-'");
    if (t_[i_] == '0' && i_ + 1 < t_.size() && t_[i_ + 1] >= '0' && t_[i_ + 1] <= '9') fail("leading zeros");
    bool integral = true;
    while (i_ < t_.size() && ((t_[i_] >= '0' && t_[i_] <= '9') || t_[i_] == '.' || t_[i_] == 'e' || t_[i_] == 'E' ||
                              t_[i_] == '+' || t_[i_] == '-')) {
      if (t_[i_] == '.' || t_[i_] == 'e' || t_[i_] == 'E') integral = false;
      ++i_;
    }
    const char* b = t_.data() + start;
    const char* e = t_.data() + i_;
    v.kind = Json::Kind::number;
    auto [pd, ed] = std::from_chars(b, e, v.number);
    if (ed != std::errc() || pd != e) fail("malformed number");
    if (integral) {
      auto [pi, ei] = std::from_chars(b, e, v.integer);
      v.integral = ei == std::errc() && pi == e;  // false when out of int64 range
    }
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18)), out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
    }
  }

  unsigned hex4() {
    if (i_ + 4 > t_.size()) fail("short \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = t_[i_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= unsigned(h - '0');
      else if (h >= 'a' && h <= 'f') v |= unsigned(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= unsigned(h - 'A' + 10);
      else fail("bad hex digit in \\u escape");
    }
    return v;
  }

  std::string string() {
    ++i_;  // the opening quote
    std::string out;
    while (true) {
      if (i_ >= t_.size()) fail("unterminated string");
      const char c = t_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (static_cast<unsigned char>(c) >= 0x80) {  // a multi-byte UTF-8 sequence, copied whole
        const std::size_t len = utf8_length(t_.substr(i_ - 1));
        if (len == 0) {
          --i_;
          fail("invalid UTF-8 in a string");
        }
        out.append(t_.substr(i_ - 1, len));
        i_ += len - 1;
        continue;
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= t_.size()) fail("unterminated escape");
      switch (const char e = t_[i_++]) {
        case '"': case '\\': case '/': out += e; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair
            if (!literal("\\u")) fail("a high surrogate without its low half");
            const unsigned lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail("bad low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            fail("a lone low surrogate");
          }
          append_utf8(out, cp);
          break;
        }
        default: fail(std::string("unknown escape \\") + e);
      }
    }
  }

  std::string_view t_;
  const std::string& what_;
  std::size_t i_ = 0;
};

}  // namespace

Json parse_json(std::string_view text, const std::string& what) { return Parser(text, what).document(); }

std::size_t utf8_error(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = utf8_length(s.substr(i));
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}


}  // namespace tg::nn
