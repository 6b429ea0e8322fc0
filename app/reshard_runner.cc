// ReshardRunner: one backend copy_box per block, one collective per communication step.
#include "app/reshard_runner.h"

#include <stdexcept>

#include "app/executor.h"

namespace strata::app {

using solver::ReshardOp;
using solver::Shape;

comm::ElemType to_elem_type(kernels::DType dtype) {
  switch (dtype) {
    case kernels::DType::kF64:
      return comm::ElemType::kF64;
    case kernels::DType::kF32:
      return comm::ElemType::kF32;
    case kernels::DType::kBF16:
      return comm::ElemType::kBF16;
    case kernels::DType::kF16:
      return comm::ElemType::kF16;
    case kernels::DType::kI32:
      return comm::ElemType::kI32;
  }
  throw std::invalid_argument("unknown dtype");
}

namespace {

std::int64_t count_of(const Shape& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

Shape zeros(std::size_t rank) { return Shape(rank, 0); }

// Offset of block j of size `extent` along `dim` (other dims 0).
Shape block_offset(std::size_t rank, int dim, std::int64_t j, std::int64_t extent) {
  Shape off = zeros(rank);
  off[static_cast<std::size_t>(dim)] = j * extent;
  return off;
}

// Copies the whole of `box` from src at src_off to dst at dst_off.
void copy_box(kernels::Backend& k, std::size_t esize, const void* src, const Shape& src_shape,
              const Shape& src_off, void* dst, const Shape& dst_shape, const Shape& dst_off,
              const Shape& box) {
  k.copy_box(esize, src, src_shape.data(), src_off.data(), dst, dst_shape.data(), dst_off.data(),
             box.data(), static_cast<int>(box.size()));
}

}  // namespace

ReshardRunner::ReshardRunner(kernels::Backend& backend, comm::Collectives& collectives,
                             std::int64_t c0, std::int64_t c1)
    : backend_(backend), coll_(collectives), c0_(c0), c1_(c1), messages_(backend) {}

ReshardRunner::~ReshardRunner() {
  for (auto& s : scratch_) backend_.release(s.first);
}

void* ReshardRunner::scratch(std::size_t slot, std::int64_t bytes) {
  if (scratch_.size() <= slot) scratch_.resize(slot + 1, {nullptr, 0});
  auto& s = scratch_[slot];
  if (s.second < bytes) {
    if (s.first) backend_.release(s.first);
    s.first = backend_.allocate(static_cast<std::size_t>(std::max<std::int64_t>(bytes, 1)));
    s.second = bytes;
  }
  return s.first;
}

void ReshardRunner::run(const solver::ReshardPlan& plan, const void* src, void* dst) {
  const auto esize = static_cast<std::int64_t>(solver::dtype_size_bytes(plan.dtype));
  if (plan.steps.empty()) {
    const Shape local = solver::local_shape(plan.global, plan.to, plan.mesh);
    backend_.copy(dst, src, static_cast<std::size_t>(count_of(local) * esize));
    return;
  }
  const void* in = src;
  for (std::size_t i = 0; i < plan.steps.size(); ++i) {
    const bool last = i + 1 == plan.steps.size();
    void* out = last ? dst : scratch(i % 2, count_of(plan.steps[i].local_after) * esize);
    step(plan.steps[i], plan.dtype, in, out);
    in = out;
  }
}

void ReshardRunner::step(const solver::ReshardStep& s, solver::DType dtype, const void* in,
                         void* out) {
  const auto esize = solver::dtype_size_bytes(dtype);
  const comm::ElemType type = to_elem_type(to_kernel_dtype(dtype));
  const Shape& before = s.local_before;
  const Shape& after = s.local_after;
  const std::size_t rank = before.size();
  const std::int64_t n = s.group_size;
  const std::int64_t coord = s.axis == 0 ? c0_ : c1_;
  auto staging = [&](std::int64_t bytes) { return static_cast<char*>(scratch(2, bytes)); };
  switch (s.op) {
    case ReshardOp::kAllReduce:
      backend_.copy(out, in, static_cast<std::size_t>(count_of(before)) * esize);
      coll_.all_reduce(out, count_of(before), type, comm::ReduceOp::kSum, s.axis);
      return;
    case ReshardOp::kReduceScatter: {
      // n blocks along dim, packed contiguously; member c keeps the sum of block c.
      const std::int64_t block = count_of(after);
      char* send = staging(n * block * static_cast<std::int64_t>(esize));
      for (std::int64_t j = 0; j < n; ++j) {
        copy_box(backend_, esize, in, before, block_offset(rank, s.dim, j, after[s.dim]),
                 send + j * block * esize, after, zeros(rank), after);
      }
      coll_.reduce_scatter(send, out, block, type, s.axis);
      return;
    }
    case ReshardOp::kAllGather: {
      const std::int64_t block = count_of(before);
      char* recv = staging(n * block * static_cast<std::int64_t>(esize));
      coll_.all_gather(in, recv, block, type, s.axis);
      for (std::int64_t j = 0; j < n; ++j) {
        copy_box(backend_, esize, recv + j * block * esize, before, zeros(rank), out, after,
                 block_offset(rank, s.dim, j, before[s.dim]), before);
      }
      return;
    }
    case ReshardOp::kAllToAll: {
      // Block j along dim_to goes to member j; the block from member j is block j along dim.
      Shape piece = before;
      piece[static_cast<std::size_t>(s.dim_to)] /= n;
      const std::int64_t block = count_of(piece);
      char* send = staging(2 * n * block * static_cast<std::int64_t>(esize));
      char* recv = send + n * block * esize;
      for (std::int64_t j = 0; j < n; ++j) {
        copy_box(backend_, esize, in, before, block_offset(rank, s.dim_to, j, piece[s.dim_to]),
                 send + j * block * esize, piece, zeros(rank), piece);
      }
      coll_.all_to_all(send, recv, block, type, s.axis);
      for (std::int64_t j = 0; j < n; ++j) {
        copy_box(backend_, esize, recv + j * block * esize, piece, zeros(rank), out, after,
                 block_offset(rank, s.dim, j, piece[s.dim]), piece);
      }
      return;
    }
    case ReshardOp::kSlice:
      copy_box(backend_, esize, in, before, block_offset(rank, s.dim, coord, after[s.dim]), out,
               after, zeros(rank), after);
      return;
    case ReshardOp::kPartialize:
      if (coord == 0) {
        backend_.copy(out, in, static_cast<std::size_t>(count_of(before)) * esize);
      } else {
        backend_.fill_zero(out, static_cast<std::size_t>(count_of(after)) * esize);
      }
      return;
  }
  throw std::invalid_argument("unknown resharding step");
}

void ReshardRunner::send_pieces(const std::vector<solver::CrossMeshPiece>& pieces, std::int64_t me,
                                const Shape& src_local_shape, const void* local,
                                const std::vector<std::int64_t>& dst_devices,
                                std::size_t elem_bytes, int tag, comm::PointToPoint& p2p) {
  for (const auto& p : pieces) {
    if (p.src_rank != me) continue;
    const std::int64_t bytes = p.elements() * static_cast<std::int64_t>(elem_bytes);
    void* buf = messages_.send_buffer(bytes);
    copy_box(backend_, elem_bytes, local, src_local_shape, p.src_offset, buf, p.box,
             zeros(p.box.size()), p.box);
    messages_.send(bytes, static_cast<int>(dst_devices.at(static_cast<std::size_t>(p.dst_rank))),
                   tag, p2p);
  }
}

void ReshardRunner::recv_pieces(const std::vector<solver::CrossMeshPiece>& pieces, std::int64_t me,
                                const Shape& dst_local_shape, void* local,
                                const std::vector<std::int64_t>& src_devices,
                                std::size_t elem_bytes, int tag, comm::PointToPoint& p2p) {
  for (const auto& p : pieces) {
    if (p.dst_rank != me) continue;
    const std::int64_t bytes = p.elements() * static_cast<std::int64_t>(elem_bytes);
    const void* buf = messages_.recv(
        bytes, static_cast<int>(src_devices.at(static_cast<std::size_t>(p.src_rank))), tag, p2p);
    copy_box(backend_, elem_bytes, buf, p.box, zeros(p.box.size()), local, dst_local_shape,
             p.dst_offset, p.box);
  }
}

void ReshardRunner::finish_sends(comm::PointToPoint& p2p) { messages_.finish_sends(p2p); }

}  // namespace strata::app
