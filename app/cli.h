// Command-line entry: `strata model|data|inspect|plan|train ...`. Returns the process exit code
// (0 ok, 2 bad input, 1 failure during a run), DESIGN.md section 7.
#pragma once

namespace strata::app {
int run_cli(int argc, char** argv);
}  // namespace strata::app
