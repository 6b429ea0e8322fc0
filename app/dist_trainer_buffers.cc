// DistTrainer's buffer sharing: transient tensors share one arena.
//
// Without it the executor holds one buffer per local tensor for the whole run: every
// intermediate of the forward, every activation gradient of the backward and every gathered
// parameter copy, about twice what the planner's memory model counts (intra_memory.cc:
// parameters, gradients, optimizer state, activations stored for the backward). A bucket
// execution (one forward or backward of one micro-batch) runs its ops in order, every time the
// same; op k of the bucket touches its inputs, its outputs and the resharding sources of its
// inputs at position k. A local tensor is transient when its value never has to survive the end
// of an execution, which holds for two kinds:
//   (t1) an op's output (its made layout) used only inside the bucket that makes it, forward or
//        backward: produced by an op of this stage; not sent to another stage (sends complete at
//        the end of the step); not the loss, its seed or the gradient norm; not kept per
//        micro-batch in flight (slotted) nor accumulated across micro-batches;
//   (t2) a copy that prepare_input remakes in every execution that reads it: a produced
//        tensor's resharded variant (its sources as for t1), or, unless zero2 keeps them for the
//        step, a parameter gathered from its storage layout (ZeRO-3 style). Such a copy may be
//        read by both buckets; it is live in each, separately;
//   (t3) with recomputation, a forward output that the backward action makes again before it
//        reads it (dist_trainer_recompute.cc), and that is not a checkpoint (slotted);
//   (t4) with more than one micro-batch, a gradient accumulated across them (not sent to
//        another stage): live in the backward action until it is added into its accumulator,
//        and, when the iteration needs a rounded copy, through the iteration bucket
//        (plan_gradient_accumulation below).
// Iteration-bucket tensors are never shared (the optimizer's inputs are read after the step by
// gather_gradients and checkpoints). A transient is live from its first to its last position in
// each action that touches it: the forward action (the forward ops), the backward action (the
// backward ops, with recomputation interleaved with the forward ops it reruns). Actions never
// overlap (the schedule runs one at a time), so both go on one timeline, backward positions after
// the forward ones, and pack_buffers (buffer_packing.h) lays every transient out in one arena.
// STRATA_BUFFER_REUSE=0 keeps one buffer per tensor (a debugging aid; the results are identical).
#include <array>
#include <cstdlib>
#include <cstring>

#include "app/buffer_packing.h"
#include "app/dist_trainer.h"
#include "app/log.h"

