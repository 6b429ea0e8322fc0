// Shared helpers of the app tests: norm-wise tensor comparison (DESIGN.md section 6), random
// values, and a temporary directory removed at scope exit.
#pragma once

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace strata::test {

// ||a - b|| <= rtol * ||b|| + atol, with the norms printed when it fails.
inline bool close_normwise(const std::vector<double>& a, const std::vector<double>& b, double rtol,
                           double atol, const std::string& what) {
  if (a.size() != b.size()) {
    UNSCOPED_INFO(what << ": sizes " << a.size() << " vs " << b.size());
    return false;
  }
  double diff = 0, ref = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return false;
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    ref += b[i] * b[i];
  }
  diff = std::sqrt(diff);
  ref = std::sqrt(ref);
  const bool ok = diff <= rtol * ref + atol;
  if (!ok)
    UNSCOPED_INFO(what << ": ||a-b|| = " << diff << ", ||b|| = " << ref << ", rtol " << rtol);
  return ok;
}

inline std::vector<double> random_values(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(-scale, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("strata-test-" + tag + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace strata::test
