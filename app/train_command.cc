// The training run: prepare (all validation, rank 0) -> status broadcast -> step loop -> outputs.
// Nothing is created under output.dir before every input has been checked.
#include "app/train_command.h"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "app/cluster_file.h"
#include "app/config.h"
#include "app/data_order.h"
#include "app/dataset_file.h"
#include "app/errors.h"
#include "app/h5.h"
#include "app/local_trainer.h"
#include "app/log.h"
#include "app/model_file.h"
#include "comm/mpi_session.h"
#include "kernels/backend.h"
#include "solver/ir/flops.h"
#include "solver/ir/gpt.h"

namespace strata::app {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Everything a run needs, loaded and checked before the first output is written.
struct RunSetup {
  RunConfig config;
  ModelFile model;
  solver::DType dtype = solver::DType::kF32;
  std::int64_t micro_batches = 1;
  Dataset train_data, val_data;
  std::string backend = "host";
  double peak_flops = 0;            // per device, for the compute dtype
  double model_flops_per_step = 0;  // ALPA_FACTS 4.1 formula, global batch
  std::int64_t layers = 0, hidden = 0, vocab = 0, seq_len = 0;
};

std::int64_t meta_int(const solver::Graph& graph, const std::string& key) {
  auto it = graph.meta.find(key);
  return it == graph.meta.end() ? 0 : std::stoll(it->second);
}

std::string resolve_backend(const std::string& requested) {
  if (requested == "host") return "host";
  if (requested == "cuda") {
    if (!kernels::backend_available("cuda")) {
      throw InputError("cluster.backend: 'cuda' is not available: " +
                       std::string(STRATA_WITH_CUDA ? "this version has no CUDA kernels yet"
                                                    : "this binary was built without CUDA"));
    }
    return "cuda";
  }
  if (kernels::backend_available("cuda")) return "cuda";
  if (kernels::visible_cuda_devices() > 0) {
    STRATA_LOG0(
        kInfo,
        "cluster.backend auto: {} GPU(s) visible but no CUDA kernels in this build; using host",
        kernels::visible_cuda_devices());
  }
  return "host";
}

RunSetup prepare(const std::string& config_path, const std::vector<std::string>& sets,
                 int world_size) {
  RunSetup s;
  s.config = load_config(config_path, sets);
  const RunConfig& c = s.config;
  std::vector<std::string> problems;
  if (c.data_path.empty()) problems.push_back(config_path + ": data.path: required for train");
  if (world_size != 1) {
    problems.push_back(fmt::format(
        "strata train: launched on {} ranks, but this version trains on one rank (mpirun -np 1); "
        "distributed plans arrive with the planner and runtime",
        world_size));
  }
  if (c.dtype == "bf16" || c.dtype == "f16") {
    problems.push_back(config_path + ": train.dtype: '" + c.dtype +
                       "' needs the cuda backend; the host backend computes in f32 or f64");
  }
  if (c.micro_batches > 0 && c.global_batch % c.micro_batches != 0) {
    problems.push_back(
        fmt::format("{}: train.micro_batches: {} does not divide train.global_batch {}",
                    config_path, c.micro_batches, c.global_batch));
  }
  if (!problems.empty()) throw InputError(problems);

  s.backend = resolve_backend(c.backend);
  const ClusterPreset preset = read_cluster_preset(c.cluster_preset);
  const std::int64_t hosts = c.cluster_hosts > 0 ? c.cluster_hosts : preset.hosts;
  std::int64_t devices =
      c.cluster_devices_per_host > 0 ? c.cluster_devices_per_host : preset.devices_per_host;
  if (devices == 0) devices = world_size / std::max<std::int64_t>(hosts, 1);
  if (hosts * devices != world_size) {
    throw InputError(fmt::format(
        "{}: cluster.hosts x cluster.devices_per_host = {} x {} = {} but {} rank(s) were launched",
        config_path, hosts, devices, hosts * devices, world_size));
  }
  s.dtype = solver::parse_dtype(c.dtype);
  s.peak_flops = preset.peak_flops.count(c.dtype) ? preset.peak_flops.at(c.dtype) : 0.0;

  s.model = read_model_file(c.model_path);
  if (s.dtype == solver::DType::kF64 && s.model.dtype != solver::DType::kF64) {
    throw InputError(c.model_path +
                     ": train.dtype f64 needs a model file written with --dtype f64 (this one is " +
                     solver::dtype_name(s.model.dtype) + ")");
  }
  s.micro_batches = c.micro_batches > 0 ? c.micro_batches : 1;  // one device: nothing to pipeline
  const solver::Graph graph = model_graph(s.model, 1);
  s.layers = meta_int(graph, "layers");
  s.hidden = meta_int(graph, "hidden");
  s.vocab = meta_int(graph, "vocab");
  s.seq_len = meta_int(graph, "seq_len");
  s.train_data = read_dataset_file(c.data_path);
  check_dataset_fits(s.train_data, c.data_path, s.seq_len, s.vocab);
  if (!c.val_path.empty()) {
    s.val_data = read_dataset_file(c.val_path);
    check_dataset_fits(s.val_data, c.val_path, s.seq_len, s.vocab);
    if (s.val_data.rows < c.global_batch / s.micro_batches) {
      throw InputError(fmt::format("{}: {} rows, fewer than one micro-batch of {}", c.val_path,
                                   s.val_data.rows, c.global_batch / s.micro_batches));
    }
  }
  if (c.eval_every > 0 && c.val_path.empty()) {
    throw InputError(config_path + ": train.eval_every: set, but data.val_path is empty");
  }
  s.model_flops_per_step =
      solver::gpt_model_flops(c.global_batch, s.seq_len, s.hidden, s.layers, s.vocab);
  return s;
}

// Broadcasts rank 0's outcome of prepare (0 ok, 2 bad input, 1 failure) so no rank waits.
int agree_status(int status) {
  MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);  // collective over world
  return status;
}

