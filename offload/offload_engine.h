// The offloaded optimizer step: optimizer state lives in a state file on disk (NVMe) and streams
// through a fixed ring of staging buffers, chunk by chunk:
//
//   read slot (t-1) mod 2 --> verify --> [gradient of the chunk arrives] --> 8-bit AdamW on the
//   thread pool --> new weights handed to the caller --> seal (checksum) --> write slot t mod 2
//
// and, once every chunk of step t is durable (fdatasync), the manifest commits step t.
//
// Threads: an event-loop thread runs an Asio io_context in which each chunk is a C++20 coroutine;
// io_uring completions reach it through an eventfd. A compute thread runs the updates on the
// ThreadPool. The caller's thread only hands in gradients (never blocks) and waits in EndStep.
//
// Memory is a budget: ram_budget / slot_bytes staging buffers, allocated once; a chunk holds one
// from its read to the end of its write, so at most that many chunks are in flight (the buffer
// pool is a bounded channel: back-pressure, not queues). Reads run ahead of gradients in the
// expected order (backward produces the last layer first, so by default the last chunk first), but
// a chunk whose gradient has arrived goes before any further prefetch.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "offload/io.h"
#include "offload/state_file.h"
#include "runtime/cpu_features.h"
#include "runtime/status.h"

namespace strata {
class Tracer;
}

namespace strata::offload {

struct OffloadOptions {
  // For Create; Open takes them from the file.
  Layout layout = Layout::kQ8MasterMV;
  uint32_t chunk_params = 1u << 20;
  // Host memory for staging buffers (--offload-ram). At least two slots' worth.
  uint64_t ram_budget = uint64_t{256} << 20;
  int threads = 0;  // compute threads, the compute thread included; 0 = all cores
  uint32_t queue_depth = 16;  // raw requests in flight (io_uring entries)
  uint64_t io_piece_bytes = uint64_t{1} << 20;  // each slot transfer goes out in pieces of this size
  bool direct = true;  // O_DIRECT; falls back to buffered I/O where the file system refuses it
  SimdLevel simd = SimdLevelActive();
  Tracer* tracer = nullptr;  // records every stage of every chunk when set
  // The raw I/O backend (tests wrap it to inject faults). Default: MakeDefaultBackend.
  std::function<Result<std::unique_ptr<IoBackend>>(uint32_t entries)> make_backend;
};

struct OffloadStats {
  uint64_t bytes_read = 0, bytes_written = 0;
  uint64_t chunks_updated = 0;
  uint64_t io_retries = 0, short_transfers = 0;
  double compute_seconds = 0;    // on the compute thread (verify, update, seal)
  double grad_wait_seconds = 0;  // summed over chunks: read done, gradient not there yet
};

class OffloadEngine {
 public:
  // Fills the master weights of one chunk at step 0 (q8_master_mv only). Runs on the compute thread.
  using InitFn = std::function<void(uint64_t chunk, std::span<float> master)>;
  // A chunk's new weights, as soon as they exist (before they are durable). Runs on the compute
  // thread; with q8_master_mv the span points into a staging buffer: copy what you need.
  using ChunkDone = std::function<void(uint64_t chunk, std::span<const float> new_weights)>;

  // Makes a new state directory (refused if it already holds a committed state), writes step 0
  // (zero moments, master weights from init) and commits it.
  [[nodiscard]] static Result<std::unique_ptr<OffloadEngine>> Create(const std::string& dir, uint64_t n_params,
                                                                     const StateHyper& hyper,
                                                                     const OffloadOptions& opt, const InitFn& init);
  // Opens the last committed step of a state directory (resume).
  [[nodiscard]] static Result<std::unique_ptr<OffloadEngine>> Open(const std::string& dir, const OffloadOptions& opt);
  ~OffloadEngine();
  OffloadEngine(const OffloadEngine&) = delete;
  OffloadEngine& operator=(const OffloadEngine&) = delete;

  const Geometry& geometry() const;
  const StateHyper& hyper() const;
  uint64_t committed_step() const;
  const std::string& dir() const;
  std::string state_path() const;
  size_t staging_buffers() const;
  uint64_t staging_bytes() const;
  std::string backend_name() const;
  bool direct_io() const;
  OffloadStats stats() const;

  // Starts step committed_step()+1 with learning rate lr. Call it as early as possible (before
  // backward): reads of the first chunks in `order` (default: last chunk first) start at once.
  [[nodiscard]] Status BeginStep(double lr, ChunkDone on_done, std::vector<uint64_t> order = {});
  // Hands in the gradient of one chunk, in any order, from any thread; never blocks. `weights`:
  // for layouts without master weights, the chunk's weights, updated in place. Both spans must
  // stay valid until on_done for this chunk has returned, or EndStep has returned.
  [[nodiscard]] Status SubmitGradient(uint64_t chunk, std::span<const float> grad, std::span<float> weights = {});
  // Hands in, last chunk first, every chunk not yet handed in this step that lies wholly at or
  // above parameter offset lo: backward calls it each time the gradients of [lo, n_params) are
  // final. `grads` (and `weights`, for layouts without master weights) span the whole model.
  [[nodiscard]] Status SubmitReadyFrom(uint64_t lo, std::span<const float> grads, std::span<float> weights = {});
  // Waits until every chunk is written and durable, then commits the step. On any error nothing
  // is committed: the directory still opens at the previous step, and BeginStep may retry. With
  // a layout without master weights, the caller's weights of chunks whose on_done already ran
  // hold the failed step's values: restore them before a retry. If the I/O layer itself failed,
  // or the manifest was renamed but its directory could not be fsynced, the engine refuses
  // further steps: open the directory again.
  [[nodiscard]] Status EndStep();
  // True once the current step has failed (a caller waiting on on_done should stop waiting).
  bool step_failed() const;

  // Reads every slot of the committed step and checks it; `each` sees every chunk's result.
  [[nodiscard]] Status VerifyCommitted(const std::function<void(uint64_t chunk, const Status&)>& each = {});
  // The committed slot of one chunk, header included (tests compare runs bit for bit with it).
  [[nodiscard]] Result<std::vector<uint8_t>> ReadCommittedSlot(uint64_t chunk);

  struct Impl;

 private:
  explicit OffloadEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::offload
