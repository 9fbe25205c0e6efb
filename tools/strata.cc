// strata: a trainer for people with more model than hardware.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

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
  strata::tools::AddInfoCommand(app, &exit_code);
  // --config FILE becomes the flags it holds, before CLI11 sees the command line.
  auto expanded = strata::tools::ExpandConfigFiles(std::vector<std::string>(argv + 1, argv + argc));
  if (!expanded.ok()) {
    std::fprintf(stderr, "strata: %s\n", expanded.status().ToString().c_str());
    return 2;
  }
  std::vector<char*> args{argv[0]};
  for (std::string& a : expanded.value()) args.push_back(a.data());
  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strata: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
