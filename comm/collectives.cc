// The implementation-independent half of comm::Collectives (collectives.h): argument checks, the
// count-0 / one-member shortcuts and the byte counts (byte_counters.h's B per primitive), written
// once for the MPI and NCCL implementations so that they cannot count differently.
#include "comm/collectives.h"

#include <stdexcept>
#include <string>

namespace strata::comm {
namespace {

void check_axis(const char* what, int axis) {
  if (axis != 0 && axis != 1)
    throw std::invalid_argument(std::string(what) + ": mesh axis " + std::to_string(axis) +
                                " is not 0 or 1");
}

}  // namespace

std::size_t elem_size_bytes(ElemType type) {
  switch (type) {
    case ElemType::kF64:
      return 8;
    case ElemType::kF32:
    case ElemType::kI32:
      return 4;
    case ElemType::kBF16:
    case ElemType::kF16:
      return 2;
  }
  throw std::invalid_argument("elem type " + std::to_string(static_cast<int>(type)) +
                              " is not an ElemType");
}

Collectives::Call Collectives::begin(const char* what, std::int64_t count, ElemType type, int axis,
                                     int* n) const {
  check_axis(what, axis);
  if (count < 0 || count > max_count_)
    throw std::invalid_argument(std::string(what) + ": count " + std::to_string(count) +
                                " is outside [0, " + std::to_string(max_count_) + "]");
  check_type(type);
  Call c;
  c.count = count;
  c.type = type;
  c.axis = axis;
  c.block_bytes = static_cast<std::size_t>(count) * elem_size_bytes(type);
  c.n = static_cast<int>(mesh_.axis_size(axis));
  *n = c.n;
  return c;
}

bool Collectives::local_only(const Call& c, int n, const void* send, void* recv) {
  if (c.count > 0 && n > 1) return false;
  if (c.block_bytes > 0 && send != recv) copy_local(send, recv, c.block_bytes);
  return true;
}

void Collectives::all_reduce(void* buf, std::int64_t count, ElemType type, ReduceOp op, int axis) {
  int n = 0;
  const Call c = begin("all_reduce", count, type, axis, &n);
  if (op != ReduceOp::kSum && op != ReduceOp::kMax)
    throw std::invalid_argument("reduce op " + std::to_string(static_cast<int>(op)) +
                                " is not a ReduceOp");
  if (count == 0 || n == 1) return;
  counters_.add(CommKind::kAllReduce, axis, static_cast<double>(c.block_bytes));
  run_all_reduce(buf, c, op);
}

void Collectives::all_gather(const void* send, void* recv, std::int64_t count, ElemType type,
                             int axis) {
  int n = 0;
  const Call c = begin("all_gather", count, type, axis, &n);
  if (local_only(c, n, send, recv)) return;
  counters_.add(CommKind::kAllGather, axis, n * static_cast<double>(c.block_bytes));
  run_all_gather(send, recv, c);
}

void Collectives::reduce_scatter(const void* send, void* recv, std::int64_t count, ElemType type,
                                 int axis) {
  int n = 0;
  const Call c = begin("reduce_scatter", count, type, axis, &n);
  if (local_only(c, n, send, recv)) return;
  counters_.add(CommKind::kReduceScatter, axis, n * static_cast<double>(c.block_bytes));
  run_reduce_scatter(send, recv, c);
}

void Collectives::all_to_all(const void* send, void* recv, std::int64_t count, ElemType type,
                             int axis) {
  int n = 0;
  const Call c = begin("all_to_all", count, type, axis, &n);
  if (local_only(c, n, send, recv)) return;
  counters_.add(CommKind::kAllToAll, axis, static_cast<double>(n) * n * c.block_bytes);
  run_all_to_all(send, recv, c);
}

void Collectives::broadcast(void* buf, std::int64_t count, ElemType type, int root, int axis) {
  int n = 0;
  const Call c = begin("broadcast", count, type, axis, &n);
  if (root < 0 || root >= n)
    throw std::invalid_argument("broadcast: root " + std::to_string(root) +
                                " is not a member of mesh axis " + std::to_string(axis) +
                                " of size " + std::to_string(n));
  if (count == 0 || n == 1) return;
  counters_.add(CommKind::kBroadcast, axis, static_cast<double>(c.block_bytes));
  run_broadcast(buf, c, root);
}

std::int64_t Collectives::axis_size(int axis) const {
  check_axis("axis_size", axis);
  return mesh_.axis_size(axis);
}

std::int64_t Collectives::axis_rank(int axis) const {
  check_axis("axis_rank", axis);
  return mesh_.axis_coord(axis);
}

}  // namespace strata::comm
