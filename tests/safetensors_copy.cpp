// tg_safetensors_copy IN OUT: loads IN with tilegrad's reader and writes what it read to
// OUT with tilegrad's writer (tensors and metadata). The cross-tool round trip
// (tests/safetensors_interop.py) runs the reference implementation on both sides of it.
#include <iostream>

#include "tilegrad/kernels/error.hpp"
#include "tilegrad/nn/safetensors.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: tg_safetensors_copy IN OUT\n";
    return 2;
  }
  try {
    tg::nn::Metadata meta;
    const tg::nn::StateDict dict = tg::nn::load_safetensors(argv[1], &meta);
    tg::nn::save_safetensors(argv[2], dict, meta);
  } catch (const tg::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
