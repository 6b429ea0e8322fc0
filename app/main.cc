// strata: the one executable (DESIGN.md section 7, "Command line"). All logic lives in app/cli.
#include "app/cli.h"

int main(int argc, char** argv) { return strata::app::run_cli(argc, argv); }
