#include "runtime/progress.h"
#include "runtime/fmt.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace strata {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// A FILE* backed by memory (fileno() is -1, so it is never a terminal).
class Capture {
 public:
  Capture() : file_(open_memstream(&buf_, &size_)) {}
  ~Capture() {
    std::fclose(file_);
    std::free(buf_);
  }
  FILE* file() const { return file_; }
  std::string str() {
    std::fflush(file_);
    return std::string(buf_, size_);
  }

 private:
  char* buf_ = nullptr;
  size_t size_ = 0;
  FILE* file_;
};

// Sets an environment variable for one test and puts the old value back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The screen contents the terminal output draws: split at '\r' and '\n', ESC[K removed.
std::vector<std::string> Segments(const std::string& out) {
  std::vector<std::string> segs;
  std::string cur;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out.compare(i, 3, "\x1b[K") == 0) {
      i += 2;
    } else if (out[i] == '\r' || out[i] == '\n') {
      if (!cur.empty()) segs.push_back(cur);
      cur.clear();
    } else {
      cur += out[i];
    }
  }
  if (!cur.empty()) segs.push_back(cur);
  return segs;
}

size_t Count(const std::string& s, std::string_view what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}

ProgressFields Fields(uint64_t step, double elapsed_s) {
  ProgressFields f;
  f.step = step;
  f.loss = 2.314;
  f.tokens_per_s = 3200;
  f.disk_GBps = 1.4;
  f.val_loss = 2.401;
  f.elapsed_s = elapsed_s;
  return f;
}

TEST(FormatDuration, SecondsMinutesHoursDays) {
  EXPECT_EQ(FormatDuration(0), "0s");
  EXPECT_EQ(FormatDuration(0.4), "0s");
  EXPECT_EQ(FormatDuration(45), "45s");
  EXPECT_EQ(FormatDuration(59.4), "59s");
  EXPECT_EQ(FormatDuration(59.6), "1m00s");  // rounded before the unit is chosen
  EXPECT_EQ(FormatDuration(102), "1m42s");
  EXPECT_EQ(FormatDuration(3600), "1h00m");
  EXPECT_EQ(FormatDuration(2 * 3600 + 3 * 60 + 59), "2h03m");
  EXPECT_EQ(FormatDuration(86400 + 3600), "1d01h");
}

TEST(FormatDuration, BadAndHugeInput) {
  EXPECT_EQ(FormatDuration(kNaN), "-");
  EXPECT_EQ(FormatDuration(-1), "-");
  EXPECT_EQ(FormatDuration(kInf), "-");
  EXPECT_EQ(FormatDuration(1e20), ">9999d");
}

TEST(FormatRate, ThreeSignificantDigitsWithSuffix) {
  EXPECT_EQ(FormatRate(0), "0");
  EXPECT_EQ(FormatRate(2.5), "2.5");
  EXPECT_EQ(FormatRate(950), "950");
  EXPECT_EQ(FormatRate(950.4), "950");
  EXPECT_EQ(FormatRate(999.6), "1k");  // rounding carries into the next suffix
  EXPECT_EQ(FormatRate(3200), "3.2k");
  EXPECT_EQ(FormatRate(12345), "12.3k");
  EXPECT_EQ(FormatRate(1.25e6), "1.25M");
  EXPECT_EQ(FormatRate(999999), "1M");
  EXPECT_EQ(FormatRate(4.2e9), "4.2G");
  EXPECT_EQ(FormatRate(1e20), "100E");
}

TEST(FormatRate, BadAndHugeInput) {
  EXPECT_EQ(FormatRate(kNaN), "-");
  EXPECT_EQ(FormatRate(-1), "-");
  EXPECT_EQ(FormatRate(kInf), "inf");
  EXPECT_EQ(FormatRate(1e30), "1e+30");
}

TEST(EstimateEtaSeconds, AverageTimePerStep) {
  EXPECT_DOUBLE_EQ(EstimateEtaSeconds(120, 600, 60), 240);
  EXPECT_DOUBLE_EQ(EstimateEtaSeconds(1, 2, 7), 7);
  EXPECT_EQ(EstimateEtaSeconds(600, 600, 60), 0);
  EXPECT_EQ(EstimateEtaSeconds(700, 600, 60), 0);
}

TEST(EstimateEtaSeconds, UnknownBeforeTheFirstStepOrWithABadClock) {
  EXPECT_TRUE(std::isnan(EstimateEtaSeconds(0, 600, 0)));
  EXPECT_TRUE(std::isnan(EstimateEtaSeconds(0, 600, 5)));
  EXPECT_TRUE(std::isnan(EstimateEtaSeconds(10, 0, 5)));  // total unknown
  EXPECT_TRUE(std::isnan(EstimateEtaSeconds(10, 600, kNaN)));
  EXPECT_TRUE(std::isnan(EstimateEtaSeconds(10, 600, -1)));
}

