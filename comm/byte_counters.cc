// Byte counters per communication kind and mesh axis. Plain arithmetic, no MPI here.
#include "comm/byte_counters.h"

#include <stdexcept>
#include <string>

namespace strata::comm {
namespace {

int kind_index(CommKind kind) {
  const int k = static_cast<int>(kind);
  if (k < 0 || k >= kNumCommKinds)
    throw std::invalid_argument("comm kind " + std::to_string(k) + " is not a CommKind");
  return k;
}

}  // namespace

const char* comm_kind_name(CommKind kind) {
  switch (kind) {
    case CommKind::kAllReduce:
      return "all_reduce";
    case CommKind::kAllGather:
      return "all_gather";
    case CommKind::kReduceScatter:
      return "reduce_scatter";
    case CommKind::kAllToAll:
      return "all_to_all";
    case CommKind::kBroadcast:
      return "broadcast";
    case CommKind::kP2P:
      return "p2p";
  }
  return "unknown";
}

// One add is one call: the collectives add once per MPI call, p2p once per send.
void ByteCounters::add(CommKind kind, int axis, double b) {
  const int k = kind_index(kind);
  if (axis != 0 && axis != 1)
    throw std::invalid_argument("byte counter axis " + std::to_string(axis) + " is not 0 or 1");
  bytes[k][axis] += b;
  calls[k] += 1;
}

double ByteCounters::total(CommKind kind) const {
  const int k = kind_index(kind);
  return bytes[k][0] + bytes[k][1];
}

void ByteCounters::reset() { *this = ByteCounters{}; }

ByteCounters& ByteCounters::operator+=(const ByteCounters& other) {
  for (int k = 0; k < kNumCommKinds; ++k) {
    bytes[k][0] += other.bytes[k][0];
    bytes[k][1] += other.bytes[k][1];
    calls[k] += other.calls[k];
  }
  return *this;
}

}  // namespace strata::comm
