#include "tilegrad/nn/io.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "tilegrad/kernels/error.hpp"

namespace tg::nn {

// ---------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------
namespace {

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

// Splits a line on sep, honouring double quotes ("a,b" is one field; "" is a quote).
std::vector<std::string> fields_of(const std::string& line, char sep, const std::string& path, index_t line_no) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') cur += '"', ++i;
      else if (c == '"') quoted = false;
      else cur += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == sep) {
      out.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  TG_CHECK(!quoted, "read_csv", "path", path, ": line ", line_no, ": a quoted field is not closed");
  out.push_back(trim(cur));
  return out;
}

bool is_missing(const std::string& f) { return f.empty() || f == "NA" || f == "NaN" || f == "nan" || f == "?"; }

}  // namespace

CsvTable read_csv(const std::string& path, Fill fill, DType dtype, char sep) {
  std::ifstream in(path);
  TG_CHECK(in.good(), "read_csv", "path", "cannot open ", path, ": ", std::strerror(errno));
  CsvTable t;
  std::string line;
  index_t line_no = 0;
  while (std::getline(in, line)) {  // the header: the first non-empty line
    ++line_no;
    if (!trim(line).empty()) break;
  }
  TG_CHECK(!line.empty(), "read_csv", "path", path, ": no header line");
  t.columns = fields_of(line, sep, path, line_no);
  const std::size_t C = t.columns.size();
  std::vector<double> values;
  std::vector<char> present;
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    const std::vector<std::string> f = fields_of(line, sep, path, line_no);
    TG_CHECK(f.size() == C, "read_csv", "path", path, ": line ", line_no, ": expected ", C, " fields (as the header), got ",
             f.size());
    for (std::size_t c = 0; c < C; ++c) {
      if (is_missing(f[c])) {
        values.push_back(0);
        present.push_back(0);
        continue;
      }
      double v = 0;
      const char* b = f[c].data();
      const auto [end, ec] = std::from_chars(b, b + f[c].size(), v);
      TG_CHECK(ec == std::errc() && end == b + f[c].size() && std::isfinite(v), "read_csv", "path", path, ": line ",
               line_no, ", column ", c + 1, " ('", t.columns[c], "'): cannot read '", f[c], "' as a finite number");
      values.push_back(v);
      present.push_back(1);
    }
  }
  const std::size_t R = C ? values.size() / C : 0;
  for (std::size_t c = 0; c < C; ++c) {  // fill the missing cells of each column
    std::vector<double> col;
    for (std::size_t r = 0; r < R; ++r)
      if (present[r * C + c]) col.push_back(values[r * C + c]);
    if (col.size() == R) continue;
    TG_CHECK(!col.empty(), "read_csv", "path", path, ": column ", c + 1, " ('", t.columns[c],
             "') has no value to fill its missing cells from");
    double v = 0;
    if (fill == Fill::mean) {
      for (double x : col) v += x;
      v /= double(col.size());
    } else {
      std::sort(col.begin(), col.end());
      const std::size_t n = col.size();
      v = n % 2 ? col[n / 2] : (col[n / 2 - 1] + col[n / 2]) / 2;
    }
    for (std::size_t r = 0; r < R; ++r)
      if (!present[r * C + c]) values[r * C + c] = v, ++t.filled;
  }
  t.data = Tensor::from_vector(values, {index_t(R), index_t(C)}).to(dtype);
  return t;
}

// ---------------------------------------------------------------------------------
// IDX
// ---------------------------------------------------------------------------------
namespace {
struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};

// Reads exactly n bytes or says what was short.
void read_exact(gzFile f, void* dst, std::size_t n, const std::string& path, const char* what) {
  std::size_t got = 0;
  while (got < n) {
    const unsigned chunk = unsigned(std::min<std::size_t>(n - got, 1u << 30));
    const int r = gzread(f, static_cast<char*>(dst) + got, chunk);
    TG_CHECK(r > 0, "read_idx", "path", path, ": truncated: ", what, " needs ", n, " bytes, the file ends after ", got,
             r < 0 ? " (a gzip error)" : "");
    got += std::size_t(r);
  }
}
}  // namespace

