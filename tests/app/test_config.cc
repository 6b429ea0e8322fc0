// Run config tests: defaults, every key, every kind of problem (with file, line and key in the
// message, all reported at once and in file order), --set overrides, path resolution and the
// config_to_yaml round trip. Pure parsing: no MPI, no files except the load_config cases, which
// write into a temporary directory removed at the end.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "app/config.h"
#include "app/errors.h"

namespace strata::app {
namespace {

namespace fs = std::filesystem;

const char* const kMinimal = "model:\n  path: /m/model.h5\n";

RunConfig parse(const std::string& text, const std::vector<std::string>& sets = {}) {
  return parse_config(text, "run.yaml", "/base", sets);
}

// The problem lines of a config that must fail (an empty list when it parses).
std::vector<std::string> problems_of(const std::string& text,
                                     const std::vector<std::string>& sets = {}) {
  try {
    parse(text, sets);
  } catch (const InputError& e) {
    return e.problems();
  }
  return {};
}

// The single problem of a config that must fail with exactly one.
std::string problem_of(const std::string& text, const std::vector<std::string>& sets = {}) {
  const auto problems = problems_of(text, sets);
  INFO("text:\n" << text.substr(0, 400));
  for (const auto& p : problems) UNSCOPED_INFO("problem: " << p);
  REQUIRE(problems.size() == 1);
  return problems[0];
}

// A config whose train section holds `lines` (each indented by the caller).
std::string with_train(const std::string& lines) {
  return std::string(kMinimal) + "train:\n" + lines;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("strata_test_config_" + std::to_string(reinterpret_cast<std::uintptr_t>(this)) + "_" +
            std::to_string(std::rand()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  void write(const std::string& name, const std::string& text) const {
    fs::create_directories((path / name).parent_path());
    std::ofstream(path / name, std::ios::binary) << text;
  }
};

const char* const kFullConfig = R"(# every key, none at its default
model:
  path: models/gpt.h5
data:
  path: data/train.h5
  val_path: /abs/val.h5
cluster:
  preset: dgx-a100
  hosts: 2
  devices_per_host: 8
  backend: cuda
train:
  steps: 500
  global_batch: 64
  micro_batches: 4
  dtype: bf16
  seed: 18446744073709551615
  shuffle: false
  log_every: 10
  eval_every: 50
  clip_grad_norm: 1.0
  optimizer:
    kind: sgd
    lr: 0.01
    betas: [0.8, 0.95]
    eps: 1e-6
    weight_decay: 0.1
    momentum: 0.9
    no_decay: ["*.bias", "*ln_*"]
    schedule: cosine
    warmup_steps: 20
    min_lr: 0.001
plan:
  method: manual
  dp: 2
  tp: 4
  pp: 2
  stages:
    - {layers: [0, 3], submesh: [1, 8], logical_mesh: [2, 4], recompute: true}
    - layers: [3, 6]
      submesh: [1, 8]
  schedule: gpipe
  solver: cbc
  ilp_time_limit_s: 12.5
checkpoint:
  dir: ckpt
  every_steps: 100
  keep: 3
  resume: ckpt/step100.h5
output:
  dir: results
  metrics: results/m.jsonl
  save_model: false
  dump_gradients_step: 7
)";

TEST_CASE("config: defaults of a minimal config", "[config]") {
  const RunConfig c = parse(kMinimal);
  CHECK(c.source == "run.yaml");
  CHECK(c.model_path == "/m/model.h5");
  CHECK(c.data_path.empty());
  CHECK(c.val_path.empty());
  CHECK(c.cluster_preset == "local-cpu");
  CHECK(c.cluster_hosts == 0);
  CHECK(c.cluster_devices_per_host == 0);
  CHECK(c.backend == "auto");
  CHECK(c.steps == 100);
  CHECK(c.global_batch == 8);
  CHECK(c.micro_batches == 0);
  CHECK(c.dtype == "f32");
  CHECK(c.seed == 0);
  CHECK(c.shuffle);
  CHECK(c.log_every == 1);
  CHECK(c.eval_every == 0);
  CHECK(c.optimizer.kind == "adamw");
  CHECK(c.optimizer.lr == 3e-4);
  CHECK(c.optimizer.beta1 == 0.9);
  CHECK(c.optimizer.beta2 == 0.999);
  CHECK(c.optimizer.eps == 1e-8);
  CHECK(c.optimizer.weight_decay == 0.0);
  CHECK(c.optimizer.momentum == 0.0);
  CHECK(c.optimizer.no_decay.empty());
  CHECK(c.optimizer.schedule == "constant");
  CHECK(c.optimizer.warmup_steps == 0);
  CHECK(c.optimizer.min_lr == 0.0);
  CHECK(c.optimizer.clip_grad_norm == 0.0);
  CHECK(c.plan_method == "auto");
  CHECK(c.plan_dp == 1);
  CHECK(c.plan_tp == 1);
  CHECK(c.plan_pp == 1);
  CHECK(c.plan_stages.empty());
  CHECK(c.plan_schedule == "1f1b");
  CHECK(c.plan_recompute == "auto");
  CHECK(c.plan_solver == "auto");
  CHECK(c.plan_ilp_time_limit_s == 60.0);
  CHECK(c.checkpoint_dir.empty());
  CHECK(c.checkpoint_every_steps == 0);
  CHECK(c.checkpoint_keep == 2);
  CHECK(c.checkpoint_resume == "auto");
  // The default output.dir is relative to the working directory, like a --set path.
  const std::string out = (fs::current_path() / "out").string();
  CHECK(c.output_dir == out);
  CHECK(c.metrics_path.empty());
  CHECK(c.resolved_metrics_path() == out + "/metrics.jsonl");
  CHECK(c.save_model);
  CHECK(c.dump_gradients_step == 0);
  // The defaults are those of a RunConfig built in code.
  RunConfig code;
  code.model_path = "/m/model.h5";
  code.output_dir = out;
  CHECK(same_settings(c, code));
}

TEST_CASE("config: every key is read", "[config]") {
  const RunConfig c = parse(kFullConfig);
  CHECK(c.model_path == "/base/models/gpt.h5");
  CHECK(c.data_path == "/base/data/train.h5");
  CHECK(c.val_path == "/abs/val.h5");
  CHECK(c.cluster_preset == "dgx-a100");
  CHECK(c.cluster_hosts == 2);
  CHECK(c.cluster_devices_per_host == 8);
  CHECK(c.backend == "cuda");
  CHECK(c.steps == 500);
  CHECK(c.global_batch == 64);
  CHECK(c.micro_batches == 4);
  CHECK(c.dtype == "bf16");
  CHECK(c.seed == 18446744073709551615ull);
  CHECK_FALSE(c.shuffle);
  CHECK(c.log_every == 10);
  CHECK(c.eval_every == 50);
  CHECK(c.optimizer.clip_grad_norm == 1.0);
  CHECK(c.optimizer.kind == "sgd");
  CHECK(c.optimizer.lr == 0.01);
  CHECK(c.optimizer.beta1 == 0.8);
  CHECK(c.optimizer.beta2 == 0.95);
  CHECK(c.optimizer.eps == 1e-6);
  CHECK(c.optimizer.weight_decay == 0.1);
  CHECK(c.optimizer.momentum == 0.9);
  CHECK(c.optimizer.no_decay == std::vector<std::string>{"*.bias", "*ln_*"});
  CHECK(c.optimizer.schedule == "cosine");
  CHECK(c.optimizer.warmup_steps == 20);
  CHECK(c.optimizer.min_lr == 0.001);
  CHECK(c.plan_method == "manual");
  CHECK(c.plan_dp == 2);
  CHECK(c.plan_tp == 4);
  CHECK(c.plan_pp == 2);
  REQUIRE(c.plan_stages.size() == 2);
  CHECK(c.plan_stages[0].layer_begin == 0);
  CHECK(c.plan_stages[0].layer_end == 3);
  CHECK(c.plan_stages[0].submesh_hosts == 1);
  CHECK(c.plan_stages[0].submesh_devices == 8);
  CHECK(c.plan_stages[0].mesh0 == 2);
  CHECK(c.plan_stages[0].mesh1 == 4);
  CHECK(c.plan_stages[0].recompute);
  CHECK(c.plan_stages[1].layer_begin == 3);
  CHECK(c.plan_stages[1].layer_end == 6);
  CHECK(c.plan_stages[1].mesh0 == 1);  // logical_mesh defaults to the submesh's shape
  CHECK(c.plan_stages[1].mesh1 == 8);
  CHECK_FALSE(c.plan_stages[1].recompute);
  CHECK(c.plan_schedule == "gpipe");
  CHECK(c.plan_solver == "cbc");
  CHECK(c.plan_ilp_time_limit_s == 12.5);
  CHECK(c.checkpoint_dir == "/base/ckpt");
  CHECK(c.checkpoint_every_steps == 100);
  CHECK(c.checkpoint_keep == 3);
  CHECK(c.checkpoint_resume == "/base/ckpt/step100.h5");
  CHECK(c.output_dir == "/base/results");
  CHECK(c.metrics_path == "/base/results/m.jsonl");
  CHECK(c.resolved_metrics_path() == "/base/results/m.jsonl");
  CHECK_FALSE(c.save_model);
  CHECK(c.dump_gradients_step == 7);
}

TEST_CASE("config: micro_batches auto, resume never, empty sections", "[config]") {
  CHECK(parse(with_train("  micro_batches: auto\n")).micro_batches == 0);
  CHECK(parse(with_train("  micro_batches: \"auto\"\n")).micro_batches == 0);
  CHECK(parse(std::string(kMinimal) + "checkpoint:\n  resume: never\n").checkpoint_resume ==
        "never");
  // A section whose keys are all commented out is empty, not an error.
  CHECK(parse(std::string(kMinimal) + "train:\n  # steps: 5\nplan:\n").steps == 100);
  // Integers are numbers; a quoted number is a fine path.
  CHECK(parse(with_train("  optimizer:\n    lr: 1\n")).optimizer.lr == 1.0);
  CHECK(parse("model:\n  path: 123\n").model_path == "/base/123");
}

TEST_CASE("config: unknown keys, with a suggestion when one is close", "[config]") {
  CHECK(problem_of(with_train("  step: 5\n")) ==
        "run.yaml:4: train.step: unknown key (did you mean train.steps?)");
  CHECK(problem_of(with_train("  optimizer:\n    betass: [0.9, 0.9]\n")) ==
        "run.yaml:5: train.optimizer.betass: unknown key (did you mean train.optimizer.betas?)");
  CHECK(problem_of(std::string(kMinimal) + "trian:\n  steps: 3\n") ==
        "run.yaml:3: trian: unknown key (did you mean train?)");
  // The same last segment at the wrong depth.
  CHECK(problem_of(std::string(kMinimal) + "steps: 3\n") ==
        "run.yaml:3: steps: unknown key (did you mean train.steps?)");
  // Far from every key: no suggestion.
  CHECK(problem_of(with_train("  learning_rate_of_the_model: 1\n")) ==
        "run.yaml:4: train.learning_rate_of_the_model: unknown key");
  CHECK(problem_of(std::string(kMinimal) + "train.steps: 3\n") ==
        "run.yaml:3: train.steps: keys may not contain '.'; nest the sections instead");
  CHECK(problem_of(with_train("  steps: 1\n  steps: 2\n")) ==
        "run.yaml:5: train.steps: duplicate key (first given on line 4)");
}

TEST_CASE("config: wrong types", "[config]") {
  CHECK(problem_of(with_train("  steps: many\n")) ==
        "run.yaml:4: train.steps: expected an integer, got many");
  CHECK(problem_of(with_train("  steps: 1.5\n")) ==
        "run.yaml:4: train.steps: expected an integer, got 1.5");
  CHECK(problem_of(with_train("  steps: 1e3\n")) ==
        "run.yaml:4: train.steps: expected an integer, got 1e3");
  CHECK(problem_of(with_train("  steps: \"100\"\n")) ==
        "run.yaml:4: train.steps: expected an integer, got the string \"100\"");
  CHECK(problem_of(with_train("  steps:\n")) ==
        "run.yaml:4: train.steps: expected an integer, got null");
  CHECK(problem_of(with_train("  steps: ~\n")) ==
        "run.yaml:4: train.steps: expected an integer, got null");
  CHECK(problem_of(with_train("  steps: [1]\n")) ==
        "run.yaml:4: train.steps: expected an integer, got a list");
  CHECK(problem_of(with_train("  steps: {a: 1}\n")) ==
        "run.yaml:4: train.steps: expected an integer, got a map");
  CHECK(problem_of(with_train("  shuffle: yes\n")) ==
        "run.yaml:4: train.shuffle: expected true or false, got yes");
  CHECK(problem_of(with_train("  optimizer:\n    lr: fast\n")) ==
        "run.yaml:5: train.optimizer.lr: expected a number, got fast");
  CHECK(problem_of(with_train("  optimizer:\n    lr: \"0.1\"\n")) ==
        "run.yaml:5: train.optimizer.lr: expected a number, got the string \"0.1\"");
  CHECK(problem_of(with_train("  micro_batches: some\n")) ==
        "run.yaml:4: train.micro_batches: expected an integer >= 1 or auto, got some");
  CHECK(problem_of(with_train("  optimizer:\n    betas: 0.9\n")) ==
        "run.yaml:5: train.optimizer.betas: expected a list [beta1, beta2], got 0.9");
  CHECK(problem_of(with_train("  optimizer:\n    no_decay: \"*.bias\"\n")) ==
        "run.yaml:5: train.optimizer.no_decay: expected a list of parameter-name patterns, got "
        "the string \"*.bias\"");
  CHECK(problem_of(std::string(kMinimal) + "data: data.h5\n") ==
        "run.yaml:3: data: expected a map of data.* keys, got data.h5");
  CHECK(problem_of("model:\n  path: [a, b]\n") ==
        "run.yaml:2: model.path: expected a string, got a list");
  CHECK(problem_of("model:\n  path:\n") == "run.yaml:2: model.path: expected a string, got null");
  CHECK(problem_of("model:\n  path: \"\"\n") == "run.yaml:2: model.path: must not be empty");
}

TEST_CASE("config: out-of-range values", "[config]") {
  CHECK(problem_of(with_train("  steps: -3\n")) ==
        "run.yaml:4: train.steps: -3 is out of range (must be >= 1)");
  CHECK(problem_of(with_train("  steps: 0\n")) ==
        "run.yaml:4: train.steps: 0 is out of range (must be >= 1)");
  CHECK(problem_of(with_train("  steps: 9223372036854775808\n")) ==
        "run.yaml:4: train.steps: 9223372036854775808 is out of range (integers must fit in 64 "
        "bits)");
  CHECK(parse(with_train("  steps: 9223372036854775807\n")).steps == INT64_MAX);
  CHECK(problem_of(with_train("  seed: -1\n")) ==
        "run.yaml:4: train.seed: -1 is out of range (must be >= 0)");
  CHECK(problem_of(with_train("  seed: 18446744073709551616\n")) ==
        "run.yaml:4: train.seed: 18446744073709551616 is out of range (must be < 2^64)");
  CHECK(problem_of(with_train("  micro_batches: 0\n")) ==
        "run.yaml:4: train.micro_batches: 0 is out of range (must be >= 1, or auto)");
  CHECK(problem_of(with_train("  global_batch: 0\n")) ==
        "run.yaml:4: train.global_batch: 0 is out of range (must be >= 1)");
  CHECK(problem_of(with_train("  log_every: 0\n")) ==
        "run.yaml:4: train.log_every: 0 is out of range (must be >= 1)");
  CHECK(problem_of(with_train("  eval_every: -1\n")) ==
        "run.yaml:4: train.eval_every: -1 is out of range (must be >= 0)");
  CHECK(problem_of(with_train("  clip_grad_norm: -0.5\n")) ==
        "run.yaml:4: train.clip_grad_norm: -0.5 is out of range (must be >= 0)");
  CHECK(problem_of(with_train("  optimizer:\n    lr: 0\n")) ==
        "run.yaml:5: train.optimizer.lr: 0 is out of range (must be > 0)");
  CHECK(problem_of(with_train("  optimizer:\n    lr: 1e999\n")) ==
        "run.yaml:5: train.optimizer.lr: 1e999 is out of range for a double");
  CHECK(problem_of(with_train("  optimizer:\n    lr: .inf\n")) ==
        "run.yaml:5: train.optimizer.lr: .inf is out of range (must be finite)");
  CHECK(problem_of(with_train("  optimizer:\n    eps: 0.0\n")) ==
        "run.yaml:5: train.optimizer.eps: 0.0 is out of range (must be > 0)");
  CHECK(problem_of(with_train("  optimizer:\n    weight_decay: -1\n")) ==
        "run.yaml:5: train.optimizer.weight_decay: -1 is out of range (must be >= 0)");
  CHECK(problem_of(with_train("  optimizer:\n    momentum: 1\n")) ==
        "run.yaml:5: train.optimizer.momentum: 1 is out of range (must be in [0, 1))");
  CHECK(problem_of(with_train("  optimizer:\n    betas: [0.9, 1.0]\n")) ==
        "run.yaml:5: train.optimizer.betas[1]: 1.0 is out of range (must be in [0, 1))");
  CHECK(problem_of(with_train("  optimizer:\n    betas:\n      - 0.9\n      - -0.1\n")) ==
        "run.yaml:7: train.optimizer.betas[1]: -0.1 is out of range (must be in [0, 1))");
  CHECK(problem_of(with_train("  optimizer:\n    betas: [0.9]\n")) ==
        "run.yaml:5: train.optimizer.betas: expected 2 values [beta1, beta2], got 1");
  CHECK(problem_of(with_train("  optimizer:\n    warmup_steps: -1\n")) ==
        "run.yaml:5: train.optimizer.warmup_steps: -1 is out of range (must be >= 0)");
  CHECK(problem_of(with_train("  optimizer:\n    min_lr: -1e-5\n")) ==
        "run.yaml:5: train.optimizer.min_lr: -1e-5 is out of range (must be >= 0)");
  CHECK(problem_of(with_train("  optimizer:\n    lr: 0.001\n    min_lr: 0.01\n")) ==
        "run.yaml:6: train.optimizer.min_lr: min_lr 0.01 is greater than lr 0.001");
  CHECK(problem_of(std::string(kMinimal) + "cluster:\n  hosts: -1\n") ==
        "run.yaml:4: cluster.hosts: -1 is out of range (must be >= 0)");
  CHECK(problem_of(std::string(kMinimal) + "plan:\n  tp: 0\n") ==
        "run.yaml:4: plan.tp: 0 is out of range (must be >= 1)");
  CHECK(problem_of(std::string(kMinimal) + "plan:\n  ilp_time_limit_s: 0\n") ==
        "run.yaml:4: plan.ilp_time_limit_s: 0 is out of range (must be > 0)");
  CHECK(problem_of(std::string(kMinimal) + "checkpoint:\n  keep: 0\n") ==
        "run.yaml:4: checkpoint.keep: 0 is out of range (must be >= 1)");
  CHECK(problem_of(std::string(kMinimal) + "checkpoint:\n  every_steps: -2\n") ==
        "run.yaml:4: checkpoint.every_steps: -2 is out of range (must be >= 0)");
  CHECK(problem_of(std::string(kMinimal) + "output:\n  dump_gradients_step: -1\n") ==
        "run.yaml:4: output.dump_gradients_step: -1 is out of range (must be >= 0)");
}

TEST_CASE("config: enums name the allowed values", "[config]") {
  CHECK(problem_of(with_train("  dtype: f8\n")) ==
        "run.yaml:4: train.dtype: \"f8\" is not one of f64, f32, bf16, f16");
  CHECK(problem_of(with_train("  dtype: fp16\n")) ==
        "run.yaml:4: train.dtype: \"fp16\" is not one of f64, f32, bf16, f16 (did you mean f16?)");
  CHECK(problem_of(with_train("  optimizer:\n    kind: adam\n")) ==
        "run.yaml:5: train.optimizer.kind: \"adam\" is not one of adamw, sgd (did you mean "
        "adamw?)");
  CHECK(problem_of(with_train("  optimizer:\n    schedule: linear\n")) ==
        "run.yaml:5: train.optimizer.schedule: \"linear\" is not one of constant, cosine");
  CHECK(problem_of(std::string(kMinimal) + "cluster:\n  backend: gpu\n") ==
        "run.yaml:4: cluster.backend: \"gpu\" is not one of auto, host, cuda");
  CHECK(problem_of(std::string(kMinimal) + "plan:\n  method: zero1\n") ==
        "run.yaml:4: plan.method: \"zero1\" is not one of auto, data-parallel, zero2, zero3, "
        "megatron, megatron-best, intra-only, inter-only, manual (did you mean zero2?)");
  CHECK(problem_of(std::string(kMinimal) + "plan:\n  schedule: 1F1B\n") ==
        "run.yaml:4: plan.schedule: \"1F1B\" is not one of 1f1b, gpipe (did you mean 1f1b?)");
  CHECK(problem_of(std::string(kMinimal) + "plan:\n  recompute: yes\n") ==
        "run.yaml:4: plan.recompute: \"yes\" is not one of auto, always, never");
  CHECK(problem_of(std::string(kMinimal) + "plan:\n  solver: glpk\n") ==
        "run.yaml:4: plan.solver: \"glpk\" is not one of auto, lp_solve, cbc");
}

TEST_CASE("config: model.path is required", "[config]") {
  CHECK(problem_of("train:\n  steps: 5\n") ==
        "run.yaml: model.path: missing (the model file "
        "is required)");
  CHECK(problem_of("") == "run.yaml: model.path: missing (the model file is required)");
  CHECK(problem_of("# only a comment\n") ==
        "run.yaml: model.path: missing (the model file is required)");
  // Given by --set instead, it is there.
  CHECK(parse("", {"model.path=/x.h5"}).model_path == "/x.h5");
}

TEST_CASE("config: manual plan stages are validated", "[config]") {
  const std::string head = std::string(kMinimal) + "plan:\n  method: manual\n";
  CHECK(problem_of(head) ==
        "run.yaml:4: plan.method: manual needs plan.stages (a non-empty list of stages)");
  CHECK(problem_of(head + "  stages: []\n") ==
        "run.yaml:4: plan.method: manual needs plan.stages (a non-empty list of stages)");
  CHECK(problem_of(head + "  stages: {layers: [0, 1]}\n") ==
        "run.yaml:5: plan.stages: expected a list of stages, got a map");
  CHECK(problem_of(head + "  stages:\n    - [0, 1]\n") ==
        "run.yaml:6: plan.stages[0]: expected a map {layers, submesh, logical_mesh, recompute}, "
        "got a list");
  CHECK(problem_of(head + "  stages:\n    - {layers: [2, 2], submesh: [1, 1]}\n") ==
        "run.yaml:6: plan.stages[0].layers: [2, 2) is an empty range (need begin < end)");
  CHECK(problem_of(head + "  stages:\n    - {layers: [-1, 2], submesh: [1, 1]}\n") ==
        "run.yaml:6: plan.stages[0].layers[0]: -1 is out of range (must be >= 0)");
  CHECK(problem_of(head + "  stages:\n    - {layers: [0, 2, 4], submesh: [1, 1]}\n") ==
        "run.yaml:6: plan.stages[0].layers: expected 2 values [begin, end), got 3");
  CHECK(problem_of(head + "  stages:\n    - {layers: [0, 2], submesh: [0, 1]}\n") ==
        "run.yaml:6: plan.stages[0].submesh[0]: 0 is out of range (must be >= 1)");
  CHECK(problem_of(head + "  stages:\n    - {layers: [0, 2]}\n") ==
        "run.yaml:6: plan.stages[0]: missing submesh: [hosts, devices]");
  CHECK(problem_of(head + "  stages:\n    - {submesh: [1, 2]}\n") ==
        "run.yaml:6: plan.stages[0]: missing layers: [begin, end)");
  CHECK(problem_of(head + "  stages:\n    - {layers: [0, 2], submesh: [1, 2], recompute: 1}\n") ==
        "run.yaml:6: plan.stages[0].recompute: expected true or false, got 1");
  CHECK(problem_of(head + "  stages:\n    - {layers: [0, 2], submesh: [1, 2], mesh: [1, 2]}\n") ==
        "run.yaml:6: plan.stages[0].mesh: unknown stage key (expected layers, submesh, "
        "logical_mesh or recompute)");
  CHECK(problem_of(head +
                   "  stages:\n    - {layers: [0, 2], submesh: [1, 4], logical_mesh: [2, 4]}\n") ==
        "run.yaml:6: plan.stages[0]: logical_mesh [2, 4] does not hold the submesh's 1 x 4 "
        "devices");
  CHECK(problem_of(head + "  stages:\n    - {layers: [1, 2], submesh: [1, 1]}\n") ==
        "run.yaml:6: plan.stages[0]: layers begin at 1 but must begin at 0 (the first stage "
        "starts at layer 0)");
  CHECK(problem_of(head + "  stages:\n"
                          "    - {layers: [0, 2], submesh: [1, 1]}\n"
                          "    - layers: [3, 4]\n"
                          "      submesh: [1, 1]\n") ==
        "run.yaml:7: plan.stages[1]: layers begin at 3 but must begin at 2 (where the previous "
        "stage ends)");
  // Stages may be given with another method (e.g. overridden later by --set): not an error.
  CHECK(parse(std::string(kMinimal) + "plan:\n  stages:\n    - {layers: [0, 1], submesh: [1, 1]}\n")
            .plan_stages.size() == 1);
}

TEST_CASE("config: YAML syntax errors and a top level that is not a map", "[config]") {
  const std::string p = problem_of("model:\n  path: x\ntrain:\n  steps: [1, 2\n");
  INFO(p);
  CHECK(p.rfind("run.yaml:5: YAML syntax error: ", 0) == 0);
  const std::string q = problem_of("model:\n  path: x\n  a: b: c\n");
  INFO(q);
  CHECK(q.rfind("run.yaml:3: YAML syntax error: ", 0) == 0);
  CHECK(problem_of("- a\n- b\n") ==
        "run.yaml:1: the top level must be a map of sections (model, data, cluster, train, plan, "
        "checkpoint, output), got a list");
  CHECK(problem_of("just text\n") ==
        "run.yaml:1: the top level must be a map of sections (model, data, cluster, train, plan, "
        "checkpoint, output), got just text");
  CHECK(problem_of(std::string(kMinimal) + "---\nother: doc\n") ==
        "run.yaml:3: a config holds one YAML document; another starts here");
  // yaml-cpp's LoadAll never ends on this text; parse_config must.
  CHECK_FALSE(problems_of(", a\nb -\n").empty());
}

TEST_CASE("config: every problem is reported at once, in file order", "[config]") {
  const std::string text =
      "train:\n"            // 1
      "  steps: -1\n"       // 2
      "  dtype: f8\n"       // 3
      "  optimizer:\n"      // 4
      "    lr: 0\n"         // 5
      "    colour: blue\n"  // 6
      "plan:\n"             // 7
      "  schedule: 1f1b\n"  // 8
      "  dp: 1.5\n"         // 9
      "cluster:\n"          // 10
      "  backend: gpu\n";   // 11
  const auto problems = problems_of(text, {"train.global_batch=0", "nosuch=1"});
  const std::vector<std::string> expected = {
      "run.yaml:2: train.steps: -1 is out of range (must be >= 1)",
      "run.yaml:3: train.dtype: \"f8\" is not one of f64, f32, bf16, f16",
      "run.yaml:5: train.optimizer.lr: 0 is out of range (must be > 0)",
      "run.yaml:6: train.optimizer.colour: unknown key",
      "run.yaml:9: plan.dp: expected an integer, got 1.5",
      "run.yaml:11: cluster.backend: \"gpu\" is not one of auto, host, cuda",
      "--set train.global_batch: 0 is out of range (must be >= 1)",
      "--set nosuch: unknown key",
      "run.yaml: model.path: missing (the model file is required)",
  };
  CHECK(problems == expected);
  // InputError's what() holds the same lines.
  try {
    parse(text);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("run.yaml:2: train.steps") == 0);
    CHECK(std::string(e.what()).find('\n') != std::string::npos);
  }
}

TEST_CASE("config: --set overrides nested keys and lists, and may add keys", "[config]") {
  const RunConfig c =
      parse(std::string(kMinimal) + "train:\n  steps: 10\n",
            {"train.steps=20", "train.optimizer.betas=[0.9,0.95]", "train.optimizer.lr=1e-3",
             "plan.method=megatron", "plan.tp=2", "train.optimizer.no_decay=['*.bias', wte]",
             "train.steps=30", "train.micro_batches=auto", "cluster.backend=host"});
  CHECK(c.steps == 30);  // applied in order: the last wins
  CHECK(c.optimizer.beta1 == 0.9);
  CHECK(c.optimizer.beta2 == 0.95);
  CHECK(c.optimizer.lr == 1e-3);
  CHECK(c.plan_method == "megatron");
  CHECK(c.plan_tp == 2);
  CHECK(c.optimizer.no_decay == std::vector<std::string>{"*.bias", "wte"});
  CHECK(c.micro_batches == 0);
  CHECK(c.backend == "host");
  // A whole section as a YAML map; values may contain '='.
  const RunConfig d =
      parse(kMinimal, {"train.optimizer={kind: sgd, momentum: 0.5}",
                       "plan.stages=[{layers: [0, 4], submesh: [1, 2]}]", "cluster.preset=a=b"});
  CHECK(d.optimizer.kind == "sgd");
  CHECK(d.optimizer.momentum == 0.5);
  REQUIRE(d.plan_stages.size() == 1);
  CHECK(d.plan_stages[0].layer_end == 4);
  CHECK(d.cluster_preset == "a=b");
  // --set wins over the file even where the file's value was invalid for a cross-key rule.
  CHECK(parse(with_train("  optimizer:\n    lr: 0.001\n    min_lr: 0.01\n"),
              {"train.optimizer.min_lr=0.0001"})
            .optimizer.min_lr == 0.0001);
}

TEST_CASE("config: --set problems", "[config]") {
  CHECK(problem_of(kMinimal, {"train.steps"}) ==
        "--set train.steps: missing '=' (expected --set key=value)");
  CHECK(problem_of(kMinimal, {"=5"}) ==
        "--set =5: missing the key before '=' (expected --set key=value)");
  CHECK(problem_of(kMinimal, {"train.stpes=5"}) ==
        "--set train.stpes: unknown key (did you mean train.steps?)");
  CHECK(problem_of(kMinimal, {"train.optimizer.lr=abc"}) ==
        "--set train.optimizer.lr: expected a number, got abc");
  CHECK(problem_of(kMinimal, {"train.steps="}) ==
        "--set train.steps: expected an integer, got null");
  CHECK(problem_of(kMinimal, {"train.optimizer.betas=[0.9, 2]"}) ==
        "--set train.optimizer.betas[1]: 2 is out of range (must be in [0, 1))");
  CHECK(problem_of(kMinimal, {"train={steps: 0}"}) ==
        "--set train.steps: 0 is out of range (must be >= 1)");
  CHECK(problem_of(kMinimal, {"train={stesp: 1}"}) ==
        "--set train.stesp: unknown key (did you mean train.steps?)");
  CHECK(problem_of(kMinimal, {"train=5"}) == "--set train: expected a map of train.* keys, got 5");
  const std::string bad_yaml = problem_of(kMinimal, {"train.optimizer.betas=[0.9,"});
  CHECK(bad_yaml.rfind("--set train.optimizer.betas: the value is not valid YAML: ", 0) == 0);
  CHECK(problem_of(kMinimal, {"train.optimizer.min_lr=1"}) ==
        "--set train.optimizer.min_lr: min_lr 1 is greater than lr 0.0003");
}

TEST_CASE("config: relative paths resolve against the config's directory", "[config]") {
  const RunConfig c = parse_config(
      "model:\n  path: ../models/m.h5\ndata:\n  path: ./d.h5\n  val_path: /abs/v.h5\n"
      "checkpoint:\n  dir: ck\n  resume: ck/s.h5\noutput:\n  dir: o\n  metrics: o/m.jsonl\n",
      "cfg/run.yaml", "/work/cfg", {});
  CHECK(c.model_path == "/work/models/m.h5");
  CHECK(c.data_path == "/work/cfg/d.h5");
  CHECK(c.val_path == "/abs/v.h5");
  CHECK(c.checkpoint_dir == "/work/cfg/ck");
  CHECK(c.checkpoint_resume == "/work/cfg/ck/s.h5");
  CHECK(c.output_dir == "/work/cfg/o");
  CHECK(c.metrics_path == "/work/cfg/o/m.jsonl");
  // Names that are not paths stay as they are.
  CHECK(parse_config("model:\n  path: m\ncheckpoint:\n  resume: auto\ncluster:\n  preset: p\n", "r",
                     "/b", {})
            .cluster_preset == "p");
  // No base directory: kept relative.
  CHECK(parse_config("model:\n  path: m.h5\n", "r", "", {}).model_path == "m.h5");
  // A --set path is relative to the working directory.
  const RunConfig s = parse_config(kMinimal, "r", "/b", {"data.path=d.h5", "output.dir=/abs/o"});
  CHECK(s.data_path == (fs::current_path() / "d.h5").lexically_normal().string());
  CHECK(s.output_dir == "/abs/o");
}

TEST_CASE("config: load_config reads a file; its directory is the base", "[config]") {
  TempDir dir;
  dir.write("sub/run.yaml", "model:\n  path: m.h5\ntrain:\n  steps: 7\n");
  const std::string path = (dir.path / "sub" / "run.yaml").string();
  const RunConfig c = load_config(path, {"train.global_batch=3"});
  CHECK(c.source == path);
  CHECK(c.model_path == (dir.path / "sub" / "m.h5").string());
  CHECK(c.steps == 7);
  CHECK(c.global_batch == 3);

  dir.write("bad.yaml", "model:\n  path: m.h5\ntrain:\n  steps: x\n");
  const std::string bad = (dir.path / "bad.yaml").string();
  try {
    load_config(bad, {});
    FAIL("no error");
  } catch (const InputError& e) {
    REQUIRE(e.problems().size() == 1);
    CHECK(e.problems()[0] == bad + ":4: train.steps: expected an integer, got x");
  }
  const std::string missing = (dir.path / "nope.yaml").string();
  CHECK_THROWS_AS(load_config(missing, {}), InputError);
  CHECK_THROWS_AS(load_config(dir.path.string(), {}), InputError);
}

#ifdef STRATA_SOURCE_DIR
TEST_CASE("config: the example configs are valid", "[config]") {
  const fs::path examples = fs::path(STRATA_SOURCE_DIR) / "configs" / "examples";
  int count = 0;
  for (const auto& entry : fs::directory_iterator(examples)) {
    if (entry.path().extension() != ".yaml") continue;
    INFO(entry.path().string());
    const RunConfig c = load_config(entry.path().string(), {});
    CHECK(config_to_yaml(c).size() > 0);
    ++count;
  }
  CHECK(count >= 1);
}
#endif

TEST_CASE("config: config_to_yaml round-trips every setting", "[config]") {
  SECTION("defaults") {
    const RunConfig c = parse(kMinimal);
    const RunConfig back = parse(config_to_yaml(c));
    CHECK(same_settings(c, back));
  }
  SECTION("every key set") {
    const RunConfig c = parse(kFullConfig);
    const std::string yaml = config_to_yaml(c);
    INFO(yaml);
    const RunConfig back = parse(yaml);
    CHECK(same_settings(c, back));
    CHECK(config_to_yaml(back) == yaml);
  }
  SECTION("awkward values built in code") {
    RunConfig c;
    c.model_path = "/dir with spaces/\"quoted\" \\ back: colon # hash/m.h5";
    c.data_path = "/données/ünïcode.h5";
    c.cluster_preset = "true";   // must stay a string
    c.optimizer.lr = 0.1 + 0.2;  // needs 17 digits
    c.optimizer.min_lr = 1e-300;
    c.optimizer.no_decay = {"null", "~", "*"};
    c.micro_batches = 3;
    c.seed = 18446744073709551615ull;
    c.plan_stages = {StageSpec{0, 2, 1, 4, 2, 2, true}, StageSpec{2, 5, 2, 1, 1, 2, false}};
    c.checkpoint_resume = "never";
    const RunConfig back = parse_config(config_to_yaml(c), "r", "", {});
    CHECK(same_settings(c, back));
    CHECK(back.optimizer.lr == 0.1 + 0.2);
  }
}

TEST_CASE("config: check_train_requirements", "[config]") {
  RunConfig c = parse(kMinimal);
  const auto problems = check_train_requirements(c);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == "run.yaml: data.path: missing (train needs the training dataset)");
  c.data_path = "/d.h5";
  CHECK(check_train_requirements(c).empty());
  c.eval_every = 5;
  REQUIRE(check_train_requirements(c).size() == 1);
  CHECK(check_train_requirements(c)[0] ==
        "run.yaml: train.eval_every: 5 needs data.val_path (the validation dataset)");
}

TEST_CASE("config: hostile input gives problems, not crashes", "[config]") {
  // Deep nesting: yaml-cpp's depth guard, or our walker, reports it.
  const std::string deep = "model:\n  path: " + std::string(100000, '[') + "\n";
  CHECK_FALSE(problems_of(deep).empty());
  const std::string deep_map = std::string(kMinimal) + "train: " + std::string(5000, '{') + "\n";
  CHECK_FALSE(problems_of(deep_map).empty());
  // Anchors and aliases: shared nodes are read like copies; a self-referencing list is a type
  // error, not a loop.
  const RunConfig a = parse(
      "model:\n  path: &p /x.h5\ndata:\n  path: *p\ntrain:\n  optimizer:\n"
      "    betas: &b [0.5, 0.5]\n");
  CHECK(a.data_path == "/x.h5");
  CHECK(problem_of(std::string(kMinimal) + "plan:\n  stages: &s [*s]\n").find("plan.stages[0]") !=
        std::string::npos);
  CHECK_FALSE(problems_of(std::string(kMinimal) + "train:\n  steps: *nowhere\n").empty());
  // Non-UTF-8 and control bytes are shown escaped; the message stays one line.
  const std::string bytes = problem_of("model:\n  path: \"a\\x01b\"\n");
  CHECK(bytes == "run.yaml:2: model.path: \"a\\x01b\" contains a control character (\\x01)");
  const std::string raw = problem_of(std::string("model:\n  path: a\xff\xfe z\n"));
  CHECK(raw.find('\n') == std::string::npos);
  CHECK(raw.find("\\xFF") != std::string::npos);
  // A very long key and value: one short line each.
  const std::string long_key = std::string(kMinimal) + "train:\n  " + std::string(100000, 'k') +
                               ": " + std::string(100000, 'v') + "\n";
  const std::string lk = problem_of(long_key);
  CHECK(lk.size() < 200);
  CHECK(problem_of(with_train("  dtype: " + std::string(5000, 'x') + "\n")).size() < 300);
  // Very many problems: capped, with a count of the rest.
  std::string many = std::string(kMinimal) + "train:\n";
  for (int i = 0; i < 500; ++i) many += "  k" + std::to_string(i) + ": 1\n";
  const auto lines = problems_of(many);
  REQUIRE(lines.size() == 101);
  CHECK(lines.back() == "... and 400 more problems");
  // Embedded NUL bytes.
  CHECK_FALSE(problems_of(std::string("model:\n  path: a\0b\n", 18)).empty());
  // A non-string key.
  CHECK(problem_of(std::string(kMinimal) + "train:\n  [a, b]: 1\n") ==
        "run.yaml:4: train: keys must be non-empty strings, got a list");
}

}  // namespace
}  // namespace strata::app
