// NcclCollectives (CUDA build only, label cuda) against MpiCollectives, the reference: the same
// inputs, on device buffers for NCCL and host buffers for MPI, must give the same results and
// the same byte counters. Values are small integers or quarters, so sums are exact in any order
// and results compare with ==. Each rank uses the GPU `strata train` would pick (node-local rank
// modulo the visible GPUs). NCCL refuses two members of one communicator on one GPU, so the
// comparison needs as many GPUs as ranks; with fewer, only one-member axes are tested (no NCCL
// communicator: local copies, nothing counted). Without a GPU every case returns with a warning.
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "comm/collectives.h"
#include "comm/nccl_collectives.h"
#include "comm/node_rank.h"
#include "comm_test_util.h"
#include "kernels/cuda/cuda_backend.h"

namespace strata::comm::test {
namespace {

int gpus() {
  static const int count = kernels::visible_cuda_devices();
  return count;
}

// Built on first use and never destroyed: the CUDA runtime may already be gone at exit. The
// first use is collective over world (node_rank): every rank reaches it in the same test case.
kernels::CudaBackend& gpu() {
  static kernels::CudaBackend* backend =
      new kernels::CudaBackend(node_rank(MPI_COMM_WORLD).rank % gpus());
  return *backend;
}

#define STRATA_REQUIRE_GPUS(n)                                                  \
  do {                                                                          \
    if (gpus() < (n)) {                                                         \
      WARN("fewer than " << (n) << " CUDA devices visible: NCCL test skipped"); \
      return;                                                                   \
    }                                                                           \
  } while (0)

// Element i of rank r's data: in [-5, 5], not monotone in r, plus r/4 for floating types.
template <class T>
std::vector<T> values(std::int64_t r, std::int64_t n, std::int64_t salt) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const auto base = static_cast<int>((r * 7 + i * 3 + salt) % 11) - 5;
    v[static_cast<std::size_t>(i)] = static_cast<T>(base);
    if constexpr (!std::is_integral_v<T>) v[static_cast<std::size_t>(i)] += static_cast<T>(r) / 4;
  }
  return v;
}

// A device copy of host values (freed by the caller with gpu().release).
template <class T>
void* on_device(const std::vector<T>& v) {
  void* p = gpu().allocate(v.size() * sizeof(T));
  gpu().copy_from_host(p, v.data(), v.size() * sizeof(T));
  return p;
}

template <class T>
std::vector<T> on_host(const void* p, std::size_t n) {
  std::vector<T> v(n);
  gpu().copy_to_host(v.data(), p, n * sizeof(T));  // synchronises the stream NCCL works on
  return v;
}

// Runs every collective on `axis` through both implementations from the same inputs; false (and
// the first difference in `failure`) when a result differs. Every call runs on every rank.
template <class T>
bool same_results(Collectives& mpi, Collectives& nccl, int axis, std::int64_t count,
                  std::string& failure) {
  const ElemType type = elem_type_of<T>();
  const std::int64_t n = mpi.axis_size(axis), r = world_rank();
  const auto total = static_cast<std::size_t>(n * count);
  bool ok = true;
  auto compare = [&](const char* what, const std::vector<T>& want, const void* got) {
    if (on_host<T>(got, want.size()) != want && ok) {
      failure = std::string(what) + " on axis " + std::to_string(axis);
      ok = false;
    }
  };
  for (const ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax}) {
    std::vector<T> host = values<T>(r, count, 0);
    void* dev = on_device(host);
    mpi.all_reduce(host.data(), count, type, op, axis);
    nccl.all_reduce(dev, count, type, op, axis);
    compare(op == ReduceOp::kSum ? "all_reduce sum" : "all_reduce max", host, dev);
    gpu().release(dev);
  }
  const std::vector<T> block = values<T>(r, count, 1), blocks = values<T>(r, n * count, 2);
  std::vector<T> gathered(total), scattered(static_cast<std::size_t>(count)), exchanged(total);
  void* send = on_device(blocks);
  void* one = on_device(block);
  void* recv = gpu().allocate(total * sizeof(T));
  mpi.all_gather(block.data(), gathered.data(), count, type, axis);
  nccl.all_gather(one, recv, count, type, axis);
  compare("all_gather", gathered, recv);
  mpi.reduce_scatter(blocks.data(), scattered.data(), count, type, axis);
  nccl.reduce_scatter(send, recv, count, type, axis);
  compare("reduce_scatter", scattered, recv);
  mpi.all_to_all(blocks.data(), exchanged.data(), count, type, axis);
  nccl.all_to_all(send, recv, count, type, axis);
  compare("all_to_all", exchanged, recv);
  std::vector<T> root_values = values<T>(r, count, 3);
  void* bcast = on_device(root_values);
  mpi.broadcast(root_values.data(), count, type, static_cast<int>(n - 1), axis);
  nccl.broadcast(bcast, count, type, static_cast<int>(n - 1), axis);
  compare("broadcast", root_values, bcast);
  for (void* p : {send, one, recv, bcast}) gpu().release(p);
  return ok;
}

