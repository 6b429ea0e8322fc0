// Model files (model_file.h; docs/model-format.md). Reading validates everything a later stage
// would trip over (format, version, graph, every parameter's name, file shape and dtype) and
// reports it as InputError lines starting with the path, so `strata` exits 2 before any rank
// allocates. Writing goes through h5::write_atomically (temp name + rename). Datasets keep the
// parameters' file shapes (HF's); values are row-major either way, so only shapes are mapped.
#include "app/model_file.h"

#include <cstdint>
#include <exception>
#include <set>
#include <stdexcept>

#include "app/errors.h"
#include "app/h5.h"
#include "app/shard_block.h"
#include "solver/ir/gpt.h"
#include "solver/ir/graph_json.h"

namespace strata::app {
namespace {

constexpr const char* kParamsGroup = "params";
constexpr const char* kGraphDataset = "graph";
// A corrupt or hostile file could list thousands of bad parameters; the first few say enough.
constexpr std::size_t kMaxProblemLines = 20;

std::string param_path(const std::string& name) {
  return std::string("/") + kParamsGroup + "/" + name;
}

// Parameters of `graph` by name, in id order (HF order for GPT).
std::vector<const solver::Tensor*> graph_parameters(const solver::Graph& graph) {
  std::vector<const solver::Tensor*> out;
  for (const solver::TensorId id : graph.tensors_with_role(solver::TensorRole::kParameter)) {
    out.push_back(&graph.tensor(id));
  }
  return out;
}

// Bytes of `values` as doubles for every parameter: what ParamData holds in memory.
std::uint64_t host_bytes(const std::vector<const solver::Tensor*>& params) {
  std::uint64_t bytes = 0;
  for (const solver::Tensor* t : params) {
    bytes += static_cast<std::uint64_t>(solver::num_elements(t->shape, t->name)) * sizeof(double);
  }
  return bytes;
}

// Whether `shape` describes the bytes of parameter `t`: its file shape or its graph shape.
bool is_shape_of(const solver::Shape& shape, const solver::Tensor& t) {
  return shape == solver::file_shape_of(t) || shape == t.shape;
}

std::int64_t meta_int(const ModelFile& model, const solver::Graph& graph, const std::string& key) {
  const auto it = graph.meta.find(key);
  if (it == graph.meta.end()) {
    throw InputError(model.path + ": /graph: meta '" + key + "' is missing (needed for kind " +
                     model.kind + ")");
  }
  try {
    std::size_t used = 0;
    const std::int64_t value = std::stoll(it->second, &used);
    if (used == it->second.size()) return value;
  } catch (const std::exception&) {
  }
  throw InputError(model.path + ": /graph: meta '" + key + "' = '" + it->second +
                   "' is not an integer");
}

solver::GptConfig gpt_config(const ModelFile& model, const solver::Graph& graph) {
  solver::GptConfig config;
  config.layers = meta_int(model, graph, "layers");
  config.hidden = meta_int(model, graph, "hidden");
  config.heads = meta_int(model, graph, "heads");
  config.seq_len = meta_int(model, graph, "seq_len");
  config.vocab = meta_int(model, graph, "vocab");
  config.dtype = model.dtype;
  try {
    config.fused_attention = solver::gpt_fused_attention(graph);
    solver::validate(config);
  } catch (const std::exception& e) {
    throw InputError(model.path + ": /graph: meta: " + e.what());
  }
  return config;
}

// Checks /params against the graph's parameters; returns one line per problem.
std::vector<std::string> check_params(hid_t file, const ModelFile& model,
                                      const std::vector<const solver::Tensor*>& params) {
  std::vector<std::string> problems;
  const std::string& path = model.path;
  if (!h5::exists(file, kParamsGroup)) {
    if (model.has_weights)
      problems.push_back(path + ": group /params is missing (has_weights is 1)");
    return problems;
  }
  std::set<std::string> expected;
  for (const solver::Tensor* t : params) expected.insert(t->name);

  std::set<std::string> present;
  for (const h5::Member& member : h5::list_members(file, kParamsGroup)) {
    if (member.kind != h5::ObjectKind::kDataset) {
      problems.push_back(path + ": " + param_path(member.name) + ": is not a dataset");
    } else if (!model.has_weights) {
      problems.push_back(path + ": " + param_path(member.name) +
                         ": present but root attribute has_weights is 0");
    } else if (expected.count(member.name) == 0) {
      problems.push_back(path + ": " + param_path(member.name) + ": not a parameter of the graph");
    } else {
      present.insert(member.name);
    }
  }
  if (!model.has_weights) return problems;

  const std::string file_dtype = solver::dtype_name(model.dtype);
  for (const solver::Tensor* t : params) {
    const std::string where = path + ": " + param_path(t->name);
    if (present.count(t->name) == 0) {
      problems.push_back(where + ": missing (the graph's parameter has shape " +
                         solver::shape_to_string(solver::file_shape_of(*t)) + ")");
      continue;
    }
    const h5::DatasetInfo info = h5::dataset_info(file, param_path(t->name));
    if (info.shape != solver::file_shape_of(*t)) {
      problems.push_back(where + ": shape " + solver::shape_to_string(info.shape) +
                         " does not match the graph's " +
                         solver::shape_to_string(solver::file_shape_of(*t)));
    }
    if (h5::type_name(info) != file_dtype) {
      problems.push_back(where + ": dtype " + h5::type_name(info) +
                         " does not match the file's dtype " + file_dtype);
    }
  }
  return problems;
}

void throw_problems(std::vector<std::string> problems) {
  if (problems.size() > kMaxProblemLines) {
    const std::size_t more = problems.size() - kMaxProblemLines;
    problems.resize(kMaxProblemLines);
    problems.push_back(problems.front().substr(0, problems.front().find(": ")) + ": ... and " +
                       std::to_string(more) + " more parameter problems");
  }
  throw InputError(std::move(problems));
}

// Loads every parameter of `params` from an open, validated file.
std::map<std::string, ParamData> read_param_values(
    hid_t file, const std::string& path, const std::vector<const solver::Tensor*>& params) {
  h5::check_host_memory(path, "the parameters", host_bytes(params));
  std::map<std::string, ParamData> out;
  for (const solver::Tensor* t : params) {
    ParamData data;
    data.values = h5::read_f64(file, param_path(t->name), &data.shape);
    out.emplace(t->name, std::move(data));
  }
  return out;
}

// Runs `body`, turning h5::Error (which already starts with the file name) into InputError.
template <class Body>
auto as_input_error(const std::string& path, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const h5::Error& e) {
    const std::string what = e.what();
    throw InputError(what.rfind(path, 0) == 0 ? what : path + ": " + what);
  }
}

}  // namespace

