#include "bench/load_bench.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "model/checkpoint.h"
#include "model/config.h"
#include "model/model.h"
#include "runtime/clock.h"
#include "runtime/file_util.h"
#include "runtime/sysinfo.h"

namespace strata::bench {

namespace {

constexpr uint64_t kReadBytes = uint64_t{8} << 20;  // as the loader's buffers
constexpr uint64_t kRssTarget = uint64_t{64} << 20;
constexpr double kRatioTarget = 0.80;

double Now() { return MonotonicSeconds(); }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
nlohmann::json Spread(const std::vector<double>& v) {
  return {{"median", Median(v)}, {"min", *std::min_element(v.begin(), v.end())},
          {"max", *std::max_element(v.begin(), v.end())}, {"all", v}};
}

// A /proc/self/status field ("VmRSS:", "VmHWM:") in bytes, or 0.
uint64_t StatusBytes(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const size_t k = std::strlen(key);
  while (std::getline(f, line)) {
    if (line.compare(0, k, key) == 0) return std::strtoull(line.c_str() + k, nullptr, 10) * 1024;
  }
  return 0;
}

void Say(bool verbose, const std::string& s) {
  if (verbose) std::fprintf(stderr, "  %s\n", s.c_str());
}

// fsync, then drop from the page cache; returns the fraction of pages still resident (mincore).
Result<double> Evict(const std::vector<std::string>& files) {
  uint64_t pages = 0, resident = 0;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  for (const std::string& path : files) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::IOError(path + ": open: " + ErrnoText(errno));
    struct stat st;
    if (::fstat(fd, &st) != 0 || ::fsync(fd) != 0 || ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) {
      const int e = errno;
      ::close(fd);
      return Status::IOError(path + ": fsync / posix_fadvise(DONTNEED): " + ErrnoText(e));
    }
    const size_t size = static_cast<size_t>(st.st_size);
    if (size > 0) {
      void* m = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
      if (m != MAP_FAILED) {
        std::vector<unsigned char> v((size + page - 1) / page);
        if (::mincore(m, size, v.data()) == 0) {
          for (unsigned char c : v) resident += c & 1;
          pages += v.size();
        }
        ::munmap(m, size);
      }
    }
    ::close(fd);
  }
  return pages ? static_cast<double>(resident) / static_cast<double>(pages) : 0.0;
}

// Seconds to read every file front to back with kReadBytes preads into one buffer.
Result<double> ReadAll(const std::vector<std::string>& files, bool direct, uint8_t* buf, uint64_t* bytes) {
  *bytes = 0;
  const double t0 = Now();
  for (const std::string& path : files) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
    if (fd < 0) return Status::IOError(path + ": open" + (direct ? " (O_DIRECT)" : "") + ": " + ErrnoText(errno));
    if (!direct) (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    uint64_t off = 0;
    for (;;) {
      const ssize_t r = ::pread(fd, buf, kReadBytes, static_cast<off_t>(off));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        const int e = errno;
        ::close(fd);
        return Status::IOError(path + ": read at " + std::to_string(off) + ": " + ErrnoText(e));
      }
      if (r == 0) break;
      off += static_cast<uint64_t>(r);
      if (direct && static_cast<uint64_t>(r) < kReadBytes) break;  // the unaligned tail is the end
    }
    ::close(fd);
    *bytes += off;
  }
  return Now() - t0;
}

// One load in a forked child: a fresh model, then LoadCheckpoint, timed; RSS before and peak.
struct ChildResult {
  int ok = 0;
  double seconds = 0;
  double cpu_seconds = 0;  // user + system, both threads of the load
  uint64_t rss_before = 0, peak = 0;
  char error[512] = {};
};

Result<ChildResult> LoadInChild(const std::string& dir, const model::ModelConfig& cfg) {
  int fds[2];
  if (::pipe(fds) != 0) return Status::IOError("pipe: " + ErrnoText(errno));
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return Status::IOError("fork: " + ErrnoText(errno));
  }
  if (pid == 0) {
    ::close(fds[0]);
    ChildResult r;
    auto m = model::Model::Create(cfg, 1);
    if (!m.ok()) {
      std::snprintf(r.error, sizeof r.error, "%s", m.status().ToString().c_str());
    } else {
      r.rss_before = StatusBytes("VmRSS:");
      auto cpu = [] {
        struct rusage u;
        ::getrusage(RUSAGE_SELF, &u);
        return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
      };
      const double c0 = cpu();
      const double t0 = Now();
      Status s = model::LoadCheckpoint(dir, **m);
      r.seconds = Now() - t0;
      r.cpu_seconds = cpu() - c0;
      r.peak = StatusBytes("VmHWM:");
      r.ok = s.ok();
      if (!s.ok()) std::snprintf(r.error, sizeof r.error, "%s", s.ToString().c_str());
    }
    const ssize_t w = ::write(fds[1], &r, sizeof r);
    ::_exit(w == static_cast<ssize_t>(sizeof r) ? 0 : 1);
  }
  ::close(fds[1]);
  ChildResult r;
  size_t got = 0;
  while (got < sizeof r) {
    const ssize_t n = ::read(fds[0], reinterpret_cast<char*>(&r) + got, sizeof r - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fds[0]);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (got != sizeof r) {
    return Status::Internal("the load child ended without a result (wait status " + std::to_string(wstatus) +
                            "; killed for memory?)");
  }
  if (!r.ok) return Status::Internal(std::string("the load child: ") + r.error);
  return r;
}

}  // namespace