IdxArray read_idx(const std::string& path) {
  std::unique_ptr<gzFile_s, GzCloser> f(gzopen(path.c_str(), "rb"));
  TG_CHECK(f != nullptr, "read_idx", "path", "cannot open ", path, ": ", std::strerror(errno));
  unsigned char magic[4];
  read_exact(f.get(), magic, 4, path, "the magic number");
  TG_CHECK(magic[0] == 0 && magic[1] == 0, "read_idx", "path", path, ": not an IDX file (magic bytes ", int(magic[0]),
           " ", int(magic[1]), ", expected 0 0)");
  TG_CHECK(magic[2] == 0x08, "read_idx", "path", path, ": element type 0x", std::hex, int(magic[2]),
           " is not unsigned bytes (0x08)");
  const int rank = magic[3];
  TG_CHECK(rank >= 1 && rank <= 4, "read_idx", "path", path, ": expected 1 to 4 dims, the header says ", rank);
  IdxArray a;
  index_t total = 1;
  for (int d = 0; d < rank; ++d) {
    unsigned char b[4];
    read_exact(f.get(), b, 4, path, "the dims");
    const index_t n = (index_t(b[0]) << 24) | (index_t(b[1]) << 16) | (index_t(b[2]) << 8) | index_t(b[3]);
    TG_CHECK(n >= 1 && n <= (index_t(1) << 28), "read_idx", "path", path, ": dim ", d, " is ", n);
    a.dims.push_back(n);
    total *= n;
    TG_CHECK(total <= (index_t(1) << 32), "read_idx", "path", path, ": the dims hold more than 4 GiB");
  }
  // Grown as the data arrives, not allocated from the header: dims that promise 4 GiB
  // in a file of a few bytes are a truncation error, not a 4 GiB allocation. The reads
  // start at 64 KiB and double up to 16 MiB, so a short file costs a short buffer (a
  // fixed 16 MiB first read zeroed and faulted in 16 MiB for every truncated file) and a
  // long one is still read in O(log n) resizes.
  std::size_t chunk = std::size_t(1) << 16;
  constexpr std::size_t kMaxChunk = std::size_t(1) << 24;
  for (std::size_t got = 0; got < std::size_t(total); chunk = std::min(2 * chunk, kMaxChunk)) {
    const std::size_t n = std::min(chunk, std::size_t(total) - got);
    a.bytes.resize(got + n);
    const int r = gzread(f.get(), a.bytes.data() + got, unsigned(n));
    TG_CHECK(r > 0, "read_idx", "path", path, ": truncated: the data needs ", total, " bytes, the file ends after ",
             got, r < 0 ? " (a gzip error)" : "");
    got += std::size_t(r);
    a.bytes.resize(got);
  }
  unsigned char extra;
  TG_CHECK(gzread(f.get(), &extra, 1) == 0, "read_idx", "path", path, ": trailing bytes after the ", total,
           " the dims announce");
  return a;
}

FashionMnist load_fashion_mnist(const std::string& dir) {
  auto images = [&](const std::string& name) {
    const IdxArray a = read_idx(dir + "/" + name);
    TG_CHECK(a.dims.size() == 3 && a.dims[1] == 28 && a.dims[2] == 28, "load_fashion_mnist", "path", name,
             ": expected (N, 28, 28) images");
    std::vector<float> v(a.bytes.size());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = float(a.bytes[i]) / 255.0f;
    return Tensor::from_vector(v, {a.dims[0], 784});
  };
  auto labels = [&](const std::string& name) {
    const IdxArray a = read_idx(dir + "/" + name);
    TG_CHECK(a.dims.size() == 1, "load_fashion_mnist", "path", name, ": expected (N) labels");
    std::vector<std::int64_t> v(a.bytes.begin(), a.bytes.end());
    for (std::int64_t l : v) TG_CHECK(l < 10, "load_fashion_mnist", "path", name, ": label ", l, " is not in [0, 10)");
    return Tensor::from_vector(v, {a.dims[0]});
  };
  FashionMnist m{images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz"),
                 images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz")};
  TG_CHECK(m.train_x.size(0) == m.train_y.size(0) && m.test_x.size(0) == m.test_y.size(0), "load_fashion_mnist",
           "path", dir, ": image and label counts differ");
  return m;
}

CharCorpus read_char_corpus(const std::string& path, index_t min_length) {
  TG_CHECK(min_length >= 1, "read_char_corpus", "min_length", "expected at least 1, got ", min_length);
  std::error_code ec;
  TG_CHECK(!std::filesystem::is_directory(path, ec), "read_char_corpus", "path", path, " is a directory, not a text file");
  std::ifstream in(path, std::ios::binary);
  TG_CHECK(in.good(), "read_char_corpus", "path", "cannot open ", path, ": ", std::strerror(errno));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  TG_CHECK(!in.bad(), "read_char_corpus", "path", "cannot read ", path);
  TG_CHECK(index_t(text.size()) >= min_length, "read_char_corpus", "path", path, " holds ", text.size(),
           " bytes, fewer than the ", min_length, " asked for");
  // One pass to mark the bytes present, one to number them in increasing order, one to
  // map the text: linear in the file, whatever its alphabet.
  bool present[256] = {};
  for (const char c : text) present[static_cast<unsigned char>(c)] = true;
  CharCorpus corpus;
  index_t index_of[256] = {};
  for (int b = 0; b < 256; ++b)
    if (present[b]) {
      index_of[b] = index_t(corpus.alphabet.size());
      corpus.alphabet.push_back(static_cast<char>(b));
    }
  corpus.ids.reserve(text.size());
  for (const char c : text) corpus.ids.push_back(index_of[static_cast<unsigned char>(c)]);
  return corpus;
}

}  // namespace tg::nn
