// Dataset files: windowing of raw bytes and pre-tokenised binaries (uint16/int32 little-endian),
// seeded synthetic data, HDF5 round trips, and every kind of bad input (each an InputError of
// one line starting with the offending path). Fixtures are generated in a temp dir.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>

#include "app/dataset_file.h"
#include "app/errors.h"
#include "app/h5.h"
#include "app/model_file.h"
#include "tests/app/test_support.h"

namespace {

namespace fs = std::filesystem;
using strata::app::Dataset;
using strata::app::InputError;

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

// Little-endian encoding of `tokens` with `width` bytes each (what numpy's tofile writes on x86).
std::vector<unsigned char> little_endian(const std::vector<std::int64_t>& tokens, int width) {
  std::vector<unsigned char> out;
  for (const std::int64_t t : tokens) {
    const auto u = static_cast<std::uint64_t>(t);
    for (int b = 0; b < width; ++b) out.push_back(static_cast<unsigned char>(u >> (8 * b)));
  }
  return out;
}

// `fn` throws an InputError of one line that starts with `path` and mentions `needle`.
void require_input_error(const std::function<void()>& fn, const std::string& path,
                         const std::string& needle) {
  std::string line;
  try {
    fn();
  } catch (const InputError& e) {
    INFO("what(): " << e.what());
    CHECK(e.problems().size() == 1);
    if (!e.problems().empty()) line = e.problems().front();
  }
  INFO("message: " << line);
  REQUIRE(!line.empty());
  CHECK(line.rfind(path + ": ", 0) == 0);
  CHECK(line.find('\n') == std::string::npos);
  CHECK(line.find(needle) != std::string::npos);
}

void check_same(const Dataset& a, const Dataset& b) {
  CHECK(a.rows == b.rows);
  CHECK(a.seq_len == b.seq_len);
  CHECK(a.vocab == b.vocab);
  CHECK(a.source == b.source);
  CHECK(a.tokens == b.tokens);
}

}  // namespace

TEST_CASE("bytes input: non-overlapping windows of S+1, tail dropped", "[app][dataset_file]") {
  strata::test::TempDir dir("data-bytes");
  const std::string input = dir.file("input.txt");
  std::vector<unsigned char> bytes(105);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(i * 7 + 200);
  write_bytes(input, bytes);

  const Dataset data = strata::app::dataset_from_bytes(input, 9);  // windows of 10 bytes
  CHECK(data.rows == 10);  // 105 / 10; the last 5 bytes are dropped
  CHECK(data.seq_len == 9);
  CHECK(data.vocab == 256);
  CHECK(data.source == "bytes:" + input);
  REQUIRE(data.tokens.size() == 100);
  for (std::size_t i = 0; i < 100; ++i) CHECK(data.tokens[i] == bytes[i]);  // unsigned: 0..255

  const std::string path = dir.file("bytes.h5");
  strata::app::write_dataset_file(path, data);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  check_same(strata::app::read_dataset_file(path), data);
  CHECK(strata::app::strata_file_format(path) == "strata-dataset");

  // Exactly one window is enough.
  write_bytes(input, std::vector<unsigned char>(10, 'a'));
  CHECK(strata::app::dataset_from_bytes(input, 9).rows == 1);
}

TEST_CASE("tokens input: uint16 and int32 little-endian", "[app][dataset_file]") {
  strata::test::TempDir dir("data-tokens");
  std::vector<std::int64_t> tokens;
  for (int i = 0; i < 23; ++i) tokens.push_back((i * 2971) % 50257);  // GPT-2 vocab, > 255
  for (const auto& [dtype, width] : {std::pair<std::string, int>{"uint16", 2}, {"int32", 4}}) {
    DYNAMIC_SECTION(dtype) {
      const std::string input = dir.file("train_" + dtype + ".bin");
      write_bytes(input, little_endian(tokens, width));
      const Dataset data = strata::app::dataset_from_tokens(input, dtype, 50257, 4);
      CHECK(data.rows == 4);  // 23 / 5
      CHECK(data.vocab == 50257);
      REQUIRE(data.tokens.size() == 20);
      for (std::size_t i = 0; i < 20; ++i) CHECK(data.tokens[i] == tokens[i]);
      const std::string path = dir.file(dtype + ".h5");
      strata::app::write_dataset_file(path, data);
      check_same(strata::app::read_dataset_file(path), data);
    }
  }
}