void write_model_file(const std::string& path, const ModelFile& model) {
  if (model.dtype != solver::DType::kF32 && model.dtype != solver::DType::kF64) {
    throw std::invalid_argument(path + ": model files store f32 or f64, not " +
                                solver::dtype_name(model.dtype));
  }
  for (const auto& [name, data] : model.params) {
    if (name.empty() || name.find('/') != std::string::npos) {
      throw std::invalid_argument(path + ": parameter name '" + name +
                                  "' is empty or contains '/'");
    }
    if (static_cast<std::int64_t>(data.values.size()) != solver::num_elements(data.shape, name)) {
      throw std::invalid_argument(path + ": parameter " + name + " has " +
                                  std::to_string(data.values.size()) + " values for shape " +
                                  solver::shape_to_string(data.shape));
    }
  }
  // Dataset shapes: a parameter given in its graph shape is written in its file shape.
  std::map<std::string, solver::Shape> dataset_shape;
  if (model.has_weights && !model.params.empty()) {
    solver::Graph graph;
    try {
      graph = solver::decode_graph_json(model.graph_json, 1);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(
          path + ": cannot write weights for a graph that does not decode: " + e.what());
    }
    for (const auto& [name, data] : model.params) {
      const solver::TensorId id = graph.find(name);
      dataset_shape[name] = id != solver::kNoTensor && is_shape_of(data.shape, graph.tensor(id))
                                ? solver::file_shape_of(graph.tensor(id))
                                : data.shape;  // not the graph's: read_model_file will say so
    }
  }
  h5::write_atomically(path, [&](hid_t file) {
    h5::write_attr_string(file, "format", kModelFormat);
    h5::write_attr_int(file, "version", kModelVersion);
    h5::write_attr_string(file, "kind", model.kind);
    h5::write_attr_uint(file, "seed", model.seed);
    h5::write_attr_int(file, "has_weights", model.has_weights ? 1 : 0);
    h5::write_attr_string(file, "dtype", solver::dtype_name(model.dtype));
    h5::write_string_dataset(file, kGraphDataset, model.graph_json);
    h5::create_group(file, kParamsGroup);  // present (empty) without weights, for h5py users
    if (!model.has_weights) return;
    for (const auto& [name, data] : model.params) {
      h5::write_values(file, param_path(name), dataset_shape.at(name), data.values, model.dtype);
    }
  });
}

