#include "offload/io.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <cerrno>
#include <cstring>

namespace strata::offload {

const char* IoOpName(IoOp op) {
  switch (op) {
    case IoOp::kRead: return "read";
    case IoOp::kWrite: return "write";
    case IoOp::kFsync: return "fdatasync";
  }
  return "?";
}

// ---- POSIX backend -----------------------------------------------------------------------------

namespace {

class PosixBackend final : public IoBackend {
 public:
  PosixBackend(uint32_t entries, int efd) : entries_(entries), efd_(efd) {}
  ~PosixBackend() override { ::close(efd_); }

  std::string name() const override { return "posix"; }
  Status RegisterFiles(std::span<const int> fds) override {
    fds_.assign(fds.begin(), fds.end());
    return Status::Ok();
  }
  Status RegisterBuffers(std::span<const iovec>) override { return Status::Ok(); }

  Status Submit(std::span<const IoRequest> reqs) override {
    for (const IoRequest& r : reqs) {
      if (r.file < 0 || r.file >= static_cast<int>(fds_.size()))
        return Status::InvalidArgument("posix backend: file index " + std::to_string(r.file) + " not registered");
      const int fd = fds_[r.file];
      ssize_t n = 0;
      switch (r.op) {
        case IoOp::kRead: n = ::pread(fd, r.buf, r.len, static_cast<off_t>(r.offset)); break;
        case IoOp::kWrite: n = ::pwrite(fd, r.buf, r.len, static_cast<off_t>(r.offset)); break;
        case IoOp::kFsync: n = ::fdatasync(fd); break;
      }
      done_.push_back({r.tag, n < 0 ? -errno : static_cast<int32_t>(n)});
    }
    if (!reqs.empty()) {
      const uint64_t one = 1;
      if (::write(efd_, &one, sizeof one) < 0) return Status::IOError(std::string("eventfd write: ") + strerror(errno));
    }
    return Status::Ok();
  }