Result<nlohmann::json> RunLoadBench(const LoadBenchOptions& opt) {
  if (opt.rounds < 1) return Status::InvalidArgument("--rounds: must be >= 1");
  model::ModelConfig cfg;
  cfg.arch = "llama";
  cfg.n_layer = opt.layers;
  cfg.n_embd = opt.width;
  cfg.n_head = std::max(1, opt.width / 64);
  cfg.n_kv_head = std::max(1, cfg.n_head / 4);
  if (cfg.n_kv_head == cfg.n_head) cfg.n_kv_head = 0;
  cfg.n_mlp = opt.mlp > 0 ? opt.mlp : 4 * opt.width;
  cfg.vocab = opt.vocab;
  cfg.n_ctx = 2048;
  cfg.tie_embeddings = true;
  if (Status s = cfg.Validate(); !s.ok()) return Status::InvalidArgument("model shape: " + s.message());
  const uint64_t P = cfg.NumParams();
  const uint64_t weights_bytes = P * sizeof(float);
  const uint64_t ckpt_bytes = P * 2;

  std::error_code ec;
  if (!std::filesystem::is_directory(opt.dir, ec)) return Status::InvalidArgument("--dir " + opt.dir + ": not a directory");
  const auto space = std::filesystem::space(opt.dir, ec);
  if (!ec && space.available < ckpt_bytes + ckpt_bytes / 2 + (uint64_t{256} << 20)) {
    return Status::InvalidArgument("--dir " + opt.dir + ": " + std::to_string(space.available >> 20) +
                                   " MiB free, the checkpoint needs about " + std::to_string(ckpt_bytes >> 20) +
                                   " MiB (+ one shard while it is written)");
  }
  // The load child holds the model's fp32 weights (its gradients are allocated at the first backward).
  const uint64_t avail = MemInfoBytes("MemAvailable:");
  if (avail && avail < weights_bytes + (uint64_t{512} << 20)) {
    return Status::InvalidArgument(std::to_string(P) + " parameters: a model needs " +
                                   std::to_string(weights_bytes >> 20) + " MiB (fp32 weights), " +
                                   std::to_string(avail >> 20) + " MiB are available; lower --layers or --width");
  }
  std::string tmpl = opt.dir + "/strata-bench-load-XXXXXX";
  if (!::mkdtemp(tmpl.data())) return Status::IOError(tmpl + ": mkdtemp: " + ErrnoText(errno));
  const std::string work = tmpl;
  struct Cleanup {
    std::string dir;
    bool keep;
    ~Cleanup() {
      std::error_code e;
      if (!keep) std::filesystem::remove_all(dir, e);
    }
  } cleanup{work, opt.keep};

  nlohmann::json r;
  r["date"] = TodayUtc();
  r["cpu"] = CpuModelName();
  r["dir"] = opt.dir;
  r["config"] = cfg.ToString();
  r["params"] = P;
  r["weights_bytes"] = weights_bytes;
  r["shard_bytes_limit"] = opt.shard_bytes;
  r["stream_buffer_bytes"] = 2 * model::kSafetensorsStreamBufferBytes;

  // 1. The checkpoint, from weights drawn into a plain vector (freed before any load).
  Say(opt.verbose, "writing a BF16 checkpoint of " + cfg.ToString() + " (" + std::to_string(P) + " parameters) in " + work);
  double t0 = Now();
  {
    std::vector<float> w(P);
    model::InitWeights(cfg, 1, w);
    model::SaveOptions so;
    so.dtype = model::DType::kBF16;
    so.max_shard_bytes = opt.shard_bytes;
    STRATA_RETURN_IF_ERROR(model::SaveCheckpoint(work, cfg, w, so));
  }
  ::malloc_trim(0);
  r["write_seconds"] = Now() - t0;
  Result<model::CheckpointPaths> paths = model::FindCheckpoint(work);
  if (!paths.ok()) return paths.status();
  const std::vector<std::string>& shards = paths->shards;
  uint64_t file_bytes = 0;
  for (const std::string& s : shards) file_bytes += std::filesystem::file_size(s, ec);
  r["shards"] = shards.size();
  r["checkpoint_bytes"] = file_bytes;
  Say(opt.verbose, std::to_string(shards.size()) + " shards, " + std::to_string(file_bytes) + " bytes, written in " +
                       std::to_string(r["write_seconds"].get<double>()) + " s");

  std::unique_ptr<uint8_t, decltype(&std::free)> buf(static_cast<uint8_t*>(std::aligned_alloc(4096, kReadBytes)),
                                                     &std::free);
  if (!buf) return Status::OutOfMemory("read buffer");
  std::memset(buf.get(), 0, kReadBytes);

  // 2. Does eviction work here? Evicted, then warm: the second read must be far faster.
  STRATA_ASSIGN_OR_RETURN(const double resident_after_write, Evict(shards));
  uint64_t got = 0;
  STRATA_ASSIGN_OR_RETURN(const double cold_s, ReadAll(shards, false, buf.get(), &got));
  STRATA_ASSIGN_OR_RETURN(const double warm_s, ReadAll(shards, false, buf.get(), &got));
  if (got != file_bytes) return Status::Internal("read " + std::to_string(got) + " of " + std::to_string(file_bytes) + " bytes");
  r["eviction_check"] = {{"resident_fraction_after_evict", resident_after_write},
                         {"evicted_read_GBps", file_bytes / cold_s / 1e9},
                         {"warm_read_GBps", file_bytes / warm_s / 1e9}};
  Say(opt.verbose, "eviction check: " + std::to_string(file_bytes / cold_s / 1e9) + " GB/s evicted, " +
                       std::to_string(file_bytes / warm_s / 1e9) + " GB/s warm");

  // 3. Rounds: disk (buffered, O_DIRECT) and load, the order alternating.
  bool direct_ok = true;
  std::vector<double> buffered, direct, load, load_extra, paired, resident, load_cpu;
  uint64_t peak_rss = 0, model_rss = 0;
  for (int round = 0; round < opt.rounds; ++round) {
    auto disk = [&]() -> Status {
      STRATA_ASSIGN_OR_RETURN(const double res1, Evict(shards));
      resident.push_back(res1);
      STRATA_ASSIGN_OR_RETURN(const double tb, ReadAll(shards, false, buf.get(), &got));
      buffered.push_back(file_bytes / tb / 1e9);
      if (direct_ok) {
        STRATA_ASSIGN_OR_RETURN(const double res2, Evict(shards));
        resident.push_back(res2);
        Result<double> td = ReadAll(shards, true, buf.get(), &got);
        if (td.ok() && got == file_bytes) direct.push_back(file_bytes / *td / 1e9);
        else direct_ok = false;
      }
      return Status::Ok();
    };
    auto loadc = [&]() -> Status {
      STRATA_ASSIGN_OR_RETURN(const double res, Evict(shards));
      resident.push_back(res);
      STRATA_ASSIGN_OR_RETURN(ChildResult c, LoadInChild(work, cfg));
      load.push_back(file_bytes / c.seconds / 1e9);
      load_cpu.push_back(c.cpu_seconds / c.seconds);
      load_extra.push_back(static_cast<double>(c.peak) - static_cast<double>(c.rss_before));
      peak_rss = std::max(peak_rss, c.peak);
      model_rss = std::max(model_rss, c.rss_before);
      return Status::Ok();
    };
    if (round % 2 == 0) {
      STRATA_RETURN_IF_ERROR(disk());
      STRATA_RETURN_IF_ERROR(loadc());
    } else {
      STRATA_RETURN_IF_ERROR(loadc());
      STRATA_RETURN_IF_ERROR(disk());
    }
    const double d = std::max(buffered.back(), direct_ok && !direct.empty() ? direct.back() : 0.0);
    paired.push_back(load.back() / d);
    Say(opt.verbose, "round " + std::to_string(round + 1) + ": disk " + std::to_string(buffered.back()) + " GB/s buffered" +
                         (direct_ok ? ", " + std::to_string(direct.back()) + " GB/s O_DIRECT" : std::string()) +
                         "; load " + std::to_string(load.back()) + " GB/s (" + std::to_string(load_cpu.back()) +
                         " CPU s/s), +" +
                         std::to_string(load_extra.back() / (1 << 20)) + " MiB RSS");
  }
  const double disk_med = std::max(Median(buffered), direct_ok ? Median(direct) : 0.0);
  r["rounds"] = opt.rounds;
  r["disk_buffered_GBps"] = Spread(buffered);
  if (direct_ok) r["disk_direct_GBps"] = Spread(direct);
  r["disk_GBps"] = disk_med;
  r["load_GBps"] = Spread(load);
  r["load_seconds_median"] = file_bytes / Median(load) / 1e9;
  r["load_cpu_per_wall"] = Spread(load_cpu);  // CPU seconds of the load (both threads) per second
  r["load_vs_disk"] = Median(load) / disk_med;
  r["load_vs_disk_paired"] = Spread(paired);
  r["load_vs_disk_target"] = kRatioTarget;
  r["max_resident_fraction_after_evict"] = *std::max_element(resident.begin(), resident.end());
  r["load_rss_increase_bytes"] = Spread(load_extra);
  r["load_rss_increase_max_bytes"] = *std::max_element(load_extra.begin(), load_extra.end());
  r["load_rss_target_bytes"] = kRssTarget;
  r["model_rss_before_load_bytes"] = model_rss;  // the fp32 weights (touched) + the process
  r["peak_rss_bytes"] = peak_rss;
  r["peak_rss_over_weights_bytes"] = static_cast<double>(peak_rss) - static_cast<double>(weights_bytes);
  r["ratio_target_met"] = r["load_vs_disk"].get<double>() >= kRatioTarget;
  r["rss_target_met"] = r["peak_rss_over_weights_bytes"].get<double>() <= static_cast<double>(kRssTarget);
  r["note"] = "GB/s = 1e9 bytes of checkpoint files per second; disk_GBps is the better of the buffered and O_DIRECT "
              "medians; peak_rss_over_weights: the load child's VmHWM (whole process, max over rounds) minus the "
              "fp32 weights; load_rss_increase: its VmHWM minus its VmRSS after Model::Create (which holds the "
              "touched fp32 weights; gradients are allocated at the first backward)";
  return r;
}

