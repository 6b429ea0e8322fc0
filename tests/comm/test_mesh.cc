// Communicator ownership and build_mesh: coordinates, communicator sizes, ranks and members
// against the layout, for every mesh case of comm_test_util.h; bad stage lists throw on every
// rank before any split.
#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "comm/mesh.h"
#include "comm_test_util.h"

namespace strata::comm::test {
namespace {

bool has_errors_return(MPI_Comm comm) {
  MPI_Errhandler handler = MPI_ERRHANDLER_NULL;
  MPI_Comm_get_errhandler(comm, &handler);
  const bool ok = handler == MPI_ERRORS_RETURN;
  MPI_Errhandler_free(&handler);
  return ok;
}

// The world ranks of comm's members in rank order (collective over comm).
std::vector<std::int64_t> members_of(const Communicator& comm) {
  std::vector<int> ranks(static_cast<std::size_t>(comm.size()));
  const int me = world_rank();
  MPI_Allgather(&me, 1, MPI_INT, ranks.data(), 1, MPI_INT, comm.get());  // collective over comm
  return std::vector<std::int64_t>(ranks.begin(), ranks.end());
}

TEST_CASE("Communicator owns, moves and reports a communicator", "[comm][mesh]") {
  const Communicator null_comm;
  CHECK(null_comm.get() == MPI_COMM_NULL);
  CHECK(null_comm.rank() == -1);
  CHECK(null_comm.size() == 0);

  Communicator a = dup_world();
  bool ok = a.get() != MPI_COMM_NULL && a.rank() == world_rank() && a.size() == world_size() &&
            has_errors_return(a.get());
  CHECK(all_ranks(ok, "dup of world: rank, size, MPI_ERRORS_RETURN"));

  const MPI_Comm raw = a.get();
  Communicator b(std::move(a));
  ok = a.get() == MPI_COMM_NULL && b.get() == raw && b.size() == world_size();
  CHECK(all_ranks(ok, "move construction transfers the handle"));

  Communicator c = dup_world();
  c = std::move(b);  // frees c's own dup, takes b's
  ok = b.get() == MPI_COMM_NULL && c.get() == raw && c.rank() == world_rank();
  CHECK(all_ranks(ok, "move assignment transfers the handle"));

  CHECK_THROWS_AS(Communicator(MPI_COMM_WORLD), std::invalid_argument);
  CHECK_THROWS_AS(Communicator(MPI_COMM_SELF), std::invalid_argument);
}

TEST_CASE("build_mesh places every rank as its stage layout says", "[comm][mesh]") {
  const int n = world_size(), r = world_rank();
  for (const MeshCase& mc : mesh_cases(n)) {
    const Place want = place_of(mc.stages, r);
    // Split MPI_COMM_WORLD itself: its handler is the fatal default, so MPI_ERRORS_RETURN on the
    // results shows build_mesh set it rather than inheriting it.
    const Mesh mesh = build_mesh(MPI_COMM_WORLD, mc.stages);

    bool ok = mesh.world_rank == r && mesh.stage == want.stage && mesh.d0 == want.d0 &&
              mesh.d1 == want.d1 && mesh.c0 == want.c0 && mesh.c1 == want.c1;
    CHECK(all_ranks(ok, mc.name + ": stage, shape and coordinates"));

    if (want.stage < 0) {
      ok = mesh.stage_comm.get() == MPI_COMM_NULL && mesh.axis[0].get() == MPI_COMM_NULL &&
           mesh.axis[1].get() == MPI_COMM_NULL && mesh.axis_size(0) == 1 && mesh.axis_size(1) == 1;
    } else {
      const auto stage_size = static_cast<int>(mc.stages[want.stage].devices.size());
      ok = mesh.stage_comm.size() == stage_size && mesh.stage_comm.rank() == want.index &&
           mesh.stage_comm.rank() == want.c0 * want.d1 + want.c1 &&
           mesh.axis[0].size() == want.d0 && mesh.axis[0].rank() == want.c0 &&
           mesh.axis[1].size() == want.d1 && mesh.axis[1].rank() == want.c1 &&
           mesh.axis_size(0) == want.d0 && mesh.axis_size(1) == want.d1 &&
           mesh.axis_coord(0) == want.c0 && mesh.axis_coord(1) == want.c1 &&
           has_errors_return(mesh.stage_comm.get()) && has_errors_return(mesh.axis[0].get()) &&
           has_errors_return(mesh.axis[1].get());
    }
    CHECK(all_ranks(ok, mc.name + ": communicator sizes, ranks and error handlers"));

    // Group membership, checked by gathering world ranks over each communicator (members only).
    ok = true;
    if (want.stage >= 0) {
      std::vector<std::int64_t> stage_members = mc.stages[want.stage].devices;
      ok = members_of(mesh.stage_comm) == stage_members &&
           members_of(mesh.axis[0]) == want.members[0] &&
           members_of(mesh.axis[1]) == want.members[1];
    }
    CHECK(all_ranks(ok, mc.name + ": members of stage_comm, axis[0] and axis[1]"));
  }
}

TEST_CASE("build_mesh with no stages leaves every rank out", "[comm][mesh]") {
  const Mesh mesh = build_mesh(MPI_COMM_WORLD, {});
  const bool ok = mesh.stage == -1 && mesh.stage_comm.get() == MPI_COMM_NULL &&
                  mesh.axis[0].get() == MPI_COMM_NULL && mesh.axis[1].get() == MPI_COMM_NULL;
  CHECK(all_ranks(ok, "empty stage list"));
}

TEST_CASE("build_mesh rejects bad stage lists on every rank", "[comm][mesh]") {
  const int n = world_size();
  const std::vector<MeshCase> bad = {
      {"device == world size", {layout({0, n}, 1, 2)}},
      {"negative device", {layout({-1}, 1, 1)}},
      {"duplicate inside a stage", {layout({0, 0}, 1, 2)}},
      {"duplicate across stages", {layout({0}, 1, 1), layout({0}, 1, 1)}},
      {"shape does not match the devices", {layout({0}, 2, 1)}},
      {"zero-sized side", {layout({}, 0, 3)}},
      {"negative sides", {layout({0}, -1, -1)}},
      {"empty stage", {layout({}, 1, 1)}},
  };
  for (const MeshCase& mc : bad) {
    bool threw = false;
    std::string message;
    try {
      build_mesh(MPI_COMM_WORLD, mc.stages);
    } catch (const std::invalid_argument& e) {
      threw = true;
      message = e.what();
    }
    CHECK(all_ranks(threw && message.find("stages[") != std::string::npos,
                    mc.name + ": std::invalid_argument naming the field, got '" + message + "'"));
  }
  // Nobody was left inside a split: a valid mesh still builds everywhere.
  const Mesh mesh = build_mesh(MPI_COMM_WORLD, mesh_cases(n).front().stages);
  CHECK(all_ranks(mesh.stage_comm.size() == n, "valid mesh after the rejected ones"));
}

}  // namespace
}  // namespace strata::comm::test
