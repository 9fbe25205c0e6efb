#include "offload/offload_engine.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include "optim/adamw.h"
#include "optim/q8_codec.h"
#include "runtime/asio.h"
#include "runtime/clock.h"
#include <boost/asio/redirect_error.hpp>
#include "runtime/channel.h"
#include "runtime/file_util.h"
#include "runtime/thread_pool.h"
#include "runtime/trace.h"
#include "runtime/waiter.h"

namespace strata::offload {

namespace {


double NowSeconds() { return MonotonicSeconds(); }

using StatusWaiter = WaiterPtr<Status>;  // a coroutine suspended until a Status arrives

// A coroutine started with co_spawn must not end in an exception: that would be a bug.
void CheckNoException(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "strata: offload coroutine threw: %s\n", ex.what());
  }
  std::abort();
}

// One process at a time writes a state directory: a second one (a job restarted while the old
// one still runs) would interleave slots and manifests. The lock is on the directory, not on
// state.strata: io_uring holds registered files for a while after the ring is torn down, which
// would keep a lock on the file alive after the engine is gone.
Result<int> LockDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(dir + ": no such directory");
    return Status::IOError(dir + ": open: " + ErrnoText(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
  const int e = errno;
  ::close(fd);
  if (e == EWOULDBLOCK) return Status::Unavailable(dir + ": in use by another process (it holds the lock)");
  return Status::IOError(dir + ": flock: " + ErrnoText(e));
}

// Opens the state file, with O_DIRECT when asked and the file system allows it.
Result<int> OpenStateFile(const std::string& path, int flags, bool want_direct, bool* direct) {
  if (want_direct) {
    const int fd = ::open(path.c_str(), flags | O_DIRECT | O_CLOEXEC, 0644);
    if (fd >= 0) {
      *direct = true;
      return fd;
    }
    if (errno == ENOENT) return Status::NotFound(path + ": missing");
    if (errno != EINVAL) return Status::IOError(path + ": open: " + ErrnoText(errno));
    // tmpfs and some network file systems refuse O_DIRECT: go on through the page cache.
  }
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + ": missing");
    return Status::IOError(path + ": open: " + ErrnoText(errno));
  }
  *direct = false;
  return fd;
}

// An aligned buffer for synchronous O_DIRECT reads and writes of the header.
struct AlignedBuf {
  explicit AlignedBuf(size_t n) : size(n) { STRATA_CHECK(posix_memalign(&p, kAlign, n) == 0); std::memset(p, 0, n); }
  ~AlignedBuf() { std::free(p); }
  uint8_t* data() { return static_cast<uint8_t*>(p); }
  void* p = nullptr;
  size_t size;
};


}  // namespace

struct OffloadEngine::Impl {
  // ---- Fixed after Create/Open ----
  std::string dir, path;
  FileHeader header;
  Geometry geo;
  OffloadOptions opt;
  int fd = -1;
  int dir_fd = -1;  // holds the directory's lock
  bool direct = false;
  std::unique_ptr<IoBackend> backend;
  std::unique_ptr<IoQueue> queue;
  uint8_t* staging = nullptr;
  size_t nbuf = 0;
  uint64_t slot_bytes = 0;
  std::unique_ptr<ThreadPool> pool;
  Tracer* tracer = nullptr;