ModelFile read_model_file(const std::string& path, bool load_params) {
  h5::StrataFile opened = h5::open_strata_file(path, kModelFormat, kModelVersion);
  const hid_t file = opened.file.get();
  ModelFile model;
  model.path = path;
  as_input_error(path, [&] {
    model.kind = h5::read_attr_string(file, "kind");
    model.seed = h5::read_attr_uint(file, "seed");
    const std::int64_t has_weights = h5::read_attr_int(file, "has_weights");
    if (has_weights != 0 && has_weights != 1) {
      throw InputError(path + ": root attribute has_weights = " + std::to_string(has_weights) +
                       " must be 0 or 1");
    }
    model.has_weights = has_weights == 1;
    const std::string dtype = h5::read_attr_string(file, "dtype");
    if (dtype != "f32" && dtype != "f64") {
      throw InputError(path + ": root attribute dtype = '" + dtype + "' must be f32 or f64");
    }
    model.dtype = solver::parse_dtype(dtype);
    model.graph_json = h5::read_string_dataset(file, kGraphDataset);
  });

  const solver::Graph graph = model_graph(model, 1);
  const auto kind = graph.meta.find("kind");
  if (kind != graph.meta.end() && kind->second != model.kind) {
    throw InputError(path + ": root attribute kind = '" + model.kind +
                     "' but the graph's meta says '" + kind->second + "'");
  }
  if (model.kind == "gpt") gpt_config(model, graph);  // the init rule needs valid hyper-parameters
  const std::vector<const solver::Tensor*> params = graph_parameters(graph);

  as_input_error(path, [&] {
    std::vector<std::string> problems = check_params(file, model, params);
    if (!problems.empty()) throw_problems(std::move(problems));
    if (model.has_weights && load_params) model.params = read_param_values(file, path, params);
  });
  return model;
}

solver::Graph model_graph(const ModelFile& model, std::int64_t batch) {
  try {
    return solver::decode_graph_json(model.graph_json, batch);
  } catch (const std::exception& e) {
    throw InputError(model.path + ": /graph: " + e.what());
  }
}

std::map<std::string, ParamData> model_parameters(const ModelFile& model,
                                                  const solver::Graph& graph) {
  const std::vector<const solver::Tensor*> params = graph_parameters(graph);
  std::map<std::string, ParamData> out;
  if (model.has_weights) {
    if (model.params.empty() && !params.empty()) {
      // read_model_file(path, false) validated the file but left the values on disk.
      h5::StrataFile opened = h5::open_strata_file(model.path, kModelFormat, kModelVersion);
      return as_input_error(model.path, [&] {
        std::vector<std::string> problems = check_params(opened.file.get(), model, params);
        if (!problems.empty()) throw_problems(std::move(problems));
        return read_param_values(opened.file.get(), model.path, params);
      });
    }
    for (const solver::Tensor* t : params) {
      const auto it = model.params.find(t->name);
      if (it == model.params.end()) {
        throw InputError(model.path + ": " + param_path(t->name) + ": missing");
      }
      if (!is_shape_of(it->second.shape, *t)) {
        throw InputError(model.path + ": " + param_path(t->name) + ": shape " +
                         solver::shape_to_string(it->second.shape) +
                         " does not match the graph's " +
                         solver::shape_to_string(solver::file_shape_of(*t)));
      }
      ParamData& data = out.emplace(t->name, it->second).first->second;
      data.shape = solver::file_shape_of(*t);
    }
    return out;
  }

  if (model.kind != "gpt") {
    throw InputError(model.path + ": kind '" + model.kind +
                     "' has no initialisation rule (only gpt); write the file with weights");
  }
  const solver::GptConfig config = gpt_config(model, graph);
  h5::check_host_memory(model.path, "the parameters", host_bytes(params));
  for (const solver::Tensor* t : params) {
    ParamData data;
    data.shape = solver::file_shape_of(*t);
    data.values = solver::gpt_init_values(config, t->name, solver::num_elements(t->shape, t->name),
                                          model.seed);
    // Round to the file dtype, so a --no-weights file trains exactly like the file that
    // `strata model` would have written with weights from the same seed.
    if (model.dtype == solver::DType::kF32) {
      for (double& v : data.values) v = static_cast<double>(static_cast<float>(v));
    }
    out.emplace(t->name, std::move(data));
  }
  return out;
}

