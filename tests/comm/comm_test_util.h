// Shared helpers for the comm suites (run under mpiexec). Ranks agree before asserting
// (STYLE.md 37): every rank calls all_ranks() at the same points, so one rank's failure shows on
// rank 0's report and no rank is left waiting. Raw MPI here, so the checks do not lean on the
// code under test.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "comm/collectives.h"
#include "comm/mesh.h"

namespace strata::comm::test {

// The collectives' element type of a test's C++ type (double, float, else int).
template <class T>
constexpr ElemType elem_type_of() {
  if constexpr (std::is_same_v<T, double>) return ElemType::kF64;
  if constexpr (std::is_same_v<T, float>) return ElemType::kF32;
  return ElemType::kI32;
}

inline int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

inline int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

// True on every rank iff `ok` on every rank; a failing rank prints `what` to stderr (only rank
// 0's stdout is kept by the test main).
inline bool all_ranks(bool ok, const std::string& what) {
  if (!ok) std::fprintf(stderr, "[rank %d] check failed: %s\n", world_rank(), what.c_str());
  int mine = ok ? 1 : 0, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);  // collective over world
  return all == 1;
}

// A private copy of world with MPI_ERRORS_RETURN (the test main leaves world on the default
// fatal handler, under which a failing MPI call would abort instead of throwing comm::Error).
inline Communicator dup_world() {
  MPI_Comm dup = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);  // collective over world
  return Communicator(dup);
}

inline StageLayout layout(std::vector<std::int64_t> devices, std::int64_t d0, std::int64_t d1) {
  StageLayout s;
  s.devices = std::move(devices);
  s.d0 = d0;
  s.d1 = d1;
  return s;
}

// A named list of stages, built for the current world size.
struct MeshCase {
  std::string name;
  std::vector<StageLayout> stages;
};

// The valid layouts every suite runs on, for n world ranks (n = 4: 1x4, 4x1, 2x2, two stages of
// 2, a rotated 2x2, and 3x1 over ranks 3, 2, 1 with rank 0 left out; n = 3: 1x3, 3x1, stages {0}
// and {1, 2}, a rotated 1x3, and 2x1 over ranks 2, 1).
inline std::vector<MeshCase> mesh_cases(int n) {
  std::vector<std::int64_t> all, rotated, reversed_but_0;
  for (int i = 0; i < n; ++i) all.push_back(i);
  for (int i = 0; i < n; ++i) rotated.push_back((i + 1) % n);
  for (int i = n - 1; i >= 1; --i) reversed_but_0.push_back(i);
  const int k = n / 2;
  std::vector<std::int64_t> first(all.begin(), all.begin() + k), second(all.begin() + k, all.end());

  std::vector<MeshCase> cases;
  cases.push_back({"one stage 1 x n", {layout(all, 1, n)}});
  cases.push_back({"one stage n x 1", {layout(all, n, 1)}});
  if (n % 2 == 0) cases.push_back({"one stage 2 x n/2", {layout(all, 2, n / 2)}});
  if (k >= 1) {
    cases.push_back(
        {"two stages: k x 1 and 1 x (n - k)", {layout(first, k, 1), layout(second, 1, n - k)}});
  }
  if (n % 2 == 0) {
    cases.push_back({"rotated 2 x n/2", {layout(rotated, 2, n / 2)}});
  } else {
    cases.push_back({"rotated 1 x n", {layout(rotated, 1, n)}});
  }
  if (n >= 2) {
    cases.push_back({"reversed (n-1) x 1 without rank 0", {layout(reversed_but_0, n - 1, 1)}});
  }
  return cases;
}

// Where world rank r sits in `stages`, computed from the layout alone.
struct Place {
  int stage = -1;
  std::int64_t d0 = 1, d1 = 1, c0 = 0, c1 = 0, index = 0;
  std::vector<std::int64_t> members[2];  // world ranks of my axis-0 / axis-1 group, in order
};

inline Place place_of(const std::vector<StageLayout>& stages, int r) {
  Place p;
  p.members[0] = {r};
  p.members[1] = {r};
  for (std::size_t s = 0; s < stages.size(); ++s) {
    const StageLayout& st = stages[s];
    for (std::size_t i = 0; i < st.devices.size(); ++i) {
      if (st.devices[i] != r) continue;
      p.stage = static_cast<int>(s);
      p.d0 = st.d0;
      p.d1 = st.d1;
      p.index = static_cast<std::int64_t>(i);
      p.c0 = p.index / st.d1;
      p.c1 = p.index % st.d1;
      p.members[0].clear();
      p.members[1].clear();
      for (std::int64_t j = 0; j < st.d0; ++j) p.members[0].push_back(st.devices[j * st.d1 + p.c1]);
      for (std::int64_t j = 0; j < st.d1; ++j) p.members[1].push_back(st.devices[p.c0 * st.d1 + j]);
    }
  }
  return p;
}

}  // namespace strata::comm::test
