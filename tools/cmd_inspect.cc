// `strata inspect STATE_DIR`: the header, the committed step, and which chunks verify.
// `strata inspect-model DIR`: a checkpoint's family, shape, parameters, dtypes and shards, from
// its config.json and the shards' headers alone (no weights are read).
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
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
struct InspectModelFlags {
  std::string path;
  bool json = false;
  bool tensors = false;
};

std::string Grouped(uint64_t v) {
  std::string d = std::to_string(v), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i > 0 && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return out;
}

int RunInspectModel(const InspectModelFlags& f) {
  auto r = model::InspectCheckpoint(f.path);
  if (!r.ok()) {
    std::fprintf(stderr, "strata inspect-model: %s\n", r.status().ToString().c_str());
    return 2;
  }
  const model::ModelConfig& c = r->config;
  const uint64_t n = c.NumParams();
  std::vector<std::string> shards;
  for (const std::string& s : r->paths.shards) shards.push_back(s.substr(s.rfind('/') + 1));
  if (f.json) {
    nlohmann::json j{{"checkpoint", f.path},
                     {"arch", c.arch},
                     {"config", c.ToString()},
                     {"parameters", n},
                     {"dtype", r->dtype},
                     {"dtypes", r->dtypes},
                     {"tensors", r->tensors},
                     {"bytes", r->bytes},
                     {"fp32_bytes", n * 4},
                     {"shards", shards},
                     {"index", !r->paths.index.empty()}};
    if (f.tensors) {
      nlohmann::json t = nlohmann::json::array();
      for (const model::TensorSpec& s : model::ModelTensors(c)) t.push_back({{"name", s.name}, {"shape", s.shape}});
      j["tensor_list"] = t;
    }
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::string dtypes;
  for (const auto& [d, k] : r->dtypes) dtypes += (dtypes.empty() ? "" : ", ") + d + " x" + std::to_string(k);
  std::printf("checkpoint   %s\n", f.path.c_str());
  std::printf("family       %s\n", c.arch.c_str());
  std::printf("shape        %s\n", c.ToString().c_str());
  std::printf("parameters   %s (%.3f B)\n", Grouped(n).c_str(), n / 1e9);
  std::printf("weights      %s tensors, %s bytes on disk (%s); %s bytes as fp32 in memory\n",
              Grouped(r->tensors).c_str(), Grouped(r->bytes).c_str(), dtypes.c_str(), Grouped(n * 4).c_str());
  std::printf("shards       %zu%s\n", shards.size(), r->paths.index.empty() ? "" : " (model.safetensors.index.json)");
  for (const std::string& s : shards) std::printf("  %s\n", s.c_str());
  if (f.tensors) {
    for (const model::TensorSpec& s : model::ModelTensors(c)) {
      std::string shape;
      for (int64_t d : s.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
      std::printf("  %-56s [%s]\n", s.name.c_str(), shape.c_str());
    }
  }
  return 0;
}

}  // namespace

void AddInspectModelCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<InspectModelFlags>();
  auto* cmd = app.add_subcommand(
      "inspect-model",
      "Show what a model checkpoint holds without loading its weights: the family (gpt2, llama,\n"
      "mistral, qwen2), the shape, the parameter count, the dtypes and the shards. Reads config.json\n"
      "and the safetensors headers only; refuses, naming the file and key, what strata cannot train.\n"
      "Exit status: 0 readable, 2 refused.\n"
      "Example: strata inspect-model Llama-3.2-1B/");
  cmd->add_option("DIR", flags->path, "A checkpoint folder (config.json + model.safetensors or shards), or a file")
      ->required();
  cmd->add_flag("--json", flags->json, "Print the report as JSON");
  cmd->add_flag("--tensors", flags->tensors, "List every parameter tensor strata expects, with its shape");
  cmd->callback([flags, exit_code] { *exit_code = RunInspectModel(*flags); });
}

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
