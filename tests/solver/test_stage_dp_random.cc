// Stage DP against its brute-force oracle on random small instances (STYLE.md 36): 1-6 layers,
// 1-2 hosts x 1-4 devices or two heterogeneous groups, hash-seeded cost tables with and without
// memory pressure, fixed and searched micro-batch counts, both schedules, recompute on and off.
// The DP must match the oracle's iteration time (rtol 1e-12), stage and micro-batch counts.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <string>

#include "solver/inter/stage_dp.h"
#include "solver/inter/stage_dp_detail.h"

using namespace strata::solver;

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::uint64_t mix(std::uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct Rng {
  std::uint64_t state;
  std::uint64_t next() { return state = mix(state); }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  std::int64_t range(std::int64_t lo, std::int64_t hi) {  // inclusive
    return lo + static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
};

struct Instance {
  StageDpOptions options;
  std::uint64_t seed = 0;
  std::vector<double> layer_weight;  // per layer
  std::vector<double> group_speed;   // per group (heterogeneous: fast and slow)
  double invalid_rate = 0.05;
};

// Time roughly layers / devices with noise; a deterministic function of the candidate.
StageCostFn random_cost(const Instance& inst) {
  return [inst](const StageCandidate& c) -> std::optional<StageEstimate> {
    std::uint64_t h = inst.seed;
    for (std::int64_t v : {c.layer_begin, c.layer_end, c.group, c.submesh.hosts, c.submesh.devices,
                           c.mesh.d0, c.mesh.d1, static_cast<std::int64_t>(c.recompute),
                           c.micro_batch_size, static_cast<std::int64_t>(c.variant)})
      h = mix(h ^ static_cast<std::uint64_t>(v + 0x51));
    Rng r{h};
    if (r.unit() < (c.variant > 0 ? 0.3 : inst.invalid_rate)) return std::nullopt;
    double w = 0;
    for (std::int64_t l = c.layer_begin; l < c.layer_end; ++l) w += inst.layer_weight[l];
    const double n = static_cast<double>(c.submesh.size());
    const double b = static_cast<double>(c.micro_batch_size);
    StageEstimate e;
    e.time_per_microbatch_s =
        w * (0.2 + b) / (std::pow(n, 0.85) * inst.group_speed[c.group]) * (0.8 + 0.4 * r.unit()) +
        (n > 1 ? 0.05 * r.unit() : 0.0);
    if (c.recompute) e.time_per_microbatch_s *= 1.2 + 0.2 * r.unit();
    e.tail_s = w * (0.3 + 0.2 * r.unit()) / n * (r.unit() < 0.5 ? 0.1 : 1.0);
    e.static_memory_bytes = w * kGiB * (0.8 + 0.4 * r.unit()) / n;
    e.activation_memory_bytes = w * kGiB * b * (0.3 + 0.2 * r.unit()) /
                                static_cast<double>(c.mesh.d0) * (c.recompute ? 0.2 : 1.0);
    // Leaner, slower variants (stage_cost.h's memory/time frontier).
    const double v = static_cast<double>(c.variant);
    e.time_per_microbatch_s *= 1 + (0.1 + 0.1 * r.unit()) * v;
    e.static_memory_bytes *= std::pow(0.8, v);
    e.activation_memory_bytes *= std::pow(0.6, v);
    return e;
  };
}

Instance random_instance(std::uint64_t seed, bool heterogeneous, bool memory_pressure) {
  Rng r{seed * 7919 + 17};
  Instance inst;
  inst.seed = r.next();
  StageDpOptions& o = inst.options;
  o.num_layers = r.range(1, 6);
  if (heterogeneous) {
    // A fast group and a slow one, small enough for the oracle.
    o.groups = {DeviceGroup{r.range(1, 2), r.range(1, 2), 0}, DeviceGroup{1, r.range(1, 2), 0}};
    inst.group_speed = {2.0 + r.unit(), 1.0};
    o.num_layers = std::max<std::int64_t>(o.num_layers, 2);
  } else {
    o.groups = {DeviceGroup{r.range(1, 2), r.range(1, 4), 0}};
    inst.group_speed = {1.0};
  }
  for (std::int64_t l = 0; l < o.num_layers; ++l) inst.layer_weight.push_back(0.5 + r.unit());
  const std::int64_t batches[] = {1, 2, 4, 6, 8};
  o.global_batch = batches[r.range(0, 4)];
  if (r.unit() < 0.5) {
    std::vector<std::int64_t> divisors;
    for (std::int64_t b = 1; b <= o.global_batch; ++b)
      if (o.global_batch % b == 0) divisors.push_back(b);
    o.micro_batches = divisors[r.range(0, static_cast<std::int64_t>(divisors.size()) - 1)];
  }
  o.schedule = r.unit() < 0.7 ? "1f1b" : "gpipe";
  o.allow_recompute = r.unit() < 0.7;
  o.max_stages = r.unit() < 0.75 ? 0 : r.range(1, 4);
  o.max_variants = static_cast<std::int32_t>(r.range(1, 3));
  double total_w = 0;
  for (double w : inst.layer_weight) total_w += w;
  std::int64_t devices = 0;
  for (const DeviceGroup& g : o.groups) devices += g.hosts * g.devices_per_host;
  for (DeviceGroup& g : o.groups) {
    // Pressure: around the static memory of an even split plus a few micro-batches of
    // activations, so some candidates fit and some do not (and some instances fail).
    g.memory_bytes_per_device = memory_pressure ? kGiB * total_w / static_cast<double>(devices) *
                                                      (1.0 + 4.0 * r.unit()) *
                                                      static_cast<double>(o.global_batch) / 4.0
                                                : 1e6 * kGiB;
  }
  return inst;
}

std::string after(const std::string& s, const std::string& marker) {
  const auto at = s.find(marker);
  return at == std::string::npos ? s : s.substr(at);
}

int lean_plans = 0;         // DP plans with a stage on a variant > 0
int parallel_searches = 0;  // plans found with three or more micro-batch counts over 3 workers

void compare_with_brute_force(const Instance& inst, int& feasible, int& infeasible) {
  const StageCostFn cost = random_cost(inst);
  const StageDpResult dp = plan_stages(inst.options, cost);
  const StageDpResult bf = plan_stages_brute_force(inst.options, cost);
  INFO("layers " << inst.options.num_layers << ", groups " << inst.options.groups.size()
                 << ", group 0 " << inst.options.groups[0].hosts << "x"
                 << inst.options.groups[0].devices_per_host << ", global batch "
                 << inst.options.global_batch << ", B " << inst.options.micro_batches << ", "
                 << inst.options.schedule << ", recompute " << inst.options.allow_recompute
                 << ", max_stages " << inst.options.max_stages);
  REQUIRE(dp.plan.has_value() == bf.plan.has_value());
  // Micro-batch counts searched on three threads (stage_dp.h): the one-thread plan, or failure.
  const StageDpResult par = plan_stages(inst.options, std::vector<StageCostFn>{cost, cost, cost});
  REQUIRE(par.plan.has_value() == dp.plan.has_value());
  if (par.plan) {
    CHECK(par.plan->iteration_s == dp.plan->iteration_s);
    CHECK(par.plan->micro_batches == dp.plan->micro_batches);
    REQUIRE(par.plan->stages.size() == dp.plan->stages.size());
    for (std::size_t j = 0; j < dp.plan->stages.size(); ++j) {
      const StageCandidate &a = par.plan->stages[j], &b = dp.plan->stages[j];
      CHECK(a.layer_begin == b.layer_begin);
      CHECK(a.layer_end == b.layer_end);
      CHECK(a.submesh.size() == b.submesh.size());
      CHECK(a.mesh.d0 == b.mesh.d0);
      CHECK(a.recompute == b.recompute);
      CHECK(a.variant == b.variant);
    }
    CHECK(par.worker >= 0);
    CHECK(par.worker < 3);
    parallel_searches += inst.options.micro_batches == 0 && inst.options.global_batch > 2;
  } else {
    CHECK(par.failure.message == dp.failure.message);
  }
  if (!dp.plan) {
    ++infeasible;
    INFO("dp: " << dp.failure.message << "\nbf: " << bf.failure.message);
    // The stage index may differ between equally bad plans; the layers and GiB may not.
    CHECK(after(dp.failure.message, "(layers") == after(bf.failure.message, "(layers"));
    return;
  }
  ++feasible;
  const StagePlan& p = *dp.plan;
  CHECK(p.iteration_s == Approx(bf.plan->iteration_s).epsilon(1e-12));
  CHECK(p.stages.size() == bf.plan->stages.size());
  CHECK(p.micro_batches == bf.plan->micro_batches);
  // The DP's plan is itself valid: covering, fitting, placed, scored by the formula.
  const auto q = static_cast<std::int64_t>(p.stages.size());
  std::int64_t next = 0;
  for (std::int64_t j = 0; j < q; ++j) {
    const StageCandidate& s = p.stages[j];
    if (s.variant > 0 && j == 0) ++lean_plans;
    CHECK(s.layer_begin == next);
    next = s.layer_end;
    CHECK(s.micro_batch_size * p.micro_batches == inst.options.global_batch);
    const std::optional<StageEstimate> e = cost(s);
    REQUIRE(e);
    CHECK(e->time_per_microbatch_s == p.estimates[j].time_per_microbatch_s);
    const double need = stage_memory_bytes(
        *e, in_flight_microbatches(inst.options.schedule, j, q, p.micro_batches));
    CHECK(need <= inst.options.groups[s.group].memory_bytes_per_device);
  }
  CHECK(next == inst.options.num_layers);
  CHECK(detail::place_stages(inst.options.groups, p.stages) == p.first_device);
  CHECK(p.iteration_s == detail::iteration_time_s(p.estimates, p.micro_batches));
  if (inst.options.max_stages > 0) CHECK(q <= inst.options.max_stages);
}

}  // namespace

TEST_CASE("stage DP equals brute force on random homogeneous instances", "[stage_dp]") {
  int feasible = 0, infeasible = 0;
  for (std::uint64_t seed = 1; seed <= 160; ++seed) {
    compare_with_brute_force(random_instance(seed, false, seed % 2 == 0), feasible, infeasible);
  }
  CHECK(feasible >= 100);
  CHECK(parallel_searches >= 20);
  CHECK(infeasible >= 5);
}

TEST_CASE("stage DP equals brute force on random heterogeneous instances", "[stage_dp]") {
  int feasible = 0, infeasible = 0;
  for (std::uint64_t seed = 1001; seed <= 1060; ++seed) {
    compare_with_brute_force(random_instance(seed, true, seed % 2 == 0), feasible, infeasible);
  }
  CHECK(feasible >= 30);
}

TEST_CASE("the random instances exercise leaner variants", "[stage_dp]") {
  int feasible = 0, infeasible = 0;
  lean_plans = 0;
  for (std::uint64_t seed = 1; seed <= 160; ++seed) {
    Instance inst = random_instance(seed, false, true);
    inst.options.max_variants = 3;
    compare_with_brute_force(inst, feasible, infeasible);
  }
  CHECK(lean_plans >= 5);
}
