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

// The public calls validate their arguments the same way on every rank and implementation
// (std::invalid_argument), count B (byte_counters.h) and take the count-0 / one-member
// shortcuts here, once; an implementation only moves the data (the run_* hooks, called when
// count > 0 and the axis has more than one member).
class Collectives {
 public:
  virtual ~Collectives() = default;

  // In place: every member's buf (count elements) becomes the reduction over the axis group.
  void all_reduce(void* buf, std::int64_t count, ElemType type, ReduceOp op, int axis);
  // recv (n x count elements) = the members' send buffers in member order (block j from j).
  void all_gather(const void* send, void* recv, std::int64_t count, ElemType type, int axis);
  // send holds n blocks of count elements; member c receives the sum over members of block c.
  void reduce_scatter(const void* send, void* recv, std::int64_t count, ElemType type, int axis);
  // send holds n blocks of count elements; block j goes to member j; recv block j is from j.
  void all_to_all(const void* send, void* recv, std::int64_t count, ElemType type, int axis);
  // buf (count elements) of member `root` to every member.
  void broadcast(void* buf, std::int64_t count, ElemType type, int root, int axis);

  std::int64_t axis_size(int axis) const;
  std::int64_t axis_rank(int axis) const;

  ByteCounters& counters() { return counters_; }
  const ByteCounters& counters() const { return counters_; }

 protected:
  // max_count: the largest element count one call may carry (MPI: INT_MAX).
  Collectives(const Mesh& mesh, std::int64_t max_count) : mesh_(mesh), max_count_(max_count) {}

  // One validated call that communicates: count > 0 elements per block, n > 1 members.
  struct Call {
    std::int64_t count = 0;
    ElemType type = ElemType::kF32;
    int axis = 0;
    int n = 2;
    std::size_t block_bytes = 0;  // count x element size
  };
  virtual void run_all_reduce(void* buf, const Call& c, ReduceOp op) = 0;
  virtual void run_all_gather(const void* send, void* recv, const Call& c) = 0;
  virtual void run_reduce_scatter(const void* send, void* recv, const Call& c) = 0;
  virtual void run_all_to_all(const void* send, void* recv, const Call& c) = 0;
  virtual void run_broadcast(void* buf, const Call& c, int root) = 0;
  // With one member, recv of all_gather / reduce_scatter / all_to_all is send itself: a copy in
  // the implementation's memory (bytes > 0, send != recv), neither communicated nor counted.
  virtual void copy_local(const void* send, void* recv, std::size_t bytes) = 0;
  // Throws std::invalid_argument for an element type the implementation cannot move (checked
  // with the other arguments, before any shortcut).
  virtual void check_type(ElemType type) const = 0;

  const Mesh& mesh_;

 private:
  // Arguments are checked before the count-0 / one-member shortcut, so bad input fails the same
  // way whatever the mesh shape. n: the axis's members.
  Call begin(const char* what, std::int64_t count, ElemType type, int axis, int* n) const;
  // The shortcut of the three calls with separate send and receive buffers; true if taken.
  bool local_only(const Call& c, int n, const void* send, void* recv);

  std::int64_t max_count_;
  ByteCounters counters_;
};

// MPI implementation over mesh.axis[0] / mesh.axis[1] (the mesh must outlive it). f64, f32, i32
// and bf16 (16-bit words; its sum and max are user ops adding in f32 and rounding each partial
// result, as NCCL's bf16 reductions); f16 throws std::invalid_argument. Counts above INT_MAX
// throw std::invalid_argument. MPI failures throw comm::Error.
std::unique_ptr<Collectives> make_mpi_collectives(const Mesh& mesh);

}  // namespace strata::comm
