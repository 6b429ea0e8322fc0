// Dataset files (dataset_file.h; docs/data-format.md): building token windows from raw bytes, a
// pre-tokenised binary or a seeded generator, and writing and validating the HDF5 file. Inputs
// are read in binary (little-endian tokens) in bounded chunks; every problem is an InputError
// line starting with the offending path.
#include "app/dataset_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>

#include "app/errors.h"
#include "app/h5.h"

namespace strata::app {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTokensDataset = "tokens";
constexpr std::int64_t kByteVocab = 256;
// Tokens are int32, so ids run up to 2^31 - 1: a vocabulary of at most 2^31 entries.
constexpr std::int64_t kMaxVocab = std::int64_t{1} << 31;
constexpr std::int64_t kMaxSeqLen = std::int64_t{1} << 31;
constexpr std::size_t kReadChunkBytes = std::size_t{1} << 20;

void check_range(const std::string& who, const char* what, std::int64_t value, std::int64_t max) {
  if (value < 1 || value > max) {
    throw InputError(who + ": " + what + " = " + std::to_string(value) + " must be in [1, " +
                     std::to_string(max) + "]");
  }
}

// Size of the regular file `path`; InputError when it is missing, a directory or unreadable.
std::uint64_t input_size(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw InputError(path + ": no such file");
  if (fs::is_directory(status)) throw InputError(path + ": is a directory, expected a file");
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) throw InputError(path + ": cannot read: " + ec.message());
  return size;
}

std::ifstream open_binary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot read: " + std::strerror(errno));
  return in;
}

// Cuts `count` tokens into non-overlapping windows of seq_len + 1 and drops the tail.
Dataset windows(std::vector<std::int32_t> tokens, std::int64_t seq_len, std::int64_t vocab,
                std::string source) {
  Dataset data;
  data.seq_len = seq_len;
  data.vocab = vocab;
  data.rows = static_cast<std::int64_t>(tokens.size()) / (seq_len + 1);
  tokens.resize(static_cast<std::size_t>(data.rows * (seq_len + 1)));
  tokens.shrink_to_fit();
  data.tokens = std::move(tokens);
  data.source = std::move(source);
  return data;
}

// A uniform integer in [0, bound) from a 64-bit draw, by rejection of the top partial bucket.
// Written out because std::uniform_int_distribution differs between standard libraries, and
// synthetic datasets must be the same everywhere.
std::int64_t uniform_below(std::mt19937_64& rng, std::uint64_t bound) {
  const std::uint64_t rejected = (std::numeric_limits<std::uint64_t>::max() % bound + 1) % bound;
  const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() - rejected;
  std::uint64_t draw = rng();
  while (draw > limit) draw = rng();
  return static_cast<std::int64_t>(draw % bound);
}

std::string position(std::size_t index, std::int64_t seq_len) {
  const auto width = static_cast<std::size_t>(seq_len + 1);
  return "row " + std::to_string(index / width) + ", column " + std::to_string(index % width);
}

}  // namespace

Dataset dataset_from_bytes(const std::string& input_path, std::int64_t seq_len) {
  check_range(input_path, "seq_len", seq_len, kMaxSeqLen);
  const std::uint64_t size = input_size(input_path);
  const auto window = static_cast<std::uint64_t>(seq_len + 1);
  if (size < window) {
    throw InputError(input_path + ": " + std::to_string(size) +
                     " bytes, shorter than one window of seq_len + 1 = " + std::to_string(window) +
                     " bytes");
  }
  const std::uint64_t used = size / window * window;
  h5::check_host_memory(input_path, "the int32 tokens", used * sizeof(std::int32_t));
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(used));
  std::ifstream in = open_binary(input_path);
  std::vector<unsigned char> chunk(kReadChunkBytes);
  std::size_t filled = 0;
  while (filled < tokens.size()) {
    const std::size_t want = std::min(chunk.size(), tokens.size() - filled);
    in.read(reinterpret_cast<char*>(chunk.data()), static_cast<std::streamsize>(want));
    if (static_cast<std::size_t>(in.gcount()) != want) {
      throw InputError(input_path + ": read failed after " + std::to_string(filled) + " bytes");
    }
    for (std::size_t i = 0; i < want; ++i) tokens[filled + i] = chunk[i];
    filled += want;
  }
  return windows(std::move(tokens), seq_len, kByteVocab, "bytes:" + input_path);
}

