// Placeholder: `strata bench swarm` (being written).
#include "tools/commands.h"

namespace strata::tools {
void AddBenchSwarmCommand(CLI::App& bench, int* exit_code) {
  (void)bench;
  (void)exit_code;
}
}  // namespace strata::tools