std::string format_duration(double seconds) {
  const auto total = static_cast<std::int64_t>(std::max(0.0, seconds) + 0.5);
  return total >= 3600 ? fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60)
                       : fmt::format("{}:{:02}", total / 60, total % 60);
}

void write_gradients(const std::string& path,
                     const std::map<std::string, std::vector<double>>& grads,
                     const solver::Graph& graph, solver::DType dtype, double loss,
                     std::int64_t step) {
  h5::write_atomically(path, [&](hid_t file) {
    h5::write_attr_string(file, "format", "strata-gradients");
    h5::write_attr_int(file, "version", 1);
    h5::write_attr_int(file, "step", step);
    h5::write_attr_double(file, "loss", loss);
    for (const auto& [name, values] : grads) {
      h5::write_values(file, "grads/" + name, solver::file_shape_of(graph.tensor(graph.at(name))),
                       values, dtype);
    }
  });
}

void save_final_model(const RunSetup& s, const std::string& path,
                      const std::map<std::string, std::vector<double>>& params,
                      const solver::Graph& graph) {
  ModelFile out = s.model;
  out.has_weights = true;
  out.params.clear();
  for (const auto& [name, values] : params) {
    out.params[name] = ParamData{graph.tensor(graph.at(name)).shape, values};
  }
  write_model_file(path, out);
}

// STRATA_PROFILE=1: time per op kind and phase, largest first, per step.
void print_profile(const std::map<std::string, double>& profile_s, std::int64_t steps) {
  std::vector<std::pair<double, std::string>> rows;
  double total = 0;
  for (const auto& [kind, seconds] : profile_s) {
    rows.emplace_back(seconds, kind);
    total += seconds;
  }
  std::sort(rows.rbegin(), rows.rend());
  STRATA_LOG0(kInfo, "profile (STRATA_PROFILE=1): {:.4f} s/step in ops",
              total / static_cast<double>(steps));
  for (const auto& [seconds, kind] : rows) {
    STRATA_LOG0(kInfo, "  {:<32} {:8.4f} s/step {:5.1f} %", kind,
                seconds / static_cast<double>(steps), 100.0 * seconds / total);
  }
}

