// PointToPoint around a ring of all world ranks: same-tag messages arrive in send order (a large
// one first, so the small one would overtake it if ordering were broken), sizes are checked on
// receipt, bad arguments throw before anything is sent, and p2p bytes are counted at the send.
#include <catch2/catch.hpp>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "comm/mpi_session.h"
#include "comm/point_to_point.h"
#include "comm_test_util.h"

namespace strata::comm::test {
namespace {

// Byte k of message `msg` from rank `src`.
unsigned char byte_of(int src, int msg, std::int64_t k) {
  return static_cast<unsigned char>((src * 31 + msg * 17 + k * 7) % 251);
}

std::vector<unsigned char> message(int src, int msg, std::int64_t bytes) {
  std::vector<unsigned char> m(static_cast<std::size_t>(bytes));
  for (std::int64_t k = 0; k < bytes; ++k) m[k] = byte_of(src, msg, k);
  return m;
}

TEST_CASE("p2p ring: same-tag messages arrive in order, bytes counted", "[comm][p2p]") {
  const int n = world_size(), r = world_rank();
  if (n < 2) {
    WARN("p2p tests need at least 2 ranks");
    return;
  }
  const int next = (r + 1) % n, prev = (r + n - 1) % n;
  const Communicator world = dup_world();
  // 1 MiB (past Open MPI's eager limit), then 16 bytes, then an empty message, all on one tag.
  const std::int64_t sizes[3] = {std::int64_t{1} << 20, 16, 0};
  constexpr int kTag = 5;
  std::vector<std::vector<unsigned char>> out, in;
  for (int m = 0; m < 3; ++m) {
    out.push_back(message(r, m, sizes[m]));
    in.emplace_back(static_cast<std::size_t>(sizes[m]), 0);
  }
  bool ok = true;
  std::string failure;
  {
    PointToPoint p2p(world.get());
    for (int m = 0; m < 3; ++m) p2p.isend(out[m].data(), sizes[m], next, kTag);
    try {
      for (int m = 0; m < 3; ++m) p2p.recv(in[m].data(), sizes[m], prev, kTag);
    } catch (const Error& e) {
      ok = false;  // a swapped order shows up as a size mismatch
      failure = e.what();
    }
    p2p.wait_sends();
    for (int m = 0; m < 3; ++m)
      if (in[m] != message(prev, m, sizes[m])) {
        ok = false;
        failure = "message " + std::to_string(m) + " content";
      }
    const ByteCounters& c = p2p.counters();
    const int k = static_cast<int>(CommKind::kP2P);
    // (1 << 20) + 16 + 0 bytes in 3 sends, all under axis 0; nothing else counted
    if (c.bytes[k][0] != 1048576.0 + 16.0 || c.bytes[k][1] != 0.0 || c.calls[k] != 3) {
      ok = false;
      failure = "p2p counters";
    }
    for (int other = 0; other < kNumCommKinds; ++other)
      if (other != k && (c.total(static_cast<CommKind>(other)) != 0.0 || c.calls[other] != 0)) {
        ok = false;
        failure = "non-p2p counters";
      }
  }
  CHECK(all_ranks(ok, failure));
}

TEST_CASE("p2p destructor waits for unfinished sends", "[comm][p2p]") {
  const int n = world_size(), r = world_rank();
  if (n < 2) return;
  const Communicator world = dup_world();
  const std::vector<unsigned char> out = message(r, 9, 4096);
  std::vector<unsigned char> in(out.size());
  {
    PointToPoint p2p(world.get());
    p2p.isend(out.data(), static_cast<std::int64_t>(out.size()), (r + 1) % n, 11);
    p2p.recv(in.data(), static_cast<std::int64_t>(in.size()), (r + n - 1) % n, 11);
  }  // no wait_sends(): the destructor completes the send
  CHECK(all_ranks(in == message((r + n - 1) % n, 9, 4096), "message received"));
}

TEST_CASE("p2p recv throws comm::Error on a size mismatch", "[comm][p2p]") {
  const int n = world_size(), r = world_rank();
  if (n < 2) return;
  const int next = (r + 1) % n, prev = (r + n - 1) % n;
  const Communicator world = dup_world();  // MPI_ERRORS_RETURN, so truncation reports
  PointToPoint p2p(world.get());
  std::vector<unsigned char> small(8, 1), large(16, 2), buf(16);
  p2p.isend(small.data(), 8, next, 3);
  p2p.isend(large.data(), 16, next, 4);

  bool short_threw = false, long_threw = false;
  try {
    p2p.recv(buf.data(), 16, prev, 3);  // 8 bytes arrive where 16 were expected
  } catch (const Error&) {
    short_threw = true;
  }
  try {
    p2p.recv(buf.data(), 8, prev, 4);  // 16 bytes arrive where 8 were expected (truncation)
  } catch (const Error&) {
    long_threw = true;
  }
  p2p.wait_sends();
  CHECK(all_ranks(short_threw, "shorter message than expected throws comm::Error"));
  CHECK(all_ranks(long_threw, "longer message than expected throws comm::Error"));
}

TEST_CASE("p2p rejects bad arguments before sending", "[comm][p2p]") {
  const int n = world_size(), r = world_rank();
  const Communicator world = dup_world();
  PointToPoint p2p(world.get());
  unsigned char byte = 0;
  const int other = (r + 1) % n;
  auto rejects = [&](const std::string& what, auto call) {
    bool threw = false;
    try {
      call();
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    CHECK(all_ranks(threw, what + " throws std::invalid_argument"));
  };
  rejects("tag -1", [&] { p2p.isend(&byte, 1, other, -1); });
  rejects("tag above kMaxPortableTag", [&] { p2p.isend(&byte, 1, other, kMaxPortableTag + 1); });
  rejects("send to self", [&] { p2p.isend(&byte, 1, r, 0); });
  rejects("dest == world size", [&] { p2p.isend(&byte, 1, n, 0); });
  rejects("negative bytes", [&] { p2p.isend(&byte, -1, other, 0); });
  rejects("recv from self", [&] { p2p.recv(&byte, 1, r, 0); });
  rejects("recv tag -1", [&] { p2p.recv(&byte, 1, other, -1); });
  CHECK(all_ranks(p2p.counters().calls[static_cast<int>(CommKind::kP2P)] == 0,
                  "rejected sends count nothing"));
}

}  // namespace
}  // namespace strata::comm::test