TEST_CASE("synthetic data is uniform, in range and reproducible", "[app][dataset_file]") {
  const Dataset a = strata::app::dataset_synthetic(50, 16, 200, 7);
  const Dataset b = strata::app::dataset_synthetic(50, 16, 200, 7);
  const Dataset c = strata::app::dataset_synthetic(50, 16, 200, 8);
  CHECK(a.rows == 200);
  CHECK(a.seq_len == 16);
  CHECK(a.tokens.size() == 200u * 17u);
  CHECK(a.tokens == b.tokens);
  CHECK(a.tokens != c.tokens);
  std::vector<int> histogram(50, 0);
  for (const std::int32_t t : a.tokens) {
    REQUIRE(t >= 0);
    REQUIRE(t < 50);
    ++histogram[static_cast<std::size_t>(t)];
  }
  // 3400 draws over 50 values: each near 68; 30 is > 4.6 standard deviations below.
  for (const int h : histogram) CHECK(h > 30);

  strata::test::TempDir dir("data-synthetic");
  const std::string path = dir.file("synthetic.h5");
  strata::app::write_dataset_file(path, a);
  check_same(strata::app::read_dataset_file(path), a);
  strata::app::check_dataset_fits(a, path, 16, 50);  // fits: no throw
}

TEST_CASE("bad dataset inputs are input errors naming the path", "[app][dataset_file]") {
  const ssize_t open_before = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);  // no leaked HDF5 ids
  strata::test::TempDir dir("data-bad");
  const Dataset good = strata::app::dataset_synthetic(32, 8, 5, 3);
  const std::string good_path = dir.file("good.h5");
  strata::app::write_dataset_file(good_path, good);

  SECTION("bytes input shorter than one window") {
    const std::string input = dir.file("short.txt");
    write_bytes(input, std::vector<unsigned char>(8, 'x'));
    require_input_error([&] { strata::app::dataset_from_bytes(input, 8); }, input,
                        "shorter than one window of seq_len + 1 = 9");
  }
  SECTION("bytes input missing") {
    const std::string input = dir.file("absent.txt");
    require_input_error([&] { strata::app::dataset_from_bytes(input, 8); }, input, "no such file");
  }
  SECTION("tokens .bin with an out-of-range token") {
    const std::string input = dir.file("bad.bin");
    write_bytes(input, little_endian({1, 2, 3, 60000, 4, 5}, 2));
    require_input_error([&] { strata::app::dataset_from_tokens(input, "uint16", 50257, 2); }, input,
                        "token 60000 at byte offset 6");
  }
  SECTION("tokens .bin with a negative int32 token") {
    const std::string input = dir.file("negative.bin");
    write_bytes(input, little_endian({1, -5, 3, 4}, 4));
    require_input_error([&] { strata::app::dataset_from_tokens(input, "int32", 100, 1); }, input,
                        "token -5 at byte offset 4");
  }
  SECTION("tokens .bin that is not a whole number of tokens") {
    const std::string input = dir.file("odd.bin");
    write_bytes(input, std::vector<unsigned char>(7, 0));
    require_input_error([&] { strata::app::dataset_from_tokens(input, "uint16", 100, 1); }, input,
                        "not a whole number of uint16 tokens");
  }
  SECTION("tokens .bin with an unknown dtype") {
    const std::string input = dir.file("any.bin");
    write_bytes(input, std::vector<unsigned char>(8, 0));
    require_input_error([&] { strata::app::dataset_from_tokens(input, "int64", 100, 1); }, input,
                        "must be uint16 or int32");
  }
  SECTION("dataset seq_len differs from the model's") {
    require_input_error([&] { strata::app::check_dataset_fits(good, good_path, 16, 32); },
                        good_path, "seq_len 8 does not match the model's seq_len 16");
  }
  SECTION("dataset tokens reach the model's vocabulary") {
    Dataset data = good;
    data.tokens.assign(data.tokens.size(), 0);
    data.tokens[13] = 31;
    require_input_error([&] { strata::app::check_dataset_fits(data, good_path, 8, 31); }, good_path,
                        "token 31 at row 1, column 4");
  }
  SECTION("dataset file with a token >= its vocab") {
    Dataset data = good;
    data.tokens[3] = 32;
    const std::string path = dir.file("over_vocab.h5");
    strata::app::write_dataset_file(path, data);
    require_input_error([&] { strata::app::read_dataset_file(path); }, path,
                        "token 32 at row 0, column 3 is outside [0, vocab 32)");
  }
  SECTION("dataset file whose shape disagrees with seq_len") {
    const std::string path = dir.file("wrong_seq.h5");
    fs::copy_file(good_path, path);
    {
      strata::app::h5::File file = strata::app::h5::open_file(path, true);
      const strata::app::h5::Dataset tokens = strata::app::h5::open_dataset(file.get(), "tokens");
      strata::app::h5::write_attr_int(tokens.get(), "seq_len", 7);
    }
    require_input_error([&] { strata::app::read_dataset_file(path); }, path,
                        "shape [5, 9] is not [N, seq_len + 1] = [N, 8]");
  }
  SECTION("dataset file of a newer version") {
    const std::string path = dir.file("v2.h5");
    fs::copy_file(good_path, path);
    {
      strata::app::h5::File file = strata::app::h5::open_file(path, true);
      strata::app::h5::write_attr_int(file.get(), "version", 2);
    }
    require_input_error([&] { strata::app::read_dataset_file(path); }, path, "version 2 is newer");
  }
  SECTION("a model file given as a dataset") {
    const std::string path = dir.file("model.h5");
    strata::app::h5::write_atomically(path, [](hid_t file) {
      strata::app::h5::write_attr_string(file, "format", strata::app::kModelFormat);
      strata::app::h5::write_attr_int(file, "version", 1);
    });
    require_input_error([&] { strata::app::read_dataset_file(path); }, path,
                        "is a strata-model file, expected a strata-dataset file");
  }
  SECTION("missing, empty and text files") {
    const std::string missing = dir.file("missing.h5");
    require_input_error([&] { strata::app::read_dataset_file(missing); }, missing, "no such file");
    const std::string empty = dir.file("empty.h5");
    write_bytes(empty, {});
    require_input_error([&] { strata::app::read_dataset_file(empty); }, empty, "empty file");
    const std::string text = dir.file("text.h5");
    write_bytes(text, {'h', 'i', '\n'});
    require_input_error([&] { strata::app::read_dataset_file(text); }, text, "not an HDF5 file");
  }
  SECTION("tokens stored as int64 beyond int32 are rejected, not clipped") {
    const std::string path = dir.file("int64.h5");
    strata::app::h5::write_atomically(path, [](hid_t file) {
      namespace h5 = strata::app::h5;
      h5::write_attr_string(file, "format", strata::app::kDatasetFormat);
      h5::write_attr_int(file, "version", 1);
      const std::int64_t values[2] = {1, std::int64_t{1} << 40};
      const hsize_t dims[2] = {1, 2};
      h5::Dataspace space(H5Screate_simple(2, dims, nullptr));
      h5::Dataset d(H5Dcreate2(file, "tokens", H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                               H5P_DEFAULT));
      REQUIRE(H5Dwrite(d.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0);
      h5::write_attr_int(d.get(), "vocab", std::int64_t{1} << 31);
      h5::write_attr_int(d.get(), "seq_len", 1);
    });
    require_input_error([&] { strata::app::read_dataset_file(path); }, path, "/tokens");
  }
  CHECK(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == open_before);
}
