// Strategy enumeration from index maps (strategy.h): which letters may be split, the product of
// per-axis letter choices, and the operand layouts and internal collectives each choice implies.
// Per-kind code is limited to the documented distributed forms (vocab-parallel embedding and
// cross-entropy) and the optimizer's in-place convention. Pure C++.
#include "solver/intra/strategy.h"

#include <map>
#include <stdexcept>

#include "solver/ir/flops.h"
#include "solver/ir/index_map.h"

namespace strata::solver {
namespace {

bool is_optimizer(OpKind kind) { return kind == OpKind::kAdamW || kind == OpKind::kSgd; }

// The norm/scale pair of clipping and the optimizers: two numbers, never split (rule g).
bool has_scale_letter(OpKind kind) {
  return is_optimizer(kind) || kind == OpKind::kClipByGlobalNorm;
}

// Distributed forms of DESIGN.md section 4 (rules d, e).
bool may_split_gathered(OpKind kind) {
  return kind == OpKind::kEmbedding || kind == OpKind::kEmbeddingGrad;
}
bool may_split_normalized(OpKind kind) {
  return kind == OpKind::kCrossEntropy || kind == OpKind::kCrossEntropyGrad;
}

bool contains(const std::string& s, char c) { return s.find(c) != std::string::npos; }

// Letters of an index map in order of first appearance (inputs, then outputs).
std::string letters_of(const IndexMap& m) {
  std::string out;
  const auto scan = [&](const std::vector<std::string>& operands) {
    for (const std::string& operand : operands) {
      for (char c : operand) {
        if (c != '(' && c != ')' && !contains(out, c)) out += c;
      }
    }
  };
  scan(m.inputs);
  scan(m.outputs);
  return out;
}

std::map<char, std::int64_t> extents_of(const Graph& graph, const Op& op, const IndexMap& m) {
  std::vector<std::pair<std::vector<std::string>, const Shape*>> operands;
  for (std::size_t i = 0; i < m.inputs.size() && i < op.inputs.size(); ++i) {
    operands.push_back({operand_dims(m.inputs[i]), &graph.tensor(op.inputs[i]).shape});
  }
  for (std::size_t i = 0; i < m.outputs.size() && i < op.outputs.size(); ++i) {
    operands.push_back({operand_dims(m.outputs[i]), &graph.tensor(op.outputs[i]).shape});
  }
  const auto fail = [&](const std::string& why) {
    throw std::invalid_argument("op " + op.name + " (" + op_kind_name(op.kind) + "): " + why);
  };
  std::map<char, std::int64_t> extent;
  const auto set = [&](char c, std::int64_t n) {
    const auto it = extent.find(c);
    if (it == extent.end()) {
      extent[c] = n;
    } else if (it->second != n) {
      fail(std::string("index ") + c + " is " + std::to_string(it->second) + " and " +
           std::to_string(n));
    }
  };
  for (const auto& [dims, shape] : operands) {
    if (dims.size() != shape->size()) {
      fail("index map rank " + std::to_string(dims.size()) + " but shape " +
           shape_to_string(*shape));
    }
    for (std::size_t d = 0; d < dims.size(); ++d) {
      if (dims[d].size() == 1) set(dims[d][0], (*shape)[d]);
    }
  }
  // Composite dims: infer the one unknown letter of a group, until nothing changes.
  for (bool progress = true; progress;) {
    progress = false;
    for (const auto& [dims, shape] : operands) {
      for (std::size_t d = 0; d < dims.size(); ++d) {
        if (dims[d].size() < 2) continue;
        std::int64_t known = 1;
        int unknown = 0;
        char missing = 0;
        for (char c : dims[d]) {
          const auto it = extent.find(c);
          if (it == extent.end()) {
            ++unknown, missing = c;
          } else {
            known *= it->second;
          }
        }
        if (unknown == 1 && known > 0 && (*shape)[d] % known == 0) {
          set(missing, (*shape)[d] / known);
          progress = true;
        } else if (unknown == 0 && known != (*shape)[d]) {
          fail("composite dim (" + dims[d] + ") is " + std::to_string((*shape)[d]) +
               " but its indices multiply to " + std::to_string(known));
        }
      }
    }
  }
  return extent;
}

// Whether `c` may be split at all (rules b-g of strategy.h); divisibility is checked per mesh.
bool splittable(const Op& op, const IndexMap& m, const std::map<char, std::int64_t>& extent,
                char c) {
  const auto it = extent.find(c);
  if (it == extent.end() || it->second <= 1) return false;  // (b)
  if (has_scale_letter(op.kind) && c == 'c') return false;  // (g)
  const bool gathered = contains(m.gathered, c), normalized = contains(m.normalized, c);
  if (gathered && !may_split_gathered(op.kind)) return false;                           // (e)
  if (normalized && !may_split_normalized(op.kind)) return false;                       // (d)
  if (!gathered && !normalized && !is_optimizer(op.kind) && !contains(m.reduced, c)) {  // (f)
    bool in_output = false;
    for (const std::string& out : m.outputs) in_output = in_output || contains(out, c);
    if (!in_output) return false;
  }
  // (c) in a composite dim, only the major-most letter of extent > 1 may be split.
  const auto check_operands = [&](const std::vector<std::string>& operands) {
    for (const std::string& operand : operands) {
      for (const std::string& dim : operand_dims(operand)) {
        if (dim.size() < 2 || !contains(dim, c)) continue;
        for (char major : dim) {
          if (major == c) break;
          const auto e = extent.find(major);
          if (e == extent.end() || e->second != 1) return false;
        }
      }
    }
    return true;
  };
  return check_operands(m.inputs) && check_operands(m.outputs);
}

// The layout of one operand under a letter -> axes assignment.
Layout operand_layout(const std::string& operand, const std::map<char, AxisSet>& axes_of) {
  const std::vector<std::string> dims = operand_dims(operand);
  Layout layout = Layout::replicated(dims.size());
  for (std::size_t d = 0; d < dims.size(); ++d) {
    for (char c : dims[d]) {
      const auto it = axes_of.find(c);
      if (it != axes_of.end()) layout.dims[d] = static_cast<AxisSet>(layout.dims[d] | it->second);
    }
  }
  return layout;
}

// Rule (h): the busiest device's work over the average device's, 1 except for causal attention
// split over its queries s into n blocks, where the last block holds
//   b (2S - b + 1) / 2 of the S (S + 1) / 2 causal pairs (b = S / n): n times that over the total.
double imbalance(const Op& op, const std::map<char, std::int64_t>& extent,
                 const std::map<char, AxisSet>& axes_of, MeshShape mesh) {
  if (op.kind != OpKind::kAttention && op.kind != OpKind::kAttentionGrad) return 1.0;
  if (attr_int_or(op, "causal", 0) == 0) return 1.0;
  const auto it = axes_of.find('s');
  if (it == axes_of.end()) return 1.0;
  const double n = static_cast<double>(axes_size(it->second, mesh));
  const double S = static_cast<double>(extent.at('s')), b = S / n;
  return n * (b * (2 * S - b + 1)) / (S * (S + 1));
}

}  // namespace

std::vector<std::pair<char, std::int64_t>> index_extents(const Graph& graph, const Op& op) {
  const IndexMap m = index_map(graph, op);
  const std::map<char, std::int64_t> extent = extents_of(graph, op, m);
  std::vector<std::pair<char, std::int64_t>> out;
  for (char c : letters_of(m)) {
    const auto it = extent.find(c);
    if (it != extent.end()) out.emplace_back(c, it->second);
  }
  return out;
}

std::vector<Strategy> enumerate_strategies(const Graph& graph, const Op& op, MeshShape mesh) {
  validate(mesh);
  const IndexMap m = index_map(graph, op);
  const std::map<char, std::int64_t> extent = extents_of(graph, op, m);
  const std::string letters = letters_of(m);
  std::string candidates;  // splittable letters, in order of appearance
  for (char c : letters) {
    if (splittable(op, m, extent, c)) candidates += c;
  }
  // Per axis: the letters it may split, then '\0' (none) last; a size-1 axis splits nothing.
  std::vector<char> choices[2];
  for (int axis = 0; axis < 2; ++axis) {
    if (mesh.axis_size(axis) > 1) choices[axis].assign(candidates.begin(), candidates.end());
    choices[axis].push_back('\0');
  }
  const double flops = op_flops(graph, op);
  const bool wide_accumulate =
      !op.inputs.empty() && graph.tensor(op.inputs[0]).dtype == DType::kF64;

  std::vector<Strategy> out;
  for (char l0 : choices[0]) {
    for (char l1 : choices[1]) {
      // Letter -> axes (l0 == l1: S01, axis 0 major) and the divisibility rule (b).
      std::map<char, AxisSet> axes_of;
      if (l0 != '\0') axes_of[l0] = static_cast<AxisSet>(axes_of[l0] | kAxis0);
      if (l1 != '\0') axes_of[l1] = static_cast<AxisSet>(axes_of[l1] | kAxis1);
      bool divisible = true;
      std::int64_t devices = 1;  // devices that split the work
      for (const auto& [c, axes] : axes_of) {
        const std::int64_t n = axes_size(axes, mesh);
        divisible = divisible && extent.at(c) % n == 0;
        devices *= n;
      }
      if (!divisible) continue;

      Strategy s;
      s.axis_letter = {l0, l1};
      // (a) inputs: the letters' axes; an input without a letter is replicated over its axes.
      for (const std::string& operand : m.inputs) {
        s.inputs.push_back(operand_layout(operand, axes_of));
      }
      // (a) outputs: an output without a split letter is partial over that letter's axes.
      for (const std::string& operand : m.outputs) {
        Layout layout = operand_layout(operand, axes_of);
        for (const auto& [c, axes] : axes_of) {
          if (!contains(operand, c)) layout.partial = static_cast<AxisSet>(layout.partial | axes);
        }
        s.outputs.push_back(layout);
      }
      // (d) vocab-parallel cross-entropy: all-reduce the row max, then the row sum, over each
      // axis splitting the normalised letter; rows = the local leading (token) indices.
      for (char c : m.normalized) {
        const auto it = axes_of.find(c);
        if (it == axes_of.end()) continue;
        const std::string& logits = m.inputs.at(0);
        std::int64_t rows = 1;
        for (char lead : logits) {
          if (lead == c) continue;
          const auto a = axes_of.find(lead);
          rows *= extent.at(lead) / (a == axes_of.end() ? 1 : axes_size(a->second, mesh));
        }
        const std::int64_t bytes = rows * (wide_accumulate ? 8 : 4);
        for (const char* what : {"row_max", "row_sum"}) {
          for (int axis = 0; axis < 2; ++axis) {
            if (it->second & axis_bit(axis)) {
              s.comm.push_back({Collective::kAllReduce, axis, bytes, what});
            }
          }
        }
      }
      s.local_flops = flops / static_cast<double>(devices) * imbalance(op, extent, axes_of, mesh);
      s.name = join_layouts(s.inputs) + " -> " + join_layouts(s.outputs);
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace strata::solver
