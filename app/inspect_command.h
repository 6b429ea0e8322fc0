// `strata inspect FILE`: describes any Strata file. Model: ops by kind, parameter count, FLOPs
// per token, parameter and activation memory. Dataset: shape, vocab, a decoded sample. Gradient
// dumps: step, loss, tensors. Prints to stdout; InputError for unreadable files.
#pragma once

#include <string>

namespace strata::app {

int run_inspect(const std::string& path);

}  // namespace strata::app
