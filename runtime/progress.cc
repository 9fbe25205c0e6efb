#include "runtime/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace strata {
namespace {

constexpr const char* kClearToEol = "\x1b[K";

std::string Printf(const char* fmt, auto... args) {
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, fmt, args...);
  return std::string(buf, static_cast<size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1)));
}

std::string FormatLoss(double v) {
  if (std::isnan(v)) return "-";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return Printf(std::fabs(v) < 1e4 ? "%.3f" : "%.3e", v);
}

// "1.4 GB/s", "950 MB/s": FormatRate's suffix becomes the unit's prefix.
std::string FormatBytesPerSecond(double bytes_per_s) {
  std::string r = FormatRate(bytes_per_s);
  if (!r.empty() && std::isalpha(static_cast<unsigned char>(r.back())) && r != "inf") {
    r.insert(r.size() - 1, " ");
  } else {
    r += " ";
  }
  return r + "B/s";
}

bool TerminalIsUsable(FILE* out) {
  const int fd = fileno(out);
  if (fd < 0 || !isatty(fd)) return false;
  const char* term = std::getenv("TERM");
  return term == nullptr || std::strcmp(term, "dumb") != 0;
}

}  // namespace

std::string FormatDuration(double s) {
  if (!(s >= 0) || std::isinf(s)) return "-";
  if (s >= 1e4 * 86400) return ">9999d";
  const auto t = static_cast<unsigned long long>(std::llround(s));
  if (t < 60) return Printf("%llus", t);
  if (t < 3600) return Printf("%llum%02llus", t / 60, t % 60);
  if (t < 86400) return Printf("%lluh%02llum", t / 3600, t / 60 % 60);
  return Printf("%llud%02lluh", t / 86400, t / 3600 % 24);
}

std::string FormatRate(double v) {
  if (std::isnan(v) || v < 0) return "-";
  if (std::isinf(v)) return "inf";
  if (v == 0) return "0";
  const double scale = std::pow(10.0, std::floor(std::log10(v)) - 2);
  const double r = std::round(v / scale) * scale;  // three significant digits, before the suffix
  static constexpr const char* kSuffix[] = {"", "k", "M", "G", "T", "P", "E"};
  double unit = 1;
  for (const char* suffix : kSuffix) {
    if (r < 1000 * unit) return Printf("%.3g%s", r / unit, suffix);
    unit *= 1000;
  }
  return Printf("%.3g", v);
}

double EstimateEtaSeconds(uint64_t step, uint64_t total, double elapsed_s) {
  if (total == 0 || !(elapsed_s >= 0) || std::isinf(elapsed_s)) return std::nan("");
  if (step >= total) return 0;
  if (step == 0) return std::nan("");
  return elapsed_s / static_cast<double>(step) * static_cast<double>(total - step);
}

Progress::Progress(FILE* out, uint64_t total_steps, ProgressMode mode, double line_interval_s)
    : out_(out),
      total_(total_steps),
      terminal_(mode == ProgressMode::kTerminal || (mode == ProgressMode::kAuto && TerminalIsUsable(out))),
      line_interval_s_(line_interval_s) {}

Progress::~Progress() { Finish(); }

int Progress::Columns() const {
  winsize ws{};
  const int fd = fileno(out_);
  if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* env = std::getenv("COLUMNS")) {
    int cols = 0;
    const auto [end, ec] = std::from_chars(env, env + std::strlen(env), cols);
    if (ec == std::errc() && *end == '\0' && cols > 0) return std::min(cols, 1000);
  }
  return 100;
}

