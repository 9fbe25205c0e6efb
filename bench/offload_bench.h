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
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "offload/io.h"
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
  uint64_t probe_bytes = 0;  // 0: one step's traffic (the bytes it reads), at most 8 GiB
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

// The disk's own bandwidth through strata's io_uring: sequential O_DIRECT passes over one probe
// file of `bytes` (as large as one step's traffic, so a cache in front of the disk helps the probe
// no more than it helps the steps). The file is written once untimed at creation (into freshly
// reserved blocks, which is slower and not the disk's best), then each Pass rewrites or reads all
// of it in blocks of `block` bytes, `depth` in flight, each block cut into 1 MiB requests.
class DiskProber {
 public:
  // Buffers for the largest shape to come (block * depth bytes); the file holds at least one
  // block of max_block. The first, untimed write uses first_block, first_depth.
  [[nodiscard]] static Result<std::unique_ptr<DiskProber>> Create(const std::string& dir, uint64_t bytes,
                                                                  uint64_t buffer_bytes, uint64_t max_block,
                                                                  uint64_t first_block, uint32_t first_depth);
  ~DiskProber();
  // GB/s (1e9 bytes per second) of one pass.
  [[nodiscard]] Result<double> Pass(bool write, uint64_t block, uint32_t depth);
  uint64_t bytes() const { return bytes_; }
  bool direct() const { return direct_; }
  double first_write_GBps() const { return first_write_GBps_; }

 private:
  DiskProber() = default;
  std::string path_;
  int fd_ = -1;
  bool direct_ = false;
  uint64_t bytes_ = 0;
  uint8_t* mem_ = nullptr;
  size_t mem_bytes_ = 0;
  std::unique_ptr<offload::IoBackend> backend_;
  std::unique_ptr<offload::IoQueue> queue_;
  double first_write_GBps_ = 0;
};

// The best of several passes.
struct DiskProbe {
  double write_GBps = 0, read_GBps = 0;
  double first_write_GBps = 0;  // into freshly reserved blocks (not the disk's best; reported apart)
  uint64_t bytes = 0;
  bool direct = false;
};

}  // namespace strata::bench