std::string FormatLoadBench(const nlohmann::json& r) {
  auto mib = [](double b) { return b / (1 << 20); };
  const auto& ld = r["load_GBps"];
  const auto& bu = r["disk_buffered_GBps"];
  char b[4096];
  std::string direct = "  (O_DIRECT not available here)\n";
  if (r.contains("disk_direct_GBps")) {
    const auto& di = r["disk_direct_GBps"];
    char d[256];
    std::snprintf(d, sizeof d, "  disk O_DIRECT   %.3f GB/s median (%.3f .. %.3f)\n", di["median"].get<double>(),
                  di["min"].get<double>(), di["max"].get<double>());
    direct = d;
  }
  std::snprintf(
      b, sizeof b,
      "strata bench load (%s): %s, %.3f B parameters, BF16, %d shard(s), %.3f GB\n"
      "  eviction       %.3f GB/s evicted vs %.3f GB/s warm; at most %.1f%% of pages resident after eviction\n"
      "  disk buffered  %.3f GB/s median (%.3f .. %.3f), 8 MiB preads\n%s"
      "  load           %.3f GB/s median (%.3f .. %.3f), %.2f s, %.2f CPU s per s; %d rounds\n"
      "  load / disk    %.3f (paired per round %.3f .. %.3f); target >= %.2f: %s\n"
      "  peak RSS       %.1f MiB over the fp32 weights (whole process, max over rounds); target <= %.0f MiB: %s\n"
      "                 (the load adds %.1f MiB, median %.1f; before it %.1f MiB RSS = fp32 weights %.1f MiB + "
      "process; peak %.1f MiB)\n",
      r["date"].get<std::string>().c_str(), r["config"].get<std::string>().c_str(), r["params"].get<double>() / 1e9,
      r["shards"].get<int>(), r["checkpoint_bytes"].get<double>() / 1e9,
      r["eviction_check"]["evicted_read_GBps"].get<double>(), r["eviction_check"]["warm_read_GBps"].get<double>(),
      100 * r["max_resident_fraction_after_evict"].get<double>(), bu["median"].get<double>(), bu["min"].get<double>(),
      bu["max"].get<double>(), direct.c_str(), ld["median"].get<double>(), ld["min"].get<double>(),
      ld["max"].get<double>(), r["load_seconds_median"].get<double>(),
      r["load_cpu_per_wall"]["median"].get<double>(), r["rounds"].get<int>(),
      r["load_vs_disk"].get<double>(), r["load_vs_disk_paired"]["min"].get<double>(),
      r["load_vs_disk_paired"]["max"].get<double>(), r["load_vs_disk_target"].get<double>(),
      r["ratio_target_met"].get<bool>() ? "met" : "NOT met", mib(r["peak_rss_over_weights_bytes"].get<double>()),
      mib(r["load_rss_target_bytes"].get<double>()), r["rss_target_met"].get<bool>() ? "met" : "NOT met",
      mib(r["load_rss_increase_max_bytes"].get<double>()), mib(r["load_rss_increase_bytes"]["median"].get<double>()),
      mib(r["model_rss_before_load_bytes"].get<double>()),
      mib(r["weights_bytes"].get<double>()), mib(r["peak_rss_bytes"].get<double>()));
  return b;
}

}  // namespace strata::bench