namespace strata::app {

using solver::OpId;
using solver::TensorId;

namespace {

constexpr std::int64_t kArenaAlignment = 256;  // cuBLAS / vector loads want aligned operands
constexpr unsigned kForwardBit = 1u, kBackwardBit = 2u;

bool buffer_reuse_enabled() {
  const char* env = std::getenv("STRATA_BUFFER_REUSE");
  return env == nullptr || std::strcmp(env, "0") != 0;
}

// Where one local tensor is touched: per bucket (0 forward, 1 backward, 2 iteration), the first
// and last position.
struct Access {
  std::array<LiveInterval, 3> in{};
  unsigned buckets = 0;  // bit b: touched by bucket b
  void touch(std::int64_t position, unsigned bucket) {
    if (!(buckets & (1u << bucket))) in[bucket].first = position;
    in[bucket].last = position;
    buckets |= 1u << bucket;
  }
};

}  // namespace

// Per global tensor of this stage: which of its local variants may be transient.
std::vector<DistTrainer::TransientKind> DistTrainer::transient_kinds() const {
  const solver::Graph& g = training_.graph;
  std::vector<TransientKind> kind(g.tensors.size(), TransientKind::kNone);
  for (std::size_t t = 0; t < g.tensors.size(); ++t) {
    if (source_[t] == Source::kProduced) kind[t] = TransientKind::kAny;
    if (source_[t] == Source::kOwned && !programs_.keep_gathered_parameters)
      kind[t] = TransientKind::kRemadeCopies;
  }
  for (const std::vector<int>* list : {&me_->sends, &me_->recvs})
    for (int i : *list)
      kind[static_cast<std::size_t>(programs_.transfers[static_cast<std::size_t>(i)].tensor)] =
          TransientKind::kNone;
  for (TensorId t : {training_.loss, training_.loss_grad, training_.norm_scale})
    if (t != solver::kNoTensor) kind[static_cast<std::size_t>(t)] = TransientKind::kNone;
  return kind;
}

ArenaLayout DistTrainer::arena_layout(const std::vector<TensorId>& slotted) const {
  if (!buffer_reuse_enabled()) return {};
  std::vector<Access> access(local_.graph.tensors.size());
  std::vector<bool> rerun(local_.graph.tensors.size(), false);  // made again by a recomputation
  std::vector<OpId> backward;
  for (const auto& [id, again] : backward_sequence_) {
    backward.push_back(id);
    if (!again) continue;
    const solver::Op& op = local_.graph.ops[static_cast<std::size_t>(local_.local_op.at(id))];
    for (TensorId t : op.outputs) rerun[static_cast<std::size_t>(t)] = true;
  }
  std::int64_t position = 0;
  const std::vector<OpId>* buckets[] = {&me_->forward_ops, &backward, &me_->iteration_ops};
  const std::int64_t iteration_begin =
      static_cast<std::int64_t>(me_->forward_ops.size() + backward.size());
  for (unsigned b = 0; b < 3; ++b) {
    for (OpId id : *buckets[b]) {
      for (TensorId t : touched(id)) access[static_cast<std::size_t>(t)].touch(position, b);
      ++position;
    }
  }
  std::vector<bool> pinned(local_.graph.tensors.size(), false);
  for (TensorId t : slotted) pinned[static_cast<std::size_t>(t)] = true;
  const bool accumulating = plan_.micro_batches > 1;
  std::set<TensorId> accumulated(accumulated_.begin(), accumulated_.end());
  if (!accumulating)  // the gradient itself lives from its backward to the optimizer
    for (TensorId t : accumulated_) pinned[static_cast<std::size_t>(t)] = true;
  const std::vector<TransientKind> kind = transient_kinds();

  ArenaLayout layout;
  std::vector<BufferLifetime> lifetimes;
  std::int64_t own_bytes = 0;
  for (const auto& [key, id] : local_.variants) {
    const Access& a = access[static_cast<std::size_t>(id)];
    // t2: prepare_input writes it in every execution, or a recomputation does (t3)
    const bool remade = id != origin(key.first) || rerun[static_cast<std::size_t>(id)];
    const TransientKind k = kind[static_cast<std::size_t>(key.first)];
    const bool any = k == TransientKind::kAny, copies = k == TransientKind::kRemadeCopies;
    const bool one_bucket = a.buckets == kForwardBit || a.buckets == kBackwardBit;
    const bool both = a.buckets == (kForwardBit | kBackwardBit);
    BufferLifetime life{std::max<std::int64_t>(solver::num_bytes(local_.graph.tensor(id)), 1), {}};
    if (accumulating && accumulated.count(id)) {  // (t4)
      if (!any || !(a.buckets & kBackwardBit) || (a.buckets & kForwardBit)) continue;
      life.live.push_back(a.in[1]);
      if (!read_in_accumulator_.count(id) && position > iteration_begin)
        life.live.push_back({iteration_begin, position - 1});
    } else {
      const bool transient =
          !pinned[static_cast<std::size_t>(id)] &&
          ((any && (one_bucket || (both && remade))) || (copies && remade && (one_bucket || both)));
      if (!transient) continue;
      for (unsigned b = 0; b < 2; ++b)
        if (a.buckets & (1u << b)) life.live.push_back(a.in[b]);
    }
    layout.ids.push_back(id);
    own_bytes += life.bytes;
    lifetimes.push_back(std::move(life));
  }
  BufferPacking packing = pack_buffers(lifetimes, kArenaAlignment);
  layout.offsets = std::move(packing.offset);
  layout.arena_bytes = packing.arena_bytes;
  STRATA_LOG(kDebug, "buffers: {} transient tensors ({:.4g} MiB) share a {:.4g} MiB arena",
             layout.ids.size(), static_cast<double>(own_bytes) / 1048576.0,
             static_cast<double>(layout.arena_bytes) / 1048576.0);
  return layout;
}

// The local tensors op `id` touches when it runs: its inputs and outputs, and the resharding
// sources of its inputs (prepare_input).
std::vector<TensorId> DistTrainer::touched(OpId id) const {
  const solver::Op& local_op = local_.graph.ops[static_cast<std::size_t>(local_.local_op.at(id))];
  std::vector<TensorId> out = local_op.inputs;
  out.insert(out.end(), local_op.outputs.begin(), local_op.outputs.end());
  for (TensorId t : training_.graph.ops[static_cast<std::size_t>(id)].inputs) {
    const TensorId from = origin(t);
    if (from != solver::kNoTensor) out.push_back(from);
  }
  return out;
}

// Gradient accumulation over micro-batches (B > 1). Each accumulated gradient is added into its
// accumulator right after its last use in the backward action, not at the action's end, so the
// gradient itself is transient there (t4). The iteration bucket then reads the sum: in the
// accumulator itself when it has the gradient's dtype, else (a wider master dtype) in a copy
// rounded into the gradient's buffer, which is live in the arena through the whole iteration
// (gather_gradients reads it after the step).
void DistTrainer::plan_gradient_accumulation() {
  stash_after_.assign(backward_sequence_.size(), {});
  read_in_accumulator_.clear();
  if (plan_.micro_batches <= 1) return;
  const std::set<TensorId> accumulated(accumulated_.begin(), accumulated_.end());
  std::map<TensorId, std::size_t> last_use;
  for (std::size_t k = 0; k < backward_sequence_.size(); ++k)
    for (TensorId t : touched(backward_sequence_[k].first))
      if (accumulated.count(t)) last_use[t] = k;
  for (TensorId t : accumulated_) {
    stash_after_.at(last_use.at(t)).push_back(t);
    const solver::DType d = local_.graph.tensor(t).dtype;
    if (accumulation_dtype(d, master_dtype_) == d) read_in_accumulator_.insert(t);
  }
}

// The local tensor prepare_input reshards `t` from (its made layout, or a parameter's storage
// layout), or kNoTensor for tensors it never reshards (received, loaded, optimizer state).
TensorId DistTrainer::origin(TensorId t) const {
  switch (source_[static_cast<std::size_t>(t)]) {
    case Source::kProduced:
      return local(t, made_.at(t));
    case Source::kOwned:
      return local(t, programs_.storage_layout.at(t));
    default:
      return solver::kNoTensor;
  }
}

}  // namespace strata::app
