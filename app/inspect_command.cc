// Human-readable summaries of Strata files.
#include "app/inspect_command.h"

#include <fmt/format.h>

#include <map>

#include "app/checkpoint.h"
#include "app/dataset_file.h"
#include "app/errors.h"
#include "app/h5.h"
#include "app/model_file.h"
#include "solver/ir/autodiff.h"
#include "solver/ir/flops.h"
#include "solver/plan/plan.h"

namespace strata::app {
namespace {

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

std::string human_count(double n) {
  if (n >= 1e12) return fmt::format("{:.2f} T", n / 1e12);
  if (n >= 1e9) return fmt::format("{:.2f} G", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.2f} M", n / 1e6);
  if (n >= 1e3) return fmt::format("{:.2f} k", n / 1e3);
  return fmt::format("{:.0f}", n);
}

void inspect_model(const std::string& path) {
  const ModelFile model = read_model_file(path);
  const solver::Graph graph = model_graph(model, 1);
  std::map<std::string, int> kinds;
  for (const auto& op : graph.ops) ++kinds[solver::op_kind_name(op.kind)];
  std::int64_t params = 0;
  for (auto id : graph.tensors_with_role(solver::TensorRole::kParameter))
    params += solver::num_elements(graph.tensor(id).shape);
  const auto seq = graph.tensor(graph.at("tokens")).shape.at(1);
  const double fwd = solver::graph_flops(graph, solver::OpPhase::kForward);
  const solver::TrainingGraph training =
      solver::build_training_graph(graph, graph.at("loss"), solver::OptimizerSpec{});
  const double bwd = solver::graph_flops(training.graph, solver::OpPhase::kBackward);
  const std::size_t esize = solver::dtype_size_bytes(model.dtype);
  fmt::print("{}: strata-model v{} ({})\n", path, kModelVersion, model.kind);
  std::string hyper;
  for (const auto& [k, v] : graph.meta) hyper += (hyper.empty() ? "" : ", ") + k + "=" + v;
  fmt::print("  hyper-parameters: {}\n", hyper);
  fmt::print("  weights: {} ({}; seed {})\n",
             model.has_weights ? "stored" : "none (initialised from the seed)",
             solver::dtype_name(model.dtype), model.seed);
  fmt::print("  layers: {} (pipeline units), shared parameters: {}\n", graph.num_layers,
             graph.shared_parameters.size());
  fmt::print("  parameters: {} ({})\n", params, human_count(static_cast<double>(params)));
  fmt::print("  FLOPs per token: forward {}, forward+backward {}\n", human_count(fwd / seq),
             human_count((fwd + bwd) / seq));
  fmt::print("  memory: parameters {}; with gradients and AdamW state {}\n",
             human_bytes(static_cast<double>(params * esize)),
             human_bytes(static_cast<double>(4 * params * esize)));
  fmt::print("  activations per sequence (forward, stored for backward): {}\n",
             human_bytes(static_cast<double>(
                 solver::bytes_with_role(graph, solver::TensorRole::kActivation))));
  fmt::print("  ops ({} forward):", graph.ops.size());
  for (const auto& [kind, n] : kinds) fmt::print(" {} {}", kind, n);
  fmt::print("\n");
}

void inspect_dataset(const std::string& path) {
  const Dataset data = read_dataset_file(path);
  fmt::print("{}: strata-dataset v{}\n", path, kDatasetVersion);
  fmt::print("  tokens: [{}, {}] int32 ({} windows of seq_len {} + 1), vocab {}\n", data.rows,
             data.seq_len + 1, data.rows, data.seq_len, data.vocab);
  fmt::print("  source: {}\n", data.source);
  const std::int64_t n = std::min<std::int64_t>(data.seq_len + 1, 64);
  std::string sample;
  if (data.vocab == 256) {
    for (std::int64_t i = 0; i < n; ++i) {
      const int t = data.tokens[static_cast<std::size_t>(i)];
      sample += (t >= 32 && t < 127 && t != '\\') ? std::string(1, static_cast<char>(t))
                : t == '\n'                       ? std::string("\\n")
                                                  : fmt::format("\\x{:02x}", t);
    }
    fmt::print("  sample (row 0, bytes): \"{}\"{}\n", sample, n < data.seq_len + 1 ? " ..." : "");
  } else {
    for (std::int64_t i = 0; i < n; ++i)
      sample += fmt::format("{} ", data.tokens[static_cast<std::size_t>(i)]);
    fmt::print("  sample (row 0, token ids): {}{}\n", sample, n < data.seq_len + 1 ? "..." : "");
  }
}

void inspect_gradients(const std::string& path) {
  h5::StrataFile f = h5::open_strata_file(path, "strata-gradients", 1);
  fmt::print("{}: strata-gradients v{}: step {}, loss {:.17g}\n", path, f.version,
             h5::read_attr_int(f.file.get(), "step"), h5::read_attr_double(f.file.get(), "loss"));
  for (const auto& name : h5::list_datasets(f.file.get(), "grads")) {
    const auto info = h5::dataset_info(f.file.get(), "grads/" + name);
    fmt::print("  {} {} {}\n", name, solver::shape_to_string(info.shape), h5::type_name(info));
  }
}

// Walks a group recursively: (dataset path, info) in name order.
void list_tensors(hid_t file, const std::string& group,
                  std::vector<std::pair<std::string, h5::DatasetInfo>>& out) {
  for (const auto& m : h5::list_members(file, group)) {
    const std::string path = group + "/" + m.name;
    if (m.kind == h5::ObjectKind::kGroup) list_tensors(file, path, out);
    if (m.kind == h5::ObjectKind::kDataset) out.emplace_back(path, h5::dataset_info(file, path));
  }
}

void inspect_checkpoint(const std::string& path) {
  h5::StrataFile f = h5::open_strata_file(path, kCheckpointFormat, kCheckpointVersion);
  const hid_t file = f.file.get();
  fmt::print("{}: {} v{}: step {}, loss {:.17g}, seed {}\n", path, kCheckpointFormat, f.version,
             h5::read_attr_int(file, "step"), h5::read_attr_double(file, "loss"),
             h5::read_attr_uint(file, "seed"));
  try {
    const solver::Plan plan = solver::decode_plan_json(h5::read_string_dataset(file, "plan"));
    fmt::print("  plan: {}, {} stage(s) on {} device(s), {} micro-batch(es), {}\n", plan.method,
               plan.stages.size(), plan.cluster.total_devices(), plan.micro_batches, plan.schedule);
    for (std::size_t s = 0; s < plan.stages.size(); ++s) {
      const auto& st = plan.stages[s];
      fmt::print("    stage {}: layers [{}, {}) on {}x{} {}\n", s, st.layer_begin, st.layer_end,
                 st.logical_mesh.d0, st.logical_mesh.d1, st.summary);
    }
  } catch (const std::invalid_argument& e) {
    fmt::print("  plan: unreadable ({})\n", e.what());
  }
  std::vector<std::pair<std::string, h5::DatasetInfo>> tensors;
  for (const char* group : {"params", "optimizer"})
    if (h5::exists(file, group)) list_tensors(file, group, tensors);
  double bytes = 0;
  for (const auto& [name, info] : tensors)
    bytes += static_cast<double>(solver::num_elements(info.shape) *
                                 static_cast<std::int64_t>(info.type_bytes));
  fmt::print("  {} tensors, {} (parameters and optimizer state, unsharded)\n", tensors.size(),
             human_bytes(bytes));
  for (const auto& [name, info] : tensors)
    fmt::print("  {} {} {}\n", name, solver::shape_to_string(info.shape), h5::type_name(info));
}

}  // namespace

int run_inspect(const std::string& path) {
  const std::string format = strata_file_format(path);
  if (format == kModelFormat) {
    inspect_model(path);
  } else if (format == kDatasetFormat) {
    inspect_dataset(path);
  } else if (format == "strata-gradients") {
    inspect_gradients(path);
  } else if (format == kCheckpointFormat) {
    inspect_checkpoint(path);
  } else {
    throw InputError(path + ": " + format + " files cannot be inspected by this version");
  }
  return kExitOk;
}

}  // namespace strata::app
