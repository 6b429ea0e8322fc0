// Fuzz target: bytes -> strata::solver::decode_graph_json(text, batch 2). std::invalid_argument is
// the expected outcome; anything else escaping, a crash, a leak or a hang is a bug. A graph that
// decodes must encode, decode again, and encode to the same text (the header promises a decoded
// graph is always consistent).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "solver/ir/graph_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace strata::solver;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Graph graph;
  try {
    graph = decode_graph_json(text, 2);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  // Outside the try: a decoded graph that does not survive its own round trip is a bug.
  const std::string encoded = encode_graph_json(graph);
  const Graph again = decode_graph_json(encoded, 2);
  if (encode_graph_json(again) != encoded) std::abort();
  return 0;
}
