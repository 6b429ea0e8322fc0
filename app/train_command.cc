// The training run: prepare (all validation, rank 0) -> status broadcast -> step loop -> outputs.
// Nothing is created under output.dir before every input has been checked.
#include "app/train_command.h"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "app/checkpoint.h"
#include "app/cluster_file.h"
#include "app/config.h"
#include "app/data_order.h"
#include "app/dataset_file.h"
#include "app/dist_trainer.h"
#include "app/errors.h"
#include "app/h5.h"
#include "app/log.h"
#include "app/model_file.h"
#include "app/plan_command.h"
#include "app/run_backend.h"
#include "comm/control.h"
#include "comm/mpi_session.h"
#include "kernels/backend.h"
#include "solver/ir/flops.h"
#include "solver/ir/gpt.h"
#include "solver/plan/report.h"

namespace strata::app {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Everything a run needs, loaded and checked before the first output is written.
struct RunSetup {
  RunConfig config;
  ModelFile model;
  solver::DType dtype = solver::DType::kF32;
  // The optimizer's dtype (master weights and state): dtype itself unless mixed precision.
  solver::DType master_dtype = solver::DType::kF32;
  std::int64_t micro_batches = 1;
  Dataset train_data, val_data;
  solver::ClusterSpec cluster;
  solver::GptConfig gpt;
  std::string resume_path;  // checkpoint to resume from ("" = fresh start)
  CheckpointMeta resume;
  std::string backend = "host";
  double peak_flops = 0;            // per device, for the compute dtype
  double model_flops_per_step = 0;  // ALPA_FACTS 4.1 formula, global batch
  std::int64_t layers = 0, hidden = 0, vocab = 0, seq_len = 0;
};

std::int64_t meta_int(const solver::Graph& graph, const std::string& key) {
  auto it = graph.meta.find(key);
  return it == graph.meta.end() ? 0 : std::stoll(it->second);
}

// cluster.backend. `cuda` needs a CUDA build and a visible GPU, and runs on any number of ranks
// (NCCL collectives inside a stage mesh, MPI through pinned host buffers between stages:
// app/run_backend.h, app/message_staging.h). `auto` stays on the host even when a GPU is
// visible, because the GPU path has not yet been verified on a GPU: cuda is used on request only.
std::string resolve_backend(const std::string& requested, const std::string& config_path) {
  if (requested == "host") return "host";
  if (requested == "cuda") {
    if (!kernels::backend_available("cuda")) {
      throw InputError(config_path + ": cluster.backend: 'cuda' is not available: " +
                       std::string(STRATA_WITH_CUDA ? "no GPU is visible"
                                                    : "this binary was built without CUDA"));
    }
    return "cuda";
  }
  if (kernels::visible_cuda_devices() > 0) {
    STRATA_LOG0(kInfo,
                "cluster.backend auto: {} GPU(s) visible and the cuda backend is available; using "
                "host (the GPU path is not yet verified: set cluster.backend: cuda to use it)",
                kernels::visible_cuda_devices());
  }
  return "host";
}

// train.master_dtype: auto keeps f32 masters for 16-bit compute (DESIGN.md section 3) and none
// (the compute dtype) otherwise; an explicit one must be at least as wide as train.dtype.
solver::DType resolve_master_dtype(const RunConfig& c, const std::string& config_path) {
  const solver::DType compute = solver::parse_dtype(c.dtype);
  if (c.master_dtype == "auto")
    return solver::dtype_size_bytes(compute) < 4 ? solver::DType::kF32 : compute;
  const solver::DType master = solver::parse_dtype(c.master_dtype);
  if (solver::dtype_size_bytes(master) < solver::dtype_size_bytes(compute)) {
    throw InputError(fmt::format("{}: train.master_dtype: '{}' is narrower than train.dtype '{}'",
                                 config_path, c.master_dtype, c.dtype));
  }
  return master;
}

RunSetup prepare(const std::string& config_path, const std::vector<std::string>& sets,
                 int world_size) {
  RunSetup s;
  s.config = load_config(config_path, sets);
  const RunConfig& c = s.config;
  std::vector<std::string> problems;
  if (c.data_path.empty()) problems.push_back(config_path + ": data.path: required for train");
  if (c.dtype == "f16") {
    problems.push_back(config_path +
                       ": train.dtype: 'f16' is not supported by any backend (use bf16)");
  }
  if (c.micro_batches > 0 && c.global_batch % c.micro_batches != 0) {
    problems.push_back(
        fmt::format("{}: train.micro_batches: {} does not divide train.global_batch {}",
                    config_path, c.micro_batches, c.global_batch));
  }
  if (!problems.empty()) throw InputError(problems);

  s.backend = resolve_backend(c.backend, config_path);
  if (c.dtype == "bf16" && s.backend == "host") {
    STRATA_LOG0(kInfo,
                "train.dtype bf16 on the host backend: emulated (f32 kernels on bf16 storage, "
                "rounded on store), for testing; slower than f32 there");
  }
  const ClusterPreset preset = read_cluster_preset(c.cluster_preset);
  const std::int64_t hosts = c.cluster_hosts > 0 ? c.cluster_hosts : preset.hosts;
  if (preset.devices_per_host == 0 && c.cluster_devices_per_host == 0 && world_size % hosts != 0) {
    throw InputError(
        fmt::format("{}: cluster.hosts: {} host(s) do not divide the {} rank(s) launched",
                    config_path, hosts, world_size));
  }
  s.cluster =
      read_cluster_spec(c.cluster_preset, c.cluster_hosts, c.cluster_devices_per_host, world_size);
  if (s.cluster.total_devices() != world_size) {
    const auto& g = s.cluster.groups.front();
    throw InputError(fmt::format(
        "{}: cluster.hosts x cluster.devices_per_host = {} x {} = {} but {} rank(s) were launched",
        config_path, g.hosts, g.devices_per_host, s.cluster.total_devices(), world_size));
  }
  s.dtype = solver::parse_dtype(c.dtype);
  s.master_dtype = resolve_master_dtype(c, config_path);
  s.peak_flops = preset.peak_flops.count(c.dtype) ? preset.peak_flops.at(c.dtype) : 0.0;

  s.model = read_model_file(c.model_path, /*load_params=*/false);  // each rank reads its own
  if (s.dtype == solver::DType::kF64 && s.model.dtype != solver::DType::kF64) {
    throw InputError(c.model_path +
                     ": train.dtype f64 needs a model file written with --dtype f64 (this one is " +
                     solver::dtype_name(s.model.dtype) + ")");
  }
  const solver::Graph graph = model_graph(s.model, 1);
  s.gpt = gpt_config_of(graph);
  s.resume_path =
      find_resume_checkpoint(c.checkpoint_resume, c.checkpoint_dir, graph, c.optimizer.kind,
                             [](const std::string& line) { STRATA_LOG0(kWarn, "{}", line); });
  if (!s.resume_path.empty()) s.resume = check_checkpoint(s.resume_path, graph, c.optimizer.kind);
  s.layers = meta_int(graph, "layers");
  s.hidden = meta_int(graph, "hidden");
  s.vocab = meta_int(graph, "vocab");
  s.seq_len = meta_int(graph, "seq_len");
  s.train_data = read_dataset_file(c.data_path);
  check_dataset_fits(s.train_data, c.data_path, s.seq_len, s.vocab);
  if (!c.val_path.empty()) {
    s.val_data = read_dataset_file(c.val_path);
    check_dataset_fits(s.val_data, c.val_path, s.seq_len, s.vocab);
    if (s.val_data.rows < c.global_batch) {
      throw InputError(fmt::format("{}: {} rows, fewer than one global batch of {}", c.val_path,
                                   s.val_data.rows, c.global_batch));
    }
  }
  if (c.eval_every > 0 && c.val_path.empty()) {
    throw InputError(config_path + ": train.eval_every: set, but data.val_path is empty");
  }
  s.model_flops_per_step =
      solver::gpt_model_flops(c.global_batch, s.seq_len, s.hidden, s.layers, s.vocab);
  return s;
}

// A short, stable hash (FNV-1a 64, hex) of a text: the plan's config and model hashes.
std::string text_hash(const std::string& text) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : text) h = (h ^ ch) * 1099511628211ull;
  return fmt::format("{:016x}", h);
}

