// MpiCollectives on every mesh case and both axes, for f64, f32 and i32: each rank fills its
// buffers from a formula of its world rank, and the expected results come from the same formula
// over the group's members (taken from the layout, not from MPI). All values are small integers
// or quarters, so float sums are exact in any order and results compare with ==. Byte counters
// are held against the byte_counters.h convention, call by call.
#include <algorithm>
#include <catch2/catch.hpp>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "comm/collectives.h"
#include "comm_test_util.h"
#include "kernels/bf16_bits.h"

namespace strata::comm::test {
namespace {

template <class T>
const char* type_name() {
  if constexpr (std::is_same_v<T, double>) return "f64";
  if constexpr (std::is_same_v<T, float>) return "f32";
  return "i32";
}

// Element i of rank r's data: in [-5, 5] and not monotone in r (so max is not just the last
// rank), plus r/4 for floating types (so ranks differ in every element).
template <class T>
T value(std::int64_t r, std::int64_t i) {
  const auto base = static_cast<int>((r * 7 + i * 3) % 11) - 5;
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(base);
  } else {
    return static_cast<T>(base) + static_cast<T>(r) / static_cast<T>(4);
  }
}

// Element i of the block that rank r sends to member j in all_to_all.
template <class T>
T a2a_value(std::int64_t r, std::int64_t j, std::int64_t i) {
  return static_cast<T>(r * 1000 + j * 100 + i);
}

// Runs every collective on one axis with `count` elements and checks the results on this rank.
// `want` gets the counts the convention asks for. A mismatch is recorded (the first one, in
// `failure`) but every collective still runs, so this rank keeps in step with its group.
template <class T>
bool check_axis(Collectives& coll, const Place& place, int axis, std::int64_t count,
                ByteCounters& want, std::string& failure) {
  const ElemType type = elem_type_of<T>();
  const std::vector<std::int64_t>& members = place.members[axis];
  const auto n = static_cast<std::int64_t>(members.size());
  const std::int64_t me = axis == 0 ? place.c0 : place.c1;
  const std::int64_t r = world_rank();
  const double size = sizeof(T);
  const bool counted = n > 1 && count > 0;
  const std::string where = std::string(type_name<T>()) + " axis " + std::to_string(axis) +
                            " count " + std::to_string(count) + ": ";
  bool ok = true;
  failure.clear();
  auto fail = [&](const std::string& what) {
    if (ok) failure = where + what;
    ok = false;
  };

  if (coll.axis_size(axis) != n || coll.axis_rank(axis) != me) fail("axis size/rank");

  // all_reduce, sum and max, in place.
  for (const ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax}) {
    std::vector<T> buf(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) buf[i] = value<T>(r, i);
    coll.all_reduce(buf.data(), count, type, op, axis);
    if (counted) want.add(CommKind::kAllReduce, axis, count * size);
    for (std::int64_t i = 0; i < count; ++i) {
      T expect = op == ReduceOp::kSum ? T(0) : value<T>(members[0], i);
      for (const std::int64_t m : members)
        expect = op == ReduceOp::kSum ? expect + value<T>(m, i) : std::max(expect, value<T>(m, i));
      if (buf[i] != expect) fail("all_reduce element " + std::to_string(i));
    }
  }