// max_len < 0: no limit (plain lines).
std::string Progress::Line(const ProgressFields& f, int max_len) const {
  // Each part with its drop rank: 0 is always kept, the highest rank goes first when space is short.
  std::vector<std::pair<std::string, int>> parts;
  const auto step = static_cast<unsigned long long>(f.step);
  const auto total = static_cast<unsigned long long>(total_);
  if (total > 0) {
    const int digits = static_cast<int>(std::to_string(total).size());
    parts.emplace_back(Printf("step %*llu/%llu", digits, step, total), 0);
    const double pct = std::min(step < total ? 99.0 : 100.0,  // 100% only when done, whatever the rounding
                                std::floor(100.0 * static_cast<double>(step) / static_cast<double>(total)));
    parts.emplace_back(Printf("%3d%%", static_cast<int>(pct)), 2);  // step/total says it too
  } else {
    parts.emplace_back(Printf("step %llu", step), 0);
  }
  parts.emplace_back("loss " + FormatLoss(f.loss), 0);
  if (!std::isnan(f.val_loss)) parts.emplace_back("val " + FormatLoss(f.val_loss), 3);
  if (f.tokens_per_s >= 0) parts.emplace_back(FormatRate(f.tokens_per_s) + " tok/s", 1);
  if (f.disk_GBps >= 0) parts.emplace_back("disk " + FormatBytesPerSecond(f.disk_GBps * 1e9), 4);
  if (!terminal_) parts.emplace_back("elapsed " + FormatDuration(f.elapsed_s), 0);
  if (total > 0) {
    parts.emplace_back("ETA " + FormatDuration(EstimateEtaSeconds(f.step, total_, f.elapsed_s)), 0);
  }

  auto length = [&] {
    int n = 0;
    for (const auto& p : parts) n += static_cast<int>(p.first.size()) + 2;  // "  " between parts
    return n - 2;
  };
  if (max_len >= 0) {
    while (length() > max_len) {
      const auto worst = std::max_element(parts.begin(), parts.end(),
                                          [](const auto& a, const auto& b) { return a.second < b.second; });
      if (worst->second == 0) break;  // nothing left to drop: cut the line below
      parts.erase(worst);
    }
  }
  std::string line = parts[0].first;
  if (terminal_ && total > 0) {
    const int width = std::min(30, (max_len < 0 ? 1000 : max_len) - length() - 3);  // " [" "]"
    if (width >= 8) {
      const double frac = std::min(1.0, static_cast<double>(step) / static_cast<double>(total));
      const int filled = static_cast<int>(frac * width);
      line += " [" + std::string(static_cast<size_t>(filled), '#') +
              std::string(static_cast<size_t>(width - filled), '.') + "]";
    }
  }
  for (size_t i = 1; i < parts.size(); ++i) line += "  " + parts[i].first;
  if (max_len >= 0 && line.size() > static_cast<size_t>(max_len)) line.resize(static_cast<size_t>(max_len));
  return line;
}

void Progress::Draw() {
  if (terminal_) {
    // One column short of the width, so the terminal never wraps the line.
    const std::string line = "\r" + Line(last_, std::max(0, Columns() - 1)) + kClearToEol;
    std::fputs(line.c_str(), out_);
    bar_on_screen_ = true;
  } else {
    const std::string line = Line(last_, -1) + "\n";
    std::fputs(line.c_str(), out_);
  }
  std::fflush(out_);
  last_shown_ = true;
  last_shown_s_ = last_.elapsed_s;
}

void Progress::Update(const ProgressFields& f) {
  if (finished_) return;
  const bool final = total_ > 0 && f.step >= total_;
  if (final && have_last_ && last_shown_ && last_.step == f.step) return;  // the final step, once
  const double interval = terminal_ ? kRedrawInterval_s : line_interval_s_;
  // The final step, the first update, a clock that went backwards (or is NaN), or time is up.
  const bool due =
      final || !have_last_ || f.elapsed_s < last_shown_s_ || !(f.elapsed_s - last_shown_s_ < interval);
  last_ = f;
  have_last_ = true;
  last_shown_ = false;
  if (due) Draw();
}

void Progress::Message(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  const bool redraw = terminal_ && bar_on_screen_;
  if (redraw) std::fprintf(out_, "\r%s", kClearToEol);  // the bar's line becomes the message's
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fputc('\n', out_);
  bar_on_screen_ = false;
  if (redraw) {
    Draw();  // shows the newest fields, throttled or not
  } else {
    std::fflush(out_);
  }
}

void Progress::Finish() {
  if (finished_) return;
  finished_ = true;
  if (have_last_ && !last_shown_) Draw();
  if (bar_on_screen_) std::fputc('\n', out_);
  bar_on_screen_ = false;
  std::fflush(out_);
}

}  // namespace strata
