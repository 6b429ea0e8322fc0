// Byte counters kept at the MPI (later NCCL) call site (DESIGN.md section 6): per communication
// kind and mesh axis, computed from the call's own arguments (count x element size), never from
// the planner's formulas, so tests can hold the two against each other.
// Convention (B of DESIGN.md section 4, what one member of the group moves):
//   all_reduce      B = the member's buffer (count x size)
//   all_gather      B = the gathered result (n x count x size)
//   reduce_scatter  B = the member's input (n x count x size)
//   all_to_all      B = the sum of the members' buffers (n x n x count x size)
//   broadcast       B = the buffer
//   p2p             bytes this rank sent (counted at the send)
#pragma once

#include <array>
#include <cstdint>

namespace strata::comm {

enum class CommKind : std::uint8_t {
  kAllReduce,
  kAllGather,
  kReduceScatter,
  kAllToAll,
  kBroadcast,
  kP2P,
};
inline constexpr int kNumCommKinds = 6;
// "all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast", "p2p" (the names of
// plan.json's bytes_per_step and of the metrics' "bytes").
const char* comm_kind_name(CommKind kind);

struct ByteCounters {
  // [kind][axis]: axis 0 / 1 of the mesh; p2p and world-level traffic count under axis 0.
  std::array<std::array<double, 2>, kNumCommKinds> bytes{};
  std::array<std::int64_t, kNumCommKinds> calls{};

  void add(CommKind kind, int axis, double b);
  double total(CommKind kind) const;  // over both axes
  void reset();
  ByteCounters& operator+=(const ByteCounters& other);
};

}  // namespace strata::comm