struct ParamBlockReader::Impl {
  const ModelFile& model;
  solver::GptConfig config;
  h5::File file;
};

ParamBlockReader::ParamBlockReader(const ModelFile& model, const solver::Graph& graph)
    : impl_(new Impl{model, {}, {}}) {
  const std::vector<const solver::Tensor*> params = graph_parameters(graph);
  if (!model.has_weights) {
    if (model.kind != "gpt") {
      throw InputError(model.path + ": kind '" + model.kind +
                       "' has no initialisation rule (only gpt); write the file with weights");
    }
    impl_->config = gpt_config(model, graph);
    return;
  }
  h5::StrataFile opened = h5::open_strata_file(model.path, kModelFormat, kModelVersion);
  as_input_error(model.path, [&] {
    std::vector<std::string> problems = check_params(opened.file.get(), model, params);
    if (!problems.empty()) throw_problems(std::move(problems));
    return 0;
  });
  impl_->file = std::move(opened.file);
}

ParamBlockReader::~ParamBlockReader() = default;

std::vector<double> ParamBlockReader::read(const solver::Tensor& param,
                                           const std::vector<solver::DimSlice>& block) {
  const solver::Shape& gs = param.shape;
  if (!impl_->model.has_weights) {
    std::vector<double> full = solver::gpt_init_values(
        impl_->config, param.name, solver::num_elements(gs, param.name), impl_->model.seed);
    if (impl_->model.dtype == solver::DType::kF32) {
      for (double& v : full) v = static_cast<double>(static_cast<float>(v));
    }
    return extract_block(full.data(), gs, block);
  }
  const solver::Shape& fs = solver::file_shape_of(param);
  // k leading dims shared by the file and graph shapes; the file's last dim fuses the rest.
  std::size_t k = 0;
  if (fs == gs) {
    k = gs.size();
  } else {
    while (k + 1 < fs.size() && k < gs.size() && fs[k] == gs[k]) ++k;
    if (k + 1 != fs.size()) k = 0;  // another reshape: the file's dims from 0 are read whole
  }
  solver::Shape start, count, read_shape;
  std::vector<solver::DimSlice> cut;
  for (std::size_t d = 0; d < k; ++d) {
    start.push_back(block[d].offset);
    count.push_back(block[d].size);
    read_shape.push_back(block[d].size);
    cut.push_back({0, block[d].size});
  }
  for (std::size_t d = k; d < fs.size(); ++d) {
    start.push_back(0);
    count.push_back(fs[d]);
  }
  for (std::size_t d = k; d < gs.size(); ++d) {
    read_shape.push_back(gs[d]);
    cut.push_back(block[d]);
  }
  return as_input_error(impl_->model.path, [&] {
    const std::vector<double> slab =
        h5::read_f64_slab(impl_->file.get(), param_path(param.name), start, count);
    return extract_block(slab.data(), read_shape, cut);
  });
}

std::string strata_file_format(const std::string& path) {
  return h5::open_strata_file(path).format;
}

}  // namespace strata::app
