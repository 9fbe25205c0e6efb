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

// What a state directory proves about its commits when its MANIFEST is missing or does not fit
// the state file (docs/formats/state-file.md, "A state directory without a manifest"). Read from
// the header and the 64-byte slot headers alone; checksums play no part, so a damaged slot
// header can only make the verdict more cautious.
enum class CommitEvidence {
  kManifestValid,   // nothing to judge: the manifest names the committed step
  kNoStateFile,     // no state.strata: Create never got that far, nothing was ever committed
  kNothingWritten,  // state.strata shorter than a header, or a header of zeros: killed before
                    // Create wrote the header, which precedes every slot and every manifest
  kAtMostStep0,     // a valid header, and no slot of this run holds a step after 0: at most the
                    // initial state (step 0, which a run rebuilds from its run.json) was committed
  kCommitted,       // a slot of this run holds step t >= 1, written only once a manifest had
                    // committed step t-1: committed work whose manifest is lost
  kUnknown,         // the header is damaged, so the slots cannot be found: assume committed work
};
const char* CommitEvidenceName(CommitEvidence e);
// True when starting the directory over cannot lose a committed step (kNoStateFile,
// kNothingWritten, kAtMostStep0).
bool NothingCommitted(CommitEvidence e);

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
  // Set when the manifest is not valid (else kManifestValid); evidence_detail says which slot
  // proves it, e.g. "slot B of chunk 5 (bytes ..) holds step 139".
  CommitEvidence evidence = CommitEvidence::kManifestValid;
  std::string evidence_detail;
  uint64_t newest_slot_step = 0;  // the newest step a slot of this run holds (kCommitted, kAtMostStep0)

  bool ok() const;
  std::string ToText(bool list_all_chunks) const;
  // One sentence on what the evidence means (empty with a valid manifest), e.g. "a step was
  // committed (slot B of chunk 5 ... holds step 139), but no valid MANIFEST names it".
  std::string EvidenceText() const;
  nlohmann::json ToJson() const;
};

// progress(chunks_done, chunks_total) is called now and then.
[[nodiscard]] Result<InspectReport> InspectState(const std::string& dir, bool verify,
                                                 const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace strata::offload
