// `strata bench offload`: optimizer steps over N parameters whose state lives on disk, through the
// offload engine and a fixed staging budget, beside the disk's own best O_DIRECT bandwidth
// probed with the same io_uring in the same run.
//
// Each chunk's gradient is made on the fly from a seeded generator, and each chunk's new weights
// are consumed as a checksum, so neither needs N parameters of memory: what is measured is the
// engine. The time spent making gradients is reported apart (gradient_seconds); step_seconds is
// the wall time of the step, gradient making included wherever it was not hidden.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "offload/state_file.h"
#include "runtime/status.h"

namespace strata {
class Tracer;
}

namespace strata::bench {

struct OffloadBenchOptions {
  uint64_t params = uint64_t{256} << 20;
  std::string path = "/tmp";  // a directory on the disk to measure; the bench works in a subdirectory
  uint64_t ram_budget = uint64_t{256} << 20;
  offload::Layout layout = offload::Layout::kQ8MasterMV;
  uint32_t chunk_params = 1u << 20;
  int steps = 3;
  int threads = 0;
  uint64_t probe_bytes = 0;  // 0: one step's worth of bytes, at most 2 GiB per request shape
  uint32_t grad_buffers = 4;
  uint64_t io_piece_bytes = uint64_t{1} << 20;
  uint32_t queue_depth = 16;
  bool ascending = false;  // chunk order of the gradients (default: descending, as backward)
  bool keep = false;      // keep the state directory
  bool verbose = true;    // progress on stderr
  Tracer* tracer = nullptr;
};

[[nodiscard]] Result<nlohmann::json> RunOffloadBench(const OffloadBenchOptions& opt);
std::string FormatOffloadBench(const nlohmann::json& r);

// Disk probe: sequential O_DIRECT writes (twice: the second, over written blocks, is timed) then reads of `bytes` in blocks of `block` bytes with
// `depth` in flight, through strata's io_uring. Returns {write_GBps, read_GBps}.
struct DiskProbe {
  double write_GBps = 0, read_GBps = 0;
  double first_write_GBps = 0;  // into freshly reserved blocks (not the best; reported apart)
  uint64_t bytes = 0;
  bool direct = false;
};
[[nodiscard]] Result<DiskProbe> ProbeDisk(const std::string& dir, uint64_t bytes, uint64_t block, uint32_t depth,
                                          uint64_t piece_bytes = uint64_t{1} << 20);

// Peak resident set of this process (VmHWM), bytes.
uint64_t PeakRssBytes();

}  // namespace strata::bench
