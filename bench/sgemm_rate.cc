// sgemm_rate: single-thread cblas_sgemm GFLOP/s at the GEMM shapes of the benchmark GPT step
// (hidden 256, 8 x 128 = 1024 tokens), the denominator of the "GEMM floor" in
// bench/step_vs_torch.sh. Run: OPENBLAS_NUM_THREADS=1 build/bench/sgemm_rate [--reps N]
// Prints one JSON line per shape (M x N x K, row-major C[M,N] = A[M,K] B[K,N]) and a last line
// with the best rate. Forces one BLAS thread where the BLAS is OpenBLAS.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

// OpenBLAS's thread control, weak so the program still links against another BLAS.
extern "C" void openblas_set_num_threads(int num_threads) __attribute__((weak));

namespace {

struct Shape {
  int m, n, k;
  const char* what;  // where the shape occurs in the GPT step
};

// Times `reps` calls (after one warm-up) and returns the best and median seconds per call.
void time_sgemm(const Shape& s, int reps, double* best_s, double* median_s) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> a(static_cast<size_t>(s.m) * s.k), b(static_cast<size_t>(s.k) * s.n),
      c(static_cast<size_t>(s.m) * s.n, 0.f);
  for (auto& x : a) x = dist(rng);
  for (auto& x : b) x = dist(rng);
  auto call = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.m, s.n, s.k, 1.f, a.data(), s.k,
                b.data(), s.n, 0.f, c.data(), s.n);
  };
  call();  // warm-up: page in buffers, let OpenBLAS allocate its workspace
  std::vector<double> t(reps);
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    t[r] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  std::sort(t.begin(), t.end());
  *best_s = t.front();
  *median_s = t[reps / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 20;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--reps N]   (N >= 1, default 20)\n", argv[0]);
      return 2;
    }
  }
  if (reps < 1) {
    std::fprintf(stderr, "sgemm_rate: --reps must be >= 1\n");
    return 2;
  }
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(1);
  const char* env_threads = std::getenv("OPENBLAS_NUM_THREADS");

  const Shape shapes[] = {
      {1024, 768, 256, "c_attn forward: tokens x 3H x H"},
      {1024, 1024, 256, "mlp.c_fc forward: tokens x 4H x H"},
      {1024, 256, 1024, "mlp.c_proj forward / c_fc input grad: tokens x H x 4H"},
      {256, 1024, 1024, "c_fc weight grad: H x 4H x tokens"},
      {1024, 256, 256, "attn.c_proj, LM head (V=256): tokens x H x H"},
      {1024, 1024, 1024, "1024^3 reference"},
  };
  double best_gflops = 0.0;
  std::string best_shape;
  for (const Shape& s : shapes) {
    double best_s = 0.0, median_s = 0.0;
    time_sgemm(s, reps, &best_s, &median_s);
    const double flop = 2.0 * s.m * s.n * s.k;
    const double gflops = flop / best_s * 1e-9;
    std::printf(
        "{\"m\": %d, \"n\": %d, \"k\": %d, \"gflops_best\": %.2f, \"gflops_median\": %.2f, "
        "\"reps\": %d, \"what\": \"%s\"}\n",
        s.m, s.n, s.k, gflops, flop / median_s * 1e-9, reps, s.what);
    if (gflops > best_gflops) {
      best_gflops = gflops;
      best_shape = std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k);
    }
  }
  std::printf(
      "{\"best_gflops\": %.2f, \"best_shape\": \"%s\", \"threads\": 1, "
      "\"openblas_set_num_threads\": %s, \"OPENBLAS_NUM_THREADS\": \"%s\"}\n",
      best_gflops, best_shape.c_str(), openblas_set_num_threads ? "true" : "false",
      env_threads ? env_threads : "");
  return 0;
}
