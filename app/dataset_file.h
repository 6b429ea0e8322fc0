// Dataset files (HDF5, DESIGN.md section 7; docs/data-format.md): `/tokens` int32 [N, S+1] with
// attributes `vocab` and `seq_len`; root attributes `format` = "strata-dataset", `version`,
// `source` (what it was made from). Rows are training windows: inputs tokens[:, :S], targets
// tokens[:, 1:].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata::app {

inline constexpr const char* kDatasetFormat = "strata-dataset";
inline constexpr int kDatasetVersion = 1;

struct Dataset {
  std::int64_t rows = 0;     // N
  std::int64_t seq_len = 0;  // S (each row holds S+1 tokens)
  std::int64_t vocab = 0;
  std::string source;
  std::vector<std::int32_t> tokens;  // row-major [N, S+1]
};

// `strata data bytes`: the file's bytes cut into non-overlapping windows of S+1 tokens (vocab
// 256), tail dropped. InputError when the file is missing or shorter than one window.
Dataset dataset_from_bytes(const std::string& input_path, std::int64_t seq_len);
// `strata data tokens`: a pre-tokenised binary (nanoGPT .bin) of uint16 or int32 tokens, same
// windowing; tokens >= vocab (or < 0) are an InputError naming the offset.
Dataset dataset_from_tokens(const std::string& input_path, const std::string& dtype,
                            std::int64_t vocab, std::int64_t seq_len);
// `strata data synthetic`: `count` rows of uniform tokens in [0, vocab) from std::mt19937_64(seed).
Dataset dataset_synthetic(std::int64_t vocab, std::int64_t seq_len, std::int64_t count,
                          std::uint64_t seed);

// Temp name + rename, as write_model_file.
void write_dataset_file(const std::string& path, const Dataset& data);
// Validates format, version, shape [N, S+1] with N >= 1, attributes, token range; InputError
// with one line naming the path otherwise.
Dataset read_dataset_file(const std::string& path);
// InputError naming `path` unless data.seq_len == seq_len and every token < vocab.
void check_dataset_fits(const Dataset& data, const std::string& path, std::int64_t seq_len,
                        std::int64_t vocab);

}  // namespace strata::app
