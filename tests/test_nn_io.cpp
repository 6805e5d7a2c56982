// Loaders and checkpoints against files the tests write: CSV (missing values, malformed
// cells), IDX (plain and gzip, truncated and corrupt), safetensors (byte-exact against
// the spec, round trips, and every kind of corrupt file), a training run resumed from a
// checkpoint that continues bit for bit, and checkpoint writes that are killed or run
// out of space.
#include <gtest/gtest.h>
#include <zlib.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "tilegrad/kernels/error.hpp"
#include "tilegrad/nn/nn.hpp"
#include "tests/support/guards.hpp"
#include "tests/support/testing.hpp"

namespace tg::nn {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / (std::string("tilegrad_") + info->name() + "_" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream(file(name), std::ios::binary) << bytes;
    return file(name);
  }
  std::size_t entries() const { return std::size_t(std::distance(fs::directory_iterator(path_), fs::directory_iterator())); }

 private:
  fs::path path_;
};

using testing::error_of;

// ---- CSV ----
TEST(Csv, ReadsNumbersAndFillsMissingCellsWithMeanOrMedian) {
  TempDir dir;
  const std::string path = dir.write("t.csv", "a, b ,\"c\"\n1,2,3\n4,NA,\"6\"\n\n7,8,\n10,, 12\n");
  CsvTable mean_t = read_csv(path, Fill::mean, DType::f64);
  EXPECT_EQ(mean_t.columns, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(mean_t.filled, 3);
  EXPECT_EQ(mean_t.data.to_vector<double>(), (std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 7, 10, 5, 12}));
  CsvTable med = read_csv(path, Fill::median, DType::f64);
  EXPECT_EQ(med.data.to_vector<double>()[4], 5.0);  // median of {2, 8}
  EXPECT_EQ(med.data.to_vector<double>()[8], 6.0);                      // median of {3, 6, 12}
}

TEST(Csv, NamesTheLineAndColumnOfAMalformedCell) {
  TempDir dir;
  std::string e = error_of([&] { read_csv(dir.write("bad.csv", "x,y\n1,2\n3,abc\n")); });
  EXPECT_NE(e.find("line 3, column 2 ('y')"), std::string::npos) << e;
  EXPECT_NE(e.find("'abc'"), std::string::npos) << e;
  e = error_of([&] { read_csv(dir.write("short.csv", "x,y\n1,2\n3\n")); });
  EXPECT_NE(e.find("line 3: expected 2 fields"), std::string::npos) << e;
  e = error_of([&] { read_csv(dir.file("absent.csv")); });
  EXPECT_NE(e.find("cannot open"), std::string::npos) << e;
  e = error_of([&] { read_csv(dir.write("empty_col.csv", "x,y\n1,\n2,NA\n")); });
  EXPECT_NE(e.find("column 2 ('y') has no value"), std::string::npos) << e;
}

// ---- Text corpus ----
// The bytes of a random text (every value 0-255 possible, NUL and UTF-8 lead bytes
// included) come back as tokens: the alphabet is the set of bytes present, increasing as
// unsigned values, and alphabet[ids[i]] is byte i.
TEST(TextCorpus, ReadsEveryByteAsATokenInIncreasingOrder) {
  TempDir dir;
  TG_TEST_RNG(rng);
  for (int rep = 0; rep < 20; ++rep) {
    const index_t n = rng.integer(1, 3000), span = rng.integer(1, 256), base = rng.integer(0, 256 - span);
    std::string text(std::size_t(n), '\0');
    for (char& c : text) c = char(base + rng.integer(0, span - 1));
    const CharCorpus c = read_char_corpus(dir.write("t.txt", text));
    std::vector<bool> present(256, false);
    for (char ch : text) present[static_cast<unsigned char>(ch)] = true;
    std::string want;
    for (int b = 0; b < 256; ++b)
      if (present[std::size_t(b)]) want.push_back(char(b));
    ASSERT_EQ(c.alphabet, want);
    ASSERT_EQ(c.ids.size(), text.size());
    for (std::size_t i = 0; i < text.size(); ++i) ASSERT_EQ(c.alphabet[std::size_t(c.ids[i])], text[i]) << i;
  }
}

