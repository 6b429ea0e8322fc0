// Point-to-point transfers between pipeline stages over MPI (DESIGN.md section 6). Sends are
// non-blocking so that two stages sending to each other (forward activations one way, gradients
// the other) never deadlock; their buffers must stay untouched until wait_sends(). Messages with
// the same (source, tag) arrive in the order they were sent (MPI's non-overtaking rule), which the
// pipeline relies on for successive micro-batches.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <vector>

#include "comm/byte_counters.h"

namespace strata::comm {

// The largest tag every MPI implementation accepts (MPI_TAG_UB >= 32767).
inline constexpr int kMaxPortableTag = 32767;

class PointToPoint {
 public:
  explicit PointToPoint(MPI_Comm world);  // world must outlive this object
  ~PointToPoint();                        // waits for unfinished sends (never throws)
  PointToPoint(const PointToPoint&) = delete;
  PointToPoint& operator=(const PointToPoint&) = delete;

  // Starts sending `bytes` bytes to world rank `dest`; counts them as p2p. 0 <= tag <=
  // kMaxPortableTag, dest != own rank and bytes <= INT_MAX (else std::invalid_argument).
  void isend(const void* buf, std::int64_t bytes, int dest, int tag);
  // Blocks until the message from `src` with `tag` arrives; throws comm::Error when its size
  // differs from `bytes`.
  void recv(void* buf, std::int64_t bytes, int src, int tag);
  // Completes every started send.
  void wait_sends();

  ByteCounters& counters() { return counters_; }
  const ByteCounters& counters() const { return counters_; }

 private:
  MPI_Comm world_;
  int rank_ = 0;
  std::vector<MPI_Request> pending_;
  ByteCounters counters_;
};

}  // namespace strata::comm
