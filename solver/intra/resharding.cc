// The resharding plan (resharding.h): a shortest-path search over the layouts a tensor can pass
// through, one move (one collective or local step on one axis) per edge, minimising the bytes
// each device sends; ties broken by step count and a fixed move order. A tensor has a few dozen
// layouts on a 2-D mesh (per axis: unused, partial, or splitting one dim), so the search is exact
// and cheap. Pure C++.
#include "solver/intra/resharding.h"

#include <mutex>
#include <stdexcept>
#include <tuple>

namespace strata::solver {
namespace {

struct Move {
  ReshardOp op = ReshardOp::kAllReduce;
  int axis = 0;
  int dim = -1, dim_to = -1;
};

// Tie-break order of moves (resharding.h): kind, then axis (all-gather: minor axis 1 first),
// then dims ascending.
std::tuple<int, int, int, int> move_rank(const Move& m) {
  int kind = 0;
  switch (m.op) {
    case ReshardOp::kAllReduce:
      kind = 0;
      break;
    case ReshardOp::kReduceScatter:
      kind = 1;
      break;
    case ReshardOp::kAllToAll:
      kind = 2;
      break;
    case ReshardOp::kAllGather:
      kind = 3;
      break;
    case ReshardOp::kSlice:
      kind = 4;
      break;
    case ReshardOp::kPartialize:
      kind = 5;
      break;
  }
  const int axis = m.op == ReshardOp::kAllGather ? 1 - m.axis : m.axis;
  return {kind, axis, m.dim, m.dim_to};
}

// A path's label: Dijkstra order is (wire, steps, moves lexicographically). Extending two paths
// to one state by the same move keeps their order, so label-setting search is exact.
struct Label {
  std::int64_t wire_units = 0;  // Search::wire_units summed over the path
  std::vector<Move> path;
};
bool operator<(const Label& a, const Label& b) {
  if (a.wire_units != b.wire_units) return a.wire_units < b.wire_units;
  if (a.path.size() != b.path.size()) return a.path.size() < b.path.size();
  for (std::size_t i = 0; i < a.path.size(); ++i) {
    const auto ra = move_rank(a.path[i]), rb = move_rank(b.path[i]);
    if (ra != rb) return ra < rb;
  }
  return false;
}

// An axis may join a dim only as its minor-most axis (S01 is axis-0-major).
bool can_add(AxisSet dim_axes, int axis) {
  return dim_axes == kNoAxes || (dim_axes == kAxis0 && axis == 1);
}
// Only the minor-most axis of a dim may leave it.
bool can_remove(AxisSet dim_axes, int axis) {
  return dim_axes == axis_bit(axis) || (dim_axes == kBothAxes && axis == 1);
}

struct Search {
  const Shape& global;
  std::int64_t elem_bytes;
  MeshShape mesh;

  std::int64_t local_extent(const Layout& l, std::size_t d) const {
    return global[d] / axes_size(l.dims[d], mesh);
  }
  std::int64_t local_bytes_of(const Layout& l) const {
    std::int64_t b = elem_bytes;
    for (std::size_t d = 0; d < l.dims.size(); ++d) b *= local_extent(l, d);
    return b;
  }

  // The layout after `m` (the move is assumed legal in `l`).
  static Layout apply(Layout l, const Move& m) {
    const AxisSet bit = axis_bit(m.axis);
    switch (m.op) {
      case ReshardOp::kAllReduce:
        l.partial = static_cast<AxisSet>(l.partial & ~bit);
        break;
      case ReshardOp::kReduceScatter:
        l.partial = static_cast<AxisSet>(l.partial & ~bit);
        l.dims[m.dim] = static_cast<AxisSet>(l.dims[m.dim] | bit);
        break;
      case ReshardOp::kAllGather:
        l.dims[m.dim] = static_cast<AxisSet>(l.dims[m.dim] & ~bit);
        break;
      case ReshardOp::kAllToAll:
        l.dims[m.dim] = static_cast<AxisSet>(l.dims[m.dim] & ~bit);
        l.dims[m.dim_to] = static_cast<AxisSet>(l.dims[m.dim_to] | bit);
        break;
      case ReshardOp::kSlice:
        l.dims[m.dim] = static_cast<AxisSet>(l.dims[m.dim] | bit);
        break;
      case ReshardOp::kPartialize:
        l.partial = static_cast<AxisSet>(l.partial | bit);
        break;
    }
    return l;
  }