TEST(TextCorpus, NamesTheFileItCannotUse) {
  TempDir dir;
  std::string e = error_of([&] { read_char_corpus(dir.file("absent.txt")); });
  EXPECT_NE(e.find("cannot open"), std::string::npos) << e;
  EXPECT_NE(e.find("absent.txt"), std::string::npos) << e;
  e = error_of([&] { read_char_corpus(dir.write("empty.txt", "")); });
  EXPECT_NE(e.find("empty.txt holds 0 bytes"), std::string::npos) << e;
  e = error_of([&] { read_char_corpus(dir.write("short.txt", "abc"), 66); });
  EXPECT_NE(e.find("holds 3 bytes, fewer than the 66"), std::string::npos) << e;
  e = error_of([&] { read_char_corpus(dir.file("")); });
  EXPECT_NE(e.find("is a directory"), std::string::npos) << e;
  e = error_of([&] { read_char_corpus(dir.write("ok.txt", "abc"), 0); });
  EXPECT_NE(e.find("min_length"), std::string::npos) << e;
  EXPECT_EQ(read_char_corpus(dir.write("three.txt", "aba"), 3).ids, (std::vector<index_t>{0, 1, 0}));
}

// ---- IDX ----
std::string idx_bytes(const std::vector<index_t>& dims, const std::vector<unsigned char>& data) {
  std::string s = {0, 0, 8, char(dims.size())};
  for (index_t d : dims)
    for (int k = 3; k >= 0; --k) s += char((d >> (8 * k)) & 0xFF);
  s.append(data.begin(), data.end());
  return s;
}

std::string gzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), unsigned(bytes.size()));
  gzclose(f);
  return path;
}

TEST(Idx, ReadsPlainAndGzipAndRejectsCorruptFiles) {
  TempDir dir;
  std::vector<unsigned char> data(2 * 3 * 4);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i * 7);
  const std::string good = idx_bytes({2, 3, 4}, data);
  for (const std::string& path : {dir.write("a.idx", good), gzip(dir.file("a.idx.gz"), good)}) {
    const IdxArray a = read_idx(path);
    EXPECT_EQ(a.dims, (std::vector<index_t>{2, 3, 4}));
    EXPECT_EQ(a.bytes, data);
  }
  EXPECT_NE(error_of([&] { read_idx(dir.write("t.idx", good.substr(0, good.size() - 1))); }).find("truncated"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_idx(dir.write("x.idx", good + "z")); }).find("trailing bytes"), std::string::npos);
  std::string bad_magic = good;
  bad_magic[0] = 1;
  EXPECT_NE(error_of([&] { read_idx(dir.write("m.idx", bad_magic)); }).find("not an IDX file"), std::string::npos);
  std::string float_type = good;
  float_type[2] = 0x0D;
  EXPECT_NE(error_of([&] { read_idx(dir.write("f.idx", float_type)); }).find("not unsigned bytes"), std::string::npos);
  EXPECT_NE(error_of([&] { read_idx(dir.write("r.idx", std::string{0, 0, 8, 9})); }).find("1 to 4 dims"),
            std::string::npos);
}

// The payload is read in growing pieces (64 KiB, then doubling): sizes around the piece
// boundaries and well past them, plain and gzip, fresh random bytes each time, and each
// size truncated by one byte.
TEST(Idx, ReadsPayloadsAcrossItsGrowingReads) {
  TempDir dir;
  std::mt19937 rng(std::random_device{}());
  const index_t k64 = index_t(1) << 16;
  for (const index_t n : {k64 - 1, k64, k64 + 1, 3 * k64, 3 * k64 + 7, 20 * k64 + 13}) {
    std::vector<unsigned char> data(static_cast<std::size_t>(n));
    for (unsigned char& b : data) b = static_cast<unsigned char>(rng());
    const std::string good = idx_bytes({n}, data);
    for (const std::string& path : {dir.write("big.idx", good), gzip(dir.file("big.idx.gz"), good)}) {
      const IdxArray a = read_idx(path);
      EXPECT_EQ(a.dims, (std::vector<index_t>{n}));
      EXPECT_TRUE(a.bytes == data) << path << " of " << n << " bytes";
    }
    const std::string cut = good.substr(0, good.size() - 1);
    for (const std::string& path : {dir.write("cut.idx", cut), gzip(dir.file("cut.idx.gz"), cut)}) {
      const std::string e = error_of([&] { read_idx(path); });
      EXPECT_NE(e.find("ends after " + std::to_string(n - 1)), std::string::npos) << e;
    }
  }
}

