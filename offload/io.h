// Asynchronous file I/O in two layers.
//
// IoBackend is the raw layer: it queues reads, writes and fdatasyncs and reports each one's raw
// result (bytes moved, or -errno), exactly as the kernel gave it. UringBackend (io_uring, with
// registered buffers and files) is the real one; PosixBackend (pread/pwrite, done at submit time)
// serves where io_uring is not allowed. Tests wrap a backend to inject faults (EIO, ENOSPC, short
// transfers, a crash between two writes) underneath everything that handles them.
//
// IoQueue is the layer above: one logical transfer of `len` bytes becomes as many raw requests as
// it takes. Every raw completion is one of: an error (the transfer fails with a Status naming the
// file, offset and errno), -EAGAIN or -EINTR (queued again), or a short transfer (advance and
// queue the rest). A read that hits end of file is a truncated file: Corruption, not a hang.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/status.h"

namespace strata::offload {

enum class IoOp : uint8_t { kRead, kWrite, kFsync };
const char* IoOpName(IoOp op);

// One raw request. `buf` must stay valid until its completion has been reaped. `buf_index` names
// the registered buffer that contains [buf, buf+len), or -1.
struct IoRequest {
  IoOp op = IoOp::kRead;
  int file = 0;  // index into the backend's registered files
  uint64_t offset = 0;
  void* buf = nullptr;
  uint32_t len = 0;
  int buf_index = -1;
  uint64_t tag = 0;  // comes back with the completion
};

struct IoCompletion {
  uint64_t tag = 0;
  int32_t res = 0;  // bytes moved, or -errno
};

class IoBackend {
 public:
  virtual ~IoBackend() = default;
  virtual std::string name() const = 0;
  // The files every request indexes into (opened and owned by the caller). Called once.
  [[nodiscard]] virtual Status RegisterFiles(std::span<const int> fds) = 0;
  // Memory that requests with buf_index >= 0 live in (io_uring pins it once, not per request).
  [[nodiscard]] virtual Status RegisterBuffers(std::span<const iovec> bufs) = 0;
  // Queues and submits requests. The caller keeps at most capacity() in flight.
  [[nodiscard]] virtual Status Submit(std::span<const IoRequest> reqs) = 0;
  // Reaps up to out.size() completions, waiting until at least min_complete are there.
  [[nodiscard]] virtual Result<size_t> Reap(std::span<IoCompletion> out, size_t min_complete) = 0;
  // Becomes readable when completions are waiting (an eventfd; read it to clear it).
  virtual int event_fd() const = 0;
  virtual uint32_t capacity() const = 0;
};

// io_uring with `entries` submission slots. Unavailable (with the reason) where the kernel or a
// seccomp policy refuses io_uring.
[[nodiscard]] Result<std::unique_ptr<IoBackend>> MakeUringBackend(uint32_t entries);
// pread/pwrite/fdatasync run inside Submit; completions are queued and the eventfd signalled.
[[nodiscard]] Result<std::unique_ptr<IoBackend>> MakePosixBackend(uint32_t entries);
// io_uring where it works, else the POSIX backend.
[[nodiscard]] Result<std::unique_ptr<IoBackend>> MakeDefaultBackend(uint32_t entries);

// Logical transfers over a backend. Not thread-safe: one thread (the event loop) drives it.
class IoQueue {
 public:
  // The files, in registration order, with the names used in error messages. A transfer longer
  // than piece_bytes goes out as several requests of at most piece_bytes, all in flight at once
  // (virtual and real disks often serve 1 MiB requests better than one large one).
  IoQueue(IoBackend* backend, std::vector<std::string> file_names, uint64_t piece_bytes = kDefaultPieceBytes);
  static constexpr uint64_t kDefaultPieceBytes = uint64_t{1} << 20;

  // Starts a logical transfer; its result comes out of Poll with the same tag. For kFsync only
  // `file` and `tag` matter. A transfer may be longer than one raw request can carry.
  void Start(IoOp op, int file, uint64_t offset, void* buf, uint64_t len, int buf_index, uint64_t tag);
  // Submits what Start and Poll queued, as far as the backend has room.
  [[nodiscard]] Status Flush();

  struct Done {
    uint64_t tag;
    Status status;
  };
  // Reaps raw completions (waiting for at least min_complete of them), re-queues -EAGAIN and the
  // rest of short transfers, and appends finished logical transfers to *done. Flushes.
  [[nodiscard]] Status Poll(std::vector<Done>* done, size_t min_complete);

  size_t in_flight() const { return ops_.size(); }  // raw pieces not yet finished
  IoBackend* backend() const { return backend_; }
  uint64_t retries() const { return retries_; }
  uint64_t short_transfers() const { return short_transfers_; }

 private:
  struct Op {
    IoOp op;
    int file;
    uint64_t offset;  // of the next byte to move
    char* buf;
    uint64_t left;
    int buf_index;
    uint64_t tag;  // the caller's tag, or the parent's id for a piece
    uint64_t parent = 0;
    int zero_progress = 0;
  };
  struct Parent {
    uint64_t tag;
    size_t pieces_left;
    Status status;
  };
  void Finish(Op& op, Status st, std::vector<Done>* done);
  void Queue(uint64_t id);
  Status Fail(const Op& op, const std::string& why);

  IoBackend* backend_;
  std::vector<std::string> file_names_;
  uint64_t piece_bytes_;
  std::unordered_map<uint64_t, Op> ops_;  // by internal id
  std::unordered_map<uint64_t, Parent> parents_;  // transfers cut into pieces, by internal id
  std::deque<uint64_t> pending_;           // ids waiting for a submission slot
  uint64_t next_id_ = 1;
  uint32_t submitted_ = 0;  // raw requests in the kernel
  uint64_t retries_ = 0, short_transfers_ = 0;
  std::vector<IoCompletion> reaped_;
};

// Blocking helpers over a backend (set-up, probes, tests): run one batch of logical transfers to
// completion.
[[nodiscard]] Status RunTransfers(IoQueue& q, size_t count);

}  // namespace strata::offload
