#include "offload/inspect.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace strata::offload {

namespace {


std::string Hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

std::string Utc(uint64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  char b[40];
  std::strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&tt));
  return b;
}

// Reads the header of both slots of every chunk and keeps the newest step a slot of this run
// holds. A slot counts as this run's when its magic, chunk index and run id say so.
void ScanSlotHeaders(int fd, const FileHeader& h, const std::string& path, InspectReport* r) {
  const Geometry& geo = h.geo;
  bool any = false;
  for (uint64_t c = 0; c < geo.n_chunks(); ++c) {
    for (uint32_t s = 0; s < 2; ++s) {
      uint8_t b[kSlotHeaderBytes];
      size_t got = 0;
      if (!PreadFull(fd, b, sizeof b, geo.slot_offset(c, s), path, &got).ok() || got != sizeof b) continue;
      uint32_t magic = 0;
      const SlotHeader sh = PeekSlotHeader(b, &magic);
      if (magic != kSlotMagic || sh.chunk != c || sh.run_id != h.run_id) continue;
      if (!any || sh.step > r->newest_slot_step) {
        r->newest_slot_step = sh.step;
        r->evidence_detail = DescribeSlot(geo, c, s, path) + " holds step " + std::to_string(sh.step);
      }
      any = true;
    }
  }
  if (!any) r->evidence_detail = "no slot of this run was written yet";
  r->evidence = any && r->newest_slot_step > 0 ? CommitEvidence::kCommitted : CommitEvidence::kAtMostStep0;
}

}  // namespace

const char* CommitEvidenceName(CommitEvidence e) {
  switch (e) {
    case CommitEvidence::kManifestValid: return "manifest valid";
    case CommitEvidence::kNoStateFile: return "no state file";
    case CommitEvidence::kNothingWritten: return "nothing written";
    case CommitEvidence::kAtMostStep0: return "at most step 0 committed";
    case CommitEvidence::kCommitted: return "committed steps, manifest lost";
    case CommitEvidence::kUnknown: return "unknown (header damaged)";
  }
  return "?";
}

bool NothingCommitted(CommitEvidence e) {
  return e == CommitEvidence::kNoStateFile || e == CommitEvidence::kNothingWritten ||
         e == CommitEvidence::kAtMostStep0;
}

std::string InspectReport::EvidenceText() const {
  switch (evidence) {
    case CommitEvidence::kManifestValid: return "";
    case CommitEvidence::kNoStateFile:
      return "there is no " + std::string(kStateFileName) + ", so nothing was ever committed";
    case CommitEvidence::kNothingWritten:
      return std::string(kStateFileName) + " has no header yet (its creation was cut short), so nothing was ever committed";
    case CommitEvidence::kAtMostStep0:
      return "no slot holds a step after 0 (" + evidence_detail + "), so at most the initial state was committed";
    case CommitEvidence::kCommitted:
      return "steps were committed (" + evidence_detail + ", which is written only after step " +
             std::to_string(newest_slot_step - 1) + " was committed), but no valid " + kManifestName + " names them";
    case CommitEvidence::kUnknown:
      return "the header is damaged, so the slots cannot be read: committed steps may be in the file";
  }
  return "";
}

bool InspectReport::ok() const {
  return manifest_status.ok() && header_status.ok() && (!verified || chunks_ok == chunks.size());
}