Dataset dataset_from_tokens(const std::string& input_path, const std::string& dtype,
                            std::int64_t vocab, std::int64_t seq_len) {
  std::size_t token_bytes = 0;
  if (dtype == "uint16") token_bytes = 2;
  if (dtype == "int32") token_bytes = 4;
  if (token_bytes == 0) {
    throw InputError(input_path + ": token dtype '" + dtype + "' must be uint16 or int32");
  }
  check_range(input_path, "vocab", vocab, kMaxVocab);
  check_range(input_path, "seq_len", seq_len, kMaxSeqLen);
  const std::uint64_t size = input_size(input_path);
  if (size % token_bytes != 0) {
    throw InputError(input_path + ": " + std::to_string(size) + " bytes is not a whole number of " +
                     dtype + " tokens (" + std::to_string(token_bytes) + " bytes each)");
  }
  const std::uint64_t count = size / token_bytes;
  const auto window = static_cast<std::uint64_t>(seq_len + 1);
  if (count < window) {
    throw InputError(input_path + ": " + std::to_string(count) + " " + dtype +
                     " tokens, shorter than one window of seq_len + 1 = " + std::to_string(window) +
                     " tokens");
  }
  h5::check_host_memory(input_path, "the int32 tokens", count * sizeof(std::int32_t));
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(count));
  std::ifstream in = open_binary(input_path);
  std::vector<unsigned char> chunk(kReadChunkBytes / token_bytes * token_bytes);
  std::size_t filled = 0;
  while (filled < tokens.size()) {
    const std::size_t n = std::min(chunk.size() / token_bytes, tokens.size() - filled);
    in.read(reinterpret_cast<char*>(chunk.data()), static_cast<std::streamsize>(n * token_bytes));
    if (static_cast<std::size_t>(in.gcount()) != n * token_bytes) {
      throw InputError(input_path + ": read failed after " + std::to_string(filled) + " tokens");
    }
    for (std::size_t i = 0; i < n; ++i) {
      const unsigned char* b = &chunk[i * token_bytes];
      // Little-endian by definition of the format (nanoGPT writes numpy's native LE arrays).
      std::int64_t value = 0;
      if (token_bytes == 2) {
        value = static_cast<std::int64_t>(b[0]) | (static_cast<std::int64_t>(b[1]) << 8);
      } else {
        const std::uint32_t u =
            static_cast<std::uint32_t>(b[0]) | (static_cast<std::uint32_t>(b[1]) << 8) |
            (static_cast<std::uint32_t>(b[2]) << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
        value = static_cast<std::int32_t>(u);
      }
      if (value < 0 || value >= vocab) {
        const std::uint64_t index = filled + i;
        throw InputError(input_path + ": token " + std::to_string(value) + " at byte offset " +
                         std::to_string(index * token_bytes) + " (token " + std::to_string(index) +
                         ") is outside [0, vocab " + std::to_string(vocab) + ")");
      }
      tokens[filled + i] = static_cast<std::int32_t>(value);
    }
    filled += n;
  }
  return windows(std::move(tokens), seq_len, vocab, "tokens:" + input_path + " (" + dtype + ")");
}

Dataset dataset_synthetic(std::int64_t vocab, std::int64_t seq_len, std::int64_t count,
                          std::uint64_t seed) {
  const std::string who = "strata data synthetic";
  check_range(who, "vocab", vocab, kMaxVocab);
  check_range(who, "seq_len", seq_len, kMaxSeqLen);
  check_range(who, "count", count, std::numeric_limits<std::int64_t>::max() / (seq_len + 1));
  const auto total = static_cast<std::uint64_t>(count) * static_cast<std::uint64_t>(seq_len + 1);
  h5::check_host_memory(who, "the int32 tokens", total * sizeof(std::int32_t));
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(total));
  std::mt19937_64 rng(seed);
  for (std::int32_t& t : tokens) {
    t = static_cast<std::int32_t>(uniform_below(rng, static_cast<std::uint64_t>(vocab)));
  }
  return windows(std::move(tokens), seq_len, vocab,
                 "synthetic: vocab " + std::to_string(vocab) + ", seq_len " +
                     std::to_string(seq_len) + ", count " + std::to_string(count) + ", seed " +
                     std::to_string(seed));
}

