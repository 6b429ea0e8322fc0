// Op-by-op lowering of IR ops to backend calls. Shapes come from the graph; every size passed to
// a kernel is derived here from the op's index map conventions (solver/ir/op.h).
#include "app/executor.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "solver/ir/op.h"

namespace strata::app {

using solver::OpKind;
using solver::Shape;
using solver::TensorId;

kernels::DType to_kernel_dtype(solver::DType dtype) {
  switch (dtype) {
    case solver::DType::kF64:
      return kernels::DType::kF64;
    case solver::DType::kF32:
      return kernels::DType::kF32;
    case solver::DType::kBF16:
      return kernels::DType::kBF16;
    case solver::DType::kF16:
      return kernels::DType::kF16;
    case solver::DType::kI32:
      return kernels::DType::kI32;
  }
  throw std::invalid_argument("unknown dtype");
}

namespace {

std::int64_t leading(const Shape& shape, std::size_t trailing_dims) {
  std::int64_t n = 1;
  for (std::size_t i = 0; i + trailing_dims < shape.size(); ++i) n *= shape[i];
  return n;
}

}  // namespace

Executor::Executor(const solver::Graph& graph, kernels::Backend& backend, const ArenaLayout& arena)
    : graph_(graph), backend_(backend) {
  buffers_.assign(graph.tensors.size(), nullptr);
  place_in_arena(arena);
  for (std::size_t i = 0; i < graph.tensors.size(); ++i) {
    if (buffers_[i]) continue;
    const std::int64_t bytes = std::max<std::int64_t>(solver::num_bytes(graph.tensors[i]), 1);
    buffers_[i] = backend_.allocate(static_cast<std::size_t>(bytes));
    allocated_.tensors += bytes;
  }
  for (std::size_t i = 0; i < graph.ops.size(); ++i) {
    const auto& op = graph.ops[i];
    if (op.kind != OpKind::kMatMul) continue;
    matmul_plans_.emplace(
        static_cast<solver::OpId>(i),
        plan_matmul(solver::attr_str(op, "equation"), graph.tensor(op.inputs[0]).shape,
                    graph.tensor(op.inputs[1]).shape, solver::attr_float_or(op, "alpha", 1.0)));
  }
}

Executor::~Executor() {
  restore_buffers();
  if (!slot_buffers_.empty()) select_slot(0);  // slot 0 owns the original buffers
  for (std::size_t s = 1; s < slot_buffers_.size(); ++s)
    for (void* p : slot_buffers_[s]) backend_.release(p);
  for (std::size_t i = 0; i < buffers_.size(); ++i)
    if (!shared_[i]) backend_.release(buffers_[i]);
  if (arena_) backend_.release(arena_);
  for (auto& s : scratch_) backend_.release(s.first);
  for (auto& s : stashed_) backend_.release(s.second);
  for (auto& m : masters_) backend_.release(m.second);
}

void Executor::set_master_dtype(solver::DType master) {
  if (!in_master_.empty()) throw std::logic_error("set_master_dtype: called twice");
  in_master_.assign(graph_.tensors.size(), false);
  master_dtype_ = master;
  for (const auto& op : graph_.ops) {
    if (op.kind != OpKind::kAdamW && op.kind != OpKind::kSgd) continue;
    const TensorId param = op.inputs.at(0);
    const auto& t = graph_.tensor(param);
    if (t.dtype == master) continue;
    if (solver::dtype_size_bytes(master) < solver::dtype_size_bytes(t.dtype)) {
      throw std::invalid_argument(std::string("master dtype ") + solver::dtype_name(master) +
                                  " is narrower than the compute dtype " +
                                  solver::dtype_name(t.dtype));
    }
    const std::int64_t bytes = std::max<std::int64_t>(
        solver::num_elements(t.shape) * static_cast<std::int64_t>(solver::dtype_size_bytes(master)),
        1);
    masters_[param] = backend_.allocate(static_cast<std::size_t>(bytes));
    allocated_.masters += bytes;
    // The state inputs (AdamW: m, v; SGD: the momentum buffer) before the trailing norm_scale.
    for (std::size_t i = 2; i + 1 < op.inputs.size(); ++i) {
      const TensorId s = op.inputs[i];
      backend_.release(buffers_[static_cast<std::size_t>(s)]);
      buffers_[static_cast<std::size_t>(s)] = backend_.allocate(static_cast<std::size_t>(bytes));
      allocated_.tensors += bytes - std::max<std::int64_t>(solver::num_bytes(graph_.tensor(s)), 1);
      in_master_[static_cast<std::size_t>(s)] = true;
    }
  }
}

kernels::DType Executor::kernel_dtype(TensorId id) const {
  const bool master =
      masters_.count(id) > 0 || (!in_master_.empty() && in_master_[static_cast<std::size_t>(id)]);
  return to_kernel_dtype(master ? master_dtype_ : graph_.tensor(id).dtype);
}

// Host values cross as f64 through a staging buffer of at most kStagingElements (convert works
// on backend memory), chunk by chunk: a whole-tensor f64 copy of the largest parameter (GPT's
// embedding) would be a lasting allocation several times the tensor's own size.
constexpr std::int64_t kStagingElements = std::int64_t{1} << 20;

void Executor::write(TensorId id, const std::vector<double>& values) {
  const auto& t = graph_.tensor(id);
  const std::int64_t n = solver::num_elements(t.shape);
  if (static_cast<std::int64_t>(values.size()) != n) {
    throw std::invalid_argument("write " + t.name + ": " + std::to_string(values.size()) +
                                " values for " + solver::shape_to_string(t.shape));
  }
  const auto master = masters_.find(id);
  void* dst = master != masters_.end() ? master->second : buffer(id);
  const kernels::DType dt = kernel_dtype(id);
  const std::size_t esize = kernels::dtype_size_bytes(dt);
  void* staged = scratch(5, std::max<std::int64_t>(std::min(n, kStagingElements), 1) * 8);
  for (std::int64_t at = 0; at < n; at += kStagingElements) {
    const std::int64_t count = std::min(kStagingElements, n - at);
    backend_.copy_from_host(staged, values.data() + at, static_cast<std::size_t>(count) * 8);
    backend_.convert(kernels::DType::kF64, staged, dt,
                     static_cast<char*>(dst) + static_cast<std::size_t>(at) * esize, count);
  }
  // The compute copy is the master rounded, as after every update.
  if (master != masters_.end()) backend_.convert(dt, dst, to_kernel_dtype(t.dtype), buffer(id), n);
}

std::vector<double> Executor::read(TensorId id) const {
  const auto& t = graph_.tensor(id);
  const std::int64_t n = solver::num_elements(t.shape);
  std::vector<double> out(static_cast<std::size_t>(n));
  const auto master = masters_.find(id);
  const void* src = master != masters_.end() ? master->second : buffer(id);
  const kernels::DType dt = kernel_dtype(id);
  const std::size_t esize = kernels::dtype_size_bytes(dt);
  void* staged = scratch(5, std::max<std::int64_t>(std::min(n, kStagingElements), 1) * 8);
  for (std::int64_t at = 0; at < n; at += kStagingElements) {
    const std::int64_t count = std::min(kStagingElements, n - at);
    backend_.convert(dt, static_cast<const char*>(src) + static_cast<std::size_t>(at) * esize,
                     kernels::DType::kF64, staged, count);
    backend_.copy_to_host(out.data() + at, staged, static_cast<std::size_t>(count) * 8);
  }
  return out;
}

void Executor::write_tokens(TensorId id, const std::int32_t* tokens, std::int64_t count) {
  const auto& t = graph_.tensor(id);
  if (t.dtype != solver::DType::kI32 || count != solver::num_elements(t.shape)) {
    throw std::invalid_argument("write_tokens " + t.name + ": " + std::to_string(count) +
                                " tokens for " + solver::shape_to_string(t.shape));
  }
  backend_.copy_from_host(buffer(id), tokens, static_cast<std::size_t>(count) * 4);
}

void Executor::fill(TensorId id, double value) {
  const auto& t = graph_.tensor(id);
  write(id, std::vector<double>(static_cast<std::size_t>(solver::num_elements(t.shape)), value));
}

// The dtype gradients accumulate in: the master dtype when it is wider (mixed precision sums
// the micro-batches' 16-bit gradients in f32 and rounds once, in unstash), else the tensor's.
solver::DType accumulation_dtype(solver::DType tensor, std::optional<solver::DType> master) {
  const bool wider = master && solver::dtype_size_bytes(*master) > solver::dtype_size_bytes(tensor);
  return wider ? *master : tensor;
}

kernels::DType Executor::accumulation_dtype(TensorId id) const {
  return to_kernel_dtype(app::accumulation_dtype(
      graph_.tensor(id).dtype,
      in_master_.empty() ? std::nullopt : std::optional<solver::DType>(master_dtype_)));
}

void Executor::stash(TensorId id, bool first) {
  const auto& t = graph_.tensor(id);
  const std::int64_t n = solver::num_elements(t.shape);
  const kernels::DType dt = to_kernel_dtype(t.dtype);
  const kernels::DType acc = accumulation_dtype(id);
  const std::int64_t bytes =
      std::max<std::int64_t>(n * static_cast<std::int64_t>(kernels::dtype_size_bytes(acc)), 1);
  void*& shadow = stashed_[id];
  if (!shadow) {
    shadow = backend_.allocate(static_cast<std::size_t>(bytes));
    allocated_.accumulators += bytes;
  }
  if (first) {
    backend_.convert(dt, buffer(id), acc, shadow, n);
    return;
  }
  const void* addend = buffer(id);
  if (acc != dt) {
    void* wide = scratch(7, bytes);
    backend_.convert(dt, addend, acc, wide, n);
    addend = wide;
  }
  backend_.add(acc, shadow, addend, shadow, n);
}

void Executor::unstash(TensorId id) {
  const auto& t = graph_.tensor(id);
  backend_.convert(accumulation_dtype(id), stashed_.at(id), to_kernel_dtype(t.dtype), buffer(id),
                   solver::num_elements(t.shape));
}

void Executor::read_from_stash(TensorId id) {
  if (accumulation_dtype(id) != to_kernel_dtype(graph_.tensor(id).dtype))
    throw std::logic_error("read_from_stash: " + graph_.tensor(id).name +
                           " accumulates in a wider dtype");
  own_buffer_.emplace(id, buffers_.at(static_cast<std::size_t>(id)));
  buffers_[static_cast<std::size_t>(id)] = stashed_.at(id);
}

void Executor::restore_buffers() {
  for (const auto& [id, own] : own_buffer_) buffers_[static_cast<std::size_t>(id)] = own;
  own_buffer_.clear();
}

void Executor::add_slots(const std::vector<TensorId>& ids, int slots) {
  if (!slot_buffers_.empty()) throw std::logic_error("add_slots: called twice");
  for (TensorId id : ids)
    if (shared_.at(static_cast<std::size_t>(id)))
      throw std::logic_error("add_slots: tensor " + graph_.tensor(id).name + " is in the arena");
  slot_ids_ = ids;
  slot_buffers_.resize(static_cast<std::size_t>(std::max(slots, 1)));
  for (TensorId id : ids) slot_buffers_[0].push_back(buffer(id));
  for (std::size_t s = 1; s < slot_buffers_.size(); ++s) {
    for (TensorId id : ids) {
      const std::int64_t bytes = std::max<std::int64_t>(solver::num_bytes(graph_.tensor(id)), 1);
      slot_buffers_[s].push_back(backend_.allocate(static_cast<std::size_t>(bytes)));
      allocated_.micro_batch_copies += bytes;
    }
  }
}

// Checks the whole layout before allocating anything: a constructor that throws runs no
// destructor, so nothing may be allocated yet.
void Executor::place_in_arena(const ArenaLayout& arena) {
  if (arena.ids.size() != arena.offsets.size())
    throw std::invalid_argument("ArenaLayout: " + std::to_string(arena.ids.size()) + " ids, " +
                                std::to_string(arena.offsets.size()) + " offsets");
  shared_.assign(buffers_.size(), false);
  const std::int64_t total = arena.arena_bytes;
  for (std::size_t i = 0; i < arena.ids.size(); ++i) {
    const TensorId t = arena.ids[i];
    const std::int64_t bytes = std::max<std::int64_t>(solver::num_bytes(graph_.tensor(t)), 1);
    const std::int64_t at = arena.offsets[i];
    if (shared_.at(static_cast<std::size_t>(t)) || at < 0 || at + bytes > total)
      throw std::invalid_argument("ArenaLayout: tensor " + graph_.tensor(t).name + " at offset " +
                                  std::to_string(at) + " does not fit an arena of " +
                                  std::to_string(total) + " bytes");
    shared_[static_cast<std::size_t>(t)] = true;
  }
  if (arena.ids.empty()) return;
  arena_ = backend_.allocate(static_cast<std::size_t>(std::max<std::int64_t>(total, 1)));
  allocated_.arena += total;
  if (backend_.memory_is_host()) std::memset(arena_, 0xFF, static_cast<std::size_t>(total));
  for (std::size_t i = 0; i < arena.ids.size(); ++i)
    buffers_[static_cast<std::size_t>(arena.ids[i])] =
        static_cast<char*>(arena_) + arena.offsets[i];
}

void Executor::select_slot(int slot) {
  const auto& bufs = slot_buffers_.at(static_cast<std::size_t>(slot));
  for (std::size_t i = 0; i < slot_ids_.size(); ++i)
    buffers_[static_cast<std::size_t>(slot_ids_[i])] = bufs[i];
}

void Executor::run(solver::OpId first, solver::OpId last, const StepContext& ctx) {
  for (solver::OpId i = first; i < last; ++i) {
    const auto& op = graph_.ops[static_cast<std::size_t>(i)];
    try {
      if (!profiling_) {
        run_op(op, ctx);
        continue;
      }
      const auto t0 = std::chrono::steady_clock::now();
      run_op(op, ctx);
      backend_.synchronize();
      profile_s_[std::string(solver::op_kind_name(op.kind)) + " (" +
                 solver::op_phase_name(op.phase) + ")"] +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } catch (const std::exception& e) {
      throw std::runtime_error("op " + op.name + " (" + solver::op_kind_name(op.kind) +
                               "): " + e.what());
    }
  }
}

void Executor::run_phase(solver::OpPhase phase, const StepContext& ctx) {
  solver::OpId first = -1, last = -1;
  for (std::size_t i = 0; i < graph_.ops.size(); ++i) {
    if (graph_.ops[i].phase != phase) continue;
    if (first < 0) first = static_cast<solver::OpId>(i);
    last = static_cast<solver::OpId>(i) + 1;
  }
  if (first >= 0) run(first, last, ctx);
}

void* Executor::scratch(std::size_t slot, std::int64_t bytes) const {
  if (scratch_.size() <= slot) scratch_.resize(slot + 1, {nullptr, 0});
  auto& s = scratch_[slot];
  if (s.second < bytes) {
    if (s.first) backend_.release(s.first);
    s.first = backend_.allocate(static_cast<std::size_t>(bytes));
    allocated_.scratch += bytes - s.second;
    s.second = bytes;
  }
  return s.first;
}

void Executor::run_matmul(const solver::Op& op) {
  const MatMulPlan& plan = matmul_plans_.at(static_cast<solver::OpId>(&op - graph_.ops.data()));
  const auto dtype = to_kernel_dtype(graph_.tensor(op.outputs[0]).dtype);
  const std::int64_t esize = static_cast<std::int64_t>(kernels::dtype_size_bytes(dtype));
  const void* a = buffer(op.inputs[plan.swap_operands ? 1 : 0]);
  const void* b = buffer(op.inputs[plan.swap_operands ? 0 : 1]);
  auto permuted = [&](const OperandPermute& p, const void* src, std::size_t slot) -> const void* {
    if (!p.needed) return src;
    void* dst = scratch(slot, p.elements * esize);
    backend_.permute(dtype, src, dst, p.in_shape.data(), p.perm.data(),
                     static_cast<int>(p.perm.size()));
    return dst;
  };
  kernels::GemmArgs g = plan.gemm;
  g.a = permuted(plan.a, a, 0);
  g.b = permuted(plan.b, b, 1);
  void* out = buffer(op.outputs[0]);
  g.c = plan.c.needed ? scratch(2, plan.c.elements * esize) : out;
  backend_.gemm(dtype, g);
  if (plan.c.needed) {
    backend_.permute(dtype, g.c, out, plan.c.in_shape.data(), plan.c.perm.data(),
                     static_cast<int>(plan.c.perm.size()));
  }
}

// Fused attention (kernels/attention.cc): q [B,A,S,D] and k, v [B,A,T,D] of this device's shard,
// offsets from local_program.cc; the score blocks live in scratch slot 8, reused by every layer.
void Executor::run_attention(const solver::Op& op, kernels::DType dt) {
  const Shape& q = graph_.tensor(op.inputs[0]).shape;
  const Shape& k = graph_.tensor(op.inputs[1]).shape;
  kernels::AttentionArgs a;
  a.q = buffer(op.inputs[0]);
  a.k = buffer(op.inputs[1]);
  a.v = buffer(op.inputs[2]);
  a.batch = q[0] * q[1];
  a.rows = q[2];
  a.cols = k[2];
  a.head_dim = q[3];
  a.scale = solver::attr_float(op, "scale");
  a.causal = solver::attr_int_or(op, "causal", 0) != 0;
  a.row_offset = solver::attr_int_or(op, "row_offset", 0);
  a.col_offset = solver::attr_int_or(op, "col_offset", 0);
  a.chunk_rows = kernels::kAttentionChunkRows;
  a.workspace = scratch(8, static_cast<std::int64_t>(kernels::attention_workspace_bytes(dt, a)));
  if (op.kind == OpKind::kAttention) {
    backend_.attention_forward(dt, a, buffer(op.outputs[0]));
  } else {
    backend_.attention_backward(dt, a, buffer(op.inputs[3]), buffer(op.outputs[0]),
                                buffer(op.outputs[1]), buffer(op.outputs[2]));
  }
}

// Cross-entropy on a shard of the logits (rows and / or vocabulary split): global row statistics
// through the hook, then each device's share of the loss (or its slice of dlogits).
void Executor::run_sharded_cross_entropy(const solver::Op& op, kernels::DType dt) {
  const Shape& logits = graph_.tensor(op.inputs[0]).shape;
  const std::int64_t rows = leading(logits, 1), cols = logits.back();
  const std::int64_t offset = solver::attr_int_or(op, "vocab_offset", 0);
  const double scale = solver::attr_float(op, "shard_scale");
  const auto esize = static_cast<std::int64_t>(kernels::dtype_size_bytes(dt));
  void* row_max = scratch(3, rows * esize);
  void* row_sum = scratch(4, rows * esize);
  const auto* targets = static_cast<const std::int32_t*>(buffer(op.inputs[1]));
  backend_.row_max(dt, buffer(op.inputs[0]), row_max, rows, cols);
  if (stats_hook_) stats_hook_(op, "row_max", row_max, rows, dt);
  backend_.row_sum_exp(dt, buffer(op.inputs[0]), row_max, row_sum, rows, cols);
  if (stats_hook_) stats_hook_(op, "row_sum", row_sum, rows, dt);
  if (op.kind == OpKind::kCrossEntropy) {
    backend_.cross_entropy_forward_shard(dt, buffer(op.inputs[0]), targets, row_max, row_sum,
                                         buffer(op.outputs[0]), rows, cols, offset, scale);
  } else {
    backend_.cross_entropy_backward_shard(dt, buffer(op.inputs[0]), targets, row_max, row_sum,
                                          buffer(op.inputs[2]), buffer(op.outputs[0]), rows, cols,
                                          offset, scale);
  }
}

void Executor::run_op(const solver::Op& op, const StepContext& ctx) {
  auto in = [&](std::size_t i) { return buffer(op.inputs.at(i)); };
  auto out = [&](std::size_t i) { return buffer(op.outputs.at(i)); };
  auto shape = [&](TensorId id) -> const Shape& { return graph_.tensor(id).shape; };
  auto count = [&](TensorId id) { return solver::num_elements(shape(id)); };
  auto tokens = [&](std::size_t i) { return static_cast<const std::int32_t*>(in(i)); };
  const TensorId first_float = op.kind == OpKind::kEmbedding || op.kind == OpKind::kEmbeddingGrad
                                   ? op.inputs.at(1)
                                   : op.inputs.at(0);
  const auto dt = to_kernel_dtype(graph_.tensor(first_float).dtype);
  auto& k = backend_;

  switch (op.kind) {
    case OpKind::kEmbedding: {
      const Shape& table = shape(op.inputs[1]);
      if (op.attrs.count("vocab_offset")) {
        k.embedding_forward_shard(dt, tokens(0), in(1), out(0), count(op.inputs[0]), table[0],
                                  table[1], solver::attr_int(op, "vocab_offset"));
      } else {
        k.embedding_forward(dt, tokens(0), in(1), out(0), count(op.inputs[0]), table[0], table[1]);
      }
      return;
    }
    case OpKind::kPositionEmbedding:
    case OpKind::kBiasAdd: {
      const std::int64_t inner = count(op.inputs[1]);
      k.add_broadcast(dt, in(0), in(1), out(0), count(op.inputs[0]) / inner, inner);
      return;
    }
    case OpKind::kLayerNorm: {
      const Shape& x = shape(op.inputs[0]);
      k.layernorm_forward(dt, in(0), in(1), in(2), out(0), out(1), out(2), leading(x, 1), x.back(),
                          solver::attr_float_or(op, "eps", 1e-5));
      return;
    }
    case OpKind::kMatMul:
      run_matmul(op);
      return;
    case OpKind::kGelu:
      if (op.inputs.size() == 2) {  // fused bias: x [outer, inner], bias [inner]
        const std::int64_t inner = count(op.inputs[1]);
        k.bias_gelu_forward(dt, in(0), in(1), out(0),
                            count(op.inputs[0]) / std::max<std::int64_t>(inner, 1), inner);
      } else {
        k.gelu_forward(dt, in(0), out(0), count(op.inputs[0]));
      }
      return;
    case OpKind::kSplitHeads:
    case OpKind::kMergeHeads: {
      // Sizes come from a per-part tensor [B,A,S,D]: the merged side ([B,S,P,A,D], [B,S,A,D]
      // when P == 1) is the same row-major bytes as the kernels' [B,S,P*A*D] in any of its forms.
      const bool split = op.kind == OpKind::kSplitHeads;
      const Shape& part = shape(split ? op.outputs.at(0) : op.inputs.at(0));
      const std::int64_t parts = solver::attr_int(op, "parts"),
                         heads = solver::attr_int(op, "heads");
      // A merge whose output holds only some parts (its parts letter split) reads the inputs
      // from "part_offset" on (local graphs, executor.h).
      std::vector<void*> pieces;
      const auto& all = split ? op.outputs : op.inputs;
      for (std::size_t i = static_cast<std::size_t>(solver::attr_int_or(op, "part_offset", 0));
           i < all.size(); ++i)
        pieces.push_back(buffer(all[i]));
      if (split) {
        k.split_heads(dt, in(0), pieces.data(), part[0], part[2], parts, heads, part[3]);
      } else {
        std::vector<const void*> cpieces(pieces.begin(), pieces.end());
        k.merge_heads(dt, cpieces.data(), out(0), part[0], part[2], parts, heads, part[3]);
      }
      return;
    }
    case OpKind::kCausalMask:
    case OpKind::kCausalMaskGrad: {
      const Shape& x = shape(op.inputs[0]);
      const std::int64_t rows = x[x.size() - 2], cols = x.back();
      k.causal_mask(dt, in(0), out(0), leading(x, 2), rows, cols,
                    solver::attr_int_or(op, "row_offset", 0),
                    solver::attr_int_or(op, "col_offset", 0), op.kind == OpKind::kCausalMaskGrad);
      return;
    }
    case OpKind::kSoftmax: {
      const Shape& x = shape(op.inputs[0]);
      if (solver::attr_int_or(op, "causal", 0) != 0) {
        k.causal_softmax_forward(dt, in(0), out(0), leading(x, 2), x[x.size() - 2], x.back(),
                                 solver::attr_int_or(op, "row_offset", 0),
                                 solver::attr_int_or(op, "col_offset", 0));
      } else {
        k.softmax_forward(dt, in(0), out(0), leading(x, 1), x.back());
      }
      return;
    }
    case OpKind::kAttention:
    case OpKind::kAttentionGrad:
      run_attention(op, dt);
      return;
    case OpKind::kAdd:
      k.add(dt, in(0), in(1), out(0), count(op.inputs[0]));
      return;
    case OpKind::kCrossEntropy: {
      if (op.attrs.count("shard_scale")) return run_sharded_cross_entropy(op, dt);
      const Shape& logits = shape(op.inputs[0]);
      k.cross_entropy_forward(dt, in(0), tokens(1), out(0), leading(logits, 1), logits.back());
      return;
    }
    case OpKind::kEmbeddingGrad: {
      const Shape& dtable = shape(op.outputs[0]);
      if (op.attrs.count("vocab_offset")) {
        k.embedding_backward_shard(dt, tokens(0), in(1), out(0), count(op.inputs[0]), dtable[0],
                                   dtable[1], solver::attr_int(op, "vocab_offset"));
      } else {
        k.embedding_backward(dt, tokens(0), in(1), out(0), count(op.inputs[0]), dtable[0],
                             dtable[1]);
      }
      return;
    }
    case OpKind::kReduceSum: {
      const std::int64_t inner = count(op.outputs[0]);
      k.reduce_sum_outer(dt, in(0), out(0), count(op.inputs[0]) / inner, inner);
      return;
    }
    case OpKind::kLayerNormGrad: {
      const Shape& x = shape(op.inputs[1]);
      k.layernorm_backward(dt, in(0), in(1), in(2), in(3), in(4), out(0), out(1), out(2),
                           leading(x, 1), x.back());
      return;
    }
    case OpKind::kGeluGrad:
      if (op.inputs.size() == 3) {  // fused bias: (x, bias, dy)
        const std::int64_t inner = count(op.inputs[1]);
        k.bias_gelu_backward(dt, in(0), in(1), in(2), out(0),
                             count(op.inputs[0]) / std::max<std::int64_t>(inner, 1), inner);
      } else {
        k.gelu_backward(dt, in(0), in(1), out(0), count(op.inputs[0]));
      }
      return;
    case OpKind::kSoftmaxGrad: {
      const Shape& y = shape(op.inputs[0]);
      k.softmax_backward(dt, in(0), in(1), out(0), leading(y, 1), y.back());
      return;
    }
    case OpKind::kCrossEntropyGrad: {
      if (op.attrs.count("shard_scale")) return run_sharded_cross_entropy(op, dt);
      const Shape& logits = shape(op.inputs[0]);
      k.cross_entropy_backward(dt, in(0), tokens(1), in(2), out(0), leading(logits, 1),
                               logits.back());
      return;
    }
    case OpKind::kSumSquares:
      k.sum_squares(dt, in(0), count(op.inputs[0]), static_cast<double*>(out(0)));
      return;
    case OpKind::kClipByGlobalNorm: {
      std::vector<const double*> sums;
      for (TensorId id : op.inputs) sums.push_back(static_cast<const double*>(buffer(id)));
      k.clip_by_global_norm(sums.data(), static_cast<std::int64_t>(sums.size()),
                            solver::attr_float_or(op, "max_norm", 0.0),
                            static_cast<double*>(out(0)));
      return;
    }
    case OpKind::kAdamW:
    case OpKind::kSgd:
      run_update(op, ctx, dt);
      return;
  }
  throw std::invalid_argument("no lowering for op kind");
}

// An optimizer op, on the master weights when the parameter has them (set_master_dtype).
void Executor::run_update(const solver::Op& op, const StepContext& ctx, kernels::DType dt) {
  const std::int64_t n = solver::num_elements(graph_.tensor(op.inputs[0]).shape);
  const auto master = masters_.find(op.inputs[0]);
  const bool mixed = master != masters_.end();
  const kernels::DType ud = mixed ? to_kernel_dtype(master_dtype_) : dt;
  void* param = mixed ? master->second : buffer(op.inputs[0]);
  const void* grad = buffer(op.inputs[1]);
  if (mixed) {
    void* wide = scratch(
        6, std::max<std::int64_t>(n, 1) * static_cast<std::int64_t>(kernels::dtype_size_bytes(ud)));
    backend_.convert(dt, grad, ud, wide, n);
    grad = wide;
  }
  const auto* norm_scale = static_cast<const double*>(buffer(op.inputs.back()));
  if (op.kind == OpKind::kAdamW) {
    kernels::AdamWArgs a;
    a.lr = ctx.lr;
    a.step = ctx.step;
    a.beta1 = solver::attr_float(op, "beta1");
    a.beta2 = solver::attr_float(op, "beta2");
    a.eps = solver::attr_float(op, "eps");
    a.weight_decay = solver::attr_float(op, "weight_decay");
    backend_.adamw_update(ud, param, grad, buffer(op.inputs[2]), buffer(op.inputs[3]), n, a,
                          norm_scale);
  } else {
    kernels::SgdArgs a;
    a.lr = ctx.lr;
    a.step = ctx.step;
    a.momentum = solver::attr_float(op, "momentum");
    a.weight_decay = solver::attr_float(op, "weight_decay");
    backend_.sgd_update(ud, param, grad, buffer(op.inputs[2]), n, a, norm_scale);
  }
  if (mixed) backend_.convert(ud, param, dt, buffer(op.inputs[0]), n);
}

}  // namespace strata::app