// ---- safetensors ----
std::string le64(std::uint64_t n) {
  std::string s(8, '\0');
  for (int k = 0; k < 8; ++k) s[std::size_t(k)] = char((n >> (8 * k)) & 0xFF);
  return s;
}
std::string floats(std::initializer_list<float> v) {
  std::string s;
  for (float f : v) s.append(reinterpret_cast<const char*>(&f), 4);
  return s;
}
// A file built from the spec by hand: header length, JSON, data.
std::string st_file(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

TEST(Safetensors, WritesTheBytesTheSpecDescribes) {
  TempDir dir;
  const std::string path = dir.file("one.safetensors");
  save_safetensors(path, {{"a", Tensor::from_vector(std::vector<float>{1, 2}, {2})}});
  std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::ifstream in(path, std::ios::binary);
  const std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, st_file(header, floats({1, 2})));
  EXPECT_EQ(dir.entries(), 1u);  // no temporary file left behind
}

TEST(Safetensors, RoundTripsDtypesShapesAndMetadata) {
  TempDir dir;
  Generator g(3);
  const StateDict in = {{"w", Tensor::randn({3, 5}, {}, &g)},
                        {"d", Tensor::randn({2, 2, 2}, TensorOptions().with_dtype(DType::f64), &g)},
                        {"i", Tensor::from_vector(std::vector<std::int64_t>{-1, 5, 1LL << 40}, {3})},
                        {"s", Tensor::full({}, 2.5)},
                        {"e", Tensor::zeros({0, 4})},
                        {"b", Tensor::randn({4, 3}, {}, &g).to(DType::bf16).transpose(0, 1)},  // strided
                        {"h", Tensor::randn({7}, {}, &g).to(DType::f16)}};
  save_safetensors(dir.file("m.st"), in, {{"k", "v \"q\""}});
  Metadata meta;
  const StateDict out = load_safetensors(dir.file("m.st"), &meta);
  EXPECT_EQ(meta.at("k"), "v \"q\"");
  ASSERT_EQ(out.size(), in.size());
  for (const auto& [k, t] : in) {
    EXPECT_EQ(out.at(k).shape().str(), t.contiguous().shape().str()) << k;  // written row-major
    EXPECT_EQ(out.at(k).dtype(), t.dtype()) << k;
    EXPECT_EQ(out.at(k).to_vector<double>(), t.to_vector<double>()) << k;
  }
}

