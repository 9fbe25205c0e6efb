// The process the SIGKILL test kills: opens (or creates) a state directory and runs the
// deterministic steps of tests/offload/engine_util.h until TARGET is committed.
//   offload_crash_child DIR TARGET PARAMS CHUNK BUFFERS
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "offload/offload_engine.h"
#include "tests/offload/engine_util.h"

using namespace strata;
using namespace strata::offload;

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s DIR TARGET PARAMS CHUNK BUFFERS\n", argv[0]);
    return 64;
  }
  const std::string dir = argv[1];
  const uint64_t target = std::strtoull(argv[2], nullptr, 10);
  const uint64_t params = std::strtoull(argv[3], nullptr, 10);
  OffloadOptions o;
  o.layout = Layout::kQ8MasterMV;
  o.chunk_params = static_cast<uint32_t>(std::strtoul(argv[4], nullptr, 10));
  o.ram_budget = std::strtoull(argv[5], nullptr, 10) * Geometry{o.layout, params, o.chunk_params}.slot_bytes();
  o.threads = 2;
  Result<std::unique_ptr<OffloadEngine>> e = Status::NotFound("");
  if (std::filesystem::exists(dir + "/" + kManifestName)) {
    e = OffloadEngine::Open(dir, o);
  } else {
    e = OffloadEngine::Create(dir, params, testing::TestHyper(), o, testing::InitialWeights);
  }
  if (!e.ok()) {
    std::fprintf(stderr, "crash_child: %s\n", e.status().ToString().c_str());
    return 2;
  }
  Status st = testing::RunSteps(e->get(), target);
  if (!st.ok()) {
    std::fprintf(stderr, "crash_child: %s\n", st.ToString().c_str());
    return 2;
  }
  return 0;
}