std::string model_hash(const RunSetup& s) {
  return text_hash(fmt::format("gpt L{} H{} A{} S{} V{}", s.gpt.layers, s.gpt.hidden, s.gpt.heads,
                               s.gpt.seq_len, s.gpt.vocab));
}
std::string config_hash(const RunSetup& s) { return text_hash(config_to_yaml(s.config)); }

solver::Plan make_plan(const RunSetup& s) {
  solver::Plan plan = plan_for_config(s.config, s.gpt, s.cluster);
  plan.model_hash = model_hash(s);
  plan.config_hash = config_hash(s);
  return plan;
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

// Bytes of the last step by the plan's convention (plan.h BytesPerStep): each rank's counters
// divided by its stage's size, summed over world (control traffic).
std::vector<double> step_bytes(const DistTrainer& t, const solver::Plan& plan, int stage) {
  const comm::ByteCounters c = t.step_counters();
  const double devices =
      static_cast<double>(plan.stages[static_cast<std::size_t>(stage)].devices.size());
  std::vector<double> mine;
  for (comm::CommKind k :
       {comm::CommKind::kAllReduce, comm::CommKind::kAllGather, comm::CommKind::kReduceScatter,
        comm::CommKind::kAllToAll, comm::CommKind::kP2P})
    mine.push_back(c.total(k) / devices);
  std::vector<double> out;
  for (double v : mine) out.push_back(comm::sum_over_world(MPI_COMM_WORLD, v));
  return out;
}

std::string bytes_json(const std::vector<double>& b) {
  return fmt::format(
      "{{\"all_reduce\": {:.17g}, \"all_gather\": {:.17g}, \"reduce_scatter\": {:.17g}, "
      "\"all_to_all\": {:.17g}, \"p2p\": {:.17g}}}",
      b[0], b[1], b[2], b[3], b[4]);
}

// The end-of-run comparison: predicted against measured step time, bytes and memory. `memory`
// holds, rank-major, kMemoryParts values per rank: what its executor holds, by purpose
// (MemoryBreakdown, in that order); a stage reports its rank holding the most.
constexpr std::size_t kMemoryParts = 6;

void print_predicted_vs_measured(const solver::Plan& plan, double step_s,
                                 const std::vector<double>& bytes,
                                 const std::vector<double>& memory) {
  STRATA_LOG0(kInfo, "predicted vs measured (last step; bytes per device summed over stages):");
  STRATA_LOG0(kInfo, "  step time       {:>14.6g} s {:>14.6g} s", plan.predicted.iteration_s,
              step_s);
  const auto& p = plan.predicted.bytes_per_step;
  const double predicted[] = {p.all_reduce, p.all_gather, p.reduce_scatter, p.all_to_all, p.p2p};
  const char* names[] = {"all_reduce", "all_gather", "reduce_scatter", "all_to_all", "p2p"};
  for (int k = 0; k < 5; ++k) {
    STRATA_LOG0(kInfo, "  {:<15} {:>14.0f} B {:>14.0f} B", names[k], predicted[k], bytes[k]);
  }
  const auto part = [&](std::int64_t rank, std::size_t k) {
    return memory[static_cast<std::size_t>(rank) * kMemoryParts + k] / 1073741824.0;
  };
  const auto total = [&](std::int64_t rank) {
    double sum = 0;
    for (std::size_t k = 0; k < kMemoryParts; ++k) sum += part(rank, k);
    return sum;
  };
  for (std::size_t s = 0; s < plan.stages.size(); ++s) {
    std::int64_t peak = plan.stages[s].devices.at(0);
    for (std::int64_t r : plan.stages[s].devices)
      if (total(r) > total(peak)) peak = r;
    STRATA_LOG0(kInfo, "  stage {} memory {:>10.4f} GiB {:>10.4f} GiB (allocated)", s,
                plan.stages[s].predicted.memory_bytes_per_device / 1073741824.0, total(peak));
    STRATA_LOG0(
        kInfo,
        "    rank {}: tensors {:.4f} | per-micro-batch copies {:.4f} | gradient "
        "accumulators {:.4f} | masters {:.4f} | transient arena {:.4f} | scratch {:.4f} GiB",
        peak, part(peak, 0), part(peak, 1), part(peak, 2), part(peak, 3), part(peak, 4),
        part(peak, 5));
  }
}

// STRATA_INJECT_FAILURE=RANK:STEP[:HOW] (tests of the failure paths, docs/runtime.md): at the
// start of step STEP, rank RANK throws (HOW = throw, the default) or is killed by SIGKILL
// (kill); with HOW = checkpoint-kill it is killed halfway through writing step STEP's checkpoint.
struct InjectedFailure {
  int rank = -1;
  std::int64_t step = -1;
  std::string how = "throw";
};

InjectedFailure injected_failure() {
  InjectedFailure f;
  const char* env = std::getenv("STRATA_INJECT_FAILURE");
  if (!env) return f;
  int rank = -1;
  long long step = -1;
  char how[32] = "throw";
  if (std::sscanf(env, "%d:%lld:%31s", &rank, &step, how) >= 2) {
    f.rank = rank;
    f.step = step;
    f.how = how;
  }
  return f;
}

void maybe_inject_failure(int rank, std::int64_t step) {
  const InjectedFailure f = injected_failure();
  if (f.rank != rank || f.step != step) return;
  if (f.how == "kill") std::raise(SIGKILL);
  if (f.how == "throw") {
    throw std::runtime_error(
        fmt::format("injected failure at step {} (STRATA_INJECT_FAILURE)", step));
  }
}

// SIGTERM / SIGUSR1 (Slurm's warning before a time limit or pre-emption): finish the step,
// checkpoint, exit kExitRequeue. The handler only sets a flag; the step loop agrees on it over
// world after every step, so every rank stops after the same step.
volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int signo) { g_stop_signal = signo; }

