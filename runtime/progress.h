// Training progress for `strata finetune`. On a terminal, one status line redrawn in place:
//
//   step 120/600 [#######.............]  20%  loss 2.314  val 2.401  3.2k tok/s  disk 1.4 GB/s  ETA 1m42s
//
// with "\r" + ESC[K, at most every 100 ms (the final step always), fitted to the terminal's width
// (TIOCGWINSZ, else $COLUMNS, else 100) less one column: the bar goes first, then disk, val, the
// percentage and tok/s; step, loss and ETA stay, cut only when nothing else is left.
// Anywhere else (a pipe, a file, CI) a plain line, no escape codes, every line_interval_s seconds
// and at the final step, with the elapsed time added.
//
// Time is the caller's ProgressFields::elapsed_s (seconds since training started), so throttling
// and the ETA are deterministic and testable. One thread owns a Progress; it is not thread-safe.
#pragma once

#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>

namespace strata {

struct ProgressFields {
  uint64_t step = 0;        // steps completed, 1..total_steps; total_steps is the final step
  double loss = 0;          // NaN prints "loss -"
  double tokens_per_s = 0;  // < 0 or NaN: not shown
  double disk_GBps = -1;    // < 0 or NaN: not shown
  double val_loss = std::numeric_limits<double>::quiet_NaN();  // NaN: not shown
  double elapsed_s = 0;                                        // wall seconds since training started
};

enum class ProgressMode {
  kAuto,      // kTerminal when isatty(fileno(out)) and TERM is not "dumb", else kPlain
  kTerminal,  // redraw one line in place
  kPlain,     // periodic plain lines
};

// "45s", "1m42s", "2h03m", "3d04h"; "-" for NaN, infinite or negative input.
std::string FormatDuration(double s);
// Three significant digits with a k/M/G/T/P/E suffix: "950", "3.2k", "1.25M"; "-" for NaN or
// negative input, "inf" for infinity.
std::string FormatRate(double per_s);
// Seconds left at the average time per step so far: NaN when it cannot be known yet (step 0,
// total 0, a bad clock), 0 once step >= total.
double EstimateEtaSeconds(uint64_t step, uint64_t total, double elapsed_s);

class Progress {
 public:
  // total_steps == 0: the total is unknown; no bar, percentage or ETA.
  Progress(FILE* out, uint64_t total_steps, ProgressMode mode = ProgressMode::kAuto,
           double line_interval_s = 10);
  ~Progress();  // Finish()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Update(const ProgressFields& f);
  // A whole line (a trailing '\n' is optional) printed above the bar, which is then redrawn.
  void Message(std::string_view line);
  // Shows the last Update if it was throttled and ends the bar's line. Later Updates are ignored.
  void Finish();

  bool terminal() const { return terminal_; }

  static constexpr double kRedrawInterval_s = 0.1;

 private:
  int Columns() const;  // TIOCGWINSZ, else $COLUMNS, else 100
  std::string Line(const ProgressFields& f, int max_len) const;
  void Draw();  // writes last_ now

  FILE* out_;
  uint64_t total_;
  bool terminal_;
  double line_interval_s_;
  ProgressFields last_;
  bool have_last_ = false;      // an Update has come
  bool last_shown_ = false;     // ... and it has been drawn or printed
  bool bar_on_screen_ = false;  // terminal: the cursor sits at the end of the bar's line
  double last_shown_s_ = 0;
  bool finished_ = false;
};

}  // namespace strata
