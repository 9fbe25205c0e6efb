// A fault-injecting IoBackend for tests: it wraps the real backend (io_uring on a real file) and,
// by rule, turns chosen requests into -EIO, -ENOSPC, -EAGAIN, real short transfers (the first part
// really reaches the disk), or a crash (from the k-th write on, nothing reaches the disk and every
// request fails, as if the process had died between two writes).
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "offload/io.h"

namespace strata::offload::testing {

struct FaultRules {
  // 1-based index among write (or read) requests that gets the fault; 0 = never.
  uint64_t error_on_write = 0;
  int write_errno = EIO;
  uint64_t error_on_read = 0;
  int read_errno = EIO;
  uint64_t eagain_on_write = 0;  // this write, and the next eagain_repeat - 1, answer -EAGAIN
  uint64_t eagain_repeat = 1;
  uint64_t short_every_write = 0;  // every k-th write moves only part of its bytes
  uint64_t short_every_read = 0;
  uint64_t crash_before_write = 0;  // this write and everything after it never reaches the disk
  bool fail_fsync = false;
  uint64_t fail_submit_call = 0;  // this Submit call fails as a whole (the I/O layer breaks)
};

struct FaultCounters {
  uint64_t writes = 0, reads = 0, fsyncs = 0;
  uint64_t injected = 0, shortened = 0;
};

class FaultyBackend final : public IoBackend {
 public:
  FaultyBackend(std::unique_ptr<IoBackend> inner, FaultRules rules, FaultCounters* counters)
      : inner_(std::move(inner)), rules_(rules), counters_(counters) {}

  std::string name() const override { return "faulty(" + inner_->name() + ")"; }
  Status RegisterFiles(std::span<const int> fds) override { return inner_->RegisterFiles(fds); }
  Status RegisterBuffers(std::span<const iovec> bufs) override { return inner_->RegisterBuffers(bufs); }
  int event_fd() const override { return inner_->event_fd(); }
  uint32_t capacity() const override { return inner_->capacity(); }

  Status Submit(std::span<const IoRequest> reqs) override {
    if (++submits_ == rules_.fail_submit_call) {
      ++counters_->injected;
      return Status::IOError("injected: io_uring_submit refused");
    }
    std::vector<IoRequest> pass;
    for (IoRequest r : reqs) {
      int inject = 0;
      if (r.op == IoOp::kWrite) {
        const uint64_t k = ++counters_->writes;
        if (rules_.crash_before_write && k >= rules_.crash_before_write) crashed_ = true;
        if (k == rules_.error_on_write) inject = -rules_.write_errno;
        if (rules_.eagain_on_write && k >= rules_.eagain_on_write && k < rules_.eagain_on_write + rules_.eagain_repeat)
          inject = -EAGAIN;
        if (!inject && rules_.short_every_write && k % rules_.short_every_write == 0) Shorten(&r);
      } else if (r.op == IoOp::kRead) {
        const uint64_t k = ++counters_->reads;
        if (k == rules_.error_on_read) inject = -rules_.read_errno;
        if (!inject && rules_.short_every_read && k % rules_.short_every_read == 0) Shorten(&r);
      } else {
        ++counters_->fsyncs;
        if (rules_.fail_fsync) inject = -EIO;
      }
      if (crashed_) inject = -EIO;
      if (inject) {
        ++counters_->injected;
        injected_.push_back({r.tag, inject});
      } else {
        pass.push_back(r);
      }
    }
    if (!injected_.empty()) {
      const uint64_t one = 1;  // wake the event loop as a real completion would
      (void)!::write(inner_->event_fd(), &one, sizeof one);
    }
    if (pass.empty()) return Status::Ok();
    return inner_->Submit(pass);
  }

  Result<size_t> Reap(std::span<IoCompletion> out, size_t min_complete) override {
    size_t n = 0;
    while (n < out.size() && !injected_.empty()) {
      out[n++] = injected_.front();
      injected_.pop_front();
    }
    const size_t still = min_complete > n ? min_complete - n : 0;
    auto r = inner_->Reap(out.subspan(n), still);
    if (!r.ok()) return r.status();
    return n + *r;
  }

 private:
  // A real short transfer: the request moves only its first part (a multiple of 512 bytes, as a
  // device would), and the caller must ask for the rest.
  void Shorten(IoRequest* r) {
    if (r->len <= 4096) return;
    r->len = static_cast<uint32_t>((r->len / 2) / 512 * 512);
    ++counters_->shortened;
  }

  std::unique_ptr<IoBackend> inner_;
  FaultRules rules_;
  FaultCounters* counters_;
  bool crashed_ = false;
  uint64_t submits_ = 0;
  std::deque<IoCompletion> injected_;
};

// A make_backend for OffloadOptions that wraps the default backend with the rules.
inline std::function<Result<std::unique_ptr<IoBackend>>(uint32_t)> Faulty(FaultRules rules, FaultCounters* counters) {
  return [rules, counters](uint32_t entries) -> Result<std::unique_ptr<IoBackend>> {
    auto inner = MakeDefaultBackend(entries);
    if (!inner.ok()) return inner.status();
    return std::unique_ptr<IoBackend>(new FaultyBackend(std::move(*inner), rules, counters));
  };
}

}  // namespace strata::offload::testing
