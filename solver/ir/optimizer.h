// Optimizer description (torch.optim semantics) and learning-rate schedules.
// The update rules themselves are op kinds (kAdamW, kSgd) run by kernels; this header holds the
// hyper-parameters the config sets and the schedule that yields each step's lr. Pure C++.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata::solver {

struct OptimizerSpec {
  std::string kind = "adamw";         // "adamw" or "sgd"
  double lr = 3e-4;                   // peak learning rate
  double beta1 = 0.9;                 // AdamW
  double beta2 = 0.999;               // AdamW
  double eps = 1e-8;                  // AdamW
  double weight_decay = 0.0;          // decoupled (AdamW) or L2 (SGD), as torch
  double momentum = 0.0;              // SGD
  std::vector<std::string> no_decay;  // parameter-name patterns ('*' wildcard) without decay
  std::string schedule = "constant";  // "constant" or "cosine"
  std::int64_t warmup_steps = 0;      // linear warm-up steps (cosine)
  double min_lr = 0.0;                // cosine floor, reached at the last step
  double clip_grad_norm = 0.0;        // max global gradient norm; 0 = off
};

// lr of step `step` (1-based) of `total_steps`, computed before that step's update:
//   constant: lr
//   cosine:   step <= w:  lr * step / w                       (w = warmup_steps)
//             else:       min_lr + (lr - min_lr) * (1 + cos(pi * (step - w) / (T - w))) / 2
// so the last step T uses min_lr. T <= w keeps the warm-up ramp.
double learning_rate(const OptimizerSpec& spec, std::int64_t step, std::int64_t total_steps);

// Whether `name` matches a no_decay pattern ('*' matches any run of characters).
bool matches_pattern(const std::string& name, const std::string& pattern);

}  // namespace strata::solver
