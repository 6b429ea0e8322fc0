// Collectives over one axis of a stage's logical mesh (DESIGN.md sections 4 and 6): the interface
// the executor calls, with an MPI implementation here (NCCL arrives with the GPU backend).
// Buffers are in the backend's memory (host memory for the host backend). Every call counts B
// (byte_counters.h) before it communicates. Counts are element counts per member; a call with
// count 0 or on an axis of size 1 returns without communicating or counting.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "comm/byte_counters.h"
#include "comm/mesh.h"

namespace strata::comm {

enum class ElemType : std::uint8_t { kF64, kF32, kBF16, kF16, kI32 };
std::size_t elem_size_bytes(ElemType type);
enum class ReduceOp : std::uint8_t { kSum, kMax };

class Collectives {
 public:
  virtual ~Collectives() = default;

  // In place: every member's buf (count elements) becomes the reduction over the axis group.
  virtual void all_reduce(void* buf, std::int64_t count, ElemType type, ReduceOp op, int axis) = 0;
  // recv (n x count elements) = the members' send buffers in member order (block j from j).
  virtual void all_gather(const void* send, void* recv, std::int64_t count, ElemType type,
                          int axis) = 0;
  // send holds n blocks of count elements; member c receives the sum over members of block c.
  virtual void reduce_scatter(const void* send, void* recv, std::int64_t count, ElemType type,
                              int axis) = 0;
  // send holds n blocks of count elements; block j goes to member j; recv block j is from j.
  virtual void all_to_all(const void* send, void* recv, std::int64_t count, ElemType type,
                          int axis) = 0;
  // buf (count elements) of member `root` to every member.
  virtual void broadcast(void* buf, std::int64_t count, ElemType type, int root, int axis) = 0;

  virtual std::int64_t axis_size(int axis) const = 0;
  virtual std::int64_t axis_rank(int axis) const = 0;

  ByteCounters& counters() { return counters_; }
  const ByteCounters& counters() const { return counters_; }

 protected:
  ByteCounters counters_;
};

// MPI implementation over mesh.axis[0] / mesh.axis[1] (the mesh must outlive it). f64, f32 and
// i32 (bf16 / f16 throw std::invalid_argument: MPI has no such type and the host backend no such
// kernels). Counts above INT_MAX throw std::invalid_argument. MPI failures throw comm::Error.
std::unique_ptr<Collectives> make_mpi_collectives(const Mesh& mesh);

}  // namespace strata::comm
