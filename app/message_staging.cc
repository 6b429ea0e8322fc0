// MessageStaging: pooled send buffers, one growing buffer per other role, and the copies
// between backend memory and page-locked host memory when MPI cannot read backend memory.
#include "app/message_staging.h"

#include <algorithm>
#include <exception>

namespace strata::app {

MessageStaging::MessageStaging(kernels::Backend& backend)
    : backend_(backend), staged_(!backend.memory_is_host()) {}

MessageStaging::~MessageStaging() {
  if (std::uncaught_exceptions() > 0) return;  // see the header: leave everything to the exit
  for (const Block& b : free_) release(b, staged_);
  release(pending_, false);
  release(packed_, false);
  release(unpacked_, false);
  release(received_, staged_);
}

void* MessageStaging::allocate(std::int64_t bytes, bool host) {
  const auto size = static_cast<std::size_t>(std::max<std::int64_t>(bytes, 1));
  return host ? backend_.allocate_host(size) : backend_.allocate(size);
}

void MessageStaging::release(const Block& block, bool host) noexcept {
  if (block.ptr == nullptr) return;
  if (host) {
    backend_.release_host(block.ptr);
  } else {
    backend_.release(block.ptr);
  }
}

void* MessageStaging::grow(Block& block, std::int64_t bytes, bool host) {
  if (block.ptr != nullptr && block.bytes >= bytes) return block.ptr;
  release(block, host);
  block = Block{};  // stays empty if the allocation throws
  block.ptr = allocate(bytes, host);
  block.bytes = bytes;
  return block.ptr;
}

MessageStaging::Block MessageStaging::take(std::int64_t bytes) {
  auto best = free_.end();
  for (auto it = free_.begin(); it != free_.end(); ++it)
    if (it->bytes >= bytes && (best == free_.end() || it->bytes < best->bytes)) best = it;
  if (best == free_.end()) {
    if (!free_.empty()) {  // none fits: the largest is replaced rather than kept beside the new
      const auto largest =
          std::max_element(free_.begin(), free_.end(),
                           [](const Block& a, const Block& b) { return a.bytes < b.bytes; });
      release(*largest, staged_);
      free_.erase(largest);
    }
    return Block{allocate(bytes, staged_), bytes};
  }
  const Block out = *best;
  free_.erase(best);
  return out;
}

void* MessageStaging::send_buffer(std::int64_t bytes) {
  if (staged_) return grow(packed_, bytes, false);
  if (pending_.ptr != nullptr) free_.push_back(pending_);  // handed out but never sent
  pending_ = Block{};
  pending_ = take(bytes);
  return pending_.ptr;
}

void MessageStaging::send(std::int64_t bytes, int dest, int tag, comm::PointToPoint& p2p) {
  // Reserve first: once the send has started, recording its buffer must not fail.
  in_flight_.reserve(in_flight_.size() + 1);
  Block block;
  if (staged_) {
    block = take(bytes);
    // copy_to_host waits for the packing kernels and the copy: the pinned buffer is complete
    // when MPI starts reading it.
    try {
      backend_.copy_to_host(block.ptr, packed_.ptr, static_cast<std::size_t>(bytes));
    } catch (...) {
      free_.push_back(block);
      throw;
    }
  } else {
    block = pending_;
    pending_ = Block{};
  }
  in_flight_.push_back(block);
  p2p.isend(block.ptr, bytes, dest, tag);
}

const void* MessageStaging::recv(std::int64_t bytes, int src, int tag, comm::PointToPoint& p2p) {
  void* landing = grow(received_, bytes, staged_);
  p2p.recv(landing, bytes, src, tag);
  if (!staged_) return landing;
  void* unpacked = grow(unpacked_, bytes, false);
  backend_.copy_from_host(unpacked, landing, static_cast<std::size_t>(bytes));
  // A copy from pinned memory runs asynchronously, and the next recv() rewrites that memory.
  backend_.synchronize();
  return unpacked;
}

void MessageStaging::finish_sends(comm::PointToPoint& p2p) {
  p2p.wait_sends();
  free_.insert(free_.end(), in_flight_.begin(), in_flight_.end());
  in_flight_.clear();
}

}  // namespace strata::app