int train(RunSetup& s) {
  const RunConfig& c = s.config;
  const std::int64_t micro = c.global_batch / s.micro_batches;
  solver::Graph forward = model_graph(s.model, micro);
  // Activations and parameters in the compute dtype (the model file may hold f64 for f32 runs).
  for (auto& t : forward.tensors)
    if (solver::is_floating(t.dtype)) t.dtype = s.dtype;
  const solver::TensorId loss = forward.at("loss");
  solver::TrainingGraph training = solver::build_training_graph(forward, loss, c.optimizer);
  std::int64_t graph_bytes = 0;
  for (const auto& t : training.graph.tensors) graph_bytes += solver::num_bytes(t);
  h5::check_host_memory(c.model_path, "training this model",
                        static_cast<std::uint64_t>(graph_bytes));

  auto backend = kernels::make_backend(s.backend);
  LocalTrainer trainer(std::move(training), *backend, s.micro_batches);
  const char* profile_env = std::getenv("STRATA_PROFILE");
  const bool profile = profile_env && profile_env[0] == '1';
  trainer.executor().set_profiling(profile);
  {
    std::map<std::string, std::vector<double>> init;
    for (auto& [name, data] : model_parameters(s.model, trainer.graph()))
      init[name] = std::move(data.values);
    trainer.set_parameters(init);
  }

  fs::create_directories(c.output_dir);
  const std::string metrics_path = c.resolved_metrics_path();
  if (fs::path(metrics_path).has_parent_path())
    fs::create_directories(fs::path(metrics_path).parent_path());
  std::ofstream metrics(metrics_path, std::ios::trunc);
  if (!metrics) throw std::runtime_error(metrics_path + ": cannot open for writing");
  {
    std::ofstream resolved(c.output_dir + "/config.yaml", std::ios::trunc);
    resolved << config_to_yaml(c);
  }

  STRATA_LOG0(kInfo,
              "strata train: {} | GPT L={} H={} S={} V={} | {} params | dtype {} | backend {}",
              c.source, s.layers, s.hidden, s.seq_len, s.vocab,
              solver::bytes_with_role(trainer.graph(), solver::TensorRole::kParameter) /
                  static_cast<std::int64_t>(solver::dtype_size_bytes(s.dtype)),
              c.dtype, s.backend);
  STRATA_LOG0(kInfo,
              "data {} ({} rows) | global batch {} = {} micro-batch(es) x {} | {} steps | {} {}",
              c.data_path, s.train_data.rows, c.global_batch, s.micro_batches, micro, c.steps,
              c.optimizer.kind, c.optimizer.schedule);

  DataOrder order(s.train_data.rows, c.global_batch, c.shuffle, c.seed);
  const std::int64_t tokens_per_step = c.global_batch * s.seq_len;
  const auto run_start = Clock::now();
  double timed_s = 0;
  std::int64_t timed_steps = 0;
  double last_loss = 0;
  for (std::int64_t step = 1; step <= c.steps; ++step) {
    const std::vector<std::int32_t> rows = gather_rows(s.train_data, order.rows_of_step(step));
    StepContext ctx;
    ctx.step = step;
    ctx.lr = solver::learning_rate(c.optimizer, step, c.steps);
    const auto t0 = Clock::now();
    const StepResult r = trainer.step(rows, ctx);
    const double step_s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!std::isfinite(r.loss)) {
      throw std::runtime_error(
          fmt::format("step {}: loss is {} (non-finite); stopping", step, r.loss));
    }
    last_loss = r.loss;
    if (step > 1 || c.steps == 1) {
      timed_s += step_s;
      ++timed_steps;
    }
    if (step == c.dump_gradients_step) {
      const std::string path = fmt::format("{}/gradients_step{}.h5", c.output_dir, step);
      write_gradients(path, trainer.gradients(), trainer.graph(), s.dtype, r.loss, step);
    }
    const double flops_per_s = s.model_flops_per_step / step_s;
    metrics
        << fmt::format(
               "{{\"step\": {}, \"loss\": {:.17g}, \"lr\": {:.17g}, \"grad_norm\": {:.17g}, "
               "\"step_time_s\": {:.6g}, \"tokens_per_s\": {:.6g}, \"tflops_per_device\": {:.6g}, "
               "\"mfu\": {:.6g}, \"peak_memory_bytes\": {}, \"bytes\": {{\"all_reduce\": 0, "
               "\"all_gather\": 0, \"reduce_scatter\": 0, \"all_to_all\": 0, \"p2p\": 0}}}}",
               step, r.loss, ctx.lr, r.grad_norm, step_s, tokens_per_step / step_s,
               flops_per_s / 1e12, s.peak_flops > 0 ? flops_per_s / s.peak_flops : 0.0,
               trainer.executor().allocated_bytes())
        << '\n'
        << std::flush;
    if (step % c.log_every == 0 || step == c.steps || step == 1) {
      const double elapsed = std::chrono::duration<double>(Clock::now() - run_start).count();
      const double per_step = timed_steps ? timed_s / static_cast<double>(timed_steps) : step_s;
      STRATA_LOG0(kInfo,
                  "step {:>{}}/{} | loss {:.4f} | lr {:.3e} | grad norm {:.3f} | {:.0f} tok/s | "
                  "elapsed {} | eta {}",
                  step, std::to_string(c.steps).size(), c.steps, r.loss, ctx.lr, r.grad_norm,
                  tokens_per_step / step_s, format_duration(elapsed),
                  format_duration(per_step * static_cast<double>(c.steps - step)));
    }
    if (c.eval_every > 0 && (step % c.eval_every == 0 || step == c.steps)) {
      const std::int64_t usable = s.val_data.rows / micro * micro;
      std::vector<std::int64_t> ids(static_cast<std::size_t>(usable));
      for (std::int64_t i = 0; i < usable; ++i) ids[static_cast<std::size_t>(i)] = i;
      const double val = trainer.evaluate(gather_rows(s.val_data, ids));
      metrics << fmt::format("{{\"step\": {}, \"val_loss\": {:.17g}}}", step, val) << '\n'
              << std::flush;
      STRATA_LOG0(kInfo, "step {} | val loss {:.4f} ({} rows)", step, val, usable);
    }
  }
  const double total_s = std::chrono::duration<double>(Clock::now() - run_start).count();
  std::string model_out;
  if (c.save_model) {
    model_out = c.output_dir + "/model_final.h5";
    save_final_model(s, model_out, trainer.parameters(), trainer.graph());
  }
  const double mean_step = timed_steps ? timed_s / static_cast<double>(timed_steps) : 0.0;
  STRATA_LOG0(kInfo,
              "done: {} steps in {} | final loss {:.4f} | {:.3f} s/step, {:.0f} tok/s, {:.3f} "
              "TFLOP/s per device",
              c.steps, format_duration(total_s), last_loss, mean_step,
              mean_step > 0 ? tokens_per_step / mean_step : 0.0,
              mean_step > 0 ? s.model_flops_per_step / mean_step / 1e12 : 0.0);
  if (profile) print_profile(trainer.executor().profile_s(), c.steps);
  STRATA_LOG0(kInfo, "outputs: metrics {} | config {}/config.yaml{}", metrics_path, c.output_dir,
              model_out.empty() ? "" : " | model " + model_out);
  return kExitOk;
}

}  // namespace

int run_train(const std::string& config_path, const std::vector<std::string>& sets) {
  const int rank = comm::world_rank_or_zero();
  const int size = comm::world_size_or_one();
  RunSetup setup;
  int status = kExitOk;
  if (rank == 0) {
    try {
      setup = prepare(config_path, sets, size);
    } catch (const InputError& e) {
      for (const auto& line : e.problems()) STRATA_LOG0(kError, "{}", line);
      status = kExitBadInput;
    } catch (const std::invalid_argument& e) {
      STRATA_LOG0(kError, "{}", e.what());
      status = kExitBadInput;
    } catch (const std::overflow_error& e) {
      STRATA_LOG0(kError, "{}", e.what());
      status = kExitBadInput;
    } catch (const std::exception& e) {  // I/O failure while loading: not the input's fault
      STRATA_LOG0(kError, "{}", e.what());
      status = kExitFailure;
    }
  }
  status = agree_status(status);
  if (status != kExitOk || rank != 0) return status;
  return train(setup);
}

}  // namespace strata::app
