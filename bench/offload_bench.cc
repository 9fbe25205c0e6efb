#include "bench/offload_bench.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "offload/io.h"
#include "offload/offload_engine.h"
#include "runtime/clock.h"
#include "runtime/cpu_features.h"
#include "runtime/sysinfo.h"

namespace strata::bench {

using offload::Geometry;
using offload::IoOp;
using offload::IoQueue;

namespace {

double Now() { return MonotonicSeconds(); }

// A counter-based generator: value i of (seed, stream) without any state, so any chunk of any
// step can be made alone. About a nanosecond per value.
inline uint32_t Hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
void Generate(uint64_t seed, uint64_t stream, float scale, float* out, size_t n) {
  const uint32_t key = Hash32(static_cast<uint32_t>(seed * 0x9e3779b9u) ^ Hash32(static_cast<uint32_t>(stream)) ^
                              static_cast<uint32_t>(stream >> 32));
  const float k = scale / 8388608.0f;
  for (size_t i = 0; i < n; ++i) {
    const int32_t r = static_cast<int32_t>(Hash32(key ^ static_cast<uint32_t>(i) * 0x85ebca6bu) >> 8) - (1 << 23);
    out[i] = static_cast<float>(r) * k;
  }
}

std::string Gb(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f GB", bytes / 1e9);
  return b;
}

struct Mapping {
  explicit Mapping(size_t n) : n(n) {
    void* q = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p = q == MAP_FAILED ? nullptr : static_cast<uint8_t*>(q);
  }
  ~Mapping() {
    if (p) ::munmap(p, n);
  }
  uint8_t* p;
  size_t n;
};

}  // namespace


DiskProber::~DiskProber() {
  queue_.reset();
  backend_.reset();
  if (mem_) ::munmap(mem_, mem_bytes_);
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
}

Result<std::unique_ptr<DiskProber>> DiskProber::Create(const std::string& dir, uint64_t bytes, uint64_t buffer_bytes,
                                                       uint64_t max_block, uint64_t first_block, uint32_t first_depth) {
  if (max_block == 0 || max_block % offload::kAlign != 0 || buffer_bytes < max_block)
    return Status::InvalidArgument("disk probe: block size must be a multiple of 4096 within the buffers");
  std::unique_ptr<DiskProber> p(new DiskProber);
  p->bytes_ = offload::AlignUp(std::max(bytes, max_block), offload::kAlign);
  p->path_ = dir + "/disk-probe.bin";
  p->fd_ = ::open(p->path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0644);
  p->direct_ = p->fd_ >= 0;
  if (p->fd_ < 0 && errno == EINVAL) p->fd_ = ::open(p->path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (p->fd_ < 0) return Status::IOError(p->path_ + ": create: " + strerror(errno));
  if (::fallocate(p->fd_, 0, 0, static_cast<off_t>(p->bytes_)) != 0 && errno != EOPNOTSUPP)
    return Status::IOError(p->path_ + ": reserving " + std::to_string(p->bytes_) + " bytes: " + strerror(errno));
  p->mem_bytes_ = offload::AlignUp(buffer_bytes, offload::kAlign);
  void* m = ::mmap(nullptr, p->mem_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return Status::OutOfMemory("disk probe: " + std::to_string(p->mem_bytes_) + " bytes of buffers");
  p->mem_ = static_cast<uint8_t*>(m);
  for (size_t i = 0; i < p->mem_bytes_; i += 4) {  // incompressible bytes
    const uint32_t v = Hash32(static_cast<uint32_t>(i) ^ 0x5bd1e995u);
    std::memcpy(p->mem_ + i, &v, 4);
  }
  auto backend = offload::MakeDefaultBackend(16);
  if (!backend.ok()) return backend.status();
  p->backend_ = std::move(*backend);
  STRATA_RETURN_IF_ERROR(p->backend_->RegisterFiles(std::span<const int>(&p->fd_, 1)));
  iovec iov{p->mem_, p->mem_bytes_};
  STRATA_RETURN_IF_ERROR(p->backend_->RegisterBuffers(std::span<const iovec>(&iov, 1)));
  p->queue_ = std::make_unique<IoQueue>(p->backend_.get(), std::vector<std::string>{p->path_});
  auto first = p->Pass(true, first_block, first_depth);
  if (!first.ok()) return first.status();
  p->first_write_GBps_ = *first;
  return p;
}

Result<double> DiskProber::Pass(bool write, uint64_t block, uint32_t depth) {
  if (block == 0 || block % offload::kAlign != 0 || depth == 0 || depth * block > mem_bytes_ || block > bytes_)
    return Status::InvalidArgument("disk probe: shape outside the probe's buffers or file");
  const IoOp op = write ? IoOp::kWrite : IoOp::kRead;
  const uint64_t blocks = bytes_ / block;
  const double t0 = Now();
  uint64_t next = 0, finished = 0;
  std::vector<IoQueue::Done> done;
  for (uint32_t i = 0; i < depth && next < blocks; ++i, ++next)
    queue_->Start(op, 0, next * block, mem_ + i * block, block, 0, i);
  while (finished < blocks) {
    done.clear();
    STRATA_RETURN_IF_ERROR(queue_->Poll(&done, 1));
    for (auto& d : done) {
      STRATA_RETURN_IF_ERROR(std::move(d.status));
      ++finished;
      if (next < blocks) {
        queue_->Start(op, 0, next * block, mem_ + d.tag * block, block, 0, d.tag);
        ++next;
      }
    }
  }
  if (write) {
    queue_->Start(IoOp::kFsync, 0, 0, nullptr, 0, -1, 0);
    STRATA_RETURN_IF_ERROR(offload::RunTransfers(*queue_, 1));
  }
  return double(blocks * block) / (Now() - t0) / 1e9;
}

Result<nlohmann::json> RunOffloadBench(const OffloadBenchOptions& opt) {
  const Geometry geo{opt.layout, opt.params, opt.chunk_params};
  STRATA_RETURN_IF_ERROR(geo.Validate());
  if (opt.steps < 1) return Status::InvalidArgument("--steps: must be >= 1");
  if (opt.grad_buffers < 1) return Status::InvalidArgument("gradient buffers: must be >= 1");
  std::error_code ec;
  if (!std::filesystem::is_directory(opt.path, ec))
    return Status::InvalidArgument("--path " + opt.path + ": not a directory");
  const std::string work = opt.path + "/strata-bench-offload-" + std::to_string(::getpid());
  std::filesystem::create_directories(work, ec);
  if (ec) return Status::IOError(work + ": " + ec.message());
  struct Cleanup {
    std::string dir;
    bool keep;
    ~Cleanup() {
      std::error_code e;
      if (!keep) std::filesystem::remove_all(dir, e);
    }
  } cleanup{work, opt.keep};

  // Room on the disk: the state file plus the probe file.
  const uint64_t slot = geo.slot_bytes();
  const uint64_t buffers = std::min<uint64_t>(opt.ram_budget / slot, geo.n_chunks());
  if (buffers < 2 && geo.n_chunks() > 1)
    return Status::InvalidArgument("--offload-ram " + std::to_string(opt.ram_budget) + " holds fewer than 2 staging buffers of " +
                                   std::to_string(slot) + " bytes; raise it or lower --chunk");
  const uint64_t probe_bytes = opt.probe_bytes ? opt.probe_bytes : std::min<uint64_t>(geo.step_io_bytes(), uint64_t{8} << 30);
  const auto space = std::filesystem::space(opt.path, ec);
  if (!ec && space.available < geo.file_bytes() + probe_bytes + (uint64_t{1} << 30))
    return Status::InvalidArgument("--path " + opt.path + ": " + Gb(double(space.available)) + " free, the run needs " +
                                   Gb(double(geo.file_bytes() + probe_bytes)) + " (state file " +
                                   Gb(double(geo.file_bytes())) + " + disk probe) and 1 GB to spare");
  auto say = [&](const char* fmt, auto... args) {
    if (opt.verbose) {
      std::fprintf(stderr, fmt, args...);
      std::fflush(stderr);
    }
  };

  // 1. The disk's own best, with the same io_uring, block size and depth as the engine.
  // Two request shapes (the engine's slot-sized transfers at its depth, and 1 MiB blocks 8 deep,
  // which some disks prefer), before the steps and again after them (the disk of a shared machine
  // varies): the best read and the best write of all count as the disk's.
  struct Shape {
    uint64_t block;
    uint32_t depth;
  };
  const Shape shapes[] = {{slot, static_cast<uint32_t>(std::clamp<uint64_t>(buffers, 1, 16))},
                          {uint64_t{1} << 20, 8}};
  say("bench offload: disk probe file of %s in %s\n", Gb(double(probe_bytes)).c_str(), opt.path.c_str());
  DiskProbe best;
  nlohmann::json probes = nlohmann::json::array();
  auto run_probes = [&](const char* when) -> Status {
    uint64_t mem = 0, max_block = 0;
    for (const Shape& sh : shapes) {
      mem = std::max(mem, sh.block * sh.depth);
      max_block = std::max(max_block, sh.block);
    }
    auto prober = DiskProber::Create(work, probe_bytes, mem, max_block, shapes[1].block, shapes[1].depth);
    if (!prober.ok()) return prober.status();
    best.bytes = (*prober)->bytes();
    best.direct = (*prober)->direct();
    best.first_write_GBps = std::max(best.first_write_GBps, (*prober)->first_write_GBps());
    for (const Shape& sh : shapes) {
      auto w = (*prober)->Pass(true, sh.block, sh.depth);
      if (!w.ok()) return w.status();
      auto r = (*prober)->Pass(false, sh.block, sh.depth);
      if (!r.ok()) return r.status();
      say("bench offload: disk %s, blocks of %llu bytes, %u in flight: writes %.2f GB/s, reads %.2f GB/s\n", when,
          (unsigned long long)sh.block, sh.depth, *w, *r);
      probes.push_back({{"when", when}, {"block_bytes", sh.block}, {"depth", sh.depth}, {"read_GBps", *r},
                        {"write_GBps", *w}});
      best.read_GBps = std::max(best.read_GBps, *r);
      best.write_GBps = std::max(best.write_GBps, *w);
    }
    return Status::Ok();
  };
  STRATA_RETURN_IF_ERROR(run_probes("before the steps"));
  const DiskProbe* probe = &best;

  // 2. Step 0: the state file, written once.
  offload::OffloadOptions eo;
  eo.layout = opt.layout;
  eo.chunk_params = opt.chunk_params;
  eo.ram_budget = opt.ram_budget;
  eo.threads = opt.threads;
  eo.tracer = opt.tracer;
  eo.io_piece_bytes = opt.io_piece_bytes;
  eo.queue_depth = opt.queue_depth;
  const std::string state_dir = work + "/state";
  say("bench offload: creating %s of state (%s, %llu chunks) in %s\n", Gb(double(geo.file_bytes())).c_str(),
      offload::LayoutName(opt.layout), (unsigned long long)geo.n_chunks(), state_dir.c_str());
  const double c0 = Now();
  auto engine = offload::OffloadEngine::Create(
      state_dir, opt.params, offload::StateHyper{}, eo,
      [](uint64_t c, std::span<float> w) { Generate(1, c, 0.02f, w.data(), w.size()); });
  if (!engine.ok()) return engine.status();
  offload::OffloadEngine& e = **engine;
  const double init_seconds = Now() - c0;

  // 3. The timed steps.
  const bool master = offload::HasMaster(opt.layout);
  const size_t per_buf = static_cast<size_t>(opt.chunk_params) * (master ? 1 : 2);
  std::vector<float> grad_mem(per_buf * opt.grad_buffers);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint32_t> free_list;
  std::vector<uint32_t> buf_of(geo.n_chunks());
  uint64_t weights_hash = 0;
  std::vector<double> step_seconds;
  double grad_seconds_total = 0;
  const offload::OffloadStats before = e.stats();
  // Backward produces the last layer's gradients first; --order ascending is there to compare.
  std::vector<uint64_t> order(geo.n_chunks());
  for (uint64_t k = 0; k < order.size(); ++k) order[k] = opt.ascending ? k : geo.n_chunks() - 1 - k;
  for (int s = 0; s < opt.steps; ++s) {
    free_list.clear();
    for (uint32_t i = 0; i < opt.grad_buffers; ++i) free_list.push_back(i);
    const uint64_t step = e.committed_step() + 1;
    const double t0 = Now();
    double grad_seconds = 0;
    Status st = e.BeginStep(1e-4, [&](uint64_t c, std::span<const float> w) {
      const uint64_t h = XXH3_64bits(w.data(), w.size_bytes());
      std::lock_guard<std::mutex> lk(mu);
      weights_hash ^= h + c;
      free_list.push_back(buf_of[c]);
      cv.notify_one();
    }, order);
    STRATA_RETURN_IF_ERROR(st);
    Status submit;
    for (uint64_t k = 0; k < geo.n_chunks() && submit.ok(); ++k) {
      const uint64_t c = order[k];
      uint32_t b;
      {
        std::unique_lock<std::mutex> lk(mu);
        while (free_list.empty() && !e.step_failed()) cv.wait_for(lk, std::chrono::milliseconds(50));
        if (free_list.empty()) break;
        b = free_list.back();
        free_list.pop_back();
        buf_of[c] = b;
      }
      const uint32_t n = geo.chunk_len(c);
      float* g = grad_mem.data() + size_t{b} * per_buf;
      const double g0 = Now();
      Generate(step + 1, c, 1e-2f, g, n);
      std::span<float> w;
      if (!master) {
        w = std::span<float>(g + opt.chunk_params, n);
        Generate(1, c, 0.02f, w.data(), n);  // the caller's weights of this chunk
      }
      grad_seconds += Now() - g0;
      submit = e.SubmitGradient(c, std::span<const float>(g, n), w);
    }
    st = e.EndStep();
    if (!submit.ok()) return submit;
    STRATA_RETURN_IF_ERROR(st);
    step_seconds.push_back(Now() - t0);
    grad_seconds_total += grad_seconds;
    say("bench offload: step %llu: %.2f s, %.2f GB/s of state moved (gradients took %.2f s of it)\n",
        (unsigned long long)step, step_seconds.back(), 2.0 * double(geo.step_io_bytes()) / step_seconds.back() / 1e9,
        grad_seconds);
  }
  const offload::OffloadStats after = e.stats();
  const size_t staging_buffers = e.staging_buffers();
  const uint64_t staging_bytes = e.staging_bytes();
  const std::string backend_name = e.backend_name();
  const bool direct_io = e.direct_io();
  engine->reset();  // its staging memory goes back before the second probe allocates its own
  STRATA_RETURN_IF_ERROR(run_probes("after the steps"));
  say("bench offload: the disk's best: writes %.2f GB/s, reads %.2f GB/s\n", probe->write_GBps, probe->read_GBps);
  const double steps = opt.steps;
  std::vector<double> sorted = step_seconds;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  const double bytes_read = double(after.bytes_read - before.bytes_read) / steps;
  const double bytes_written = double(after.bytes_written - before.bytes_written) / steps;
  const double ideal = bytes_read / (probe->read_GBps * 1e9) + bytes_written / (probe->write_GBps * 1e9);
  const Geometry fp32{offload::Layout::kFp32MV, opt.params, opt.chunk_params};
  const uint64_t rss = PeakRssBytes();

  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  nlohmann::json j;
  j["benchmark"] = "offload";
  j["date"] = date;
  j["layout"] = offload::LayoutName(opt.layout);
  j["params"] = opt.params;
  j["chunk_params"] = opt.chunk_params;
  j["n_chunks"] = geo.n_chunks();
  j["slot_bytes"] = slot;
  j["state_file_bytes"] = geo.file_bytes();
  j["ram_budget_bytes"] = opt.ram_budget;
  j["staging_buffers"] = staging_buffers;
  j["staging_bytes"] = staging_bytes;
  j["gradient_buffer_bytes"] = grad_mem.size() * sizeof(float);
  j["backend"] = backend_name;
  j["direct_io"] = direct_io;
  j["threads"] = opt.threads;
  j["io_piece_bytes"] = opt.io_piece_bytes;
  j["queue_depth"] = opt.queue_depth;
  j["order"] = opt.ascending ? "ascending" : "descending";
  j["simd"] = std::string(SimdLevelName(SimdLevelActive()));
  j["steps"] = opt.steps;
  j["step_seconds"] = median;
  j["step_seconds_all"] = step_seconds;
  j["init_seconds"] = init_seconds;
  j["gradient_seconds"] = grad_seconds_total / steps;
  j["compute_seconds"] = (after.compute_seconds - before.compute_seconds) / steps;
  j["gradient_wait_seconds"] = (after.grad_wait_seconds - before.grad_wait_seconds) / steps;
  j["bytes_read"] = bytes_read;
  j["bytes_written"] = bytes_written;
  j["offload_GBps"] = (bytes_read + bytes_written) / median / 1e9;
  j["disk_read_GBps"] = probe->read_GBps;
  j["disk_write_GBps"] = probe->write_GBps;
  j["disk_probe_bytes"] = probe->bytes;
  j["disk_first_write_GBps"] = probe->first_write_GBps;
  j["disk_probes"] = probes;
  j["disk_efficiency"] = ideal / median;
  j["bytes_per_step_fp32_mv"] = 2.0 * double(fp32.step_io_bytes());
  j["bytes_ratio_vs_fp32_mv"] = (bytes_read + bytes_written) / (2.0 * double(fp32.step_io_bytes()));
  j["peak_rss_bytes"] = rss;
  j["rss_limit_bytes"] = opt.ram_budget + (uint64_t{64} << 20);
  j["weights_checksum"] = weights_hash;
  j["io_retries"] = after.io_retries;
  j["short_transfers"] = after.short_transfers;
  j["state_dir"] = opt.keep ? state_dir : "";
  return j;
}

std::string FormatOffloadBench(const nlohmann::json& r) {
  char b[2048];
  std::snprintf(
      b, sizeof b,
      "strata bench offload  %s  (%s, %s)\n"
      "  state        %.3g parameters, layout %s, %llu chunks of %llu, slot %llu bytes, file %s\n"
      "  budget       %s of staging = %llu buffers; peak RSS %s (limit budget + 64 MiB = %s)\n"
      "  step         %.3f s median over %d steps (gradient making %.3f s, compute %.3f s, of it)\n"
      "  moved        read %s + wrote %s per step = %.2f GB/s (%.2fx the bytes of fp32 {m, v})\n"
      "  disk probe   reads %.2f GB/s, writes %.2f GB/s (O_DIRECT, same io_uring, same run)\n"
      "  efficiency   %.2f of the disk's best (read/probe + write/probe) / step time\n",
      r["date"].get<std::string>().c_str(), r["backend"].get<std::string>().c_str(),
      r["direct_io"].get<bool>() ? "O_DIRECT" : "buffered", r["params"].get<double>(),
      r["layout"].get<std::string>().c_str(), (unsigned long long)r["n_chunks"].get<uint64_t>(),
      (unsigned long long)r["chunk_params"].get<uint64_t>(), (unsigned long long)r["slot_bytes"].get<uint64_t>(),
      Gb(r["state_file_bytes"].get<double>()).c_str(), Gb(r["staging_bytes"].get<double>()).c_str(),
      (unsigned long long)r["staging_buffers"].get<uint64_t>(), Gb(r["peak_rss_bytes"].get<double>()).c_str(),
      Gb(r["rss_limit_bytes"].get<double>()).c_str(), r["step_seconds"].get<double>(), r["steps"].get<int>(),
      r["gradient_seconds"].get<double>(), r["compute_seconds"].get<double>(), Gb(r["bytes_read"].get<double>()).c_str(),
      Gb(r["bytes_written"].get<double>()).c_str(), r["offload_GBps"].get<double>(),
      r["bytes_ratio_vs_fp32_mv"].get<double>(), r["disk_read_GBps"].get<double>(), r["disk_write_GBps"].get<double>(),
      r["disk_efficiency"].get<double>());
  return b;
}

}  // namespace strata::bench