TEST(Safetensors, RejectsEveryKindOfCorruptFile) {
  const std::string data = floats({1, 2, 3, 4});
  auto entry = [](const char* name, const char* dtype, const char* shape, const char* offsets) {
    return std::string("\"") + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
  };
  const std::string ok = "{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[8,16]") + "}";
  EXPECT_NO_THROW(parse_safetensors(st_file(ok, data), "ok"));
  struct Bad {
    std::string bytes, expect;
  };
  const std::vector<Bad> cases = {
      {"\x05\x00\x00", "shorter than the 8-byte header length"},
      {le64(1000) + "{}", "runs past the end of the file"},
      {le64(std::uint64_t(1) << 40) + "{}", "exceeds the 100 MiB limit"},
      {st_file("{\"a\":", data), "invalid JSON"},
      {st_file("[1,2]", data), "not a JSON object"},
      {st_file("{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[8,20]") + "}", data),
       "outside the 16 data bytes"},
      {st_file("{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[4,12]") + "}", data.substr(0, 12)),
       "overlap"},
      {st_file("{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("b", "F32", "[2]", "[8,16]") + "}", data), "gap"},
      {st_file("{" + entry("a", "F32", "[2]", "[0,8]") + "}", data), "cover 8 of the 16"},
      {st_file("{" + entry("a", "F64", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[8,16]") + "}", data),
       "its dtype and shape need 16"},
      {st_file("{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("a", "F32", "[2]", "[8,16]") + "}", data),
       "duplicate name a"},
      {st_file("{" + entry("a", "Q7", "[4]", "[0,16]") + "}", data), "has dtype Q7"},
      {st_file("{" + entry("a", "F32", "[-4]", "[0,16]") + "}", data), "not a non-negative integer"},
      {st_file("{" + entry("a", "F32", "[4611686018427387904,4]", "[0,16]") + "}", data),
       "bad: entry a has shape [4611686018427387904, 4], whose element count or strides overflow"},
      {st_file("{" + entry("a", "F32", "[0,4611686018427387904,8]", "[0,0]") + "}", ""),
       "bad: entry a has shape [0, 4611686018427387904, 8], whose element count or strides overflow"},
      {st_file("{" + entry("a", "F64", "[2305843009213693952,2]", "[0,16]") + "}", data),
       "bad: entry a has shape [2305843009213693952, 2] of F64, more than 2^63 bytes"},
      // Names must be UTF-8 (the header is JSON): a stray continuation byte, C0/C1 and
      // F5-FF leads, overlong forms, surrogates, past U+10FFFF, cut short.
      {st_file("{" + entry("\x80", "F32", "[4]", "[0,16]") + "}", data), "invalid UTF-8"},
      {st_file("{" + entry("\xC1\xBF", "F32", "[4]", "[0,16]") + "}", data), "invalid UTF-8"},
      {st_file("{" + entry("\xF8\x88\x80\x80\x80", "F32", "[4]", "[0,16]") + "}", data), "invalid UTF-8"},
      {st_file("{" + entry("\xE0\x80\xAF", "F32", "[4]", "[0,16]") + "}", data), "invalid UTF-8"},
      {st_file("{" + entry("\xED\xA0\x80", "F32", "[4]", "[0,16]") + "}", data), "invalid UTF-8"},
      {st_file("{" + entry("\xF4\x90\x80\x80", "F32", "[4]", "[0,16]") + "}", data), "invalid UTF-8"},
      {st_file("{" + entry("ab\xE2\x82", "F32", "[4]", "[0,16]") + "}", data), "invalid UTF-8"},
      {st_file("{\"__metadata__\":{\"k\":\"\xFF\"}," + entry("a", "F32", "[4]", "[0,16]") + "}", data), "invalid UTF-8"},
      {st_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[4]}}", data), "needs dtype, shape and data_offsets"},
      {st_file("{\"__metadata__\":{\"k\":1}," + entry("a", "F32", "[4]", "[0,16]") + "}", data), "is not a string"},
  };
  for (const Bad& b : cases) {
    const std::string e = error_of([&] { parse_safetensors(b.bytes, "bad"); });
    EXPECT_NE(e.find(b.expect), std::string::npos) << "expected '" << b.expect << "', got '" << e << "'";
  }
}

TEST(Safetensors, NamesAreUtf8BothWays) {
  TempDir dir;
  // Every length of well-formed sequence, the edges of each range included.
  const std::string name = "a\u00e9\u07ff\u0800\u20ac\ud7ff\ue000\uffff\U00010000\U0001f600\U0010ffff";
  save_safetensors(dir.file("u.st"), {{name, Tensor::full({1}, 1.5)}}, {{"k\u00e9", "v\U0001f600"}});
  Metadata meta;
  const StateDict out = load_safetensors(dir.file("u.st"), &meta);
  ASSERT_EQ(out.count(name), 1u);
  EXPECT_EQ(out.at(name).to_vector<double>(), std::vector<double>{1.5});
  EXPECT_EQ(meta.at("k\u00e9"), "v\U0001f600");
  // A name that is not UTF-8 would make a file no reader accepts: refused, nothing written.
  for (const std::string bad : {"\xff", "ok\xC0\x80", "\xED\xB0\x80", "cut\xF0\x9F\x98"}) {
    const std::string e = error_of([&] { save_safetensors(dir.file("bad.st"), {{bad, Tensor::full({1}, 1.0)}}); });
    EXPECT_NE(e.find("is not valid UTF-8"), std::string::npos) << e;
    const std::string m = error_of([&] { save_safetensors(dir.file("bad.st"), {}, {{"k", bad}}); });
    EXPECT_NE(m.find("is not valid UTF-8"), std::string::npos) << m;
  }
  EXPECT_EQ(dir.entries(), 1u);  // u.st alone
}