  asio::io_context io{1};
  asio::io_context compute{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> io_work, compute_work;
  std::thread io_thread, compute_thread;
  std::unique_ptr<asio::posix::stream_descriptor> efd;
  std::unique_ptr<Channel<int>> free_bufs;

  std::atomic<uint64_t> committed{0};

  // Set once the engine cannot go on (the I/O backend failed, or a commit could not be made
  // durable); every later pass refuses with this status. Any thread reads it.
  std::atomic<bool> broken{false};
  Status broken_status;  // under stats_mu

  // The pass (init, step or verify) now running. The caller bumps it in BeginPass; everything it
  // posts to the event loop carries it, and the event loop drops what belongs to an older pass
  // (a gradient submitted after its step already failed, say).
  std::atomic<uint64_t> pass{0};

  // ---- Event-loop thread only ----
  std::unordered_map<uint64_t, StatusWaiter> io_waiters;
  uint64_t next_tag = 1;
  uint64_t io_pass = 0;     // the pass the state below belongs to
  uint64_t written = 0;     // chunks of this pass written completely

  enum class Mode { kInit, kStep, kVerify };
  struct ChunkState {
    std::span<const float> grad;
    std::span<float> weights;
    bool ready = false, started = false;
    double ready_at = 0;
    StatusWaiter waiter;
  };
  Mode mode = Mode::kStep;
  uint64_t step = 0;
  double lr = 0;
  ChunkDone on_done;
  InitFn init;
  std::function<void(uint64_t, const Status&)> verify_each;
  std::vector<ChunkState> chunks;
  std::deque<uint64_t> arrived;  // gradient here, not started
  std::vector<uint64_t> order;
  size_t order_pos = 0, prefetched_waiting = 0, in_flight = 0, started = 0;
  StatusWaiter arrival_waiter, drained_waiter;
  Status step_status;
  std::atomic<bool> failed{false};
  std::promise<Status> step_promise;

  // ---- Caller thread ----
  bool step_active = false;
  Mode caller_mode = Mode::kStep;
  uint64_t caller_step = 0;
  std::future<Status> step_future;
  // ---- Any thread (SubmitGradient) ----
  std::atomic<bool> accepting{false};
  std::unique_ptr<std::atomic<uint8_t>[]> submitted;  // one flag per chunk, allocated once
  std::atomic<uint64_t> n_submitted{0};
  uint64_t ready_below = 0;  // SubmitReadyFrom: chunks >= this were handed in (caller thread)

  mutable std::mutex stats_mu;
  OffloadStats stats;

  ~Impl() { Shutdown(); }

  // ---- Set-up ----

  Status Start(uint64_t ram_budget) {
    slot_bytes = geo.slot_bytes();
    const uint64_t n_chunks = geo.n_chunks();
    uint64_t want = ram_budget / slot_bytes;
    if (want < 2 && n_chunks > 1)
      return Status::InvalidArgument(
          "--offload-ram: " + std::to_string(ram_budget) + " bytes hold " + std::to_string(want) +
          " staging buffer(s) of " + std::to_string(slot_bytes) + " bytes (one chunk of " +
          std::to_string(geo.chunk_params) + " parameters, layout " + LayoutName(geo.layout) +
          "); at least 2 are needed: raise it to " + std::to_string(2 * slot_bytes) + " or use smaller chunks");
    if (want == 0) want = 1;
    nbuf = static_cast<size_t>(std::min<uint64_t>(want, n_chunks));
    const uint64_t bytes = nbuf * slot_bytes;
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED)
      return Status::OutOfMemory("staging buffers: mmap of " + std::to_string(bytes) + " bytes: " + ErrnoText(errno));
    staging = static_cast<uint8_t*>(p);

    auto make = opt.make_backend ? opt.make_backend : MakeDefaultBackend;
    // Raw requests in flight; transfers beyond it wait in IoQueue (deep queues are slower on some disks).
    const uint32_t entries = std::max<uint32_t>(opt.queue_depth, 1);
    auto b = make(entries);
    if (!b.ok()) return b.status();
    backend = std::move(*b);
    STRATA_RETURN_IF_ERROR(backend->RegisterFiles(std::span<const int>(&fd, 1)));
    std::vector<iovec> iov(nbuf);
    for (size_t i = 0; i < nbuf; ++i) iov[i] = {staging + i * slot_bytes, slot_bytes};
    STRATA_RETURN_IF_ERROR(backend->RegisterBuffers(iov));
    if (opt.io_piece_bytes < kAlign || opt.io_piece_bytes % kAlign != 0)
      return Status::InvalidArgument("io piece size: " + std::to_string(opt.io_piece_bytes) + " is not a multiple of 4096");
    queue = std::make_unique<IoQueue>(backend.get(), std::vector<std::string>{path}, opt.io_piece_bytes);

    pool = std::make_unique<ThreadPool>(opt.threads);
    tracer = opt.tracer;
    if (tracer) {
      tracer->SetTrackName(trace_track::kOffloadCommit, "offload: commit");
      for (size_t i = 0; i < nbuf; ++i)
        tracer->SetTrackName(trace_track::kStagingBuffer + static_cast<int>(i), "staging buffer " + std::to_string(i));
    }

    const int dfd = ::dup(backend->event_fd());
    if (dfd < 0) return Status::IOError("dup(eventfd): " + ErrnoText(errno));
    efd = std::make_unique<asio::posix::stream_descriptor>(io, dfd);
    submitted.reset(new std::atomic<uint8_t>[n_chunks]);
    for (uint64_t c = 0; c < n_chunks; ++c) submitted[c] = 0;
    free_bufs = std::make_unique<Channel<int>>(io.get_executor(), nbuf);
    for (size_t i = 0; i < nbuf; ++i) STRATA_CHECK(free_bufs->TrySend(static_cast<int>(i)));

    io_work.emplace(io.get_executor());
    compute_work.emplace(compute.get_executor());
    asio::co_spawn(io, EventLoop(), CheckNoException);
    io_thread = std::thread([this] { io.run(); });
    compute_thread = std::thread([this] { compute.run(); });
    return Status::Ok();
  }

  void Shutdown() {
    if (step_active) {
      const uint64_t p = pass.load();
      asio::post(io, [this, p] {
        if (p == io_pass) Fail(Status::Unavailable("the offload engine is shutting down"));
      });
      (void)step_future.get();
      step_active = false;
    }
    if (io_thread.joinable()) {
      asio::post(io, [this] {
        boost::system::error_code ec;
        efd->cancel(ec);
      });
      io_work.reset();
      io_thread.join();
    }
    if (compute_thread.joinable()) {
      compute_work.reset();
      compute_thread.join();
    }
    free_bufs.reset();
    efd.reset();
    queue.reset();
    backend.reset();  // tears down the ring before the memory it points into
    if (staging) ::munmap(staging, nbuf * slot_bytes);
    staging = nullptr;
    if (fd >= 0) ::close(fd);
    fd = -1;
    if (dir_fd >= 0) ::close(dir_fd);
    dir_fd = -1;
  }

  // ---- Awaitables (event-loop thread) ----

