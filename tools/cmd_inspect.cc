// `strata inspect STATE_DIR`: the header, the committed step, and which chunks verify.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <unistd.h>

#include "offload/inspect.h"
#include "tools/commands.h"

namespace strata::tools {

namespace {
struct InspectFlags {
  std::string dir;
  bool json = false;
  bool all = false;
  bool no_verify = false;
};

int RunInspect(const InspectFlags& f) {
  const bool tty = ::isatty(STDERR_FILENO) && !f.json;
  auto r = offload::InspectState(f.dir, !f.no_verify, [tty](uint64_t done, uint64_t total) {
    if (tty) std::fprintf(stderr, "\r  verifying chunk %llu of %llu", (unsigned long long)done, (unsigned long long)total);
  });
  if (tty) std::fprintf(stderr, "\r\033[K");
  if (!r.ok()) {
    std::fprintf(stderr, "strata inspect: %s\n", r.status().ToString().c_str());
    return 2;
  }
  if (f.json) std::printf("%s\n", r->ToJson().dump(2).c_str());
  else std::fputs(r->ToText(f.all).c_str(), stdout);
  return r->ok() ? 0 : 1;
}
}  // namespace

void AddInspectCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<InspectFlags>();
  auto* cmd = app.add_subcommand(
      "inspect",
      "Show what an optimizer state directory holds (header, committed step) and check every chunk\n"
      "of the committed step against its checksum. Reads only; never writes.\n"
      "Exit status: 0 the state verifies, 1 something is corrupt (each part named), 2 cannot read.\n"
      "Example: strata inspect run/state");
  cmd->add_option("STATE_DIR", flags->dir, "The state directory (holds MANIFEST and state.strata)")->required();
  cmd->add_flag("--json", flags->json, "Print the report as JSON");
  cmd->add_flag("--all", flags->all, "List every chunk, not only the corrupt ones");
  cmd->add_flag("--no-verify", flags->no_verify, "Only read the header and manifest (fast on huge states)");
  cmd->callback([flags, exit_code] { *exit_code = RunInspect(*flags); });
}

}  // namespace strata::tools