bool same_counters(const ByteCounters& a, const ByteCounters& b) {
  return a.bytes == b.bytes && a.calls == b.calls;
}

TEST_CASE("NCCL collectives equal the MPI collectives, results and bytes", "[comm][cuda]") {
  const int n = world_size();
  STRATA_REQUIRE_GPUS(n);
  std::vector<std::int64_t> all;
  for (int i = 0; i < n; ++i) all.push_back(i);
  struct Shape2 {
    const char* name;
    std::int64_t d0, d1;
  };
  for (const Shape2& shape : {Shape2{"1 x n", 1, n}, Shape2{"n x 1", n, 1}}) {
    const std::string name = shape.name;
    const Mesh mesh = build_mesh(MPI_COMM_WORLD, {layout(all, shape.d0, shape.d1)});
    const auto mpi = make_mpi_collectives(mesh);
    const auto nccl = make_nccl_collectives(mesh, gpu().device(), gpu().stream());
    for (const int axis : {0, 1}) {
      for (const std::int64_t count : {std::int64_t{1}, std::int64_t{5}}) {
        std::string failure;
        bool ok = same_results<double>(*mpi, *nccl, axis, count, failure);
        CHECK(all_ranks(ok, name + " f64: " + failure));
        ok = same_results<float>(*mpi, *nccl, axis, count, failure);
        CHECK(all_ranks(ok, name + " f32: " + failure));
        ok = same_results<std::int32_t>(*mpi, *nccl, axis, count, failure);
        CHECK(all_ranks(ok, name + " i32: " + failure));
      }
    }
    CHECK(all_ranks(same_counters(nccl->counters(), mpi->counters()),
                    name + ": byte counters differ"));
  }
}

TEST_CASE("NCCL collectives on one-member axes copy locally and count nothing", "[comm][cuda]") {
  STRATA_REQUIRE_GPUS(1);
  const int n = world_size();
  std::vector<StageLayout> stages;  // every rank its own stage: no NCCL communicator at all
  for (int i = 0; i < n; ++i) stages.push_back(layout({i}, 1, 1));
  const Mesh mesh = build_mesh(MPI_COMM_WORLD, stages);
  const auto nccl = make_nccl_collectives(mesh, gpu().device(), gpu().stream());
  const std::vector<float> host = values<float>(world_rank(), 6, 0);
  void* send = on_device(host);
  void* recv = gpu().allocate(host.size() * sizeof(float));
  bool ok = true;
  for (const int axis : {0, 1}) {
    nccl->all_reduce(send, 6, ElemType::kBF16, ReduceOp::kSum, axis);  // every type accepted
    nccl->broadcast(send, 6, ElemType::kF16, 0, axis);
    ok = ok && on_host<float>(send, 6) == host;
    gpu().fill_zero(recv, 6 * sizeof(float));
    nccl->all_gather(send, recv, 6, ElemType::kF32, axis);
    ok = ok && on_host<float>(recv, 6) == host;
    gpu().fill_zero(recv, 6 * sizeof(float));
    nccl->reduce_scatter(send, recv, 3, ElemType::kF64, axis);  // 3 doubles = 6 floats
    ok = ok && on_host<float>(recv, 6) == host;
    gpu().fill_zero(recv, 6 * sizeof(float));
    nccl->all_to_all(send, recv, 6, ElemType::kI32, axis);
    ok = ok && on_host<float>(recv, 6) == host;
  }
  CHECK(all_ranks(ok, "one-member axes: results are the local copies"));
  CHECK(all_ranks(same_counters(nccl->counters(), ByteCounters{}), "nothing counted"));
  bool threw = false;
  try {
    nccl->all_reduce(send, -1, ElemType::kF32, ReduceOp::kSum, 0);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(all_ranks(threw, "negative count throws std::invalid_argument"));
  threw = false;
  try {
    nccl->broadcast(send, 1, ElemType::kF32, 1, 1);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(all_ranks(threw, "a root outside the axis throws std::invalid_argument"));
  gpu().release(send);
  gpu().release(recv);
}

}  // namespace
}  // namespace strata::comm::test