  asio::awaitable<void> EventLoop() {
    for (;;) {
      boost::system::error_code ec;
      co_await efd->async_wait(asio::posix::stream_descriptor::wait_read, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;  // cancelled: shutting down
      uint64_t count;
      (void)!::read(efd->native_handle(), &count, sizeof count);
      if (!queue) continue;  // torn down after a failure
      std::vector<IoQueue::Done> done;
      Status st = queue->Poll(&done, 0);
      for (auto& d : done) {
        auto it = io_waiters.find(d.tag);
        if (it == io_waiters.end()) continue;
        it->second->Resume(std::move(d.status));
        io_waiters.erase(it);
      }
      if (!st.ok()) TearDownIo(st);
    }
  }

  void SetBroken(const Status& st) {
    std::lock_guard<std::mutex> lk(stats_mu);
    if (!broken) broken_status = st;
    broken = true;
  }
  Status BrokenStatus() const {
    std::lock_guard<std::mutex> lk(stats_mu);
    return Status(broken_status.code(), "the offload engine stopped after an earlier failure (" +
                                            broken_status.message() + "); open the state directory again to go on");
  }

  // The I/O layer itself failed (a submit refused, not one transfer's error). Requests may still
  // be in the kernel, and their buffers must not be reused before it lets go of them: tearing the
  // ring down waits for that. Only then do the waiting chunks learn of the failure.
  void TearDownIo(const Status& st) {
    SetBroken(st);
    queue.reset();
    backend.reset();
    for (auto& [tag, w] : io_waiters) w->Resume(st);
    io_waiters.clear();
  }

  asio::awaitable<Status> Transfer(IoOp op, uint64_t off, uint8_t* buf, uint64_t len, int buf_index) {
    if (!queue) co_return BrokenStatus();
    co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(Status)>(
        [this, op, off, buf, len, buf_index](auto handler) {
          const uint64_t tag = next_tag++;
          io_waiters.emplace(tag, MakeWaiter<Status>(std::move(handler)));
          queue->Start(op, 0, off, buf, len, buf_index, tag);
          if (Status st = queue->Flush(); !st.ok()) TearDownIo(st);
        },
        asio::use_awaitable);
  }

  // Runs f() -> Status on the compute thread; resumes on the event loop.
  template <class F>
  asio::awaitable<Status> Compute(F f) {
    co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(Status)>(
        [this, f = std::move(f)](auto handler) mutable {
          asio::post(compute, [f = std::move(f), w = MakeWaiter<Status>(std::move(handler))]() mutable {
            Status st;
            try {
              st = f();
            } catch (const std::exception& e) {
              st = Status::Internal(std::string("offload compute: ") + e.what());
            }
            w->Resume(std::move(st));
          });
        },
        asio::use_awaitable);
  }

  asio::awaitable<Status> WaitGradient(uint64_t c) {
    if (chunks[c].ready) co_return Status::Ok();
    if (failed) co_return step_status;
    co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(Status)>(
        [this, c](auto handler) { chunks[c].waiter = MakeWaiter<Status>(std::move(handler)); }, asio::use_awaitable);
  }

  asio::awaitable<void> WaitOn(StatusWaiter* slot) {
    (void)co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(Status)>(
        [slot](auto handler) { *slot = MakeWaiter<Status>(std::move(handler)); }, asio::use_awaitable);
  }

  static void Wake(StatusWaiter* slot, Status st = Status::Ok()) {
    if (*slot) {
      (*slot)->Resume(std::move(st));
      slot->reset();
    }
  }

  void Fail(Status st) {
    if (step_status.ok()) step_status = std::move(st);
    failed = true;
    for (auto& cs : chunks) Wake(&cs.waiter, step_status);
    Wake(&arrival_waiter);
  }

  void OnGradient(uint64_t p, uint64_t c, std::span<const float> g, std::span<float> w) {
    if (p != io_pass) return;  // for a step that already ended
    ChunkState& cs = chunks[c];
    if (cs.ready) return;
    cs.grad = g;
    cs.weights = w;
    cs.ready = true;
    cs.ready_at = NowSeconds();
    if (cs.started) {
      --prefetched_waiting;
      Wake(&cs.waiter);
    } else {
      arrived.push_back(c);
    }
    Wake(&arrival_waiter);
  }

  // ---- The pipeline ----

  void Trace(const char* name, int tid, double t0, double t1, uint64_t chunk) {
    if (!tracer) return;
    // Onto the tracer's clock, which other parts of strata record on too.
    const double ts = tracer->NowMicros() - (NowSeconds() - t0) * 1e6;
    tracer->Complete(name, "offload", tid, ts, (t1 - t0) * 1e6,
                     {{"chunk", static_cast<int64_t>(chunk)}, {"step", static_cast<int64_t>(step)}});
  }

  // Picks the next chunk for a free buffer: one whose gradient is here, else the next prefetch in
  // order while a buffer stays free for gradients that arrive out of order.
  asio::awaitable<int64_t> NextChunk() {
    for (;;) {
      if (failed) co_return -1;
      while (!arrived.empty()) {
        const uint64_t c = arrived.front();
        arrived.pop_front();
        if (!chunks[c].started) co_return static_cast<int64_t>(c);
      }
      while (order_pos < order.size() && chunks[order[order_pos]].started) ++order_pos;
      if (order_pos < order.size() && prefetched_waiting + 1 < std::max<size_t>(nbuf, 2))
        co_return static_cast<int64_t>(order[order_pos++]);
      co_await WaitOn(&arrival_waiter);
    }
  }

  asio::awaitable<void> PassMain() {
    const uint64_t n = geo.n_chunks();
    while (started < n && !failed) {
      std::optional<int> b = co_await free_bufs->Receive();
      STRATA_CHECK(b.has_value());
      const int64_t c = co_await NextChunk();
      if (c < 0) {
        STRATA_CHECK(free_bufs->TrySend(std::move(*b)));
        break;
      }
      ChunkState& cs = chunks[static_cast<size_t>(c)];
      cs.started = true;
      if (!cs.ready) ++prefetched_waiting;
      ++started;
      ++in_flight;
      asio::co_spawn(io, ChunkOfPass(static_cast<uint64_t>(c), *b), CheckNoException);
    }
    if (in_flight > 0) co_await WaitOn(&drained_waiter);
    Status st = step_status;
    if (st.ok() && mode != Mode::kVerify && written != n)
      st = Status::Internal("step " + std::to_string(step) + ": " + std::to_string(written) + " of " +
                            std::to_string(n) + " chunks written; not committing");
    if (st.ok() && mode != Mode::kVerify) {
      const double t0 = NowSeconds();
      st = co_await Transfer(IoOp::kFsync, 0, nullptr, 0, -1);
      if (st.ok()) {
        Manifest m;
        m.run_id = header.run_id;
        m.committed_step = step;
        m.n_chunks = n;
        m.file_bytes = geo.file_bytes();
        m.unix_seconds = static_cast<uint64_t>(std::time(nullptr));
        bool renamed = false;
        st = co_await Compute([this, m, &renamed] { return WriteManifestAtomic(dir, m, &renamed); });
        // Once the rename is done, the directory says step t to anyone who reads it: the engine
        // must agree, or a retry of step t would overwrite the slots that manifest names. If the
        // directory's fsync failed, whether step t survives a crash is unknown: stop here.
        if (renamed) committed = step;
        if (renamed && !st.ok()) SetBroken(st);
      }
      Trace("commit", trace_track::kOffloadCommit, t0, NowSeconds(), n);
    }
    if (queue) {
      std::lock_guard<std::mutex> lk(stats_mu);
      stats.io_retries = queue->retries();
      stats.short_transfers = queue->short_transfers();
    }
    step_promise.set_value(std::move(st));
  }

  // ---- One chunk of a pass: three short coroutines over the shared transfer and compute ----

  struct ChunkIo {
    uint8_t* buf;   // its staging buffer
    uint32_t n;     // parameters
    uint64_t len;   // bytes moved: header + payload, 4 KiB aligned
    int track;      // its staging buffer's trace track
  };
  ChunkIo IoOf(uint64_t c, int b) const {
    const uint32_t n = geo.chunk_len(c);
    return ChunkIo{staging + static_cast<size_t>(b) * slot_bytes, n,
                   AlignUp(kSlotHeaderBytes + Geometry::PayloadBytes(geo.layout, n), kAlign),
                   trace_track::kStagingBuffer + b};
  }

  asio::awaitable<Status> ReadSlot(uint64_t c, int b, const ChunkIo& x, uint32_t slot) {
    const double t0 = NowSeconds();
    Status st = co_await Transfer(IoOp::kRead, geo.slot_offset(c, slot), x.buf, x.len, b);
    Trace("read", x.track, t0, NowSeconds(), c);
    if (!st.ok()) co_return Status(st.code(), DescribeSlot(geo, c, slot, path) + ": " + st.message());
    std::lock_guard<std::mutex> lk(stats_mu);
    stats.bytes_read += x.len;
    co_return Status::Ok();
  }

  asio::awaitable<Status> WriteSlot(uint64_t c, int b, const ChunkIo& x, uint32_t slot) {
    const double t0 = NowSeconds();
    Status st = co_await Transfer(IoOp::kWrite, geo.slot_offset(c, slot), x.buf, x.len, b);
    Trace("write", x.track, t0, NowSeconds(), c);
    if (!st.ok()) co_return Status(st.code(), DescribeSlot(geo, c, slot, path) + ": " + st.message());
    ++written;
    std::lock_guard<std::mutex> lk(stats_mu);
    stats.bytes_written += x.len;
    co_return Status::Ok();
  }

  template <class F>
  asio::awaitable<Status> ComputeTraced(const char* name, uint64_t c, const ChunkIo& x, F f) {
    const double t0 = NowSeconds();
    Status st = co_await Compute(std::move(f));
    Trace(name, x.track, t0, NowSeconds(), c);
    co_return st;
  }

  // The end of every chunk's coroutine: its error fails the pass, its buffer goes back.
  void Release(int b, const Status& st) {
    if (!st.ok()) Fail(st);
    STRATA_CHECK(free_bufs->TrySend(std::move(b)));
    if (--in_flight == 0) Wake(&drained_waiter);
  }

  // Step 0 (Create): zero moments and the caller's initial weights, sealed, written to slot 0.
  asio::awaitable<void> InitChunk(uint64_t c, int b) {
    const ChunkIo x = IoOf(c, b);
    Status st = co_await ComputeTraced("initialize", c, x, [this, c, x] { return FillInitial(c, x.buf, x.n); });
    if (st.ok() && !failed) st = co_await WriteSlot(c, b, x, static_cast<uint32_t>(step % 2));
    Release(b, st);
  }

  // Step t: read slot (t-1) mod 2, wait for the gradient, update and seal, write slot t mod 2.
  asio::awaitable<void> StepChunk(uint64_t c, int b) {
    const ChunkIo x = IoOf(c, b);
    const uint32_t read_slot = static_cast<uint32_t>((step + 1) % 2);
    Status st = co_await ReadSlot(c, b, x, read_slot);
    if (st.ok()) {
      const double t1 = NowSeconds();
      st = co_await WaitGradient(c);
      const double t2 = NowSeconds();
      if (t2 - t1 > 1e-5) Trace("wait for gradient", x.track, t1, t2, c);
      std::lock_guard<std::mutex> lk(stats_mu);
      stats.grad_wait_seconds += t2 - t1;
    }
    if (st.ok() && !failed)
      st = co_await ComputeTraced("update", c, x, [this, c, x, read_slot] { return UpdateSlot(c, x.buf, x.n, read_slot); });
    if (st.ok() && !failed) st = co_await WriteSlot(c, b, x, static_cast<uint32_t>(step % 2));
    Release(b, st);
  }

  // VerifyCommitted: read and check the committed slot. Every chunk's result goes to verify_each
  // and the first error is kept, but the pass goes on to check the other chunks.
  asio::awaitable<void> VerifyChunk(uint64_t c, int b) {
    const ChunkIo x = IoOf(c, b);
    const uint32_t slot = static_cast<uint32_t>(step % 2);
    Status st = co_await ReadSlot(c, b, x, slot);
    if (st.ok()) {
      st = co_await ComputeTraced("verify", c, x, [this, c, x, slot] {
        return VerifySlot(x.buf, geo, header.run_id, c, slot, step, path, pool.get());
      });
    }
    if (verify_each) verify_each(c, st);
    if (!st.ok() && step_status.ok()) step_status = st;
    Release(b, Status::Ok());
  }

  asio::awaitable<void> ChunkOfPass(uint64_t c, int b) {
    switch (mode) {
      case Mode::kInit: return InitChunk(c, b);
      case Mode::kStep: return StepChunk(c, b);
      case Mode::kVerify: break;
    }
    return VerifyChunk(c, b);
  }

  // Compute thread, step 0: fill the slot's payload.
  Status FillInitial(uint64_t c, uint8_t* buf, uint32_t n) {
    const double t0 = NowSeconds();
    const SlotView v = ViewSlot(geo.layout, buf, n);
    InitSlotPayload(geo.layout, v);
    if (v.master && init) init(c, std::span<float>(v.master, n));
    Seal(c, buf, n, t0);
    return Status::Ok();
  }

  // Compute thread, step t: check what was read, run the update, hand the weights out, seal.
  Status UpdateSlot(uint64_t c, uint8_t* buf, uint32_t n, uint32_t read_slot) {
    const double t0 = NowSeconds();
    STRATA_RETURN_IF_ERROR(VerifySlot(buf, geo, header.run_id, c, read_slot, step - 1, path, pool.get()));
    const SlotView v = ViewSlot(geo.layout, buf, n);
    const ChunkState& cs = chunks[c];
    std::span<float> param = v.master ? std::span<float>(v.master, n) : cs.weights;
    optim::AdamWConfig cfg;
    cfg.lr = lr;
    cfg.beta1 = header.hyper.beta1;
    cfg.beta2 = header.hyper.beta2;
    cfg.eps = header.hyper.eps;
    cfg.weight_decay = header.hyper.weight_decay;
    const int64_t t = static_cast<int64_t>(step);
    if (IsFp32(geo.layout)) {
      STRATA_RETURN_IF_ERROR(optim::AdamWStep(cfg, t, param, cs.grad, std::span<float>(v.m32, n),
                                              std::span<float>(v.v32, n), pool.get(), opt.simd));
    } else {
      const size_t nb = static_cast<size_t>(q8::NumBlocks(n));
      optim::Q8Moments q{std::span<uint8_t>(v.m_codes, n), std::span<uint8_t>(v.v_codes, n),
                         std::span<float>(v.m_absmax, nb), std::span<float>(v.v_absmax, nb)};
      STRATA_RETURN_IF_ERROR(optim::AdamW8bitStep(cfg, t, param, cs.grad, q, pool.get(), opt.simd));
    }
    if (on_done) on_done(c, param);
    Seal(c, buf, n, t0);
    std::lock_guard<std::mutex> lk(stats_mu);
    ++stats.chunks_updated;
    return Status::Ok();
  }

  // Compute thread: the slot's header (step, checksum) and zero padding, ready to write.
  void Seal(uint64_t c, uint8_t* buf, uint32_t n, double t0) {
    const uint64_t payload = Geometry::PayloadBytes(geo.layout, n);
    SlotHeader h;
    h.chunk_len = n;
    h.chunk = c;
    h.step = step;
    h.payload_bytes = payload;
    h.run_id = header.run_id;
    SealSlot(buf, h, pool.get());
    // The padding after the payload goes to disk too: keep it zero, not stale bytes of another chunk.
    const uint64_t end = kSlotHeaderBytes + payload, len = AlignUp(end, kAlign);
    std::memset(buf + end, 0, len - end);
    std::lock_guard<std::mutex> lk(stats_mu);
    stats.compute_seconds += NowSeconds() - t0;
  }

  // ---- Starting a pass (caller thread; the event loop is idle between passes) ----

  struct PassArgs {
    Mode mode;
    uint64_t step;
    double lr = 0;
    std::vector<uint64_t> order;
    ChunkDone on_done;
    InitFn init;
    std::function<void(uint64_t, const Status&)> verify_each;
  };

  // Caller thread. The event loop is idle between passes; the new pass's state is set up on it.
  Status BeginPass(PassArgs a) {
    if (step_active)
      return Status::InvalidArgument("step " + std::to_string(caller_step) + " is still open: call EndStep first");
    if (broken) return BrokenStatus();
    const uint64_t n = geo.n_chunks();
    for (uint64_t c = 0; c < n; ++c) submitted[c] = 0;
    n_submitted = 0;
    ready_below = n;
    step_promise = std::promise<Status>();
    step_future = step_promise.get_future();
    step_active = true;
    caller_mode = a.mode;
    caller_step = a.step;
    const uint64_t p = ++pass;
    accepting = a.mode == Mode::kStep;
    asio::post(io, [this, p, a = std::move(a)]() mutable { StartPass(p, std::move(a)); });
    return Status::Ok();
  }

  // Event-loop thread.
  void StartPass(uint64_t p, PassArgs a) {
    io_pass = p;
    mode = a.mode;
    step = a.step;
    lr = a.lr;
    on_done = std::move(a.on_done);
    init = std::move(a.init);
    verify_each = std::move(a.verify_each);
    const uint64_t n = geo.n_chunks();
    chunks.clear();
    chunks.resize(n);
    arrived.clear();
    order = std::move(a.order);
    order_pos = prefetched_waiting = in_flight = started = 0;
    written = 0;
    step_status = Status::Ok();
    failed = false;
    if (mode != Mode::kStep) {
      for (uint64_t c = 0; c < n; ++c) {
        chunks[c].ready = true;
        arrived.push_back(c);
      }
    }
    asio::co_spawn(io, PassMain(), CheckNoException);
  }

  Status EndPass() {
    if (!step_active) return Status::InvalidArgument("EndStep: no step is open (call BeginStep first)");
    accepting = false;
    const uint64_t n = geo.n_chunks();
    if (caller_mode == Mode::kStep && n_submitted.load() < n) {
      uint64_t first = 0;
      while (first < n && submitted[first]) ++first;
      Status st = Status::InvalidArgument(
          "EndStep: the gradients of " + std::to_string(n - n_submitted.load()) + " of " + std::to_string(n) +
          " chunks were never submitted (the first is chunk " + std::to_string(first) + "); step " +
          std::to_string(caller_step) + " is not committed");
      const uint64_t p = pass.load();
      asio::post(io, [this, p, st] {
        if (p == io_pass) Fail(st);
      });
    }
    Status st = step_future.get();
    step_active = false;
    return st;
  }
};

// ---- Public API --------------------------------------------------------------------------------

OffloadEngine::OffloadEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OffloadEngine::~OffloadEngine() = default;

Result<std::unique_ptr<OffloadEngine>> OffloadEngine::Create(const std::string& dir, uint64_t n_params,
                                                             const StateHyper& hyper, const OffloadOptions& opt,
                                                             const InitFn& init) {
  auto impl = std::make_unique<Impl>();
  impl->opt = opt;
  impl->dir = dir;
  impl->path = dir + "/" + kStateFileName;
  impl->geo = Geometry{opt.layout, n_params, opt.chunk_params};
  STRATA_RETURN_IF_ERROR(impl->geo.Validate());
  optim::AdamWConfig check{1e-3, hyper.beta1, hyper.beta2, hyper.eps, hyper.weight_decay};
  STRATA_RETURN_IF_ERROR(optim::ValidateAdamW(check));

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError(dir + ": cannot create the state directory: " + ec.message());
  auto lock = LockDirectory(dir);
  if (!lock.ok()) return lock.status();
  impl->dir_fd = *lock;
  if (auto m = ReadManifest(dir); m.ok() || m.status().code() != StatusCode::kNotFound)
    return Status::InvalidArgument(dir + " already holds a strata state (" + std::string(kManifestName) +
                                   " present); resume it, or choose an empty directory");

  auto fd = OpenStateFile(impl->path, O_RDWR | O_CREAT, opt.direct, &impl->direct);
  if (!fd.ok()) return fd.status();
  impl->fd = *fd;
  if (::ftruncate(impl->fd, 0) != 0) return Status::IOError(impl->path + ": truncate: " + ErrnoText(errno));
  const uint64_t bytes = impl->geo.file_bytes();
  // Reserve every block now, so a full disk shows up here and never in the middle of a step.
  if (::fallocate(impl->fd, 0, 0, static_cast<off_t>(bytes)) != 0) {
    const int e = errno;
    if (e == EOPNOTSUPP) {
      if (::ftruncate(impl->fd, static_cast<off_t>(bytes)) != 0)
        return Status::IOError(impl->path + ": ftruncate to " + std::to_string(bytes) + " bytes: " + ErrnoText(errno));
    } else {
      ::unlink(impl->path.c_str());
      return Status::IOError(impl->path + ": reserving " + std::to_string(bytes) + " bytes for the state: " + ErrnoText(e) +
                             (e == ENOSPC ? " (the disk is full)" : ""));
    }
  }
  std::random_device rd;
  impl->header.geo = impl->geo;
  impl->header.hyper = hyper;
  impl->header.run_id = (static_cast<uint64_t>(rd()) << 32 | rd()) | 1;
  {
    AlignedBuf hb(kFileHeaderBytes);
    EncodeFileHeader(impl->header, std::span<uint8_t>(hb.data(), kFileHeaderBytes));
    const ssize_t w = ::pwrite(impl->fd, hb.data(), kFileHeaderBytes, 0);
    if (w != static_cast<ssize_t>(kFileHeaderBytes))
      return Status::IOError(impl->path + ": writing the header: " + (w < 0 ? ErrnoText(errno) : std::string("short write")));
  }
  STRATA_RETURN_IF_ERROR(impl->Start(opt.ram_budget));
  Impl::PassArgs a{Impl::Mode::kInit, 0};
  a.init = init;
  STRATA_RETURN_IF_ERROR(impl->BeginPass(std::move(a)));
  STRATA_RETURN_IF_ERROR(impl->EndPass());
  return std::unique_ptr<OffloadEngine>(new OffloadEngine(std::move(impl)));
}

Result<std::unique_ptr<OffloadEngine>> OffloadEngine::Open(const std::string& dir, const OffloadOptions& opt) {
  auto impl = std::make_unique<Impl>();
  impl->opt = opt;
  impl->dir = dir;
  impl->path = dir + "/" + kStateFileName;
  auto lock = LockDirectory(dir);
  if (!lock.ok()) return lock.status();
  impl->dir_fd = *lock;
  auto man = ReadManifest(dir);
  if (!man.ok()) return man.status();
  auto fd = OpenStateFile(impl->path, O_RDWR, opt.direct, &impl->direct);
  if (!fd.ok()) {
    if (fd.status().code() == StatusCode::kNotFound)
      return Status::Corruption(impl->path + ": missing, but " + dir + "/" + kManifestName + " commits step " +
                                std::to_string(man->committed_step));
    return fd.status();
  }
  impl->fd = *fd;
  struct stat sb;
  if (::fstat(impl->fd, &sb) != 0) return Status::IOError(impl->path + ": stat: " + ErrnoText(errno));
  const uint64_t size = static_cast<uint64_t>(sb.st_size);
  AlignedBuf hb(kFileHeaderBytes);
  size_t got = 0;
  STRATA_RETURN_IF_ERROR(PreadFull(impl->fd, hb.data(), kFileHeaderBytes, 0, impl->path, &got));
  auto h = DecodeFileHeader(std::span<const uint8_t>(hb.data(), got), impl->path);
  if (!h.ok()) return h.status();
  impl->header = *h;
  impl->geo = h->geo;
  if (size != impl->geo.file_bytes())
    return Status::Corruption(impl->path + ": " + std::to_string(size) + " bytes, but its header says " +
                              std::to_string(impl->geo.file_bytes()) +
                              (size < impl->geo.file_bytes() ? " (truncated)" : " (trailing bytes)"));
  const std::string mpath = dir + "/" + kManifestName;
  if (man->run_id != h->run_id)
    return Status::Corruption(mpath + ": belongs to another state file (run id differs from " + impl->path + ")");
  if (man->n_chunks != impl->geo.n_chunks() || man->file_bytes != impl->geo.file_bytes())
    return Status::Corruption(mpath + ": chunk count or file size differs from " + impl->path + "'s header");
  impl->committed = man->committed_step;
  STRATA_RETURN_IF_ERROR(impl->Start(opt.ram_budget));
  return std::unique_ptr<OffloadEngine>(new OffloadEngine(std::move(impl)));
}

const Geometry& OffloadEngine::geometry() const { return impl_->geo; }
const StateHyper& OffloadEngine::hyper() const { return impl_->header.hyper; }
uint64_t OffloadEngine::committed_step() const { return impl_->committed; }
const std::string& OffloadEngine::dir() const { return impl_->dir; }
std::string OffloadEngine::state_path() const { return impl_->path; }
size_t OffloadEngine::staging_buffers() const { return impl_->nbuf; }
uint64_t OffloadEngine::staging_bytes() const { return impl_->nbuf * impl_->slot_bytes; }
std::string OffloadEngine::backend_name() const { return impl_->backend ? impl_->backend->name() : "none (failed)"; }
bool OffloadEngine::direct_io() const { return impl_->direct; }
bool OffloadEngine::step_failed() const { return impl_->failed || !impl_->accepting; }
OffloadStats OffloadEngine::stats() const {
  std::lock_guard<std::mutex> lk(impl_->stats_mu);
  return impl_->stats;
}

Status OffloadEngine::BeginStep(double lr, ChunkDone on_done, std::vector<uint64_t> order) {
  Impl& I = *impl_;
  if (!std::isfinite(lr) || lr < 0) return Status::InvalidArgument("lr: must be finite and >= 0, got " + std::to_string(lr));
  const uint64_t n = I.geo.n_chunks();
  if (order.empty()) {
    order.resize(n);
    for (uint64_t c = 0; c < n; ++c) order[c] = n - 1 - c;
  } else {
    std::vector<uint8_t> seen(n, 0);
    for (uint64_t c : order) {
      if (c >= n) return Status::InvalidArgument("order: chunk " + std::to_string(c) + " out of range (" + std::to_string(n) + " chunks)");
      if (seen[c]++) return Status::InvalidArgument("order: chunk " + std::to_string(c) + " listed twice");
    }
  }
  Impl::PassArgs a{Impl::Mode::kStep, I.committed + 1};
  a.lr = lr;
  a.order = std::move(order);
  a.on_done = std::move(on_done);
  return I.BeginPass(std::move(a));
}

Status OffloadEngine::SubmitGradient(uint64_t chunk, std::span<const float> grad, std::span<float> weights) {
  Impl& I = *impl_;
  if (!I.accepting) return Status::InvalidArgument("SubmitGradient: no step is open");
  const uint64_t n = I.geo.n_chunks();
  if (chunk >= n) return Status::InvalidArgument("SubmitGradient: chunk " + std::to_string(chunk) + " out of range (" + std::to_string(n) + " chunks)");
  const uint32_t len = I.geo.chunk_len(chunk);
  if (grad.size() != len)
    return Status::InvalidArgument("SubmitGradient: chunk " + std::to_string(chunk) + ": gradient of " +
                                   std::to_string(grad.size()) + " values, want " + std::to_string(len));
  if (!HasMaster(I.geo.layout) && weights.size() != len)
    return Status::InvalidArgument("SubmitGradient: chunk " + std::to_string(chunk) + ": layout " + LayoutName(I.geo.layout) +
                                   " keeps no master weights, so pass the chunk's " + std::to_string(len) +
                                   " weights (got " + std::to_string(weights.size()) + ")");
  if (I.submitted[chunk].exchange(1))
    return Status::InvalidArgument("SubmitGradient: chunk " + std::to_string(chunk) +
                                   ": gradient submitted twice in step " + std::to_string(I.committed + 1));
  ++I.n_submitted;
  const uint64_t p = I.pass.load();
  asio::post(I.io, [&I, p, chunk, grad, weights] { I.OnGradient(p, chunk, grad, weights); });
  return Status::Ok();
}

Status OffloadEngine::SubmitReadyFrom(uint64_t lo, std::span<const float> grads, std::span<float> weights) {
  Impl& I = *impl_;
  const Geometry& g = I.geo;
  if (grads.size() != g.n_params)
    return Status::InvalidArgument("SubmitReadyFrom: gradients of " + std::to_string(grads.size()) + " values, want " +
                                   std::to_string(g.n_params));
  if (!weights.empty() && weights.size() != g.n_params)
    return Status::InvalidArgument("SubmitReadyFrom: weights of " + std::to_string(weights.size()) + " values, want " +
                                   std::to_string(g.n_params));
  Status first;
  while (I.ready_below > 0 && g.chunk_begin(I.ready_below - 1) >= lo) {
    const uint64_t c = --I.ready_below;
    if (I.submitted[c].load()) continue;  // handed in by SubmitGradient
    const uint64_t b = g.chunk_begin(c);
    const uint32_t len = g.chunk_len(c);
    Status s = SubmitGradient(c, grads.subspan(b, len), weights.empty() ? weights : weights.subspan(b, len));
    if (!s.ok() && first.ok()) first = std::move(s);
  }
  return first;
}

Status OffloadEngine::EndStep() { return impl_->EndPass(); }

Status OffloadEngine::VerifyCommitted(const std::function<void(uint64_t, const Status&)>& each) {
  Impl& I = *impl_;
  Impl::PassArgs a{Impl::Mode::kVerify, I.committed};
  a.verify_each = each;
  STRATA_RETURN_IF_ERROR(I.BeginPass(std::move(a)));
  return I.EndPass();
}

Result<std::vector<uint8_t>> OffloadEngine::ReadCommittedSlot(uint64_t chunk) {
  Impl& I = *impl_;
  if (chunk >= I.geo.n_chunks()) return Status::InvalidArgument("chunk " + std::to_string(chunk) + " out of range");
  const uint32_t slot = static_cast<uint32_t>(I.committed % 2);
  const uint32_t n = I.geo.chunk_len(chunk);
  const size_t len = AlignUp(kSlotHeaderBytes + Geometry::PayloadBytes(I.geo.layout, n), kAlign);
  AlignedBuf b(len);
  size_t got = 0;
  STRATA_RETURN_IF_ERROR(PreadFull(I.fd, b.data(), len, I.geo.slot_offset(chunk, slot), I.path, &got));
  if (got != len) return Status::Corruption(DescribeSlot(I.geo, chunk, slot, I.path) + ": truncated");
  return std::vector<uint8_t>(b.data(), b.data() + len);
}

}  // namespace strata::offload
