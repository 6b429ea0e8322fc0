// Subcommands and the error policy of the executable: bad input (InputError, invalid_argument,
// CLI parse errors) -> one line per problem on stderr and exit 2; any other exception -> exit 1,
// through MPI_Abort when several ranks run so no rank is left waiting in a collective.
#include "app/cli.h"

#include <fmt/format.h>
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <Kokkos_Core.hpp>
#include <optional>

#include "app/dataset_file.h"
#include "app/errors.h"
#include "app/h5.h"
#include "app/inspect_command.h"
#include "app/log.h"
#include "app/model_file.h"
#include "app/plan_command.h"
#include "app/train_command.h"
#include "comm/mpi_session.h"
#include "solver/ir/gpt.h"
#include "solver/ir/graph_json.h"

namespace strata::app {
namespace {

struct GptOptions {
  solver::GptConfig config;
  std::string dtype = "f32";
  std::string attention = "fused";
  std::uint64_t seed = 0;
  bool no_weights = false;
  std::string out;
};

int make_gpt(GptOptions o) {
  o.config.dtype = solver::parse_dtype(o.dtype);
  if (o.config.dtype != solver::DType::kF32 && o.config.dtype != solver::DType::kF64) {
    throw InputError("--dtype: '" + o.dtype + "': model files store f32 or f64");
  }
  if (o.attention != "fused" && o.attention != "unfused") {
    throw InputError("--attention: '" + o.attention + "': expected fused or unfused");
  }
  o.config.fused_attention = o.attention == "fused";
  solver::validate(o.config);
  const solver::Graph graph = solver::build_gpt(o.config, 1);
  ModelFile model;
  model.path = o.out;
  model.kind = "gpt";
  model.graph_json = solver::encode_graph_json(graph);
  model.dtype = o.config.dtype;
  model.seed = o.seed;
  model.has_weights = !o.no_weights;
  std::int64_t count = 0;
  for (auto id : graph.tensors_with_role(solver::TensorRole::kParameter))
    count += solver::num_elements(graph.tensor(id).shape, "parameter count");
  if (model.has_weights) {
    // Values are generated as double before conversion: 8 bytes per parameter.
    h5::check_host_memory(o.out, "the weights", static_cast<std::uint64_t>(count) * 8u);
    for (auto id : graph.tensors_with_role(solver::TensorRole::kParameter)) {
      const auto& t = graph.tensor(id);
      model.params[t.name] = ParamData{
          t.shape,
          solver::gpt_init_values(o.config, t.name, solver::num_elements(t.shape), o.seed)};
    }
  }
  write_model_file(o.out, model);
  fmt::print(
      "wrote {}: GPT layers={} hidden={} heads={} seq={} vocab={} {}, {} attention, {} "
      "parameters{}\n",
      o.out, o.config.layers, o.config.hidden, o.config.heads, o.config.seq_len, o.config.vocab,
      o.dtype, o.attention, count, model.has_weights ? "" : " (graph only, --no-weights)");
  return kExitOk;
}

int write_data(const Dataset& data, const std::string& out) {
  write_dataset_file(out, data);
  fmt::print("wrote {}: {} windows of {} tokens, vocab {} ({})\n", out, data.rows, data.seq_len + 1,
             data.vocab, data.source);
  return kExitOk;
}

int train_with_runtime(const std::string& config, const std::vector<std::string>& sets, int argc,
                       char** argv) {
  // Large host buffers (checkpoint tensors, staging) come and go once per tensor; by default
  // glibc maps each from the kernel and unmaps it on free, so every tensor pays fresh page
  // faults (measured: checkpoint I/O at 1/30 of the disk's speed in a VM). Keep them in the heap.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  comm::MpiSession mpi(&argc, &argv);
  int code = kExitFailure;
  try {
    Kokkos::InitArguments kokkos_args;
    kokkos_args.disable_warnings = true;
    Kokkos::ScopeGuard kokkos(kokkos_args);
    code = run_train(config, sets);
  } catch (const std::exception& e) {
    STRATA_LOG(kError, "training failed: {}", e.what());
    if (mpi.world_size() > 1) comm::MpiSession::abort(kExitFailure);
    code = kExitFailure;
  }
  return code;
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"Strata: trains large models on clusters and finds the parallelisation plan itself",
               "strata"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "strata 0.1.0");

