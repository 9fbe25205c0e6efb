// strata: a trainer for people with more model than hardware.
#include <cstdio>
#include <exception>

#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "strata: fine-tune large models on one machine with 8-bit optimizer state, join a training\n"
      "swarm, and profile offloaded training.\n\n"
      "Run `strata COMMAND --help` for the flags of each command."};
  app.set_version_flag("--version", "strata 0.1.0");
  app.require_subcommand(1);
  app.fallthrough();
  int exit_code = 0;
  strata::tools::AddFinetuneCommand(app, &exit_code);
  strata::tools::AddBenchCommand(app, &exit_code);
  strata::tools::AddSwarmCommand(app, &exit_code);
  strata::tools::AddInspectCommand(app, &exit_code);
  strata::tools::AddInspectModelCommand(app, &exit_code);
  strata::tools::AddInfoCommand(app, &exit_code);
  // CLI11's own config files: `strata --config run.toml finetune ...`, a [COMMAND] section per
  // command; a key that names no flag is refused, naming it.
  app.set_config("--config", "",
                 "Read flags from a TOML file before the command: a section per command ([finetune],\n"
                 "[swarm.join], ...), the long flag names as keys (steps = 2000, offload = \"ram\",\n"
                 "resume = true); flags on the command line win");
  app.allow_config_extras(CLI::config_extras_mode::error);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strata: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