TEST(Progress, AutoModeIsPlainWhenNotATerminal) {
  Capture cap;
  EXPECT_FALSE(Progress(cap.file(), 10).terminal());
  FILE* tmp = std::tmpfile();
  ASSERT_NE(tmp, nullptr);
  EXPECT_FALSE(Progress(tmp, 10).terminal());
  std::fclose(tmp);
}

TEST(Progress, TerminalRedrawsInPlaceWithAllFields) {
  ScopedEnv cols("COLUMNS", "120");
  Capture cap;
  {
    Progress p(cap.file(), 600, ProgressMode::kTerminal);
    p.Update(Fields(120, 25.5));
  }
  const std::string out = cap.str();
  EXPECT_EQ(out.rfind("\r", 0), 0u) << out;
  EXPECT_NE(out.find("\x1b[K"), std::string::npos);
  EXPECT_EQ(out.back(), '\n');  // Finish() ends the bar's line
  const auto segs = Segments(out);
  ASSERT_EQ(segs.size(), 1u) << out;
  EXPECT_EQ(segs[0],
            "step 120/600 [######........................]   20%  loss 2.314  val 2.401  3.2k tok/s  "
            "disk 1.4 GB/s  ETA 1m42s");
}

TEST(Progress, TerminalLineNeverExceedsTheWidth) {
  for (const char* width : {"1", "12", "20", "33", "40", "59", "80", "100", "250"}) {
    ScopedEnv cols("COLUMNS", width);
    Capture cap;
    {
      Progress p(cap.file(), 600, ProgressMode::kTerminal);
      for (uint64_t s = 0; s <= 600; s += 7) p.Update(Fields(s, static_cast<double>(s)));
      p.Message("a message may be longer than the terminal is wide, and the terminal wraps it");
      p.Update(Fields(600, 600));
    }
    const std::string out = cap.str();
    for (const std::string& seg : Segments(out)) {
      if (seg.rfind("a message", 0) == 0) continue;
      EXPECT_LT(seg.size(), static_cast<size_t>(std::atoi(width))) << "COLUMNS=" << width << ": " << seg;
    }
    if (std::atoi(width) >= 80) {  // wide enough for the important fields, with the bar dropped first
      EXPECT_NE(out.find("ETA 0s"), std::string::npos) << width;
      EXPECT_NE(out.find("loss 2.314"), std::string::npos) << width;
    }
  }
}

TEST(Progress, TerminalRedrawsAtMostEvery100msButAlwaysTheFinalStep) {
  ScopedEnv cols("COLUMNS", "100");
  Capture cap;
  Progress p(cap.file(), 100, ProgressMode::kTerminal);
  for (const double t : {0.0, 0.05, 0.09, 0.1, 0.15, 0.21}) p.Update(Fields(1, t));
  EXPECT_EQ(Count(cap.str(), "\r"), 3u);  // at 0, 0.1 and 0.21
  p.Update(Fields(100, 0.22));
  EXPECT_EQ(Count(cap.str(), "\r"), 4u);
  EXPECT_NE(Segments(cap.str()).back().find("100/100"), std::string::npos);
}

TEST(Progress, FinishShowsAThrottledUpdate) {
  ScopedEnv cols("COLUMNS", "100");
  Capture cap;
  Progress p(cap.file(), 100, ProgressMode::kTerminal);
  p.Update(Fields(1, 0));
  p.Update(Fields(2, 0.01));  // throttled
  p.Finish();
  p.Finish();               // idempotent
  p.Update(Fields(3, 10));  // ignored after Finish
  const std::string out = cap.str();
  EXPECT_EQ(Count(out, "\r"), 2u);
  EXPECT_EQ(Count(out, "\n"), 1u);
  EXPECT_NE(Segments(out).back().find("step   2/100"), std::string::npos) << out;
}

TEST(Progress, TerminalMessageGoesAboveTheBar) {
  ScopedEnv cols("COLUMNS", "100");
  Capture cap;
  Progress p(cap.file(), 100, ProgressMode::kTerminal);
  p.Message("before any bar\n");
  p.Update(Fields(5, 1));
  p.Update(Fields(6, 1.01));  // throttled, but the redraw after the message shows it
  p.Message("checkpoint saved");
  const std::string out = cap.str();
  EXPECT_EQ(out.rfind("before any bar\n\r", 0), 0u) << out;
  const size_t at = out.find("\r\x1b[Kcheckpoint saved\n\r");
  ASSERT_NE(at, std::string::npos) << out;
  EXPECT_NE(out.find("step   6/100", at), std::string::npos) << out;
}