void install_stop_handlers() {
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGUSR1, on_stop_signal);
}

// Gathers every parameter and optimizer state to rank 0, one tensor at a time, into
// <checkpoint.dir>/ckpt_step<step>.h5 (atomically), then drops the oldest beyond checkpoint.keep.
void save_checkpoint(DistTrainer& trainer, const RunSetup& s, const solver::Plan& plan,
                     std::int64_t step, double loss) {
  const RunConfig& c = s.config;
  const std::string path = checkpoint_path(c.checkpoint_dir, step);
  const auto t0 = Clock::now();
  if (comm::world_rank_or_zero() != 0) {
    trainer.for_each_state_tensor(nullptr);
    return;
  }
  CheckpointMeta meta;
  meta.step = step;
  meta.loss = loss;
  meta.seed = c.seed;
  meta.config_yaml = config_to_yaml(c);
  meta.plan_json = solver::encode_plan_json(plan);
  const InjectedFailure inject = injected_failure();
  const bool kill_midway =
      inject.how == "checkpoint-kill" && inject.rank == 0 && inject.step == step;
  std::int64_t written = 0;
  write_checkpoint(path, meta, [&](const DatasetWriter& write) {
    trainer.for_each_state_tensor(
        [&](const std::string& dataset, const solver::Tensor& param, std::vector<double> values) {
          // Master weights and optimizer state at their own precision, so a resumed run
          // continues exactly (mixed precision: wider than param.dtype).
          write(dataset, solver::file_shape_of(param), values, s.master_dtype);
          if (kill_midway && ++written == 10) std::raise(SIGKILL);
        });
  });
  prune_checkpoints(c.checkpoint_dir, c.checkpoint_keep);
  STRATA_LOG0(kInfo, "checkpoint {} written in {:.2f} s", path,
              std::chrono::duration<double>(Clock::now() - t0).count());
}