void write_dataset_file(const std::string& path, const Dataset& data) {
  if (data.rows < 1 || data.seq_len < 1 ||
      static_cast<std::int64_t>(data.tokens.size()) != data.rows * (data.seq_len + 1)) {
    throw std::invalid_argument(
        path + ": dataset of " + std::to_string(data.tokens.size()) +
        " tokens is not rows x (seq_len + 1) = " + std::to_string(data.rows) + " x " +
        std::to_string(data.seq_len + 1));
  }
  h5::write_atomically(path, [&](hid_t file) {
    h5::write_attr_string(file, "format", kDatasetFormat);
    h5::write_attr_int(file, "version", kDatasetVersion);
    h5::write_attr_string(file, "source", data.source);
    h5::write_dataset(file, kTokensDataset, {data.rows, data.seq_len + 1}, data.tokens.data());
    const h5::Dataset tokens = h5::open_dataset(file, kTokensDataset);
    h5::write_attr_int(tokens.get(), "vocab", data.vocab);
    h5::write_attr_int(tokens.get(), "seq_len", data.seq_len);
  });
}

Dataset read_dataset_file(const std::string& path) {
  h5::StrataFile opened = h5::open_strata_file(path, kDatasetFormat, kDatasetVersion);
  const hid_t file = opened.file.get();
  Dataset data;
  try {
    // `source` only describes the origin; a file written by other tools may leave it out.
    if (h5::has_attr(file, "source")) data.source = h5::read_attr_string(file, "source");
    const h5::DatasetInfo info = h5::dataset_info(file, kTokensDataset);
    if (info.type_class != h5::TypeClass::kInteger) {
      throw InputError(path + ": /tokens: holds " + h5::type_name(info) +
                       ", expected int32 tokens");
    }
    const h5::Dataset tokens = h5::open_dataset(file, kTokensDataset);
    data.vocab = h5::read_attr_int(tokens.get(), "vocab");
    data.seq_len = h5::read_attr_int(tokens.get(), "seq_len");
    check_range(path + ": /tokens", "attribute vocab", data.vocab, kMaxVocab);
    check_range(path + ": /tokens", "attribute seq_len", data.seq_len, kMaxSeqLen);
    if (info.shape.size() != 2 || info.shape[1] != data.seq_len + 1) {
      throw InputError(path + ": /tokens: shape " + solver::shape_to_string(info.shape) +
                       " is not [N, seq_len + 1] = [N, " + std::to_string(data.seq_len + 1) + "]");
    }
    if (info.shape[0] < 1) throw InputError(path + ": /tokens: no rows (N = 0)");
    data.rows = info.shape[0];
    h5::check_host_memory(path, "the tokens",
                          static_cast<std::uint64_t>(data.rows) *
                              static_cast<std::uint64_t>(data.seq_len + 1) * sizeof(std::int32_t));
    data.tokens = h5::read_i32(file, kTokensDataset);
  } catch (const h5::Error& e) {
    const std::string what = e.what();
    throw InputError(what.rfind(path, 0) == 0 ? what : path + ": " + what);
  }
  for (std::size_t i = 0; i < data.tokens.size(); ++i) {
    const std::int32_t t = data.tokens[i];
    if (t < 0 || t >= data.vocab) {
      throw InputError(path + ": /tokens: token " + std::to_string(t) + " at " +
                       position(i, data.seq_len) + " is outside [0, vocab " +
                       std::to_string(data.vocab) + ")");
    }
  }
  return data;
}

void check_dataset_fits(const Dataset& data, const std::string& path, std::int64_t seq_len,
                        std::int64_t vocab) {
  if (data.seq_len != seq_len) {
    throw InputError(path + ": seq_len " + std::to_string(data.seq_len) +
                     " does not match the model's seq_len " + std::to_string(seq_len));
  }
  for (std::size_t i = 0; i < data.tokens.size(); ++i) {
    const std::int32_t t = data.tokens[i];
    if (t < 0 || t >= vocab) {
      throw InputError(path + ": token " + std::to_string(t) + " at " + position(i, data.seq_len) +
                       " is outside the model's vocabulary [0, " + std::to_string(vocab) + ")");
    }
  }
}

}  // namespace strata::app
