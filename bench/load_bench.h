// `strata bench load`: loading a bf16 sharded checkpoint (model::LoadCheckpoint) beside the
// disk's own sequential read bandwidth on the same shard files, measured in the same run.
//
// The bench writes a Llama-shaped checkpoint (about 1 B parameters by default: 16 layers, width
// 2048, 32 heads, 8 key-value heads, MLP 8192, vocabulary 32000, tied embeddings) in BF16, in
// shards of at most shard_bytes, into a temporary folder under `dir` (so on the disk to measure),
// and removes it at the end. Then, for `rounds` rounds, in an order that alternates:
//   disk   the shard files read with 8 MiB preads, buffered (posix_fadvise SEQUENTIAL, the path
//          the loader takes) and with O_DIRECT (when the file system allows it);
//   load   LoadCheckpoint into a fresh Model::Create, in a forked child, timed; the child's
//          peak RSS (VmHWM) against its RSS just before the load, which already holds the
//          model's buffers (fp32 weights and gradients, touched when made).
// Before every read the shards are fsynced and evicted from the page cache
// (posix_fadvise DONTNEED); mincore(2) confirms how much stayed resident, and one read of warm
// files shows the speed the eviction takes away.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/status.h"

namespace strata::bench {

struct LoadBenchOptions {
  std::string dir = "/tmp";  // the checkpoint is made in a temporary folder here
  int layers = 16;
  int width = 2048;          // heads: width / 64; key-value heads: heads / 4 (at least 1)
  int mlp = 0;               // 0: 4 * width
  int vocab = 32000;
  uint64_t shard_bytes = uint64_t{1} << 30;
  int rounds = 3;
  bool keep = false;    // keep the checkpoint folder
  bool verbose = true;  // progress on stderr
};

[[nodiscard]] Result<nlohmann::json> RunLoadBench(const LoadBenchOptions& opt);
std::string FormatLoadBench(const nlohmann::json& r);

}  // namespace strata::bench