// Metrics of a resumed run continue the file: the lines up to the checkpoint's step are kept.
void keep_metrics_until(const std::string& path, std::int64_t step) {
  std::ifstream in(path);
  std::vector<std::string> kept;
  for (std::string line; std::getline(in, line);) {
    const auto at = line.find("\"step\": ");
    if (at != std::string::npos && std::stoll(line.substr(at + 8)) <= step) kept.push_back(line);
  }
  in.close();
  std::ofstream out(path, std::ios::trunc);
  for (const auto& line : kept) out << line << '\n';
}

int train(RunSetup& s, const solver::Plan& plan) {
  const RunConfig& c = s.config;
  const int rank = comm::world_rank_or_zero();
  const int world = comm::world_size_or_one();
  const std::int64_t micro = plan.micro_batch_size();
  s.micro_batches = plan.micro_batches;
  solver::Graph forward = model_graph(s.model, micro);
  // Activations and parameters in the compute dtype (the model file may hold f64 for f32 runs).
  for (auto& t : forward.tensors)
    if (solver::is_floating(t.dtype)) t.dtype = s.dtype;
  const solver::TensorId loss = forward.at("loss");
  solver::TrainingGraph training = solver::build_training_graph(forward, loss, c.optimizer);
  if (world == 1) {
    std::int64_t graph_bytes = 0;
    for (const auto& t : training.graph.tensors) graph_bytes += solver::num_bytes(t);
    h5::check_host_memory(c.model_path, "training this model",
                          static_cast<std::uint64_t>(graph_bytes));
  }

  std::vector<comm::StageLayout> layouts;
  for (const auto& st : plan.stages)
    layouts.push_back({st.devices, st.logical_mesh.d0, st.logical_mesh.d1});
  const comm::Mesh mesh = comm::build_mesh(MPI_COMM_WORLD, layouts);
  // cuda: NCCL collectives on the GPU backend's stream; host: MPI collectives.
  const RunBackend compute = make_run_backend(s.backend, mesh, MPI_COMM_WORLD);
  comm::PointToPoint p2p(MPI_COMM_WORLD), control(MPI_COMM_WORLD);
  const bool mixed = s.master_dtype != s.dtype;
  DistTrainer trainer(std::move(training), plan, mesh, *compute.collectives, p2p, control,
                      *compute.backend, MPI_COMM_WORLD,
                      mixed ? std::optional<solver::DType>(s.master_dtype) : std::nullopt);
  const char* profile_env = std::getenv("STRATA_PROFILE");
  const bool profile = profile_env && profile_env[0] == '1';
  trainer.executor().set_profiling(profile);
  if (mixed) {
    STRATA_LOG0(kInfo, "mixed precision: compute in {}, master weights and optimizer state in {}",
                solver::dtype_name(s.dtype), solver::dtype_name(s.master_dtype));
  }
  {
    // Each rank reads only its shards of the parameters its stage owns (HDF5 hyperslabs).
    ParamBlockReader reader(s.model, trainer.graph());
    trainer.set_parameters(
        [&](const solver::Tensor& param, const std::vector<solver::DimSlice>& block) {
          return reader.read(param, block);
        });
  }
  std::int64_t first_step = 1;
  if (!s.resume_path.empty()) {
    const auto load_start = Clock::now();
    h5::File file = h5::open_file(s.resume_path);
    trainer.load_state([&](const std::string& dataset, const solver::Tensor&) {
      return h5::read_f64(file.get(), dataset);
    });
    first_step = s.resume.step + 1;
    const double load_s = comm::max_over_world(
        MPI_COMM_WORLD, std::chrono::duration<double>(Clock::now() - load_start).count());
    STRATA_LOG0(kInfo,
                "resumed from {} after step {} (loss {:.4f}), loaded in {:.2f} s; this run: {} "
                "rank(s), plan {}",
                s.resume_path, s.resume.step, s.resume.loss, load_s, world, plan.method);
  }

  const std::string metrics_path = c.resolved_metrics_path();
  std::ofstream metrics;
  if (rank == 0) {
    fs::create_directories(c.output_dir);
    if (fs::path(metrics_path).has_parent_path())
      fs::create_directories(fs::path(metrics_path).parent_path());
    if (first_step > 1) keep_metrics_until(metrics_path, first_step - 1);
    metrics.open(metrics_path, first_step > 1 ? std::ios::app : std::ios::trunc);
    if (!metrics) throw std::runtime_error(metrics_path + ": cannot open for writing");
    std::ofstream(c.output_dir + "/config.yaml", std::ios::trunc) << config_to_yaml(c);
    std::ofstream(c.output_dir + "/plan.json", std::ios::trunc) << solver::encode_plan_json(plan);
    fmt::print("{}", solver::plan_table(plan));
    std::fflush(stdout);
  }

  STRATA_LOG0(kInfo,
              "strata train: {} | GPT L={} H={} S={} V={} | dtype {} | backend {} | {} rank(s)",
              c.source, s.layers, s.hidden, s.seq_len, s.vocab, c.dtype, s.backend, world);
  STRATA_LOG0(kInfo,
              "data {} ({} rows) | global batch {} = {} micro-batch(es) x {} | {} steps | {} {}",
              c.data_path, s.train_data.rows, c.global_batch, s.micro_batches, micro, c.steps,
              c.optimizer.kind, c.optimizer.schedule);

  DataOrder order(s.train_data.rows, c.global_batch, c.shuffle, c.seed);
  const std::int64_t tokens_per_step = c.global_batch * s.seq_len;
  const auto run_start = Clock::now();
  double timed_s = 0, last_step_s = 0, comm_share_sum = 0;
  std::int64_t timed_steps = 0;
  double last_loss = 0;
  std::vector<double> bytes(5, 0.0);
  const double devices = static_cast<double>(world);
  int exit_code = kExitOk;
  std::int64_t last_step = first_step - 1;
  for (std::int64_t step = first_step; step <= c.steps; ++step) {
    last_step = step;
    const std::vector<std::int32_t> rows = gather_rows(s.train_data, order.rows_of_step(step));
    StepContext ctx;
    ctx.step = step;
    ctx.lr = solver::learning_rate(c.optimizer, step, c.steps);
    maybe_inject_failure(rank, step);
    const auto t0 = Clock::now();
    const StepResult r = trainer.step(rows, ctx);
    const double step_s = comm::max_over_world(
        MPI_COMM_WORLD, std::chrono::duration<double>(Clock::now() - t0).count());
    last_step_s = step_s;
    if (!std::isfinite(r.loss)) {
      throw std::runtime_error(
          fmt::format("step {}: loss is {} (non-finite); stopping", step, r.loss));
    }
    last_loss = r.loss;
    if (step > first_step || c.steps == first_step) {
      timed_s += step_s;
      ++timed_steps;
    }
    bytes = step_bytes(trainer, plan, mesh.stage);
    const double comm_share =
        comm::max_over_world(MPI_COMM_WORLD, trainer.step_comm_s()) / std::max(step_s, 1e-12);
    comm_share_sum += step > first_step || c.steps == first_step ? comm_share : 0.0;
    const double peak_memory =
        comm::max_over_world(MPI_COMM_WORLD, static_cast<double>(trainer.allocated_bytes()));
    if (step == c.dump_gradients_step) {
      const auto grads = trainer.gather_gradients();
      if (rank == 0) {
        const std::string path = fmt::format("{}/gradients_step{}.h5", c.output_dir, step);
        // Stored at the master precision: lossless for every compute dtype (bf16 has no HDF5 type).
        write_gradients(path, grads, trainer.graph(), s.master_dtype, r.loss, step);
      }
    }
    const double flops_per_s = s.model_flops_per_step / step_s;
    if (rank == 0) {
      metrics << fmt::format(
                     "{{\"step\": {}, \"loss\": {:.17g}, \"lr\": {:.17g}, \"grad_norm\": {:.17g}, "
                     "\"step_time_s\": {:.6g}, \"tokens_per_s\": {:.6g}, \"tflops_per_device\": "
                     "{:.6g}, \"mfu\": {:.6g}, \"peak_memory_bytes\": {:.0f}, \"bytes\": {}, "
                     "\"comm_share\": {:.4g}}}",
                     step, r.loss, ctx.lr, r.grad_norm, step_s, tokens_per_step / step_s,
                     flops_per_s / devices / 1e12,
                     s.peak_flops > 0 ? flops_per_s / devices / s.peak_flops : 0.0, peak_memory,
                     bytes_json(bytes), comm_share)
              << '\n'
              << std::flush;
    }
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
      if (rank == 0) {
        metrics << fmt::format("{{\"step\": {}, \"val_loss\": {:.17g}}}", step, val) << '\n'
                << std::flush;
      }
      STRATA_LOG0(kInfo, "step {} | val loss {:.4f} ({} rows)", step, val, usable);
    }
    const int signo =
        static_cast<int>(comm::max_over_world(MPI_COMM_WORLD, static_cast<double>(g_stop_signal)));
    const bool periodic = c.checkpoint_every_steps > 0 && step % c.checkpoint_every_steps == 0;
    if (!c.checkpoint_dir.empty() && (periodic || signo != 0 || step == c.steps))
      save_checkpoint(trainer, s, plan, step, r.loss);
    if (signo != 0) {
      STRATA_LOG0(kWarn, "signal {} received: stopping after step {}{}; exit {} (requeue)",
                  signo == SIGUSR1 ? "USR1" : "TERM", step,
                  c.checkpoint_dir.empty() ? " without a checkpoint (checkpoint.dir is not set)"
                                           : ", checkpoint written",
                  kExitRequeue);
      exit_code = kExitRequeue;
      break;
    }
  }
  const double total_s = std::chrono::duration<double>(Clock::now() - run_start).count();
  std::string model_out;
  if (c.save_model && exit_code == kExitOk) {  // not after a stop signal: the run is not done
    model_out = c.output_dir + "/model_final.h5";
    const auto params = trainer.gather_parameters();
    if (rank == 0) save_final_model(s, model_out, params, trainer.graph());
  }
  const double mean_step = timed_steps ? timed_s / static_cast<double>(timed_steps) : 0.0;
  STRATA_LOG0(kInfo,
              "{}: step {} of {} in {} | last loss {:.4f} | {:.3f} s/step, {:.0f} tok/s, {:.3f} "
              "TFLOP/s per device",
              exit_code == kExitOk ? "done" : "stopped", last_step, c.steps,
              format_duration(total_s), last_loss, mean_step,
              mean_step > 0 ? tokens_per_step / mean_step : 0.0,
              mean_step > 0 ? s.model_flops_per_step / mean_step / devices / 1e12 : 0.0);
  const MemoryBreakdown& held = trainer.allocated();
  const std::vector<double> memory = comm::gather_to_root(
      MPI_COMM_WORLD,
      {static_cast<double>(held.tensors), static_cast<double>(held.micro_batch_copies),
       static_cast<double>(held.accumulators), static_cast<double>(held.masters),
       static_cast<double>(held.arena), static_cast<double>(held.scratch)});
  if (rank == 0) print_predicted_vs_measured(plan, last_step_s, bytes, memory);
  STRATA_LOG0(kInfo,
              "communication: {:.1f} % of the step (mean over timed steps; the slowest rank)",
              timed_steps ? 100.0 * comm_share_sum / static_cast<double>(timed_steps) : 0.0);
  if (profile) print_profile(trainer.executor().profile_s(), c.steps);
  STRATA_LOG0(kInfo, "outputs: metrics {} | config {}/config.yaml | plan {}/plan.json{}",
              metrics_path, c.output_dir, c.output_dir,
              model_out.empty() ? "" : " | model " + model_out);
  return exit_code;
}

