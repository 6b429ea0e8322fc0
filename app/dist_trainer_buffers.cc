// DistTrainer's buffer sharing: transient tensors of a bucket share one arena.
//
// Without it the executor holds one buffer per local tensor for the whole run: every
// intermediate of the forward and every activation gradient of the backward, about twice what
// the planner's memory model counts (intra_memory.cc: parameters, gradients, optimizer state,
// activations stored for the backward). A tensor is transient when all its accesses fall inside
// one bucket execution, forward or backward:
//   - produced by an op of this stage (not a parameter, optimizer state, dataset input or a
//     tensor received from another stage), and never sent to another stage (sends complete at the
//     end of the step), nor the loss, its seed, or the gradient norm;
//   - not kept per micro-batch in flight (slotted) and not accumulated across micro-batches;
//   - every op that reads or writes one of its local variants, and every resharding that reads
//     it (prepare_input), is in the same bucket, forward or backward.
// A bucket execution runs its ops in order, every time the same: op k of the bucket touches its
// inputs, its outputs and the resharding sources of its inputs at position k, so a transient's
// lifetime is [first position, last position]. Forward and backward executions never overlap
// (the schedule runs one action at a time, and a recomputed forward is its own execution), and a
// transient is dead when its execution ends: both buckets go on one timeline (backward positions
// after the forward ones) and pack_buffers (buffer_packing.h) lays them out in one arena.
// STRATA_BUFFER_REUSE=0 keeps one buffer per tensor (a debugging aid; the results are identical).
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

bool buffer_reuse_enabled() {
  const char* env = std::getenv("STRATA_BUFFER_REUSE");
  return env == nullptr || std::strcmp(env, "0") != 0;
}

struct Access {
  std::int64_t first = -1, last = -1;
  unsigned buckets = 0;  // bit b: touched by bucket b (0 forward, 1 backward, 2 iteration)
  void touch(std::int64_t position, unsigned bucket) {
    if (first < 0) first = position;
    last = position;
    buckets |= 1u << bucket;
  }
};

}  // namespace

// Global tensors of this stage whose variants may be transient (the first two rules above).
std::vector<bool> DistTrainer::transient_candidates() const {
  const solver::Graph& g = training_.graph;
  std::vector<bool> ok(g.tensors.size(), false);
  for (std::size_t t = 0; t < g.tensors.size(); ++t) ok[t] = source_[t] == Source::kProduced;
  for (const std::vector<int>* list : {&me_->sends, &me_->recvs})
    for (int i : *list)
      ok[static_cast<std::size_t>(programs_.transfers[static_cast<std::size_t>(i)].tensor)] = false;
  for (TensorId t : {training_.loss, training_.loss_grad, training_.norm_scale})
    if (t != solver::kNoTensor) ok[static_cast<std::size_t>(t)] = false;
  return ok;
}

void DistTrainer::share_transient_buffers(const std::vector<TensorId>& slotted) {
  if (!buffer_reuse_enabled()) return;
  const solver::Graph& g = training_.graph;
  std::vector<Access> access(local_.graph.tensors.size());
  std::int64_t position = 0;
  const std::vector<OpId>* buckets[] = {&me_->forward_ops, &me_->backward_ops, &me_->iteration_ops};
  for (unsigned b = 0; b < 3; ++b) {
    for (OpId id : *buckets[b]) {
      const solver::Op& local_op =
          local_.graph.ops[static_cast<std::size_t>(local_.local_op.at(id))];
      for (TensorId t : local_op.inputs) access[static_cast<std::size_t>(t)].touch(position, b);
      for (TensorId t : local_op.outputs) access[static_cast<std::size_t>(t)].touch(position, b);
      for (TensorId t : g.ops[static_cast<std::size_t>(id)].inputs) {  // resharding sources
        const auto made = made_.find(t);
        if (made != made_.end() && source_[static_cast<std::size_t>(t)] == Source::kProduced)
          access[static_cast<std::size_t>(local(t, made->second))].touch(position, b);
      }
      ++position;
    }
  }
  std::vector<bool> pinned(local_.graph.tensors.size(), false);
  for (TensorId t : slotted) pinned[static_cast<std::size_t>(t)] = true;
  for (TensorId t : accumulated_) pinned[static_cast<std::size_t>(t)] = true;
  const std::vector<bool> candidate = transient_candidates();

  std::vector<TensorId> ids;
  std::vector<BufferLifetime> lifetimes;
  std::int64_t own_bytes = 0;
  for (const auto& [key, id] : local_.variants) {
    const Access& a = access[static_cast<std::size_t>(id)];
    if (!candidate[static_cast<std::size_t>(key.first)] || pinned[static_cast<std::size_t>(id)] ||
        (a.buckets != 1u && a.buckets != 2u))
      continue;
    const std::int64_t bytes =
        std::max<std::int64_t>(solver::num_bytes(local_.graph.tensor(id)), 1);
    ids.push_back(id);
    lifetimes.push_back({bytes, a.first, a.last});
    own_bytes += bytes;
  }
  const BufferPacking packing = pack_buffers(lifetimes, kArenaAlignment);
  executor_->share_buffers(ids, packing.offset, packing.arena_bytes);
  STRATA_LOG(kDebug, "buffers: {} transient tensors ({:.4g} MiB) share a {:.4g} MiB arena",
             ids.size(), static_cast<double>(own_bytes) / 1048576.0,
             static_cast<double>(packing.arena_bytes) / 1048576.0);
}

}  // namespace strata::app
