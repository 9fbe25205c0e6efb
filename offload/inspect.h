// `strata inspect STATE_DIR`: what a state directory holds and whether it verifies, read with
// plain preads and never written to. It reports as much as it can read: a bad manifest does not
// hide the header, and a corrupt chunk does not hide the others.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "offload/state_file.h"
#include "runtime/status.h"

namespace strata::offload {

struct ChunkReport {
  uint64_t chunk = 0;
  Status committed;             // the committed slot against the manifest's step
  uint64_t other_step = 0;      // the step the other slot holds (an older or uncommitted one)
  bool other_written = false;   // ... and whether that slot was ever written by this run
};

struct InspectReport {
  std::string dir;
  Status manifest_status;
  std::optional<Manifest> manifest;
  Status header_status;
  std::optional<FileHeader> header;
  uint64_t file_size = 0;
  bool verified = false;  // chunks were checked (needs a readable header and manifest)
  std::vector<ChunkReport> chunks;
  uint64_t chunks_ok = 0;

  bool ok() const;
  std::string ToText(bool list_all_chunks) const;
  nlohmann::json ToJson() const;
};

// progress(chunks_done, chunks_total) is called now and then.
[[nodiscard]] Result<InspectReport> InspectState(const std::string& dir, bool verify,
                                                 const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace strata::offload