Result<InspectReport> InspectState(const std::string& dir, bool verify,
                                   const std::function<void(uint64_t, uint64_t)>& progress) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return Status::NotFound(dir + ": not a directory");
  InspectReport r;
  r.dir = dir;
  auto m = ReadManifest(dir);
  if (m.ok()) r.manifest = *m; else r.manifest_status = m.status();

  const std::string path = dir + "/" + kStateFileName;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const bool missing = errno == ENOENT;
    r.header_status = missing ? Status::Corruption(path + ": missing") : Status::IOError(path + ": open: " + strerror(errno));
    if (!r.manifest_status.ok()) r.evidence = missing ? CommitEvidence::kNoStateFile : CommitEvidence::kUnknown;
    return r;
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat sb;
  if (::fstat(fd, &sb) != 0) return Status::IOError(path + ": stat: " + strerror(errno));
  r.file_size = static_cast<uint64_t>(sb.st_size);
  std::vector<uint8_t> hb(kFileHeaderBytes);
  size_t got = 0;
  STRATA_RETURN_IF_ERROR(PreadFull(fd, hb.data(), hb.size(), 0, path, &got));
  auto h = DecodeFileHeader(std::span<const uint8_t>(hb.data(), got), path);
  if (!h.ok()) {
    r.header_status = h.status();
    // Create writes the header before any slot or manifest, so a file without one (shorter than
    // a header, or a header of zeros from fallocate) has never held a committed step.
    const bool unwritten = got < kFileHeaderBytes ? std::all_of(hb.begin(), hb.begin() + got, [](uint8_t b) { return b == 0; })
                                                  : std::all_of(hb.begin(), hb.end(), [](uint8_t b) { return b == 0; });
    if (!r.manifest_status.ok()) r.evidence = unwritten ? CommitEvidence::kNothingWritten : CommitEvidence::kUnknown;
    return r;
  }
  r.header = *h;
  const Geometry& geo = h->geo;
  if (r.file_size != geo.file_bytes())
    r.header_status = Status::Corruption(path + ": " + std::to_string(r.file_size) + " bytes, but its header says " +
                                         std::to_string(geo.file_bytes()) +
                                         (r.file_size < geo.file_bytes() ? " (truncated)" : " (trailing bytes)"));
  if (r.manifest && r.manifest->run_id != h->run_id)
    r.manifest_status = Status::Corruption(dir + "/" + kManifestName + ": belongs to another state file (run id " +
                                           Hex(r.manifest->run_id) + ", the file's is " + Hex(h->run_id) + ")");
  else if (r.manifest && (r.manifest->n_chunks != geo.n_chunks() || r.manifest->file_bytes != geo.file_bytes()))
    r.manifest_status = Status::Corruption(dir + "/" + kManifestName + ": chunk count or file size differs from " +
                                           path + "'s header");
  if (!r.manifest_status.ok()) {
    ScanSlotHeaders(fd, *h, path, &r);
    return r;
  }
  if (!verify) return r;

  r.verified = true;
  const uint64_t step = r.manifest->committed_step;
  const uint32_t slot = static_cast<uint32_t>(step % 2);
  std::vector<uint8_t> buf(geo.slot_bytes());
  const uint64_t n = geo.n_chunks();
  for (uint64_t c = 0; c < n; ++c) {
    ChunkReport cr;
    cr.chunk = c;
    const size_t len = AlignUp(kSlotHeaderBytes + Geometry::PayloadBytes(geo.layout, geo.chunk_len(c)), kAlign);
    Status st = PreadFull(fd, buf.data(), len, geo.slot_offset(c, slot), path, &got);
    if (st.ok() && got < len)
      st = Status::Corruption(DescribeSlot(geo, c, slot, path) + ": truncated: the file ends " +
                              std::to_string(len - got) + " bytes before the end of this slot");
    if (st.ok()) st = VerifySlot(buf.data(), geo, h->run_id, c, slot, step, path);
    cr.committed = st;
    if (st.ok()) ++r.chunks_ok;
    uint8_t other[kSlotHeaderBytes];
    if (PreadFull(fd, other, sizeof other, geo.slot_offset(c, 1 - slot), path, &got).ok() && got == sizeof other) {
      uint32_t magic = 0;
      const SlotHeader oh = PeekSlotHeader(other, &magic);
      cr.other_written = magic == kSlotMagic && oh.chunk == c && oh.run_id == h->run_id;
      cr.other_step = oh.step;
    }
    r.chunks.push_back(std::move(cr));
    if (progress && (c % 64 == 63 || c + 1 == n)) progress(c + 1, n);
  }
  return r;
}