// Runs `fn` and turns the input problems it throws into log lines and exit code 2 (1 for other
// failures while loading).
template <typename Fn>
int checked(Fn&& fn) {
  try {
    fn();
    return kExitOk;
  } catch (const InputError& e) {
    for (const auto& line : e.problems()) STRATA_LOG0(kError, "{}", line);
  } catch (const std::invalid_argument& e) {
    STRATA_LOG0(kError, "{}", e.what());
  } catch (const std::overflow_error& e) {
    STRATA_LOG0(kError, "{}", e.what());
  } catch (const std::exception& e) {  // I/O failure while loading: not the input's fault
    STRATA_LOG0(kError, "{}", e.what());
    return kExitFailure;
  }
  return kExitBadInput;
}

}  // namespace

// Rank 0 checks every input and plans; the status word, then the framed plan, go to every rank
// (DESIGN.md section 6), so a bad input ends every rank with the same code and nobody hangs.
// The other ranks then load the (already checked) inputs themselves and verify the plan's hashes.
int run_train(const std::string& config_path, const std::vector<std::string>& sets) {
  install_stop_handlers();  // first: a signal during set-up stops the run after its first step
  const int rank = comm::world_rank_or_zero();
  const int size = comm::world_size_or_one();
  RunSetup setup;
  std::vector<std::uint8_t> frame;
  int status = kExitOk;
  if (rank == 0) {
    status = checked([&] {
      setup = prepare(config_path, sets, size);
      frame = solver::frame_plan(make_plan(setup));
    });
  }
  status = comm::broadcast_status(MPI_COMM_WORLD, status);
  if (status != kExitOk) return status;
  comm::broadcast_bytes(MPI_COMM_WORLD, frame);
  if (rank != 0) setup = prepare(config_path, sets, size);
  const solver::Plan plan = solver::unframe_plan(frame.data(), frame.size());
  if (plan.model_hash != model_hash(setup) || plan.config_hash != config_hash(setup)) {
    throw std::runtime_error(fmt::format(
        "rank {}: the broadcast plan was made for another model or config (hash mismatch)", rank));
  }
  return train(setup, plan);
}

}  // namespace strata::app
