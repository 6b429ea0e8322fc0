// Checkpoint files: write (rank 0, streaming), check, read, find, prune.
#include "app/checkpoint.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <regex>

#include "app/errors.h"
#include "app/h5.h"

namespace strata::app {

namespace fs = std::filesystem;

std::string checkpoint_path(const std::string& dir, std::int64_t step) {
  return fmt::format("{}/ckpt_step{:08d}.h5", dir, step);
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::pair<std::int64_t, std::string>> found;
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) return {};
  static const std::regex name(R"(ckpt_step(\d+)\.h5)");
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string file = entry.path().filename().string();
    if (entry.is_regular_file(ec) && std::regex_match(file, m, name))
      found.emplace_back(std::stoll(m[1].str()), entry.path().string());
  }
  std::sort(found.rbegin(), found.rend());
  std::vector<std::string> out;
  for (auto& [step, path] : found) out.push_back(std::move(path));
  return out;
}

void write_checkpoint(const std::string& path, const CheckpointMeta& meta,
                      const std::function<void(const DatasetWriter&)>& fill) {
  fs::create_directories(fs::path(path).parent_path());
  h5::write_atomically(path, [&](hid_t file) {
    h5::write_attr_string(file, "format", kCheckpointFormat);
    h5::write_attr_int(file, "version", kCheckpointVersion);
    h5::write_attr_int(file, "step", meta.step);
    h5::write_attr_double(file, "loss", meta.loss);
    h5::write_attr_uint(file, "seed", meta.seed);
    h5::write_attr_int(file, "data_step", meta.step + 1);
    h5::write_string_dataset(file, "config", meta.config_yaml);
    h5::write_string_dataset(file, "plan", meta.plan_json);
    fill([&](const std::string& dataset, const solver::Shape& shape,
             const std::vector<double>& values,
             solver::DType dtype) { h5::write_values(file, dataset, shape, values, dtype); });
  });
}

namespace {

// Dataset names and file shapes a checkpoint of `graph` must hold.
std::vector<std::pair<std::string, solver::Shape>> expected_datasets(
    const solver::Graph& graph, const std::string& optimizer_kind) {
  std::vector<std::pair<std::string, solver::Shape>> out;
  for (solver::TensorId p : graph.tensors_with_role(solver::TensorRole::kParameter)) {
    const solver::Tensor& t = graph.tensor(p);
    const solver::Shape& shape = solver::file_shape_of(t);
    out.push_back({"params/" + t.name, shape});
    if (optimizer_kind == "adamw") {
      out.push_back({"optimizer/" + t.name + "/m", shape});
      out.push_back({"optimizer/" + t.name + "/v", shape});
    } else {
      out.push_back({"optimizer/" + t.name + "/buf", shape});
    }
  }
  return out;
}

}  // namespace

CheckpointMeta check_checkpoint(const std::string& path, const solver::Graph& graph,
                                const std::string& optimizer_kind) {
  h5::StrataFile f = h5::open_strata_file(path, kCheckpointFormat, kCheckpointVersion);
  CheckpointMeta meta;
  try {
    meta.step = h5::read_attr_int(f.file.get(), "step");
    meta.loss = h5::read_attr_double(f.file.get(), "loss");
    meta.seed = h5::read_attr_uint(f.file.get(), "seed");
    meta.config_yaml = h5::read_string_dataset(f.file.get(), "config");
    meta.plan_json = h5::read_string_dataset(f.file.get(), "plan");
    for (const auto& [dataset, shape] : expected_datasets(graph, optimizer_kind)) {
      if (!h5::exists(f.file.get(), dataset))
        throw InputError(path + ": " + dataset + " is missing (another model or optimizer?)");
      const h5::DatasetInfo info = h5::dataset_info(f.file.get(), dataset);
      if (info.shape != shape || info.type_class != h5::TypeClass::kFloat) {
        throw InputError(fmt::format("{}: {} is {} {}, expected float {}", path, dataset,
                                     h5::type_name(info), solver::shape_to_string(info.shape),
                                     solver::shape_to_string(shape)));
      }
    }
  } catch (const h5::Error& e) {
    throw InputError(path + ": not a readable checkpoint: " + e.what());
  }
  if (meta.step < 1) throw InputError(fmt::format("{}: step {} is not >= 1", path, meta.step));
  return meta;
}

std::vector<double> read_checkpoint_dataset(const std::string& path, const std::string& dataset) {
  h5::File file = h5::open_file(path);
  return h5::read_f64(file.get(), dataset);
}

std::string find_resume_checkpoint(const std::string& resume, const std::string& dir,
                                   const solver::Graph& graph, const std::string& optimizer_kind,
                                   const std::function<void(const std::string&)>& warn) {
  if (resume == "never") return "";
  if (resume != "auto") {
    check_checkpoint(resume, graph, optimizer_kind);
    return resume;
  }
  for (const std::string& path : list_checkpoints(dir)) {
    try {
      check_checkpoint(path, graph, optimizer_kind);
      return path;
    } catch (const InputError& e) {
      warn(e.problems().front() + "; trying an older checkpoint");
    }
  }
  return "";
}

void prune_checkpoints(const std::string& dir, std::int64_t keep) {
  const std::vector<std::string> all = list_checkpoints(dir);
  for (std::size_t i = static_cast<std::size_t>(std::max<std::int64_t>(keep, 1)); i < all.size();
       ++i) {
    std::error_code ec;
    fs::remove(all[i], ec);
  }
}

}  // namespace strata::app