  // all_gather: block j of recv is member j's buffer.
  {
    std::vector<T> send(static_cast<std::size_t>(count)), recv(n * count, T(-77));
    for (std::int64_t i = 0; i < count; ++i) send[i] = value<T>(r, i);
    coll.all_gather(send.data(), recv.data(), count, type, axis);
    if (counted) want.add(CommKind::kAllGather, axis, n * count * size);
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = 0; i < count; ++i)
        if (recv[j * count + i] != value<T>(members[j], i))
          fail("all_gather block " + std::to_string(j));
  }

  // reduce_scatter: element i of block b of rank r's input is value(r, b * count + i); I get
  // the sum over members of my block.
  {
    std::vector<T> send(n * count), recv(static_cast<std::size_t>(count), T(-77));
    for (std::int64_t k = 0; k < n * count; ++k) send[k] = value<T>(r, k);
    coll.reduce_scatter(send.data(), recv.data(), count, type, axis);
    if (counted) want.add(CommKind::kReduceScatter, axis, n * count * size);
    for (std::int64_t i = 0; i < count; ++i) {
      T expect = T(0);
      for (const std::int64_t m : members) expect += value<T>(m, me * count + i);
      if (recv[i] != expect) fail("reduce_scatter element " + std::to_string(i));
    }
  }

  // all_to_all: block j of recv is what member j addressed to me.
  {
    std::vector<T> send(n * count), recv(n * count, T(-77));
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = 0; i < count; ++i) send[j * count + i] = a2a_value<T>(r, j, i);
    coll.all_to_all(send.data(), recv.data(), count, type, axis);
    if (counted) want.add(CommKind::kAllToAll, axis, n * n * count * size);
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = 0; i < count; ++i)
        if (recv[j * count + i] != a2a_value<T>(members[j], me, i))
          fail("all_to_all block " + std::to_string(j));
  }

  // broadcast from every member in turn; the others start from a sentinel.
  for (std::int64_t root = 0; root < n; ++root) {
    std::vector<T> buf(static_cast<std::size_t>(count), T(-77));
    if (me == root)
      for (std::int64_t i = 0; i < count; ++i) buf[i] = value<T>(r, i);
    coll.broadcast(buf.data(), count, type, static_cast<int>(root), axis);
    if (counted) want.add(CommKind::kBroadcast, axis, count * size);
    for (std::int64_t i = 0; i < count; ++i)
      if (buf[i] != value<T>(members[root], i))
        fail("broadcast from member " + std::to_string(root));
  }
  return ok;
}

bool same_counters(const ByteCounters& got, const ByteCounters& want, std::string& failure) {
  for (int k = 0; k < kNumCommKinds; ++k) {
    const char* name = comm_kind_name(static_cast<CommKind>(k));
    for (int a = 0; a < 2; ++a) {
      if (got.bytes[k][a] != want.bytes[k][a]) {
        failure = std::string(name) + " axis " + std::to_string(a) + ": " +
                  std::to_string(got.bytes[k][a]) + " bytes, want " +
                  std::to_string(want.bytes[k][a]);
        return false;
      }
    }
    if (got.calls[k] != want.calls[k]) {
      failure = std::string(name) + ": " + std::to_string(got.calls[k]) + " calls, want " +
                std::to_string(want.calls[k]);
      return false;
    }
  }
  return true;
}

TEST_CASE("MPI collectives match host-computed results on every axis", "[comm][collectives]") {
  const int n = world_size();
  for (const MeshCase& mc : mesh_cases(n)) {
    const Place place = place_of(mc.stages, world_rank());
    const Mesh mesh = build_mesh(MPI_COMM_WORLD, mc.stages);
    const std::unique_ptr<Collectives> coll = make_mpi_collectives(mesh);
    ByteCounters want;
    // Every rank runs the same sequence; ranks of other groups (or none) run theirs alongside.
    for (const int axis : {0, 1}) {
      for (const std::int64_t count : {std::int64_t{1}, std::int64_t{5}}) {
        std::string failure;
        bool ok = check_axis<double>(*coll, place, axis, count, want, failure);
        CHECK(all_ranks(ok, mc.name + ": " + failure));
        ok = check_axis<float>(*coll, place, axis, count, want, failure);
        CHECK(all_ranks(ok, mc.name + ": " + failure));
        ok = check_axis<std::int32_t>(*coll, place, axis, count, want, failure);
        CHECK(all_ranks(ok, mc.name + ": " + failure));
      }
    }
    std::string failure;
    const bool ok = same_counters(coll->counters(), want, failure);
    CHECK(all_ranks(ok, mc.name + ": byte counters: " + failure));
  }
}

TEST_CASE("MPI collectives: count 0 neither communicates nor counts", "[comm][collectives]") {
  const int n = world_size();
  const Mesh mesh = build_mesh(MPI_COMM_WORLD, mesh_cases(n).front().stages);  // 1 x n
  const std::unique_ptr<Collectives> coll = make_mpi_collectives(mesh);
  for (const int axis : {0, 1}) {
    coll->all_reduce(nullptr, 0, ElemType::kF64, ReduceOp::kSum, axis);
    coll->all_gather(nullptr, nullptr, 0, ElemType::kF32, axis);
    coll->reduce_scatter(nullptr, nullptr, 0, ElemType::kI32, axis);
    coll->all_to_all(nullptr, nullptr, 0, ElemType::kF64, axis);
    coll->broadcast(nullptr, 0, ElemType::kF64, 0, axis);
  }
  std::string failure;
  const bool ok = same_counters(coll->counters(), ByteCounters{}, failure);
  CHECK(all_ranks(ok, "count 0: " + failure));
}

