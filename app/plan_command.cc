// Config + model + cluster -> solver::plan_training -> table, plan.json, plan.svg. Everything
// is validated before the output folder is created.
#include "app/plan_command.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "app/cluster_file.h"
#include "app/config.h"
#include "app/errors.h"
#include "app/h5.h"
#include "app/log.h"
#include "app/model_file.h"
#include "solver/plan/planner.h"
#include "solver/plan/report.h"
#include "solver/plan/simulator.h"

namespace strata::app {
namespace {

namespace fs = std::filesystem;

std::int64_t meta_int(const solver::Graph& graph, const std::string& key) {
  auto it = graph.meta.find(key);
  if (it == graph.meta.end()) throw InputError("model graph: meta." + key + " is missing");
  return std::stoll(it->second);
}

solver::PlannerOptions planner_options(const RunConfig& c) {
  solver::PlannerOptions o;
  o.method = c.plan_method;
  o.dp = c.plan_dp;
  o.tp = c.plan_tp;
  o.pp = c.plan_pp;
  for (const auto& s : c.plan_stages) {
    o.stages.push_back(solver::ManualStage{s.layer_begin, s.layer_end, s.submesh_hosts,
                                           s.submesh_devices, s.mesh0, s.mesh1, s.recompute});
  }
  o.schedule = c.plan_schedule;
  o.recompute = c.plan_recompute;
  o.global_batch = c.global_batch;
  o.micro_batches = c.micro_batches;
  o.dtype = c.dtype;
  o.master_dtype = c.master_dtype == "auto" ? "" : c.master_dtype;
  o.optimizer = c.optimizer;
  o.ilp.solver = c.plan_solver;
  o.ilp.time_limit_s = c.plan_ilp_time_limit_s;
  o.progress = [](const std::string& line) { STRATA_LOG0(kInfo, "{}", line); };
  return o;
}

void write_text(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error(path + ": cannot write");
  }
  fs::rename(tmp, path);
}

}  // namespace

solver::GptConfig gpt_config_of(const solver::Graph& graph) {
  solver::GptConfig gpt;
  gpt.layers = meta_int(graph, "layers");
  gpt.hidden = meta_int(graph, "hidden");
  gpt.heads = meta_int(graph, "heads");
  gpt.seq_len = meta_int(graph, "seq_len");
  gpt.vocab = meta_int(graph, "vocab");
  gpt.fused_attention = solver::gpt_fused_attention(graph);
  gpt.dtype = solver::DType::kF32;  // parameter storage; the compute dtype is train.dtype
  return gpt;
}

solver::Plan plan_for_config(const RunConfig& c, const solver::GptConfig& model,
                             const solver::ClusterSpec& cluster) {
  // The planner's template graphs carry activations in GptConfig::dtype: the compute dtype
  // (parameters are priced as mixed precision whatever it is), so f16 / bf16 activations are
  // priced at 2 bytes, not at the f32 of the model file.
  solver::GptConfig gpt = model;
  gpt.dtype = solver::parse_dtype(c.dtype);
  try {
    return solver::plan_training(gpt, cluster, planner_options(c));
  } catch (const std::invalid_argument& e) {
    throw InputError(c.source + ": " + e.what());
  }
}

int run_plan(const std::string& config_path, const std::vector<std::string>& sets,
             const std::string& out_dir) {
  const RunConfig c = load_config(config_path, sets);
  const ModelFile model = read_model_file(c.model_path, /*load_params=*/false);
  const solver::Graph graph = model_graph(model, 1);
  if (model.kind != "gpt") throw InputError(c.model_path + ": the planner knows GPT models only");
  const solver::GptConfig gpt = gpt_config_of(graph);
  const solver::ClusterSpec cluster =
      read_cluster_spec(c.cluster_preset, c.cluster_hosts, c.cluster_devices_per_host, 0);

  STRATA_LOG0(kInfo,
              "strata plan: {} | GPT L={} H={} S={} V={} | cluster {} ({} devices) | method {} | "
              "global batch {} | {}",
              c.source, gpt.layers, gpt.hidden, gpt.seq_len, gpt.vocab, cluster.name,
              cluster.total_devices(), c.plan_method, c.global_batch, c.dtype);
  const solver::Plan plan = plan_for_config(c, gpt, cluster);
  const solver::SimulationResult sim = solver::simulate_plan(plan);

  const std::string dir = out_dir.empty() ? c.output_dir : out_dir;
  fs::create_directories(dir);
  write_text(dir + "/plan.json", solver::encode_plan_json(plan));
  write_text(dir + "/plan.svg", solver::plan_svg(plan, sim));
  fmt::print("{}", solver::plan_table(plan));
  fmt::print("simulated iteration (event simulator): {:.4g} s\n", sim.iteration_s);
  fmt::print("wrote {0}/plan.json and {0}/plan.svg\n", dir);
  return kExitOk;
}

}  // namespace strata::app
