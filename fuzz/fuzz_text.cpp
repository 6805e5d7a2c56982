// The character-level corpus reader (tiny_transformer's text) on arbitrary bytes, the
// first byte choosing the shortest length asked for (1 to 256): a corpus whose alphabet
// is the text's distinct bytes, increasing, and whose ids give the text back byte for
// byte, or a tg::Error.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz.hpp"
#include "tilegrad/kernels/error.hpp"
#include "tilegrad/nn/io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const tg::index_t min_length = tg::index_t(data[0]) + 1;
  const std::uint8_t* text = data + 1;
  const std::size_t n = size - 1;
  try {
    const tg::nn::CharCorpus c = tg::nn::read_char_corpus(tg::fuzz::as_file(text, n, ".txt"), min_length);
    if (n < std::size_t(min_length) || c.ids.size() != n || c.alphabet.empty() || c.alphabet.size() > 256)
      __builtin_trap();
    for (std::size_t k = 1; k < c.alphabet.size(); ++k)  // strictly increasing bytes
      if (static_cast<unsigned char>(c.alphabet[k - 1]) >= static_cast<unsigned char>(c.alphabet[k])) __builtin_trap();
    bool used[256] = {};
    for (std::size_t i = 0; i < n; ++i) {
      const tg::index_t id = c.ids[i];
      if (id < 0 || std::size_t(id) >= c.alphabet.size()) __builtin_trap();
      if (static_cast<unsigned char>(c.alphabet[std::size_t(id)]) != text[i]) __builtin_trap();
      used[id] = true;
    }
    for (std::size_t k = 0; k < c.alphabet.size(); ++k)  // every letter of the alphabet occurs
      if (!used[k]) __builtin_trap();
  } catch (const tg::Error&) {
    if (n >= std::size_t(min_length)) __builtin_trap();  // a long enough file must read
  }
  return 0;
}
