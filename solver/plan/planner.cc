// plan.method -> Plan: the stage DP over the intra-op cost model, with each method's search space
// expressed as a filter on stage candidates (see planner.h), then the plan filled in with
// per-stage strategy summaries, predicted throughput and search statistics.
#include "solver/plan/planner.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "solver/cost/cost_model.h"
#include "solver/inter/stage_cost.h"
#include "solver/inter/stage_dp.h"
#include "solver/ir/flops.h"
#include "solver/plan/stage_program.h"

namespace strata::solver {
namespace {

using Clock = std::chrono::steady_clock;
using Filter = std::function<bool(const StageCandidate&)>;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Layers of a GPT: 0 embedding, 1..L blocks, L+1 head.
std::int64_t model_layers(const GptConfig& model) { return model.layers + 2; }

// Megatron's stages: the L blocks split as evenly as possible into pp ranges (earlier stages take
// the remainder), the embedding joining the first and the head the last.
std::vector<std::pair<std::int64_t, std::int64_t>> even_ranges(std::int64_t blocks,
                                                               std::int64_t pp) {
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  std::int64_t begin = 0;
  for (std::int64_t i = 0; i < pp; ++i) {
    const std::int64_t count = blocks / pp + (i < blocks % pp ? 1 : 0);
    std::int64_t end = begin + count + (i == 0 ? 1 : 0) + (i == pp - 1 ? 1 : 0);
    ranges.emplace_back(begin, end);
    begin = end;
  }
  return ranges;
}

std::string restriction_of(const std::string& method) {
  if (method == "data-parallel" || method == "zero2" || method == "zero3" || method == "megatron" ||
      method == "megatron-best") {
    return method == "megatron-best" ? "megatron" : method;
  }
  return "";
}

StageDpOptions dp_options(const GptConfig& model, const ClusterSpec& cluster,
                          const PlannerOptions& options) {
  StageDpOptions dp;
  dp.num_layers = model_layers(model);
  for (const auto& g : cluster.groups) {
    dp.groups.push_back(DeviceGroup{g.hosts, g.devices_per_host, g.device.memory_bytes});
  }
  dp.global_batch = options.global_batch;
  dp.micro_batches = options.micro_batches;
  dp.schedule = options.schedule;
  dp.allow_recompute = options.recompute != "never";
  dp.max_variants = IntraStageCostModel::kMaxVariants;  // memory/time trade-offs (stage_cost.h)
  return dp;
}

// The candidates a method allows.
Filter method_filter(const std::string& method, const GptConfig& model, const ClusterSpec& cluster,
                     const PlannerOptions& o) {
  const std::int64_t layers = model_layers(model);
  // To an unrestricted intra-op ILP the 1-D meshes (n, 1) and (1, n) of a sub-mesh are the same
  // mesh (one axis over the same devices and links; force_batch_axis0 applies only when both
  // axes are > 1), so auto and intra-only price (1, n) alone: half the 1-D solves.
  const auto one_d_once = [](const StageCandidate& c) { return c.mesh.d1 > 1 || c.mesh.d0 == 1; };
  if (method == "auto") return one_d_once;
  if (method == "intra-only") {
    return [layers, one_d_once](const StageCandidate& c) {
      return c.layer_begin == 0 && c.layer_end == layers && one_d_once(c);
    };
  }
  if (method == "inter-only") return [](const StageCandidate& c) { return c.submesh.size() == 1; };
  if (method == "data-parallel" || method == "zero2" || method == "zero3") {
    return [layers](const StageCandidate& c) {
      return c.layer_begin == 0 && c.layer_end == layers && c.mesh.d1 == 1;
    };
  }
  if (method == "megatron") {
    const auto ranges = even_ranges(model.layers, o.pp);
    const std::set<std::pair<std::int64_t, std::int64_t>> allowed(ranges.begin(), ranges.end());
    const std::int64_t dp = o.dp, tp = o.tp;
    return [allowed, dp, tp](const StageCandidate& c) {
      return allowed.count({c.layer_begin, c.layer_end}) && c.mesh.d0 == dp && c.mesh.d1 == tp;
    };
  }
  if (method == "manual") {
    std::set<std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                        std::int64_t, bool>>
        allowed;
    for (const auto& s : o.stages) {
      allowed.insert({s.layer_begin, s.layer_end, s.hosts, s.devices, s.d0, s.d1, s.recompute});
    }
    return [allowed](const StageCandidate& c) {
      return allowed.count({c.layer_begin, c.layer_end, c.submesh.hosts, c.submesh.devices,
                            c.mesh.d0, c.mesh.d1, c.recompute}) > 0;
    };
  }
  (void)cluster;
  throw std::invalid_argument("plan.method: '" + method + "' is not a known method");
}

void check_request(const GptConfig& model, const ClusterSpec& cluster, const PlannerOptions& o) {
  validate(model);
  validate(cluster);
  for (const auto& g : cluster.groups) {
    if (!g.device.peak_flops.count(o.dtype)) {
      throw std::invalid_argument("train.dtype: " + o.dtype + " is not supported by " +
                                  g.device.kind + " (cluster " + cluster.name + ")");
    }
  }
  if (o.global_batch < 1) throw std::invalid_argument("train.global_batch must be >= 1");
  if (o.micro_batches > 0 && o.global_batch % o.micro_batches != 0) {
    throw std::invalid_argument("train.micro_batches: " + std::to_string(o.micro_batches) +
                                " does not divide train.global_batch " +
                                std::to_string(o.global_batch));
  }
  if (o.method == "megatron") {
    const std::int64_t n = cluster.total_devices();
    if (o.dp * o.tp * o.pp != n) {
      throw std::invalid_argument("plan.dp x plan.tp x plan.pp = " + std::to_string(o.dp) + " x " +
                                  std::to_string(o.tp) + " x " + std::to_string(o.pp) +
                                  " does not equal the cluster's " + std::to_string(n) +
                                  " devices");
    }
    if (o.pp > model.layers) {
      throw std::invalid_argument("plan.pp: " + std::to_string(o.pp) + " stages for " +
                                  std::to_string(model.layers) + " blocks");
    }
  }
  if (o.method == "manual" && o.stages.empty()) {
    throw std::invalid_argument("plan.stages: required for plan.method manual");
  }
  if (o.recompute != "auto" && o.recompute != "always" && o.recompute != "never") {
    throw std::invalid_argument("plan.recompute: '" + o.recompute +
                                "' (expected auto, always or never)");
  }
  if (o.method == "manual" && o.recompute != "auto") {
    throw std::invalid_argument("plan.recompute: " + o.recompute +
                                " does not apply to plan.method manual (its stages set recompute)");
  }
}

// Searches one method; nullopt with `failure` set when nothing fits.
struct SearchOutcome {
  std::optional<StagePlan> plan;
  std::string failure;
  double ilp_s = 0, dp_s = 0;
  std::int32_t worker = 0;  // the search thread whose cost model priced the plan
};

// One cost model per search thread (plan_stages runs models.size() workers); `worker` in the
// outcome says whose priced the plan.
SearchOutcome search(const GptConfig& model, const ClusterSpec& cluster, const PlannerOptions& o,
                     const std::string& method,
                     const std::vector<std::shared_ptr<IntraStageCostModel>>& models) {
  const Filter method_allows = method_filter(method, model, cluster, o);
  const std::string recompute = o.recompute;
  const Filter filter = [method_allows, recompute](const StageCandidate& c) {
    if (recompute == "always" && !c.recompute) return false;
    if (recompute == "never" && c.recompute) return false;
    return method_allows(c);
  };
  SearchOutcome out;
  std::vector<double> cost_s(models.size(), 0.0);  // per worker, written by its thread only
  std::vector<StageCostFn> fns;
  for (std::size_t w = 0; w < models.size(); ++w) {
    fns.push_back([&, w](const StageCandidate& c) -> std::optional<StageEstimate> {
      if (!filter(c)) return std::nullopt;
      const auto t0 = Clock::now();
      auto estimate = (*models[w])(c);
      cost_s[w] += seconds_since(t0);
      return estimate;
    });
  }
  const auto ilp_solves = [&models] {
    std::int64_t n = 0;
    for (const auto& m : models) n += m->ilp_solves();
    return n;
  };
  const auto t0 = Clock::now();
  StageDpOptions dp = dp_options(model, cluster, o);
  if (o.progress && method != "megatron") {  // megatron-best reports each grid point instead
    dp.progress = [&](std::int64_t b, std::size_t done, std::size_t total, double best_s) {
      std::ostringstream line;
      line << method << ": " << b << " micro-batches searched (" << done << "/" << total
           << "), best iteration so far ";
      if (std::isinf(best_s)) {
        line << "none";
      } else {
        line << std::setprecision(4) << best_s << " s";
      }
      line << ", " << ilp_solves() << " ILPs, " << std::fixed << std::setprecision(1)
           << seconds_since(t0) << " s";
      o.progress(line.str());
    };
  }
  StageDpResult result = plan_stages(dp, fns);
  // Wall time split in proportion to the workers' time in the cost model.
  double busy = 0;
  for (double s : cost_s) busy += s;
  const double wall = seconds_since(t0);
  out.ilp_s = std::min(wall, busy / static_cast<double>(models.size()));
  out.dp_s = wall - out.ilp_s;
  out.plan = result.plan;
  out.worker = result.worker;
  out.failure = result.failure.message;
  return out;
}

// Template block references in a name: "h.<j>." at the start or after a non-identifier
// character ("h.0.attn.qkv", "grad:h.1.mlp.fc:out", "sumsq:transformer.h.0.ln_1.weight").
// Returns (position of the digits, their length, j) of each.
std::vector<std::tuple<std::size_t, std::size_t, std::int64_t>> block_refs(const std::string& s) {
  std::vector<std::tuple<std::size_t, std::size_t, std::int64_t>> refs;
  for (std::size_t i = 0; i + 2 < s.size(); ++i) {
    if (s[i] != 'h' || s[i + 1] != '.') continue;
    if (i > 0 && (std::isalnum(static_cast<unsigned char>(s[i - 1])) || s[i - 1] == '_')) continue;
    std::size_t e = i + 2;
    while (e < s.size() && std::isdigit(static_cast<unsigned char>(s[e]))) ++e;
    if (e == i + 2 || e >= s.size() || s[e] != '.' || e - (i + 2) > 9) continue;
    refs.emplace_back(i + 2, e - (i + 2), std::stoll(s.substr(i + 2, e - (i + 2))));
  }
  return refs;
}

// The name with every template block reference j shifted to j + shift.
std::string shift_blocks(const std::string& s, std::int64_t shift) {
  std::string out = s;
  const auto refs = block_refs(s);
  for (auto it = refs.rbegin(); it != refs.rend(); ++it) {
    const auto& [pos, len, j] = *it;
    out.replace(pos, len, std::to_string(j + shift));
  }
  return out;
}

// The stage's ops with their strategies, from the solve that priced it (stage_cost.h Piece).
// `first` is the GPT-wide index of the stage's first block (for a head-only stage: the number of
// blocks). Names are mapped from the template GPT onto the model: an op of template block j
// becomes block first + j (every block reference in its name shifted alike); when the range was
// extrapolated, the ops of the last template block (the marginal block) are repeated for each
// of the stage's remaining blocks; head ops follow the stage's last block; and without the
// embedding, the template's embedding output (block 0's input) is block first - 1's output.
std::vector<PlanOp> stage_ops(const IntraStageCostModel::Piece& piece, std::int64_t first) {
  std::vector<PlanOp> ops;
  const Graph& g = piece.graph->graph;
  const std::int64_t n = std::max<std::int64_t>(piece.blocks, 1);  // template blocks
  const std::int64_t last = piece.blocks - 1;                      // marginal template block
  const std::int64_t extra = piece.stage_blocks - piece.blocks;    // repeated copies
  const std::string embed_out = "embed.wpe:out";
  const std::string prev_out = "h." + std::to_string(first - 1) + ".mlp.residual:out";
  const auto rename = [&](const std::string& name, std::int64_t shift) {
    std::string out = shift_blocks(name, shift);
    if (first <= 0) return out;
    for (std::size_t pos = out.find(embed_out); pos != std::string::npos;
         pos = out.find(embed_out, pos + prev_out.size())) {
      const std::size_t end = pos + embed_out.size();
      if (end < out.size() && std::isalnum(static_cast<unsigned char>(out[end]))) {
        pos += 1;
        continue;
      }
      out.replace(pos, embed_out.size(), prev_out);
    }
    return out;
  };
  for (const auto& [id, name] : piece.result.strategy_name) {
    const Op& op = g.ops[static_cast<std::size_t>(id)];
    const std::int64_t j = static_cast<std::int64_t>(op.layer) - 1;  // template block
    std::int64_t shift = first, copies = 1;
    if (j >= n) {
      shift = first + piece.stage_blocks - 1 - (n - 1);  // head: after the stage's last block
    } else if (j == last && last >= 0) {
      copies = extra + 1;
    }
    for (std::int64_t t = 0; t < copies; ++t) {
      PlanOp p;
      p.op = rename(op.name, shift + t);
      p.strategy = name;
      const auto chosen = piece.result.chosen.find(id);
      if (chosen != piece.result.chosen.end()) {
        p.input_layouts = chosen->second.inputs;
        p.output_layouts = chosen->second.outputs;
      }
      ops.push_back(std::move(p));
    }
  }
  return ops;
}

void add_bytes(BytesPerStep& b, const std::map<std::string, double>& by_name) {
  for (const auto& [name, bytes] : by_name) {
    if (name == collective_name(Collective::kAllReduce)) {
      b.all_reduce += bytes;
    } else if (name == collective_name(Collective::kAllGather)) {
      b.all_gather += bytes;
    } else if (name == collective_name(Collective::kReduceScatter)) {
      b.reduce_scatter += bytes;
    } else if (name == collective_name(Collective::kAllToAll)) {
      b.all_to_all += bytes;
    } else if (name == collective_name(Collective::kP2P)) {
      b.p2p += bytes;
    }
  }
}

// The bytes per step the runtime moves for this plan: its own stage programs (stage_program.h)
// on the model's training graph at the plan's micro-batch size, in the compute dtype. Replaces
// the intra-op pass's estimate, which prices each stage's ILP range on its own (and, for ranges
// longer than the exact ones, by extrapolation). Kept when the plan's op lists cannot be read
// over the graph (the runtime then refuses the plan with the reason).
void runtime_bytes(const GptConfig& model, const PlannerOptions& o, Plan& plan) {
  Graph forward = build_gpt(model, plan.micro_batch_size());
  const DType dtype = parse_dtype(o.dtype);
  for (Tensor& t : forward.tensors)
    if (is_floating(t.dtype)) t.dtype = dtype;
  const TensorId loss = forward.at("loss");
  const TrainingGraph training = build_training_graph(forward, loss, o.optimizer);
  try {
    const ProgramSet programs = build_stage_programs(training, plan);
    plan.predicted.bytes_per_step = program_bytes_per_step(training, programs, plan.micro_batches);
  } catch (const std::invalid_argument&) {
  }
}

}  // namespace

Plan plan_training(const GptConfig& model, const ClusterSpec& cluster, const PlannerOptions& o) {
  const auto start = Clock::now();
  check_request(model, cluster, o);
  IntraOptions base;
  base.ilp = o.ilp;
  base.dtype = o.dtype;
  base.master_dtype = o.master_dtype;
  base.restrict_to = restriction_of(o.method);
  base.force_batch_axis0 = true;  // as Alpa on 2-D meshes; see IntraOptions
  // One cost model per search thread; megatron-best shares one across its grid, on one thread.
  int threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  if (o.method == "megatron-best" || o.micro_batches > 0) threads = 1;
  std::vector<std::shared_ptr<IntraStageCostModel>> models;
  for (int w = 0; w < std::max(1, threads); ++w) {
    models.push_back(
        std::make_shared<IntraStageCostModel>(model, o.optimizer, cluster, o.global_batch, base));
    // auto and inter-only price thousands of candidates; the other methods few enough that
    // refining every frontier gap costs little (stage_cost.h).
    models.back()->set_refine_every_gap(o.method != "auto" && o.method != "inter-only");
    models.back()->set_schedule(o.schedule);
  }

  SearchOutcome best;
  std::string best_label;
  if (o.method == "megatron-best") {
    // Every dp x tp x pp = N with tp inside a host, pp <= blocks (ALPA_FACTS 4: Megatron grid).
    const std::int64_t n = cluster.total_devices();
    std::int64_t per_host = cluster.groups.front().devices_per_host;
    for (std::int64_t tp = 1; tp <= per_host; ++tp) {
      if (n % tp || per_host % tp) continue;
      for (std::int64_t pp = 1; pp <= std::min(model.layers, n / tp); ++pp) {
        if ((n / tp) % pp) continue;
        PlannerOptions grid = o;
        grid.method = "megatron";
        grid.dp = n / tp / pp;
        grid.tp = tp;
        grid.pp = pp;
        const std::string label = "dp" + std::to_string(grid.dp) + " x tp" + std::to_string(tp) +
                                  " x pp" + std::to_string(pp);
        if (o.progress) o.progress("megatron-best: trying " + label);
        SearchOutcome outcome = search(model, cluster, grid, "megatron", models);
        best.ilp_s += outcome.ilp_s;
        best.dp_s += outcome.dp_s;
        if (!outcome.plan) {
          if (best.failure.empty()) best.failure = label + ": " + outcome.failure;
          continue;
        }
        if (!best.plan || outcome.plan->iteration_s < best.plan->iteration_s) {
          best.plan = outcome.plan;
          best_label = label;
        }
      }
    }
  } else {
    best = search(model, cluster, o, o.method, models);
  }
  if (!best.plan) {
    throw std::invalid_argument("plan.method " + o.method + ": no plan fits: " +
                                (best.failure.empty() ? "no valid stage candidate" : best.failure));
  }

  IntraStageCostModel& costs = *models[static_cast<std::size_t>(best.worker)];
  Plan plan = plan_from_stage_plan(*best.plan, cluster, o.global_batch, o.schedule, o.method);
  const std::int64_t mbs = o.global_batch / plan.micro_batches;
  for (std::size_t i = 0; i < plan.stages.size(); ++i) {
    const StageCandidate& c = best.plan->stages[i];
    const std::optional<IntraStageCostModel::Piece> piece = costs.piece(c);
    if (!piece) continue;
    plan.stages[i].summary = piece->result.summary;
    plan.stages[i].ops = stage_ops(*piece, std::max<std::int64_t>(c.layer_begin, 1) - 1);
    add_bytes(plan.predicted.bytes_per_step, piece->bytes_per_iteration);
    if (i + 1 < plan.stages.size()) {
      // The boundary activation [mbs, S, H] forward and its gradient back, per micro-batch, each
      // device sending its shard (as stage_cost.h prices it).
      const HostGroup& group = cluster.groups[static_cast<std::size_t>(c.group)];
      const bool whole_hosts = c.submesh.hosts > 1 || c.submesh.devices >= group.devices_per_host;
      const double bytes = static_cast<double>(mbs * model.seq_len * model.hidden) *
                           static_cast<double>(dtype_size_bytes(model.dtype));
      plan.predicted.bytes_per_step.p2p +=
          2.0 * static_cast<double>(plan.micro_batches) * bytes /
          static_cast<double>(whole_hosts ? c.submesh.hosts : c.submesh.size());
    }
  }
  runtime_bytes(model, o, plan);
  const std::int64_t devices = cluster.total_devices();
  const double flops =
      gpt_model_flops(o.global_batch, model.seq_len, model.hidden, model.layers, model.vocab);
  plan.predicted.tflops_per_device =
      flops / plan.predicted.iteration_s / static_cast<double>(devices) / 1e12;
  plan.search.ilps_solved = 0;
  for (const auto& m : models) plan.search.ilps_solved += m->ilp_solves();
  plan.search.phases_s = {{"intra_op_ilps", best.ilp_s}, {"stage_dp", best.dp_s}};
  plan.search.wall_s = seconds_since(start);
  (void)best_label;
  return plan;
}

}  // namespace strata::solver
