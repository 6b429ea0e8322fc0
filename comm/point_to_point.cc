// Stage-to-stage transfers: non-blocking sends whose requests this object owns (it waits for
// them in its destructor, STYLE.md 24), blocking receives with a size check.
#include "comm/point_to_point.h"

#include <climits>
#include <stdexcept>
#include <string>

#include "comm/mpi_session.h"

namespace strata::comm {
namespace {

void check_message(const char* what, std::int64_t bytes, int tag) {
  if (bytes < 0 || bytes > INT_MAX)
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(bytes) +
                                " bytes is outside [0, INT_MAX]");
  if (tag < 0 || tag > kMaxPortableTag)
    throw std::invalid_argument(std::string(what) + ": tag " + std::to_string(tag) +
                                " is outside [0, " + std::to_string(kMaxPortableTag) + "]");
}

void check_peer(const char* what, const char* role, int peer, int rank, int size) {
  if (peer < 0 || peer >= size || peer == rank)
    throw std::invalid_argument(std::string(what) + ": " + role + " " + std::to_string(peer) +
                                " is not another world rank (this is rank " + std::to_string(rank) +
                                " of " + std::to_string(size) + ")");
}

}  // namespace

PointToPoint::PointToPoint(MPI_Comm world) : world_(world) {
  STRATA_MPI_CHECK(MPI_Comm_rank(world_, &rank_));
}

PointToPoint::~PointToPoint() {
  if (pending_.empty()) return;
  int finalized = 0;
  if (MPI_Finalized(&finalized) != MPI_SUCCESS || finalized) return;
  // Errors are ignored here: a destructor must not throw (STYLE.md 18).
  MPI_Waitall(static_cast<int>(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE);
}

void PointToPoint::isend(const void* buf, std::int64_t bytes, int dest, int tag) {
  check_message("isend", bytes, tag);
  int size = 0;
  STRATA_MPI_CHECK(MPI_Comm_size(world_, &size));
  check_peer("isend", "dest", dest, rank_, size);
  // Reserve first: once the send has started, storing its request must not fail.
  pending_.reserve(pending_.size() + 1);
  counters_.add(CommKind::kP2P, 0, static_cast<double>(bytes));
  MPI_Request request = MPI_REQUEST_NULL;
  STRATA_MPI_CHECK(MPI_Isend(buf, static_cast<int>(bytes), MPI_BYTE, dest, tag, world_, &request));
  pending_.push_back(request);
}

void PointToPoint::recv(void* buf, std::int64_t bytes, int src, int tag) {
  check_message("recv", bytes, tag);
  int size = 0;
  STRATA_MPI_CHECK(MPI_Comm_size(world_, &size));
  check_peer("recv", "src", src, rank_, size);
  MPI_Status status;
  // A longer message fails here with MPI_ERR_TRUNCATE; a shorter one is caught below.
  STRATA_MPI_CHECK(MPI_Recv(buf, static_cast<int>(bytes), MPI_BYTE, src, tag, world_, &status));
  int received = 0;
  STRATA_MPI_CHECK(MPI_Get_count(&status, MPI_BYTE, &received));
  if (received != bytes)
    throw Error("recv on rank " + std::to_string(rank_) + ": message from rank " +
                std::to_string(src) + " with tag " + std::to_string(tag) + " has " +
                std::to_string(received) + " bytes, expected " + std::to_string(bytes));
}

void PointToPoint::wait_sends() {
  // Take the requests first so that a failed wait does not leave them to the destructor.
  std::vector<MPI_Request> requests;
  requests.swap(pending_);
  STRATA_MPI_CHECK(
      MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE));
}

}  // namespace strata::comm