TEST(Progress, PlainLinesEveryIntervalAndAtTheLastStep) {
  Capture cap;
  {
    Progress p(cap.file(), 100, ProgressMode::kPlain, 10);
    for (uint64_t s = 1; s <= 100; ++s) p.Update(Fields(s, static_cast<double>(s)));
    p.Update(Fields(100, 101));  // the final step again: not printed twice
  }
  const std::string out = cap.str();
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  EXPECT_EQ(Count(out, "\n"), 11u) << out;  // steps 1, 11, 21, ..., 91 and 100
  const auto lines = Segments(out);
  EXPECT_EQ(lines.front(),
            "step   1/100    1%  loss 2.314  val 2.401  3.2k tok/s  disk 1.4 GB/s  elapsed 1s  ETA 1m39s");
  EXPECT_EQ(lines.back(),
            "step 100/100  100%  loss 2.314  val 2.401  3.2k tok/s  disk 1.4 GB/s  elapsed 1m40s  ETA 0s");
}

TEST(Progress, PlainPrintsTheLastStepEvenWithinTheInterval) {
  Capture cap;
  Progress p(cap.file(), 3, ProgressMode::kPlain, 10);
  for (uint64_t s = 1; s <= 3; ++s) p.Update(Fields(s, 0));
  p.Message("done");
  p.Finish();
  const auto lines = Segments(cap.str());
  ASSERT_EQ(lines.size(), 3u) << cap.str();
  EXPECT_EQ(lines[0].rfind("step 1/3", 0), 0u);
  EXPECT_EQ(lines[1].rfind("step 3/3", 0), 0u);
  EXPECT_EQ(lines[2], "done");
}

TEST(Progress, MissingValuesAndStepZero) {
  Capture cap;
  Progress p(cap.file(), 50, ProgressMode::kPlain);
  ProgressFields f;  // step 0, no val, no disk
  f.loss = kNaN;
  f.tokens_per_s = kNaN;
  p.Update(f);
  EXPECT_EQ(cap.str(), "step  0/50    0%  loss -  elapsed 0s  ETA -\n");
}

TEST(Progress, HugeNumbers) {
  Capture cap;
  const uint64_t total = std::numeric_limits<uint64_t>::max();
  Progress p(cap.file(), total, ProgressMode::kPlain);
  ProgressFields f;
  f.step = total / 2;
  f.loss = 1e30;
  f.tokens_per_s = 1e30;
  f.disk_GBps = 1e30;
  f.val_loss = -kInf;
  f.elapsed_s = 1e15;
  p.Update(f);
  EXPECT_EQ(cap.str(),
            "step  9223372036854775807/18446744073709551615   50%  loss 1.000e+30  val -inf  1e+30 tok/s  "
            "disk 1e+39 B/s  elapsed >9999d  ETA >9999d\n");

  Capture almost;
  Progress q(almost.file(), total, ProgressMode::kPlain);
  q.Update(Fields(total - 1, 1));
  EXPECT_NE(almost.str().find(" 99%"), std::string::npos) << almost.str();  // 100% only when done
}

TEST(Progress, UnknownTotalHasNoBarPercentOrEta) {
  ScopedEnv cols("COLUMNS", "100");
  Capture cap;
  {
    Progress p(cap.file(), 0, ProgressMode::kTerminal);
    p.Update(Fields(5, 1));
  }
  const auto segs = Segments(cap.str());
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0], "step 5  loss 2.314  val 2.401  3.2k tok/s  disk 1.4 GB/s");
}

// A model's sample is shown as text: what a terminal would act on is escaped, text is not.
TEST(EscapeForTerminal, ControlAndInvalidBytesAreEscapedTextIsNot) {
  EXPECT_EQ(EscapeForTerminal("The cat\tsat.\n"), "The cat\tsat.\n");
  EXPECT_EQ(EscapeForTerminal("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(EscapeForTerminal("\x1b[31mred\x07\r"), "\\x1b[31mred\\x07\\x0d");
  EXPECT_EQ(EscapeForTerminal(std::string("a\0b\x7f", 4)), "a\\x00b\\x7f");
  // C1 controls (U+009B is CSI), lone continuation and lead bytes, overlong forms, surrogates.
  EXPECT_EQ(EscapeForTerminal("\xc2\x9b" "2J"), "\\xc2\\x9b2J");
  EXPECT_EQ(EscapeForTerminal("\x80\xc3"), "\\x80\\xc3");
  EXPECT_EQ(EscapeForTerminal("\xc0\xaf\xe0\x80\xaf"), "\\xc0\\xaf\\xe0\\x80\\xaf");
  EXPECT_EQ(EscapeForTerminal("\xed\xa0\x80"), "\\xed\\xa0\\x80");
  EXPECT_EQ(EscapeForTerminal("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
}

}  // namespace
}  // namespace strata
