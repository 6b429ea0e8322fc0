// Model files (HDF5, DESIGN.md section 7; docs/model-format.md): the forward graph as JSON in the
// variable-length UTF-8 string dataset `/graph`, root attributes `format` = "strata-model",
// `version`, `kind` ("gpt"), `seed`, `has_weights`, and parameters as datasets `/params/<name>`
// in f32 or f64 with the graph parameters' file shapes (solver::file_shape_of: HF GPT-2 names and
// [in, out] layouts, c_attn [H, 3H] while the graph holds [H, 3, A, D]; the same row-major bytes;
// the tied LM head has no dataset). Readable with h5dump and h5py.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "solver/intra/layout.h"
#include "solver/ir/graph.h"

namespace strata::app {

inline constexpr const char* kModelFormat = "strata-model";
inline constexpr int kModelVersion = 1;

// Host copy of one parameter; values as double (the file dtype is ModelFile::dtype), row-major.
struct ParamData {
  // The file shape (solver::file_shape_of: [H, 3H] for c_attn). Readers return it; writers also
  // accept the graph's factored shape, which has the same values in the same order.
  solver::Shape shape;
  std::vector<double> values;
};

struct ModelFile {
  std::string path;
  std::string kind;                           // "gpt"
  std::string graph_json;                     // solver::encode_graph_json of the forward graph
  solver::DType dtype = solver::DType::kF32;  // parameter dtype in the file (f32 or f64)
  std::uint64_t seed = 0;                     // init seed (used when has_weights is false)
  bool has_weights = true;
  std::map<std::string, ParamData> params;  // by name; empty when !has_weights
};

// Writes to `path + ".tmp"` and renames when complete, so a failure never leaves a partial file.
// A parameter given in its graph shape is written in its file shape (model.graph_json says
// which). Throws std::runtime_error naming the path on I/O failure, std::invalid_argument for
// values that do not fill their shape or (with weights) a graph_json that does not decode.
void write_model_file(const std::string& path, const ModelFile& model);

// Reads and validates: a missing, truncated or non-HDF5 file, another Strata file kind, a newer
// version, a graph that does not decode, or parameter datasets whose names, shapes or dtypes
// disagree with the graph throw InputError with one line naming the path and the problem.
// With `load_params` false the parameter datasets are still validated but their values stay on
// disk (planning a huge model); model_parameters then reads them from model.path.
ModelFile read_model_file(const std::string& path, bool load_params = true);

// Decodes model.graph_json for micro-batch `batch` (InputError on failure, naming the path).
solver::Graph model_graph(const ModelFile& model, std::int64_t batch);

// Parameter values for every parameter of `graph`, each with its file shape: from the file when
// it has weights, else initialised from the stored seed with the model kind's init rule
// (solver::gpt_init_values), rounded to the file dtype. InputError (naming the path) for a missing
// parameter, a shape mismatch, a kind without an init rule, or values that do not fit in host
// memory.
std::map<std::string, ParamData> model_parameters(const ModelFile& model,
                                                  const solver::Graph& graph);

// Reads blocks of parameters, so that each rank loads only its shards (DESIGN.md section 6): an
// HDF5 hyperslab of the file when the model has weights (the leading dims the graph and file
// shapes share are sliced in the file; trailing dims the file fuses, c_attn's [3, A, D] stored
// as 3H, are read whole for those rows and cut here), else the seed's initial values (computed
// whole, then cut). The constructor validates every parameter of `graph` against the file.
class ParamBlockReader {
 public:
  ParamBlockReader(const ModelFile& model, const solver::Graph& graph);
  ~ParamBlockReader();
  ParamBlockReader(const ParamBlockReader&) = delete;
  ParamBlockReader& operator=(const ParamBlockReader&) = delete;
  // The block (graph coordinates of `param`), row-major, as the file dtype rounds it.
  std::vector<double> read(const solver::Tensor& param, const std::vector<solver::DimSlice>& block);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What kind of Strata file `path` is ("strata-model", "strata-dataset", "strata-checkpoint"),
// read from its root `format` attribute; InputError when it is not a readable Strata file.
std::string strata_file_format(const std::string& path);

}  // namespace strata::app