TEST_CASE("MPI collectives reduce bf16 in f32, rounding each partial sum", "[comm][collectives]") {
  // bf16 has no MPI type: 16-bit words with user ops (comm/mpi_collectives.cc). Rank r holds
  // r + i / 4 (exact in bf16; every partial sum of up to 8 ranks is too, so any order gives the
  // exact sum), and for the max, element i of rank r is (r == i % n ? 2 + i : -i).
  const int n = world_size(), r = world_rank();
  const Mesh mesh = build_mesh(MPI_COMM_WORLD, mesh_cases(n).front().stages);  // 1 x n
  const std::unique_ptr<Collectives> coll = make_mpi_collectives(mesh);
  const int axis = 1;
  const int count = 8;
  std::vector<std::uint16_t> sum(count), max(count), scattered(1);
  for (int i = 0; i < count; ++i) {
    sum[static_cast<std::size_t>(i)] = kernels::bf16_from_f32(static_cast<float>(r + i / 4.0));
    max[static_cast<std::size_t>(i)] =
        kernels::bf16_from_f32(static_cast<float>(r == i % n ? 2 + i : -i));
  }
  std::vector<std::uint16_t> rs(static_cast<std::size_t>(n), kernels::bf16_from_f32(1.5f));
  coll->all_reduce(sum.data(), count, ElemType::kBF16, ReduceOp::kSum, axis);
  coll->all_reduce(max.data(), count, ElemType::kBF16, ReduceOp::kMax, axis);
  coll->reduce_scatter(rs.data(), scattered.data(), 1, ElemType::kBF16, axis);
  bool ok = kernels::f32_from_bf16(scattered[0]) == 1.5f * static_cast<float>(n);
  for (int i = 0; i < count; ++i) {
    ok = ok && kernels::f32_from_bf16(sum[static_cast<std::size_t>(i)]) ==
                   static_cast<float>(n * (n - 1) / 2 + n * (i / 4.0));
    ok =
        ok && kernels::f32_from_bf16(max[static_cast<std::size_t>(i)]) == static_cast<float>(2 + i);
  }
  CHECK(all_ranks(ok, "bf16 sum, max and reduce-scatter"));
}

TEST_CASE("MPI collectives reject bad arguments on every rank", "[comm][collectives]") {
  const int n = world_size();
  const Mesh mesh = build_mesh(MPI_COMM_WORLD, mesh_cases(n).front().stages);  // 1 x n
  const std::unique_ptr<Collectives> coll = make_mpi_collectives(mesh);
  std::vector<double> buf(static_cast<std::size_t>(4 * n), 1.0), out(buf.size());
  auto rejects = [&](const std::string& what, auto call) {
    bool threw = false;
    try {
      call();
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    CHECK(all_ranks(threw, what + " throws std::invalid_argument"));
  };
  // Axis 0 has size 1 here: bad input fails the same way on a one-member axis.
  for (const int axis : {0, 1}) {
    const std::string on = " on axis " + std::to_string(axis);
    rejects("f16 all_gather" + on,
            [&] { coll->all_gather(buf.data(), out.data(), 2, ElemType::kF16, axis); });
    rejects("negative count" + on,
            [&] { coll->all_reduce(buf.data(), -1, ElemType::kF64, ReduceOp::kSum, axis); });
    rejects("count above INT_MAX" + on, [&] {
      coll->broadcast(buf.data(), std::int64_t{INT_MAX} + 1, ElemType::kF64, 0, axis);
    });
    rejects("broadcast root == axis size" + on, [&] {
      coll->broadcast(buf.data(), 1, ElemType::kF64, static_cast<int>(coll->axis_size(axis)), axis);
    });
  }
  rejects("axis 2", [&] { coll->all_to_all(buf.data(), out.data(), 1, ElemType::kF64, 2); });
  rejects("axis -1", [&] { coll->axis_size(-1); });
  std::string failure;
  const bool ok = same_counters(coll->counters(), ByteCounters{}, failure);
  CHECK(all_ranks(ok, "rejected calls count nothing: " + failure));
}

}  // namespace
}  // namespace strata::comm::test