// A header of 100 000 entries: the duplicate check once scanned every earlier name for
// each entry (18 s at this size); a hash set makes it linear. The file is refused for
// its last entry's duplicate name, after every other check ran on all of them.
TEST(Safetensors, HeadersWithManyEntriesLoad) {
  constexpr int kEntries = 100000;
  std::string header = "{";
  for (int i = 0; i < kEntries; ++i) {
    if (i) header += ',';
    header += "\"t" + std::to_string(i) + "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}";
  }
  const StateDict out = parse_safetensors(st_file(header + "}", ""), "many");
  ASSERT_EQ(out.size(), std::size_t(kEntries));
  EXPECT_EQ(out.at("t99999").numel(), 0);
  header += ",\"t12345\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}";
  const std::string e = error_of([&] { parse_safetensors(st_file(header, ""), "many"); });
  EXPECT_NE(e.find("duplicate name t12345"), std::string::npos) << e;
}

// ---- checkpoints: faults ----
std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A checkpoint's bytes: one f32 tensor of n values, all equal to v.
std::string checkpoint_bytes(const TempDir& dir, index_t n, float v) {
  const std::string path = dir.file("scratch.st");
  save_safetensors(path, {{"w", Tensor::full({n}, v)}});
  const std::string bytes = read_all(path);
  fs::remove(path);
  return bytes;
}

// Temporary files a killed writer left behind (path.tmp.*), removed; their count.
int remove_temporaries(const std::string& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) fs::remove(e.path()), ++n;
  return n;
}

// A writer killed with SIGKILL at random moments while it rewrites a checkpoint, 200
// times: the file is always one of the two versions, whole, and parses. The child only
// writes (the bytes are made before the fork: nothing in it may need the parent's
// threads).
TEST(Checkpoint, AKilledWriterLeavesTheOldFileOrTheNewOne) {
  TempDir dir;
  const std::string path = dir.file("ck.safetensors");
  const std::string a = checkpoint_bytes(dir, 1 << 18, 1.0f), b = checkpoint_bytes(dir, (1 << 18) + 7, 2.0f);
  write_file_atomic(path, a);
  std::mt19937 rng(20261206);
  int saw_a = 0, saw_b = 0;
  for (int round = 0; round < 200; ++round) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = 0;; ++i) write_file_atomic(path, i % 2 ? a : b);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 4000)(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "round " << round << ": the writer died early";
    const std::string got = read_all(path);
    ASSERT_TRUE(got == a || got == b) << "round " << round << ": a torn file of " << got.size() << " bytes";
    saw_a += got == a, saw_b += got == b;
    remove_temporaries(dir.file(""));
  }
  EXPECT_NO_THROW(load_safetensors(path));
  // The kills landed at different points: both versions were found in place.
  EXPECT_GT(saw_a, 0);
  EXPECT_GT(saw_b, 0);
}

// A write that runs out of space (here the file size limit, RLIMIT_FSIZE, in a child
// process: the same EFBIG a full disk's ENOSPC is handled as) throws tg::Error and leaves
// the old checkpoint as it was and no temporary file.
TEST(Checkpoint, AWriteThatRunsOutOfSpaceIsAnErrorAndKeepsTheOldFile) {
  TempDir dir;
  const std::string path = dir.file("ck.safetensors");
  const std::string old = checkpoint_bytes(dir, 100, 3.0f), big = checkpoint_bytes(dir, 1 << 18, 4.0f);
  write_file_atomic(path, old);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG instead of the signal killing us
    const rlimit lim{64 << 10, 64 << 10};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    try {
      write_file_atomic(path, big);
      ::_exit(1);  // no error
    } catch (const Error& e) {
      ::_exit(std::string(e.what()).find("cannot write") != std::string::npos ? 0 : 2);
    }
    ::_exit(3);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the writer died";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: no error; 2: an error that does not say the write failed";
  EXPECT_EQ(read_all(path), old);
  EXPECT_EQ(remove_temporaries(dir.file("")), 0);
}

