#include "app/buffer_packing.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>

namespace strata::app {
namespace {

std::int64_t round_up(std::int64_t bytes, std::int64_t alignment) {
  return (bytes + alignment - 1) / alignment * alignment;
}

void check(const std::vector<BufferLifetime>& buffers, std::int64_t alignment) {
  if (alignment < 1) throw std::invalid_argument("pack_buffers: alignment must be >= 1");
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    const BufferLifetime& b = buffers[i];
    bool ok = b.bytes >= 0 && !b.live.empty();
    for (std::size_t k = 0; ok && k < b.live.size(); ++k) {
      ok = b.live[k].first <= b.live[k].last && (k == 0 || b.live[k - 1].last < b.live[k].first);
    }
    if (!ok)
      throw std::invalid_argument("pack_buffers: buffer " + std::to_string(i) + " (" +
                                  std::to_string(b.bytes) + " bytes) has " +
                                  std::to_string(b.live.size()) +
                                  " live intervals, not sorted, disjoint and non-empty");
  }
}

bool overlap(const BufferLifetime& a, const BufferLifetime& b) {
  for (const LiveInterval& x : a.live)
    for (const LiveInterval& y : b.live)
      if (x.first <= y.last && y.first <= x.last) return true;
  return false;
}

}  // namespace

BufferPacking pack_buffers(const std::vector<BufferLifetime>& buffers, std::int64_t alignment) {
  check(buffers, alignment);
  const std::size_t n = buffers.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (buffers[a].bytes != buffers[b].bytes) return buffers[a].bytes > buffers[b].bytes;
    return buffers[a].live.front().first < buffers[b].live.front().first;
  });
  BufferPacking out;
  out.offset.assign(n, 0);
  std::vector<std::size_t> placed;
  std::vector<std::pair<std::int64_t, std::int64_t>> busy;  // [begin, end) of overlapping ones
  for (std::size_t i : order) {
    const std::int64_t size = round_up(buffers[i].bytes, alignment);
    busy.clear();
    for (std::size_t j : placed) {
      if (overlap(buffers[i], buffers[j]))
        busy.push_back({out.offset[j], out.offset[j] + round_up(buffers[j].bytes, alignment)});
    }
    std::sort(busy.begin(), busy.end());
    std::int64_t at = 0;  // lowest offset above every busy range that ends below it
    for (const auto& [begin, end] : busy) {
      if (begin >= at + size) break;  // the gap before this range fits
      at = std::max(at, end);
    }
    out.offset[i] = at;
    out.arena_bytes = std::max(out.arena_bytes, at + size);
    placed.push_back(i);
  }
  return out;
}

std::int64_t packing_lower_bound(const std::vector<BufferLifetime>& buffers,
                                 std::int64_t alignment) {
  check(buffers, alignment);
  std::map<std::int64_t, std::int64_t> delta;  // position -> change of the live bytes
  for (const BufferLifetime& b : buffers) {
    for (const LiveInterval& x : b.live) {
      delta[x.first] += round_up(b.bytes, alignment);
      delta[x.last + 1] -= round_up(b.bytes, alignment);
    }
  }
  std::int64_t live = 0, most = 0;
  for (const auto& [position, change] : delta) most = std::max(most, live += change);
  return most;
}

}  // namespace strata::app
