// The io_uring backend: registered (fixed) files and buffers, batched submission (one
// io_uring_submit per Submit call), batched reaping (io_uring_peek_batch_cqe), and an eventfd
// registered with the ring so the event loop learns of completions without polling.
#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "offload/io.h"
#include "runtime/file_util.h"

namespace strata::offload {
namespace {

std::string Errno(int e) { return ErrnoText(e) + " (errno " + std::to_string(e) + ")"; }

class UringBackend final : public IoBackend {
 public:
  ~UringBackend() override {
    if (inited_) io_uring_queue_exit(&ring_);
    if (efd_ >= 0) ::close(efd_);
  }

  static Result<std::unique_ptr<IoBackend>> Make(uint32_t entries) {
    if (entries == 0) return Status::InvalidArgument("io_uring: entries must be >= 1");
    std::unique_ptr<UringBackend> b(new UringBackend);
    const int r = io_uring_queue_init(entries, &b->ring_, 0);
    if (r < 0) {
      b->efd_ = -1;
      // Not compiled into the kernel, or refused by a seccomp/container policy.
      if (r == -ENOSYS || r == -EPERM || r == -EACCES)
        return Status::Unavailable("io_uring refused by the kernel: " + Errno(-r));
      return Status::IOError("io_uring_queue_init(" + std::to_string(entries) + "): " + Errno(-r));
    }
    b->inited_ = true;
    b->entries_ = entries;
    b->efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->efd_ < 0) return Status::IOError("eventfd: " + Errno(errno));
    const int e = io_uring_register_eventfd(&b->ring_, b->efd_);
    if (e < 0) return Status::IOError("io_uring_register_eventfd: " + Errno(-e));
    return std::unique_ptr<IoBackend>(std::move(b));
  }

  std::string name() const override {
    std::string n = "io_uring";
    n += fixed_files_ ? " (fixed files" : " (plain files";
    n += fixed_buffers_ ? ", fixed buffers)" : ", plain buffers)";
    return n;
  }

  Status RegisterFiles(std::span<const int> fds) override {
    fds_.assign(fds.begin(), fds.end());
    const int r = io_uring_register_files(&ring_, fds_.data(), static_cast<unsigned>(fds_.size()));
    // Registration is an optimization (no fget/fput per request): without it requests still work.
    fixed_files_ = r == 0;
    return Status::Ok();
  }

  Status RegisterBuffers(std::span<const iovec> bufs) override {
    bufs_.assign(bufs.begin(), bufs.end());
    const int r = io_uring_register_buffers(&ring_, bufs_.data(), static_cast<unsigned>(bufs_.size()));
    // Fails with ENOMEM under a small RLIMIT_MEMLOCK; plain reads and writes still work.
    fixed_buffers_ = r == 0;
    return Status::Ok();
  }

  Status Submit(std::span<const IoRequest> reqs) override {
    if (broken_) return Status::IOError("io_uring: an earlier submit failed");
    // Check everything before preparing anything, so a bad request leaves no prepared entry.
    for (const IoRequest& q : reqs)
      if (q.file < 0 || q.file >= static_cast<int>(fds_.size()))
        return Status::InvalidArgument("io_uring: file index " + std::to_string(q.file) + " not registered");
    for (const IoRequest& q : reqs) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) {
        // The submission queue is full of requests not yet handed over: hand them over and retry.
        const int s = io_uring_submit(&ring_);
        if (s < 0) return Status::IOError("io_uring_submit: " + Errno(-s));
        sqe = io_uring_get_sqe(&ring_);
        if (sqe == nullptr) return Status::Internal("io_uring: no submission entry free");
      }
      const int fd = fixed_files_ ? q.file : fds_[q.file];
      const bool fixed_buf = fixed_buffers_ && q.buf_index >= 0;
      switch (q.op) {
        case IoOp::kRead:
          if (fixed_buf) io_uring_prep_read_fixed(sqe, fd, q.buf, q.len, q.offset, q.buf_index);
          else io_uring_prep_read(sqe, fd, q.buf, q.len, q.offset);
          break;
        case IoOp::kWrite:
          if (fixed_buf) io_uring_prep_write_fixed(sqe, fd, q.buf, q.len, q.offset, q.buf_index);
          else io_uring_prep_write(sqe, fd, q.buf, q.len, q.offset);
          break;
        case IoOp::kFsync: io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC); break;
      }
      if (fixed_files_) sqe->flags |= IOSQE_FIXED_FILE;
      io_uring_sqe_set_data64(sqe, q.tag);
    }
    // Hand over every prepared entry (the kernel may take fewer than offered).
    for (int tries = 0; io_uring_sq_ready(&ring_) > 0; ++tries) {
      const int s = io_uring_submit(&ring_);
      if (s >= 0 || ((s == -EINTR || s == -EAGAIN || s == -EBUSY) && tries < 1000)) continue;
      broken_ = true;  // prepared entries may be left in the queue: no further submits
      return Status::IOError("io_uring_submit: " + Errno(-s));
    }
    return Status::Ok();
  }

  Result<size_t> Reap(std::span<IoCompletion> out, size_t min_complete) override {
    if (min_complete > 0) {
      io_uring_cqe* cqe = nullptr;
      for (;;) {
        const int r = io_uring_wait_cqe_nr(&ring_, &cqe, static_cast<unsigned>(min_complete));
        if (r == 0) break;
        if (r != -EINTR && r != -EAGAIN) return Status::IOError("io_uring_wait_cqe: " + Errno(-r));
      }
    }
    io_uring_cqe* cqes[64];
    size_t n = 0;
    while (n < out.size()) {
      const unsigned want = static_cast<unsigned>(std::min<size_t>(64, out.size() - n));
      const unsigned got = io_uring_peek_batch_cqe(&ring_, cqes, want);
      if (got == 0) break;
      for (unsigned i = 0; i < got; ++i) out[n + i] = {io_uring_cqe_get_data64(cqes[i]), cqes[i]->res};
      io_uring_cq_advance(&ring_, got);
      n += got;
    }
    return n;
  }

  int event_fd() const override { return efd_; }
  uint32_t capacity() const override { return entries_; }

 private:
  UringBackend() = default;
  io_uring ring_{};
  bool inited_ = false;
  uint32_t entries_ = 0;
  int efd_ = -1;
  bool fixed_files_ = false, fixed_buffers_ = false;
  bool broken_ = false;
  std::vector<int> fds_;
  std::vector<iovec> bufs_;
};

}  // namespace

Result<std::unique_ptr<IoBackend>> MakeUringBackend(uint32_t entries) { return UringBackend::Make(entries); }

}  // namespace strata::offload