std::string InspectReport::ToText(bool list_all_chunks) const {
  std::string s = "strata state directory " + dir + "\n";
  char b[512];
  if (manifest) {
    std::snprintf(b, sizeof b, "  %-13s committed step %llu at %s (run %s)\n", kManifestName,
                  (unsigned long long)manifest->committed_step, Utc(manifest->unix_seconds).c_str(),
                  Hex(manifest->run_id).c_str());
    s += b;
  }
  if (!manifest_status.ok()) s += std::string("  ") + kManifestName + "      BAD: " + manifest_status.message() + "\n";
  if (header) {
    const Geometry& g = header->geo;
    std::snprintf(b, sizeof b,
                  "  %-13s version %u, layout %s, %llu bytes\n"
                  "                %llu parameters in %llu chunks of %u (slots of %llu bytes)\n"
                  "                AdamW beta1 %g, beta2 %g, eps %g, weight decay %g\n",
                  kStateFileName, header->version, LayoutName(g.layout), (unsigned long long)file_size,
                  (unsigned long long)g.n_params, (unsigned long long)g.n_chunks(), g.chunk_params,
                  (unsigned long long)g.slot_bytes(), header->hyper.beta1, header->hyper.beta2, header->hyper.eps,
                  header->hyper.weight_decay);
    s += b;
  }
  if (!header_status.ok()) s += std::string("  ") + kStateFileName + "  BAD: " + header_status.message() + "\n";
  if (evidence != CommitEvidence::kManifestValid) s += "  slots         " + EvidenceText() + "\n";
  if (!verified) {
    if (manifest_status.ok() && header) s += "  chunks        not checked\n";
    else s += "  chunks        not checked: no readable committed step to check them against\n";
  } else {
    int listed = 0;
    for (const ChunkReport& c : chunks) {
      if (c.committed.ok() && !list_all_chunks) continue;
      if (!list_all_chunks && ++listed > 20) {
        s += "  ...           (more corrupt chunks: --all lists every one)\n";
        break;
      }
      std::snprintf(b, sizeof b, "  chunk %-7llu %s", (unsigned long long)c.chunk,
                    c.committed.ok() ? "ok" : ("CORRUPT: " + c.committed.message()).c_str());
      s += b;
      if (list_all_chunks && c.other_written) s += "; other slot holds step " + std::to_string(c.other_step);
      s += "\n";
    }
    std::snprintf(b, sizeof b, "  chunks        %llu of %zu verify at step %llu (slot %c)%s\n",
                  (unsigned long long)chunks_ok, chunks.size(), (unsigned long long)manifest->committed_step,
                  manifest->committed_step % 2 == 0 ? 'A' : 'B',
                  chunks_ok == chunks.size() ? "" : ": the state is CORRUPT");
    s += b;
  }
  return s;
}

nlohmann::json InspectReport::ToJson() const {
  nlohmann::json j;
  j["dir"] = dir;
  j["ok"] = ok();
  j["manifest_error"] = manifest_status.ok() ? "" : manifest_status.ToString();
  if (manifest) {
    j["committed_step"] = manifest->committed_step;
    j["committed_at"] = Utc(manifest->unix_seconds);
    j["run_id"] = Hex(manifest->run_id);
  }
  j["state_file_error"] = header_status.ok() ? "" : header_status.ToString();
  if (header) {
    const Geometry& g = header->geo;
    j["version"] = header->version;
    j["layout"] = LayoutName(g.layout);
    j["params"] = g.n_params;
    j["chunk_params"] = g.chunk_params;
    j["n_chunks"] = g.n_chunks();
    j["slot_bytes"] = g.slot_bytes();
    j["file_bytes"] = file_size;
    j["hyper"] = {{"beta1", header->hyper.beta1}, {"beta2", header->hyper.beta2}, {"eps", header->hyper.eps},
                  {"weight_decay", header->hyper.weight_decay}};
  }
  if (evidence != CommitEvidence::kManifestValid) {
    j["commit_evidence"] = CommitEvidenceName(evidence);
    j["commit_evidence_detail"] = EvidenceText();
  }
  j["verified"] = verified;
  if (verified) {
    j["chunks_ok"] = chunks_ok;
    nlohmann::json bad = nlohmann::json::array();
    for (const ChunkReport& c : chunks)
      if (!c.committed.ok()) bad.push_back({{"chunk", c.chunk}, {"error", c.committed.ToString()}});
    j["corrupt_chunks"] = bad;
  }
  return j;
}

}  // namespace strata::offload
