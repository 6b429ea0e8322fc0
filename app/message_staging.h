// MessageStaging: stage-to-stage messages of backend data over comm::PointToPoint (DESIGN.md
// section 6). The MPI here (Debian's Open MPI) is not CUDA-aware, so MPI must never see device
// memory: when the backend's memory is not host memory (Backend::memory_is_host), a send is
// packed in backend memory, copied into a page-locked host buffer (Backend::allocate_host) that
// stays alive until finish_sends(), and sent from there; a receive lands in a page-locked buffer
// and is copied into backend memory. With the host backend, messages are sent from and received
// into backend memory directly, as before. Buffers are pooled and reused from step to step: a
// step allocates only when it has more sends in flight, or larger ones, than any step before.
// Bytes are counted by PointToPoint, once per message, the same on both paths.
#pragma once

#include <cstdint>
#include <vector>

#include "comm/point_to_point.h"
#include "kernels/backend.h"

namespace strata::app {

class MessageStaging {
 public:
  explicit MessageStaging(kernels::Backend& backend);  // backend must outlive this object
  // Frees the pooled buffers. Buffers of sends not yet finished are left allocated, as is
  // everything while an exception unwinds the stack (MPI_Abort follows): MPI may still read them,
  // and freeing pinned memory may wait for a device stuck in a collective.
  ~MessageStaging();
  MessageStaging(const MessageStaging&) = delete;
  MessageStaging& operator=(const MessageStaging&) = delete;

  // Backend memory of at least `bytes` to pack the next send into; valid until send().
  void* send_buffer(std::int64_t bytes);
  // Starts sending the first `bytes` of the buffer send_buffer() returned last to world rank
  // `dest` (PointToPoint::isend's contract). The packed buffer may be reused once this returns.
  void send(std::int64_t bytes, int dest, int tag, comm::PointToPoint& p2p);
  // Receives `bytes` from world rank `src` (PointToPoint::recv's contract) and returns backend
  // memory holding them, valid until the next recv().
  const void* recv(std::int64_t bytes, int src, int tag, comm::PointToPoint& p2p);
  // Completes every started send (p2p.wait_sends()) and returns their buffers to the pool.
  void finish_sends(comm::PointToPoint& p2p);

 private:
  struct Block {
    void* ptr = nullptr;
    std::int64_t bytes = 0;
  };
  // A buffer of at least `bytes`: the smallest free one that fits, else a new one (replacing the
  // largest free one that is too small, so the pool holds at most as many buffers as the most
  // sends a step has had in flight).
  Block take(std::int64_t bytes);
  // One reused buffer that grows: `block` re-allocated when smaller than `bytes`.
  void* grow(Block& block, std::int64_t bytes, bool host);
  void* allocate(std::int64_t bytes, bool host);
  void release(const Block& block, bool host) noexcept;

  kernels::Backend& backend_;
  const bool staged_;             // backend memory is not host memory: go through pinned buffers
  std::vector<Block> free_;       // send buffers ready for reuse (pinned host, or backend memory)
  std::vector<Block> in_flight_;  // send buffers MPI may still read
  Block pending_;                 // host path: handed out by send_buffer(), not yet sent
  Block packed_;                  // staged: backend memory sends are packed into
  Block unpacked_;                // staged: backend memory receives are copied into
  Block received_;                // receives land here (pinned host, or backend memory)
};

}  // namespace strata::app
