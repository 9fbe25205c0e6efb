// Chrome trace events: the JSON that Perfetto (ui.perfetto.dev) and chrome://tracing open. Any
// thread records into one bounded buffer under a mutex (a few hundred ns per event); the file is
// written once, at the end. A "track" is a tid: it need not be an OS thread (an I/O queue, a CUDA
// stream, a pipeline stage), and SetTrackName gives it a readable label.
//
// Memory is a budget: at most max_events events (40 bytes each plus their args) are kept, and the
// rest are only counted, in dropped() and in the file's otherData. Names, categories and arg keys
// are interned, so use a fixed set of them (put varying numbers in args, not in names).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/status.h"

namespace strata {

// Every track id strata writes, in one table: two writers never share a track (and so a label).
namespace trace_track {
inline constexpr int kTrain = 1;           // train/: forward, backward, the end of a step
inline constexpr int kOffloadCommit = 2;   // offload/: the commit of a step (fdatasync, manifest)
inline constexpr int kStagingBuffer = 100;  // offload/: + i, the life of staging buffer i
}  // namespace trace_track

class Tracer {
 public:
  using Arg = std::pair<const char*, int64_t>;

  explicit Tracer(size_t max_events = size_t{1} << 20);
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // Microseconds since this tracer was created (steady clock).
  double NowMicros() const;

  // Thread-safe, like every method here. A complete event ("ph":"X") on track `tid`.
  void Complete(std::string_view name, std::string_view category, int tid, double ts_us, double dur_us,
                std::initializer_list<Arg> args = {});
  // An instant event ("ph":"i", thread scope).
  void Instant(std::string_view name, std::string_view category, int tid, double ts_us);
  // A counter sample ("ph":"C"): Perfetto draws one graph per name and series.
  void Counter(std::string_view name, int tid, double ts_us, std::string_view series, double value);
  // Labels a track (a "thread_name" metadata event; not counted against max_events).
  void SetTrackName(int tid, std::string_view name);

  size_t size() const;     // events kept
  size_t dropped() const;  // events refused because the buffer was full

  // {"traceEvents":[...],"displayTimeUnit":"ms","otherData":{"dropped":N}}, track names first.
  // Non-finite numbers are written as null.
  std::string ToJson() const;
  // Writes ToJson() to path.tmp, fsyncs it and renames it over path, so a reader never sees half a
  // trace. The error names the file and the errno text.
  [[nodiscard]] Status WriteJson(const std::string& path) const;

 private:
  friend class TraceSpan;

  struct Event {
    double ts_us;
    double dur_or_value;  // "X": duration; "C": the counter's value
    int32_t tid;
    uint32_t name;        // interned
    uint32_t cat;         // interned; for "C" the series name
    uint32_t args_begin;  // into args_
    uint32_t args_count;
    char ph;              // 'X', 'i' or 'C'
  };
  struct StoredArg {
    uint32_t key;  // interned
    int64_t value;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };

  void Record(char ph, std::string_view name, std::string_view cat, int tid, double ts_us,
              double dur_or_value, std::span<const Arg> args);
  uint32_t InternLocked(std::string_view s);

  const std::chrono::steady_clock::time_point start_;
  const size_t max_events_;
  mutable std::mutex mu_;
  std::vector<Event> events_;     // size() <= max_events_
  std::vector<StoredArg> args_;
  std::vector<std::string> strings_;  // by interned id
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> string_ids_;
  std::map<int, std::string> track_names_;
  size_t dropped_ = 0;
};

// Records one complete event from construction to destruction. With a null tracer it does nothing
// and costs one branch, so spans can stay in hot code with tracing off. name and cat must outlive
// the span (string literals, usually).
class TraceSpan {
 public:
  static constexpr int kMaxArgs = 4;

  TraceSpan(Tracer* tracer, const char* name, const char* cat, int tid)
      : tracer_(tracer), name_(name), cat_(cat), tid_(tid), start_us_(tracer ? tracer->NowMicros() : 0) {}
  ~TraceSpan() {
    if (tracer_) End();
  }
  TraceSpan(const TraceSpan&) = delete;
  TraceSpan& operator=(const TraceSpan&) = delete;

  // Adds an integer arg to the event (at most kMaxArgs; key must outlive the span).
  void Arg(const char* key, int64_t value) {
    if (!tracer_) return;
    STRATA_CHECK(num_args_ < kMaxArgs);
    keys_[num_args_] = key;
    values_[num_args_++] = value;
  }

 private:
  void End();

  Tracer* tracer_;
  const char* name_;
  const char* cat_;
  int tid_;
  double start_us_;
  int num_args_ = 0;
  const char* keys_[kMaxArgs];  // left uninitialized: only the first num_args_ are read
  int64_t values_[kMaxArgs];
};

}  // namespace strata
