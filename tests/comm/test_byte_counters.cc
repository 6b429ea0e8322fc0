// ByteCounters and elem_size_bytes: plain arithmetic, no communication.
#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>

#include "comm/byte_counters.h"
#include "comm/collectives.h"

namespace strata::comm {
namespace {

TEST_CASE("comm_kind_name gives plan.json's names", "[comm][counters]") {
  CHECK(std::string(comm_kind_name(CommKind::kAllReduce)) == "all_reduce");
  CHECK(std::string(comm_kind_name(CommKind::kAllGather)) == "all_gather");
  CHECK(std::string(comm_kind_name(CommKind::kReduceScatter)) == "reduce_scatter");
  CHECK(std::string(comm_kind_name(CommKind::kAllToAll)) == "all_to_all");
  CHECK(std::string(comm_kind_name(CommKind::kBroadcast)) == "broadcast");
  CHECK(std::string(comm_kind_name(CommKind::kP2P)) == "p2p");
}

TEST_CASE("ByteCounters add per kind and axis, total, +=, reset", "[comm][counters]") {
  ByteCounters a;
  a.add(CommKind::kAllReduce, 0, 40.0);
  a.add(CommKind::kAllReduce, 1, 8.0);
  a.add(CommKind::kAllReduce, 1, 2.0);
  a.add(CommKind::kP2P, 0, 100.0);
  CHECK(a.bytes[0][0] == 40.0);
  CHECK(a.bytes[0][1] == 10.0);
  CHECK(a.total(CommKind::kAllReduce) == 50.0);  // 40 + 8 + 2
  CHECK(a.calls[0] == 3);
  CHECK(a.total(CommKind::kP2P) == 100.0);
  CHECK(a.calls[static_cast<int>(CommKind::kP2P)] == 1);
  CHECK(a.total(CommKind::kAllGather) == 0.0);

  ByteCounters b;
  b.add(CommKind::kAllReduce, 0, 1.0);
  b.add(CommKind::kBroadcast, 1, 16.0);
  a += b;
  CHECK(a.bytes[0][0] == 41.0);
  CHECK(a.calls[0] == 4);
  CHECK(a.total(CommKind::kBroadcast) == 16.0);
  CHECK(a.calls[static_cast<int>(CommKind::kBroadcast)] == 1);

  a.reset();
  for (int k = 0; k < kNumCommKinds; ++k) {
    CHECK(a.total(static_cast<CommKind>(k)) == 0.0);
    CHECK(a.calls[k] == 0);
  }
  CHECK_THROWS_AS(a.add(CommKind::kAllGather, 2, 1.0), std::invalid_argument);
  CHECK_THROWS_AS(a.add(CommKind::kAllGather, -1, 1.0), std::invalid_argument);
  CHECK(a.calls[static_cast<int>(CommKind::kAllGather)] == 0);
}

TEST_CASE("elem_size_bytes", "[comm][counters]") {
  CHECK(elem_size_bytes(ElemType::kF64) == 8);
  CHECK(elem_size_bytes(ElemType::kF32) == 4);
  CHECK(elem_size_bytes(ElemType::kBF16) == 2);
  CHECK(elem_size_bytes(ElemType::kF16) == 2);
  CHECK(elem_size_bytes(ElemType::kI32) == 4);
}

}  // namespace
}  // namespace strata::comm