  // Wire bytes per device of `m` from `l` in units of (tensor bytes) / (d0 * d1)^2: an exact
  // integer that does not depend on the tensor's size, so the plan depends on the shape only
  // through which dims divide by which axes (what the memo below keys on).
  //   local buffer = units(l) x tensor / (d0 d1), units(l) = d0 d1 / (product of split axes)
  //   all-reduce 2(n-1)/n L, reduce-scatter and all-to-all (n-1)/n L, all-gather (n-1) L
  std::int64_t wire_units(const Layout& l, const Move& m) const {
    const std::int64_t n = mesh.axis_size(m.axis), big_n = mesh.num_devices();
    std::int64_t split = 1;
    for (AxisSet d : l.dims) split *= axes_size(d, mesh);
    const std::int64_t k = (n - 1) * (big_n / split);  // (n-1) L, times (d0 d1) / tensor
    switch (m.op) {
      case ReshardOp::kAllReduce:
        return 2 * k * (big_n / n);
      case ReshardOp::kReduceScatter:
        return k * (big_n / n);
      case ReshardOp::kAllToAll:
        return k * (big_n / n);
      case ReshardOp::kAllGather:
        return k * big_n;
      default:
        return 0;
    }
  }

  // Every legal move from `l`, in no particular order (ties are settled by Label).
  std::vector<Move> moves(const Layout& l) const {
    std::vector<Move> out;
    const AxisSet used = l.used_axes();
    for (int axis = 0; axis < 2; ++axis) {
      const std::int64_t n = mesh.axis_size(axis);
      if (n == 1) continue;
      const AxisSet bit = axis_bit(axis);
      const auto divisible = [&](std::size_t d) { return local_extent(l, d) % n == 0; };
      if (l.partial & bit) {
        out.push_back({ReshardOp::kAllReduce, axis, -1, -1});
        for (std::size_t d = 0; d < l.rank(); ++d) {
          if (can_add(l.dims[d], axis) && divisible(d)) {
            out.push_back({ReshardOp::kReduceScatter, axis, static_cast<int>(d), -1});
          }
        }
      } else if (used & bit) {
        const int d = l.dim_of_axis(axis);
        if (!can_remove(l.dims[d], axis)) continue;
        out.push_back({ReshardOp::kAllGather, axis, d, -1});
        for (std::size_t e = 0; e < l.rank(); ++e) {
          if (static_cast<int>(e) != d && can_add(l.dims[e], axis) && divisible(e)) {
            out.push_back({ReshardOp::kAllToAll, axis, d, static_cast<int>(e)});
          }
        }
      } else {
        for (std::size_t d = 0; d < l.rank(); ++d) {
          if (can_add(l.dims[d], axis) && divisible(d)) {
            out.push_back({ReshardOp::kSlice, axis, static_cast<int>(d), -1});
          }
        }
        out.push_back({ReshardOp::kPartialize, axis, -1, -1});
      }
    }
    return out;
  }
};

// Dijkstra over layouts (label-setting; a few dozen states, so a linear scan for the minimum):
//   state  = a normalized layout of the tensor; start normalized(from), goal normalized(to)
//   edge   = one legal move (Search::moves), weight = its wire bytes per device (wire_units)
//   label  = (wire, steps, moves lexicographically by move_rank): the plan is the goal's label
std::vector<Move> shortest_moves(const Search& search, const Layout& start, const Layout& goal) {
  std::map<Layout, Label> best = {{start, Label{}}};
  std::map<Layout, bool> done;
  while (true) {
    const std::pair<const Layout, Label>* next = nullptr;
    for (const auto& entry : best) {
      if (!done[entry.first] && (next == nullptr || entry.second < next->second)) next = &entry;
    }
    if (next == nullptr) {
      // Unreachable for valid, divisible layouts (gather everything, then slice and partialize).
      throw std::logic_error("plan_resharding: no plan from " + to_string(start) + " to " +
                             to_string(goal) + " for " + shape_to_string(search.global));
    }
    const Layout state = next->first;
    const Label label = next->second;
    if (state == goal) return label.path;
    done[state] = true;
    for (const Move& m : search.moves(state)) {
      Layout after = Search::apply(state, m);
      if (done[after]) continue;
      Label candidate{label.wire_units + search.wire_units(state, m), label.path};
      candidate.path.push_back(m);
      auto it = best.find(after);
      if (it == best.end()) {
        best.emplace(std::move(after), std::move(candidate));
      } else if (candidate < it->second) {
        it->second = std::move(candidate);
      }
    }
  }
}

// Memo of shortest_moves. The moves depend on the shape only through which dims divide by d0,
// d1 and d0 * d1 (wire_units is size-free), so that is the key; the ILP asks for the same pairs
// of layouts over and over. A memo hit returns exactly what the search would.
using MemoKey = std::tuple<std::int64_t, std::int64_t, Layout, Layout, std::vector<std::uint8_t>>;
std::vector<Move> memo_shortest_moves(const Search& search, const Layout& start,
                                      const Layout& goal) {
  static std::mutex mutex;
  static std::map<MemoKey, std::vector<Move>> memo;
  std::vector<std::uint8_t> divides;
  for (std::int64_t extent : search.global) {
    const MeshShape& mesh = search.mesh;
    divides.push_back(static_cast<std::uint8_t>((extent % mesh.d0 == 0 ? 1 : 0) |
                                                (extent % mesh.d1 == 0 ? 2 : 0) |
                                                (extent % (mesh.d0 * mesh.d1) == 0 ? 4 : 0)));
  }
  MemoKey key{search.mesh.d0, search.mesh.d1, start, goal, std::move(divides)};
  {
    const std::lock_guard<std::mutex> lock(mutex);
    const auto it = memo.find(key);
    if (it != memo.end()) return it->second;
  }
  std::vector<Move> moves = shortest_moves(search, start, goal);
  const std::lock_guard<std::mutex> lock(mutex);
  memo.emplace(std::move(key), moves);
  return moves;
}

}  // namespace

const char* reshard_op_name(ReshardOp op) {
  switch (op) {
    case ReshardOp::kAllReduce:
      return "all_reduce";
    case ReshardOp::kReduceScatter:
      return "reduce_scatter";
    case ReshardOp::kAllGather:
      return "all_gather";
    case ReshardOp::kAllToAll:
      return "all_to_all";
    case ReshardOp::kSlice:
      return "slice";
    case ReshardOp::kPartialize:
      return "partialize";
  }
  return "?";
}

bool is_communication(ReshardOp op) {
  return op == ReshardOp::kAllReduce || op == ReshardOp::kReduceScatter ||
         op == ReshardOp::kAllGather || op == ReshardOp::kAllToAll;
}

Collective collective_of(ReshardOp op) {
  switch (op) {
    case ReshardOp::kAllReduce:
      return Collective::kAllReduce;
    case ReshardOp::kReduceScatter:
      return Collective::kReduceScatter;
    case ReshardOp::kAllGather:
      return Collective::kAllGather;
    case ReshardOp::kAllToAll:
      return Collective::kAllToAll;
    default:
      throw std::invalid_argument(std::string("resharding step ") + reshard_op_name(op) +
                                  " is local, not a collective");
  }
}

std::int64_t ReshardPlan::total_bytes() const {
  std::int64_t total = 0;
  for (const ReshardStep& s : steps) total += s.bytes;
  return total;
}

ReshardPlan plan_resharding(const Shape& global, DType dtype, const Layout& from, const Layout& to,
                            MeshShape mesh) {
  check_layout(global, from, mesh, "resharding source " + to_string(from));
  check_layout(global, to, mesh, "resharding target " + to_string(to));
  ReshardPlan plan{global, dtype, mesh, from, to, {}};
  const Layout start = normalized(from, mesh), goal = normalized(to, mesh);
  if (start == goal) return plan;
  const Search search{global, static_cast<std::int64_t>(dtype_size_bytes(dtype)), mesh};
  const std::vector<Move> path = memo_shortest_moves(search, start, goal);

  // Replay the moves, recording layouts, local shapes and B per step.
  Layout state = start;
  for (const Move& m : path) {
    ReshardStep step;
    step.op = m.op;
    step.axis = m.axis;
    step.group_size = mesh.axis_size(m.axis);
    step.dim = m.dim;
    step.dim_to = m.dim_to;
    step.before = state;
    step.after = Search::apply(state, m);
    step.local_before = local_shape(global, step.before, mesh);
    step.local_after = local_shape(global, step.after, mesh);
    const std::int64_t before_bytes = search.local_bytes_of(step.before);
    const std::int64_t after_bytes = search.local_bytes_of(step.after);
    switch (m.op) {
      case ReshardOp::kAllReduce:
      case ReshardOp::kReduceScatter:
        step.bytes = before_bytes;
        break;
      case ReshardOp::kAllGather:
        step.bytes = after_bytes;
        break;
      case ReshardOp::kAllToAll:
        step.bytes = step.group_size * before_bytes;
        break;
      default:
        step.bytes = 0;
        break;
    }
    state = step.after;
    plan.steps.push_back(std::move(step));
  }
  return plan;
}

double wire_bytes_per_device(const ReshardPlan& plan) {
  double wire = 0;
  for (const ReshardStep& s : plan.steps) {
    const double n = static_cast<double>(s.group_size), b = static_cast<double>(s.bytes);
    switch (s.op) {
      case ReshardOp::kAllReduce:
        wire += 2 * (n - 1) / n * b;
        break;
      case ReshardOp::kReduceScatter:
      case ReshardOp::kAllGather:
        wire += (n - 1) / n * b;
        break;
      case ReshardOp::kAllToAll:
        wire += (n - 1) / (n * n) * b;
        break;
      default:
        break;
    }
  }
  return wire;
}

double resharding_time_s(const ReshardPlan& plan, const MeshAxisLinks& links) {
  double time_s = 0;
  for (const ReshardStep& s : plan.steps) {
    if (!is_communication(s.op)) continue;
    time_s += collective_time_s(collective_of(s.op), static_cast<double>(s.bytes), s.group_size,
                                links.axis[s.axis]);
  }
  return time_s;
}

std::map<Collective, double> bytes_by_kind(const ReshardPlan& plan) {
  std::map<Collective, double> bytes;
  for (const ReshardStep& s : plan.steps) {
    if (is_communication(s.op)) bytes[collective_of(s.op)] += static_cast<double>(s.bytes);
  }
  return bytes;
}

}  // namespace strata::solver