// The checkpoint's mode is what a plain file gets (0666 less the umask), not the 0600 of
// a private temporary file.
TEST(Checkpoint, TheFileGetsTheUmasksMode) {
  TempDir dir;
  const mode_t mask = ::umask(022);
  save_safetensors(dir.file("m.st"), {{"w", Tensor::full({2}, 1.0f)}});
  ::umask(mask);
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("m.st").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

// ---- checkpoints: resume bit for bit ----
struct Net : Module {
  std::shared_ptr<Linear> a, b;
  std::shared_ptr<Dropout> drop;
  explicit Net(Generator* g) {
    a = register_module("a", std::make_shared<Linear>(6, 16, true, Activation{Act::gelu_tanh}, g));
    drop = register_module("drop", std::make_shared<Dropout>(0.2, g));
    b = register_module("b", std::make_shared<Linear>(16, 3, true, Activation{}, g));
  }
  Tensor forward(const Tensor& x) override { return (*b)((*drop)((*a)(x))); }
};

TEST(Checkpoint, ResumingContinuesTheRunBitForBit) {
  TempDir dir;
  Generator data_gen(11);
  const Tensor x = Tensor::randn({64, 6}, {}, &data_gen);
  std::vector<std::int64_t> cls(64);
  for (std::size_t i = 0; i < cls.size(); ++i) cls[i] = std::int64_t(i % 3);
  const TensorDataset ds(x, Tensor::from_vector(cls, {64}));
  // Runs epochs [from, to) of a fixed recipe; returns every loss as bits.
  auto run = [&](Net& net, AdamW& opt, CosineAnnealingLR& sched, Generator& g, int from, int to) {
    std::vector<float> losses;
    DataLoader loader(ds, 16, true, 5);
    for (int e = from; e < to; ++e) {
      loader.set_epoch(e);
      for (index_t k = 0; k < loader.batches(); ++k) {
        const Batch b = loader.batch(k);
        const Tensor loss = cross_entropy(net(b.x), b.y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        losses.push_back(float(loss.item()));
      }
      sched.step();
    }
    (void)g;
    return losses;
  };
  Generator g1(1);
  Net straight(&g1);
  AdamW opt1(straight.parameters(), 0.01);
  CosineAnnealingLR s1(opt1, 6);
  const std::vector<float> all = run(straight, opt1, s1, g1, 0, 6);

  Generator g2(1);
  Net first(&g2);
  AdamW opt2(first.parameters(), 0.01);
  CosineAnnealingLR s2(opt2, 6);
  std::vector<float> resumed = run(first, opt2, s2, g2, 0, 3);
  save_checkpoint(dir.file("ckpt.safetensors"), {&first, &opt2, &s2, &g2}, {{"epoch", 3}});

  Generator g3(999);  // a different seed: the checkpoint must restore it
  Net second(&g3);
  AdamW opt3(second.parameters(), 0.5);
  CosineAnnealingLR s3(opt3, 6);
  const auto extra = load_checkpoint(dir.file("ckpt.safetensors"), {&second, &opt3, &s3, &g3});
  EXPECT_EQ(extra.at("epoch"), 3.0);
  const std::vector<float> rest = run(second, opt3, s3, g3, 3, 6);
  resumed.insert(resumed.end(), rest.begin(), rest.end());
  ASSERT_EQ(resumed.size(), all.size());
  for (std::size_t i = 0; i < all.size(); ++i)
    EXPECT_EQ(std::memcmp(&resumed[i], &all[i], sizeof(float)), 0) << "step " << i << ": " << resumed[i] << " vs " << all[i];
}

}  // namespace
}  // namespace tg::nn
