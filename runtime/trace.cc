#include "runtime/trace.h"

#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

#include "runtime/file_util.h"

namespace strata {
namespace {

void AppendNumber(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);  // shortest form that round-trips
}

void AppendNumber(std::string& out, int64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

// A JSON string literal, quotes included; invalid UTF-8 becomes U+FFFD rather than an exception.
std::string Quote(std::string_view s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

Tracer::Tracer(size_t max_events) : start_(std::chrono::steady_clock::now()), max_events_(max_events) {}

double Tracer::NowMicros() const {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start_).count();
}

void Tracer::Complete(std::string_view name, std::string_view category, int tid, double ts_us,
                      double dur_us, std::initializer_list<Arg> args) {
  Record('X', name, category, tid, ts_us, dur_us, std::span<const Arg>(args.begin(), args.size()));
}

void Tracer::Instant(std::string_view name, std::string_view category, int tid, double ts_us) {
  Record('i', name, category, tid, ts_us, 0, {});
}

void Tracer::Counter(std::string_view name, int tid, double ts_us, std::string_view series, double value) {
  Record('C', name, series, tid, ts_us, value, {});
}

void Tracer::SetTrackName(int tid, std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  track_names_[tid] = std::string(name);
}

size_t Tracer::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.size();
}

size_t Tracer::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

uint32_t Tracer::InternLocked(std::string_view s) {
  if (auto it = string_ids_.find(s); it != string_ids_.end()) return it->second;
  const auto id = static_cast<uint32_t>(strings_.size());
  strings_.emplace_back(s);
  string_ids_.emplace(strings_.back(), id);
  return id;
}

void Tracer::Record(char ph, std::string_view name, std::string_view cat, int tid, double ts_us,
                    double dur_or_value, std::span<const Arg> args) {
  std::lock_guard<std::mutex> lock(mu_);
  if (events_.size() >= max_events_) {
    ++dropped_;
    return;
  }
  Event e{ts_us, dur_or_value, tid, InternLocked(name), InternLocked(cat),
          static_cast<uint32_t>(args_.size()), static_cast<uint32_t>(args.size()), ph};
  for (const auto& [key, value] : args) args_.push_back({InternLocked(key), value});
  events_.push_back(e);
}

std::string Tracer::ToJson() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> quoted;  // each interned string escaped once
  quoted.reserve(strings_.size());
  for (const std::string& s : strings_) quoted.push_back(Quote(s));

  std::string out = "{\"traceEvents\":[";
  bool first = true;
  auto begin_event = [&](std::string_view quoted_name, char ph, int tid) {
    out += first ? "\n{\"name\":" : ",\n{\"name\":";
    first = false;
    out += quoted_name;
    out += ",\"ph\":\"";
    out += ph;
    out += "\",\"pid\":1,\"tid\":";
    AppendNumber(out, int64_t{tid});
  };
  for (const auto& [tid, name] : track_names_) {
    begin_event("\"thread_name\"", 'M', tid);
    out += ",\"args\":{\"name\":" + Quote(name) + "}}";
  }
  for (const Event& e : events_) {
    begin_event(quoted[e.name], e.ph, e.tid);
    out += ",\"ts\":";
    AppendNumber(out, e.ts_us);
    switch (e.ph) {
      case 'X':
        out += ",\"cat\":" + quoted[e.cat] + ",\"dur\":";
        AppendNumber(out, e.dur_or_value);
        if (e.args_count > 0) {
          out += ",\"args\":{";
          for (uint32_t i = 0; i < e.args_count; ++i) {
            const StoredArg& a = args_[e.args_begin + i];
            if (i > 0) out += ',';
            out += quoted[a.key] + ':';
            AppendNumber(out, a.value);
          }
          out += '}';
        }
        break;
      case 'i':
        out += ",\"cat\":" + quoted[e.cat] + ",\"s\":\"t\"";
        break;
      case 'C':
        out += ",\"args\":{" + quoted[e.cat] + ':';
        AppendNumber(out, e.dur_or_value);
        out += '}';
        break;
    }
    out += '}';
  }
  out += "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"dropped\":";
  AppendNumber(out, static_cast<int64_t>(dropped_));
  out += "}}\n";
  return out;
}

Status Tracer::WriteJson(const std::string& path) const {
  if (Status st = WriteFileAtomic(path, ToJson()); !st.ok()) return Status::IOError("trace: " + st.message());
  return Status::Ok();
}

void TraceSpan::End() {
  Tracer::Arg args[kMaxArgs];
  for (int i = 0; i < num_args_; ++i) args[i] = {keys_[i], values_[i]};
  tracer_->Record('X', name_, cat_, tid_, start_us_, tracer_->NowMicros() - start_us_,
                  std::span<const Tracer::Arg>(args, static_cast<size_t>(num_args_)));
}

}  // namespace strata