  Result<size_t> Reap(std::span<IoCompletion> out, size_t) override {
    // Everything completed inside Submit, so there is never anything to wait for.
    const size_t n = std::min(out.size(), done_.size());
    for (size_t i = 0; i < n; ++i) out[i] = done_[i];
    done_.erase(done_.begin(), done_.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }
  int event_fd() const override { return efd_; }
  uint32_t capacity() const override { return entries_; }

 private:
  uint32_t entries_;
  int efd_;
  std::vector<int> fds_;
  std::deque<IoCompletion> done_;
};

}  // namespace

Result<std::unique_ptr<IoBackend>> MakePosixBackend(uint32_t entries) {
  if (entries == 0) return Status::InvalidArgument("posix backend: entries must be >= 1");
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) return Status::IOError(std::string("eventfd: ") + strerror(errno));
  return std::unique_ptr<IoBackend>(new PosixBackend(entries, efd));
}

Result<std::unique_ptr<IoBackend>> MakeDefaultBackend(uint32_t entries) {
  auto uring = MakeUringBackend(entries);
  if (uring.ok()) return uring;
  if (uring.status().code() != StatusCode::kUnavailable) return uring.status();
  return MakePosixBackend(entries);
}

// ---- IoQueue -----------------------------------------------------------------------------------

namespace {
// One raw request moves at most this much (the kernel's own per-call cap is just under 2 GiB).
constexpr uint64_t kMaxRaw = uint64_t{1} << 30;
// A transfer that keeps making no progress (EAGAIN forever, zero-byte writes) fails instead of spinning.
constexpr int kMaxZeroProgress = 200;
}  // namespace

IoQueue::IoQueue(IoBackend* backend, std::vector<std::string> file_names, uint64_t piece_bytes)
    : backend_(backend), file_names_(std::move(file_names)), piece_bytes_(std::min(piece_bytes, kMaxRaw)) {
  STRATA_CHECK(backend_ != nullptr);
  STRATA_CHECK(piece_bytes_ >= 4096 && piece_bytes_ % 4096 == 0);
}

void IoQueue::Start(IoOp op, int file, uint64_t offset, void* buf, uint64_t len, int buf_index, uint64_t tag) {
  char* p = static_cast<char*>(buf);
  if (op == IoOp::kFsync || len <= piece_bytes_) {
    const uint64_t id = next_id_++;
    ops_.emplace(id, Op{op, file, offset, p, len, buf_index, tag});
    Queue(id);
    return;
  }
  const uint64_t parent = next_id_++;
  const size_t pieces = static_cast<size_t>((len + piece_bytes_ - 1) / piece_bytes_);
  parents_.emplace(parent, Parent{tag, pieces, Status::Ok()});
  for (uint64_t done = 0; done < len; done += piece_bytes_) {
    const uint64_t id = next_id_++;
    ops_.emplace(id, Op{op, file, offset + done, p + done, std::min(piece_bytes_, len - done), buf_index, parent, parent});
    Queue(id);
  }
}

void IoQueue::Finish(Op& op, Status st, std::vector<Done>* done) {
  if (op.parent == 0) {
    done->push_back({op.tag, std::move(st)});
    return;
  }
  auto it = parents_.find(op.parent);
  STRATA_CHECK(it != parents_.end());
  if (!st.ok() && it->second.status.ok()) it->second.status = std::move(st);
  if (--it->second.pieces_left == 0) {
    done->push_back({it->second.tag, std::move(it->second.status)});
    parents_.erase(it);
  }
}

void IoQueue::Queue(uint64_t id) { pending_.push_back(id); }

Status IoQueue::Flush() {
  std::vector<IoRequest> batch;
  while (!pending_.empty() && submitted_ + batch.size() < backend_->capacity()) {
    const uint64_t id = pending_.front();
    pending_.pop_front();
    const Op& op = ops_.at(id);
    IoRequest r;
    r.op = op.op;
    r.file = op.file;
    r.offset = op.offset;
    r.buf = op.buf;
    r.len = static_cast<uint32_t>(std::min(op.left, kMaxRaw));
    r.buf_index = op.buf_index;
    r.tag = id;
    batch.push_back(r);
  }
  if (batch.empty()) return Status::Ok();
  submitted_ += static_cast<uint32_t>(batch.size());
  Status st = backend_->Submit(batch);
  if (!st.ok()) {
    submitted_ -= static_cast<uint32_t>(batch.size());
    return Status(st.code(), "submitting " + std::to_string(batch.size()) + " I/O requests: " + st.message());
  }
  return Status::Ok();
}

Status IoQueue::Fail(const Op& op, const std::string& why) {
  const std::string& name = op.file >= 0 && op.file < static_cast<int>(file_names_.size())
                                ? file_names_[op.file]
                                : std::string("file #") + std::to_string(op.file);
  std::string msg = name + ": " + IoOpName(op.op);
  if (op.op != IoOp::kFsync) msg += " at offset " + std::to_string(op.offset);
  msg += ": " + why;
  return Status::IOError(std::move(msg));
}

Status IoQueue::Poll(std::vector<Done>* done, size_t min_complete) {
  STRATA_RETURN_IF_ERROR(Flush());
  reaped_.resize(std::max<size_t>(backend_->capacity(), 1));
  min_complete = std::min<size_t>(min_complete, submitted_);
  auto n = backend_->Reap(reaped_, min_complete);
  if (!n.ok()) return n.status();
  for (size_t i = 0; i < *n; ++i) {
    --submitted_;
    const IoCompletion c = reaped_[i];
    auto it = ops_.find(c.tag);
    STRATA_CHECK(it != ops_.end());
    Op& op = it->second;
    bool finished = false;
    Status st;
    if (c.res == -EAGAIN || c.res == -EINTR) {
      ++retries_;
      // Back off a little when it keeps coming (about 0.2 s in all before giving up).
      if (op.zero_progress >= 4) std::this_thread::sleep_for(std::chrono::microseconds(100 * std::min(op.zero_progress, 10)));
      if (++op.zero_progress > kMaxZeroProgress) {
        st = Fail(op, "no progress after " + std::to_string(kMaxZeroProgress) + " retries (" + strerror(-c.res) + ")");
        finished = true;
      }
    } else if (c.res < 0) {
      std::string why = strerror(-c.res);
      if (c.res == -ENOSPC) why += " (the disk is full)";
      st = Fail(op, why);
      finished = true;
    } else if (op.op == IoOp::kFsync) {
      finished = true;
    } else if (c.res == 0) {
      if (op.op == IoOp::kRead) {
        st = Status::Corruption(Fail(op, "unexpected end of file (" + std::to_string(op.left) +
                                             " bytes missing): the file is truncated").message());
        finished = true;
      } else if (++op.zero_progress > kMaxZeroProgress) {
        st = Fail(op, "the write made no progress");
        finished = true;
      }
    } else {
      const uint64_t moved = static_cast<uint64_t>(c.res);
      STRATA_CHECK(moved <= op.left);
      op.offset += moved;
      op.buf += moved;
      op.left -= moved;
      op.zero_progress = 0;
      finished = op.left == 0;
      if (!finished) ++short_transfers_;
    }
    if (finished) {
      Finish(op, std::move(st), done);
      ops_.erase(it);
    } else {
      Queue(c.tag);
    }
  }
  return Flush();
}

Status RunTransfers(IoQueue& q, size_t count) {
  std::vector<IoQueue::Done> done;
  Status first;
  while (done.size() < count) {
    if (q.in_flight() == 0) return Status::Internal("RunTransfers: waiting for more transfers than were started");
    STRATA_RETURN_IF_ERROR(q.Poll(&done, 1));
  }
  for (auto& d : done)
    if (!d.status.ok() && first.ok()) first = std::move(d.status);
  return first;
}

}  // namespace strata::offload
