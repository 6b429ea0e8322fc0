// Graph construction (graph.h): tensors by unique name, ops appended in execution order with
// their outputs created from shape inference. add_tensor and add_op validate everything before
// changing the graph, so a throwing call leaves the graph as it was. Pure C++.
#include "solver/ir/graph.h"

#include <set>
#include <stdexcept>

#include "solver/ir/shape_inference.h"

namespace strata::solver {
namespace {

// Rejects negative dims, shapes whose byte count overflows int64 and a file_shape that is not a
// reshape of the shape (another element count), as std::invalid_argument.
void check_shape(const Tensor& t) {
  try {
    (void)num_bytes(t);
    if (!t.file_shape.empty() &&
        num_elements(t.file_shape, t.name) != num_elements(t.shape, t.name)) {
      throw std::invalid_argument(t.name + ": file_shape " + shape_to_string(t.file_shape) +
                                  " is not a reshape of shape " + shape_to_string(t.shape) +
                                  " (element counts differ)");
    }
  } catch (const std::overflow_error& e) {
    throw std::invalid_argument(e.what());
  }
}

}  // namespace

TensorId Graph::add_tensor(Tensor tensor) {
  if (tensor.name.empty()) throw std::invalid_argument("add_tensor: empty tensor name");
  if (by_name_.size() != tensors.size()) {  // a caller pushed to `tensors` directly
    by_name_.clear();
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      by_name_.emplace(tensors[i].name, static_cast<TensorId>(i));
    }
  }
  if (find(tensor.name) != kNoTensor) {
    throw std::invalid_argument("add_tensor: duplicate tensor name '" + tensor.name + "'");
  }
  check_shape(tensor);
  const auto id = static_cast<TensorId>(tensors.size());
  by_name_[tensor.name] = id;
  tensors.push_back(std::move(tensor));
  return id;
}

OpId Graph::add_op(OpKind kind, const std::string& name, std::vector<TensorId> inputs, Attrs attrs,
                   int layer, OpPhase phase, TensorRole output_role,
                   std::vector<std::string> output_names) {
  if (name.empty()) throw std::invalid_argument("add_op: empty op name");
  for (TensorId id : inputs) {
    if (id < 0 || static_cast<std::size_t>(id) >= tensors.size()) {
      throw std::invalid_argument("op " + name + " (" + op_kind_name(kind) + "): input tensor id " +
                                  std::to_string(id) + " out of range");
    }
  }
  Op op;
  op.kind = kind;
  op.name = name;
  op.inputs = std::move(inputs);
  op.attrs = std::move(attrs);
  op.layer = layer;
  op.phase = phase;
  const std::vector<OutputSpec> specs = infer_output_specs(*this, op);

  const std::string prefix = "op " + name + " (" + op_kind_name(kind) + "): ";
  if (output_names.empty()) {
    if (specs.size() == 1) {
      output_names.push_back(name + ":out");
    } else {
      for (std::size_t i = 0; i < specs.size(); ++i) {
        output_names.push_back(name + ":out" + std::to_string(i));
      }
    }
  } else if (output_names.size() != specs.size()) {
    throw std::invalid_argument(prefix + std::to_string(output_names.size()) +
                                " output names given for " + std::to_string(specs.size()) +
                                " outputs");
  }
  std::set<std::string> fresh;
  std::vector<Tensor> outs;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    Tensor t;
    t.name = output_names[i];
    t.shape = specs[i].shape;
    t.dtype = specs[i].dtype;
    t.role = output_role;
    t.layer = layer;
    if (t.name.empty()) throw std::invalid_argument(prefix + "empty output name");
    if (find(t.name) != kNoTensor || !fresh.insert(t.name).second) {
      throw std::invalid_argument(prefix + "duplicate tensor name '" + t.name + "'");
    }
    try {
      (void)num_bytes(t);
    } catch (const std::exception& e) {
      throw std::invalid_argument(prefix + "output " + e.what());
    }
    outs.push_back(std::move(t));
  }
  for (Tensor& t : outs) op.outputs.push_back(add_tensor(std::move(t)));
  ops.push_back(std::move(op));
  return static_cast<OpId>(ops.size() - 1);
}

TensorId Graph::find(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it != by_name_.end() && static_cast<std::size_t>(it->second) < tensors.size() &&
      tensors[static_cast<std::size_t>(it->second)].name == name) {
    return it->second;
  }
  if (by_name_.size() == tensors.size()) return kNoTensor;
  // The index is stale (a caller pushed to `tensors` directly): scan.
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].name == name) return static_cast<TensorId>(i);
  }
  return kNoTensor;
}

TensorId Graph::at(const std::string& name) const {
  const TensorId id = find(name);
  if (id == kNoTensor) throw std::out_of_range("no tensor named '" + name + "'");
  return id;
}

std::vector<TensorId> Graph::tensors_with_role(TensorRole role) const {
  std::vector<TensorId> ids;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].role == role) ids.push_back(static_cast<TensorId>(i));
  }
  return ids;
}

}  // namespace strata::solver