  auto* model = app.add_subcommand("model", "write a model file");
  model->require_subcommand(1);
  GptOptions gpt;
  auto* gpt_cmd = model->add_subcommand("gpt", "GPT-2 (Hugging Face GPT2LMHeadModel layout)");
  gpt_cmd->add_option("--layers", gpt.config.layers, "transformer blocks")->required();
  gpt_cmd->add_option("--hidden", gpt.config.hidden, "hidden size")->required();
  gpt_cmd->add_option("--heads", gpt.config.heads, "attention heads")->required();
  gpt_cmd->add_option("--seq", gpt.config.seq_len, "sequence length (= learned positions)")
      ->required();
  gpt_cmd->add_option("--vocab", gpt.config.vocab, "vocabulary size")->required();
  gpt_cmd->add_option("--dtype", gpt.dtype, "f32 or f64")->capture_default_str();
  gpt_cmd
      ->add_option("--attention", gpt.attention,
                   "fused (one op, no [S,S] tensor stored) or unfused (scores matmul, "
                   "causal softmax, matmul: the reference form)")
      ->capture_default_str();
  gpt_cmd->add_option("--seed", gpt.seed, "init seed")->capture_default_str();
  gpt_cmd->add_flag("--no-weights", gpt.no_weights, "graph only (weights come from the seed)");
  gpt_cmd->add_option("-o,--output", gpt.out, "model file to write")->required();

  auto* data = app.add_subcommand("data", "write a dataset file");
  data->require_subcommand(1);
  std::string input, token_dtype = "uint16", out;
  std::int64_t seq = 0, vocab = 0, count = 0;
  std::uint64_t seed = 0;
  auto* bytes_cmd = data->add_subcommand("bytes", "a file's bytes as tokens (vocab 256)");
  bytes_cmd->add_option("--input", input, "any file")->required();
  bytes_cmd->add_option("--seq", seq, "sequence length S (windows of S+1)")->required();
  bytes_cmd->add_option("-o,--output", out, "dataset file to write")->required();
  auto* tokens_cmd = data->add_subcommand("tokens", "a pre-tokenised binary (nanoGPT .bin)");
  tokens_cmd->add_option("--input", input, "token file")->required();
  tokens_cmd->add_option("--dtype", token_dtype, "uint16 or int32")->capture_default_str();
  tokens_cmd->add_option("--vocab", vocab, "vocabulary size")->required();
  tokens_cmd->add_option("--seq", seq, "sequence length S")->required();
  tokens_cmd->add_option("-o,--output", out, "dataset file to write")->required();
  auto* synth_cmd = data->add_subcommand("synthetic", "uniform random tokens");
  synth_cmd->add_option("--vocab", vocab, "vocabulary size")->required();
  synth_cmd->add_option("--seq", seq, "sequence length S")->required();
  synth_cmd->add_option("--count", count, "rows")->required();
  synth_cmd->add_option("--seed", seed, "random seed")->capture_default_str();
  synth_cmd->add_option("-o,--output", out, "dataset file to write")->required();

  auto* inspect = app.add_subcommand("inspect", "describe a Strata file");
  std::string inspect_path;
  inspect->add_option("FILE", inspect_path, "model, dataset or gradient file")->required();

  auto* plan = app.add_subcommand("plan", "search a parallelisation plan (no MPI needed)");
  std::string plan_config, plan_out;
  std::vector<std::string> plan_sets;
  plan->add_option("CONFIG", plan_config, "run config (YAML)")->required();
  plan->add_option("--set", plan_sets, "override a config key: a.b.c=value (YAML value)");
  plan->add_option("--out", plan_out, "folder for plan.json and plan.svg (default output.dir)");

  auto* train = app.add_subcommand("train", "train (alone or under srun/mpirun)");
  std::string config;
  std::vector<std::string> sets;
  train->add_option("CONFIG", config, "run config (YAML)")->required();
  train->add_option("--set", sets, "override a config key: a.b.c=value (YAML value)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "strata: {}\n", e.what());
    return kExitBadInput;
  }

  if (*train) return train_with_runtime(config, sets, argc, argv);
  try {
    if (*gpt_cmd) return make_gpt(gpt);
    if (*bytes_cmd) return write_data(dataset_from_bytes(input, seq), out);
    if (*tokens_cmd) return write_data(dataset_from_tokens(input, token_dtype, vocab, seq), out);
    if (*synth_cmd) return write_data(dataset_synthetic(vocab, seq, count, seed), out);
    if (*inspect) return run_inspect(inspect_path);
    if (*plan) return run_plan(plan_config, plan_sets, plan_out);
  } catch (const InputError& e) {
    for (const auto& line : e.problems()) fmt::print(stderr, "error: {}\n", line);
    return kExitBadInput;
  } catch (const std::invalid_argument& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return kExitBadInput;
  } catch (const std::overflow_error& e) {  // dimensions whose product overflows int64
    fmt::print(stderr, "error: {}\n", e.what());
    return kExitBadInput;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return kExitFailure;
  }
  return kExitBadInput;
}

}  // namespace strata::app
