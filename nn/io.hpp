// Loaders: CSV tables of numbers, the IDX format of MNIST and Fashion-MNIST (plain or
// gzip, through zlib), and text as a character-level corpus. Each validates its input
// and reports a bad file with a tg::Error naming the file and the place (line and
// column; header field or size).
#pragma once

#include <string>
#include <vector>

#include "tilegrad/autograd/autograd.hpp"

namespace tg::nn {

enum class Fill { mean, median };

struct CsvTable {
  std::vector<std::string> columns;  // from the header line
  Tensor data;                       // (rows, columns), dtype as asked
  index_t filled = 0;                // missing cells that were filled
};

// A header line, then rows of numbers separated by `sep` (fields may be double-quoted;
// spaces around fields are ignored). Missing cells (empty, NA, NaN, ?) get the column's
// mean or median over the present cells. Anything else that is not a number is an
// error naming the line and the column.
CsvTable read_csv(const std::string& path, Fill fill = Fill::mean, DType dtype = DType::f32, char sep = ',');

// An IDX file of unsigned bytes (magic 0x00000801 for labels, 0x00000803 for images):
// its dims and raw bytes. Reads gzip transparently. The header is validated (magic,
// rank 1-4, dims) and the payload must be exactly the product of the dims.
struct IdxArray {
  std::vector<index_t> dims;
  std::vector<unsigned char> bytes;
};
IdxArray read_idx(const std::string& path);

// A text file as a character-level corpus (what tiny_transformer trains on): its
// distinct bytes in increasing order, and the text as each byte's index among them.
// Bytes, not Unicode characters, so any file reads (a UTF-8 character of several bytes
// is several tokens, and a NUL byte is a token like any other). A file that cannot be
// read, or holds fewer than `min_length` bytes, is an error naming the file.
struct CharCorpus {
  std::string alphabet;       // the distinct bytes, increasing as unsigned values
  std::vector<index_t> ids;   // the text: ids[i] indexes alphabet, alphabet[ids[i]] is byte i
};
CharCorpus read_char_corpus(const std::string& path, index_t min_length = 1);

// Fashion-MNIST from a directory with the four files (default: Debian's
// dataset-fashion-mnist package): images (N, 784) f32 scaled to [0, 1], labels (N) i64.
struct FashionMnist {
  Tensor train_x, train_y, test_x, test_y;
};
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
FashionMnist load_fashion_mnist(const std::string& dir = kFashionMnistDir);

}  // namespace tg::nn
