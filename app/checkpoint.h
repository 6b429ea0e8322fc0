// Checkpoints (HDF5, DESIGN.md section 7; docs/checkpoints.md): parameters and optimizer state in
// the logical, unsharded layout with the model file's names (/params/<name>,
// /optimizer/<name>/{m,v} for AdamW, /optimizer/<name>/buf for SGD), root attributes format
// "strata-checkpoint", version, step, loss, seed, data_step (the next step's data position),
// and the resolved config (YAML) and plan (JSON) as string datasets /config and /plan. Files are
// <dir>/ckpt_step<8-digit step>.h5, written under a temporary name and renamed when complete, so
// a crash mid-write leaves the previous checkpoint intact. They resume on any plan and rank count
// and read with h5py. First version: gathered to rank 0 one tensor at a time and written with
// serial HDF5.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "solver/ir/graph.h"

namespace strata::app {

inline constexpr const char* kCheckpointFormat = "strata-checkpoint";
inline constexpr int kCheckpointVersion = 1;

struct CheckpointMeta {
  std::int64_t step = 0;  // optimizer steps done
  double loss = 0;        // loss of that step
  std::uint64_t seed = 0;
  std::string config_yaml, plan_json;
};

// "<dir>/ckpt_step00000042.h5".
std::string checkpoint_path(const std::string& dir, std::int64_t step);
// Complete checkpoints in `dir` (names ckpt_step<digits>.h5, temporaries excluded), newest first.
std::vector<std::string> list_checkpoints(const std::string& dir);

// Writes a checkpoint atomically. `fill(write)` must call write(dataset, shape, values, dtype)
// for every tensor; rank 0 runs it while the other ranks stream their shards to it.
using DatasetWriter = std::function<void(const std::string& dataset, const solver::Shape& shape,
                                         const std::vector<double>& values, solver::DType dtype)>;
void write_checkpoint(const std::string& path, const CheckpointMeta& meta,
                      const std::function<void(const DatasetWriter&)>& fill);

// Opens and checks a checkpoint: the format, version, attributes, and a dataset of the right
// file shape for every parameter and optimizer state `graph` (a training graph) has. InputError
// with one line naming the path and the problem (missing, truncated, not HDF5, another kind, a
// missing or misshapen tensor).
CheckpointMeta check_checkpoint(const std::string& path, const solver::Graph& graph,
                                const std::string& optimizer_kind);
// Values of one dataset ("params/<name>", ...), row-major.
std::vector<double> read_checkpoint_dataset(const std::string& path, const std::string& dataset);

// The checkpoint a run resumes from (checkpoint.resume): "never" or an empty dir -> ""; a path
// -> that path, checked (InputError when bad); "auto" -> the newest complete checkpoint in `dir`
// that passes the check; a bad one is skipped with a warning line through `warn`.
std::string find_resume_checkpoint(const std::string& resume, const std::string& dir,
                                   const solver::Graph& graph, const std::string& optimizer_kind,
                                   const std::function<void(const std::string&)>& warn);

// Deletes all but the newest `keep` complete checkpoints in `dir` (after a newer one is written).
void prune_checkpoints(const std::string& dir, std::int64_t keep);

}  // namespace strata::app
