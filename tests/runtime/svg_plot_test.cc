#include "runtime/svg_plot.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace strata {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Checks what every tick set must satisfy: it covers [lo, hi], steps are 1/2/5 x 10^k, evenly
// spaced, and the ends are multiples of the step.
void ExpectNice(const AxisTicks& t, double lo, double hi) {
  SCOPED_TRACE("range " + std::to_string(lo) + " .. " + std::to_string(hi));
  EXPECT_LE(t.lo, lo);
  EXPECT_GE(t.hi, hi);
  ASSERT_GT(t.step, 0);
  const double mantissa = t.step / std::pow(10.0, std::floor(std::log10(t.step)));
  EXPECT_TRUE(std::fabs(mantissa - 1) < 1e-9 || std::fabs(mantissa - 2) < 1e-9 ||
              std::fabs(mantissa - 5) < 1e-9)
      << "step " << t.step;
  ASSERT_GE(t.values.size(), 3u);
  EXPECT_LE(t.values.size(), 15u);
  EXPECT_EQ(t.values.front(), t.lo);
  EXPECT_NEAR(t.values.back(), t.hi, t.step * 1e-9);
  for (size_t i = 1; i < t.values.size(); ++i) {
    EXPECT_NEAR(t.values[i] - t.values[i - 1], t.step, t.step * 1e-6);
    EXPECT_TRUE(std::isfinite(t.values[i]));
  }
  EXPECT_NEAR(t.lo / t.step, std::round(t.lo / t.step), 1e-6);
  EXPECT_NEAR(t.hi / t.step, std::round(t.hi / t.step), 1e-6);
}

TEST(NiceTicks, UnitRange) {
  const AxisTicks t = NiceTicks(0, 1);
  ExpectNice(t, 0, 1);
  EXPECT_EQ(t.lo, 0);
  EXPECT_EQ(t.hi, 1);
  EXPECT_DOUBLE_EQ(t.step, 0.2);
  EXPECT_EQ(t.values.size(), 6u);
}

TEST(NiceTicks, AwkwardSmallRange) {
  const AxisTicks t = NiceTicks(0.0013, 0.0171);
  ExpectNice(t, 0.0013, 0.0171);
  EXPECT_DOUBLE_EQ(t.step, 0.005);
  EXPECT_EQ(t.lo, 0);
  EXPECT_DOUBLE_EQ(t.hi, 0.02);
}

TEST(NiceTicks, DegenerateRangesAreWidened) {
  const AxisTicks one = NiceTicks(1, 1);
  ExpectNice(one, 0.9, 1.1);
  EXPECT_LT(one.lo, 1);
  EXPECT_GT(one.hi, 1);
  ExpectNice(NiceTicks(0, 0), -1, 1);
  ExpectNice(NiceTicks(-3e-7, -3e-7), -3.3e-7, -2.7e-7);
  const AxisTicks tiny = NiceTicks(1, 1 + 1e-13);  // below double's useful resolution at 1
  ExpectNice(tiny, 1, 1);
  EXPECT_LT(tiny.lo, 1);
}

TEST(NiceTicks, NegativeAndReversedRanges) {
  const AxisTicks t = NiceTicks(-7.3, -2.1);
  ExpectNice(t, -7.3, -2.1);
  EXPECT_EQ(t.lo, -8);
  EXPECT_EQ(t.hi, -2);
  ExpectNice(NiceTicks(-0.5, 123), -0.5, 123);
  const AxisTicks r = NiceTicks(5, 1);
  ExpectNice(r, 1, 5);
}

TEST(NiceTicks, HugeAndNonFiniteRanges) {
  ExpectNice(NiceTicks(0, 1e12), 0, 1e12);
  ExpectNice(NiceTicks(-1e300, 1e300), -1e300, 1e300);
  ExpectNice(NiceTicks(-std::numeric_limits<double>::max(), std::numeric_limits<double>::max()), -1e300,
             1e300);
  ExpectNice(NiceTicks(1e-300, 3e-300), 1e-300, 3e-300);
  const AxisTicks n = NiceTicks(kNaN, 3);
  EXPECT_EQ(n.lo, 0);
  EXPECT_EQ(n.hi, 1);
  const AxisTicks i = NiceTicks(0, kInf);
  EXPECT_EQ(i.lo, 0);
  EXPECT_EQ(i.hi, 1);
}

TEST(FormatTick, DigitsFollowTheStep) {
  EXPECT_EQ(FormatTick(0.1 + 0.2, 0.1), "0.3");
  EXPECT_EQ(FormatTick(0.25, 0.25), "0.25");
  EXPECT_EQ(FormatTick(1500, 500), "1500");
  EXPECT_EQ(FormatTick(-8, 1), "-8");
  EXPECT_EQ(FormatTick(0.015, 0.005), "0.015");
  EXPECT_EQ(FormatTick(2e6, 5e5), "2000000");
  EXPECT_EQ(FormatTick(2e7, 5e6), "2.0e+07");
  EXPECT_EQ(FormatTick(1e300, 5e299), "1.0e+300");
  EXPECT_EQ(FormatTick(5e-5, 5e-5), "5e-05");
  EXPECT_EQ(FormatTick(0, 0.1), "0");
  EXPECT_EQ(FormatTick(-0.0, 0.1), "0");
  EXPECT_EQ(FormatTick(1e-17, 0.1), "0");
}

// A minimal well-formedness check: one root element, balanced and properly nested tags, quoted and
// unique attributes, and no '<' or stray '&' in text or attribute values. Returns "" when fine.
std::string XmlProblem(const std::string& s) {
  size_t pos = 0;
  if (s.rfind("<?xml", 0) == 0) pos = s.find("?>") + 2;
  std::vector<std::string> open;
  int roots = 0;
  auto name_at = [&](size_t& p) {
    const size_t start = p;
    while (p < s.size() && (std::isalnum(static_cast<unsigned char>(s[p])) || s[p] == '-' || s[p] == ':'))
      ++p;
    return s.substr(start, p - start);
  };
  auto text_ok = [](std::string_view t) {
    for (size_t a = t.find('&'); a != std::string_view::npos; a = t.find('&', a + 1)) {
      bool known = false;
      for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"}) known |= t.substr(a).starts_with(e);
      if (!known) return false;
    }
    return t.find('<') == std::string_view::npos;
  };
  while (pos < s.size()) {
    const size_t lt = s.find('<', pos);
    const std::string_view text =
        std::string_view(s).substr(pos, (lt == std::string::npos ? s.size() : lt) - pos);
    if (!text_ok(text)) return "bad text: " + std::string(text);
    if (open.empty() && text.find_first_not_of(" \n\t") != std::string_view::npos)
      return "text outside the root";
    if (lt == std::string::npos) break;
    pos = lt + 1;
    if (s[pos] == '/') {
      ++pos;
      const std::string name = name_at(pos);
      if (open.empty() || open.back() != name || s[pos] != '>') return "unbalanced </" + name + ">";
      open.pop_back();
      ++pos;
      continue;
    }
    const std::string name = name_at(pos);
    if (name.empty()) return "empty tag name at " + std::to_string(pos);
    if (open.empty() && ++roots > 1) return "a second root <" + name + ">";
    std::set<std::string> attrs;
    for (;;) {
      while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos]))) ++pos;
      if (s.compare(pos, 2, "/>") == 0) {
        pos += 2;
        break;
      }
      if (s[pos] == '>') {
        open.push_back(name);
        ++pos;
        break;
      }
      const std::string attr = name_at(pos);
      if (attr.empty() || !attrs.insert(attr).second) return "bad or repeated attribute in <" + name + ">";
      if (s.compare(pos, 2, "=\"") != 0) return "unquoted attribute " + attr;
      const size_t end = s.find('"', pos + 2);
      if (end == std::string::npos || !text_ok(std::string_view(s).substr(pos + 2, end - pos - 2))) {
        return "bad value of " + attr;
      }
      pos = end + 1;
    }
  }
  if (!open.empty()) return "unclosed <" + open.back() + ">";
  return roots == 1 ? "" : "no root element";
}

// Python's parser, where python3 is installed: a second opinion on well-formedness.
void ExpectPythonParses(const std::string& svg) {
  if (std::system("command -v python3 >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 not found";
  char path[] = "/tmp/strata_svg_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, svg.data(), svg.size()), static_cast<ssize_t>(svg.size()));
  close(fd);
  const std::string cmd = std::string("python3 -c 'import sys, xml.dom.minidom as m; ") +
                          "d = m.parse(sys.argv[1]); print(d.documentElement.namespaceURI)' " + path +
                          " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  EXPECT_EQ(pclose(p), 0) << out;
  EXPECT_EQ(out, "http://www.w3.org/2000/svg\n");
  std::remove(path);
}

// The points of each <polyline>, in order.
std::vector<std::vector<std::pair<double, double>>> Polylines(const std::string& svg) {
  std::vector<std::vector<std::pair<double, double>>> lines;
  for (size_t at = svg.find("<polyline "); at != std::string::npos; at = svg.find("<polyline ", at + 1)) {
    const size_t begin = svg.find("points=\"", at) + 8, end = svg.find('"', begin);
    std::istringstream in(svg.substr(begin, end - begin));
    std::vector<std::pair<double, double>> pts;
    double x, y;
    char comma;
    while (in >> x >> comma >> y) pts.emplace_back(x, y);
    lines.push_back(pts);
  }
  return lines;
}

size_t Count(const std::string& s, std::string_view what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}

PlotSpec LossCurves() {
  PlotSpec spec;
  spec.title = "fine-tune loss";
  spec.x_label = "step";
  spec.y_label = "loss";
  Series train{"train", {}, {}, "", false};
  Series val{"val", {}, {}, "#000", true};
  for (int i = 0; i <= 100; ++i) {
    train.x.push_back(i * 10);
    train.y.push_back(3.0 * std::exp(-i / 30.0) + 1.1);
    if (i % 20 == 0) {
      val.x.push_back(i * 10);
      val.y.push_back(3.0 * std::exp(-i / 30.0) + 1.3);
    }
  }
  spec.series = {train, val};
  return spec;
}

TEST(RenderSvg, IsWellFormedStandaloneSvg) {
  const std::string svg = RenderSvg(LossCurves());
  EXPECT_EQ(
      svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"", 0),
      0u);
  EXPECT_EQ(XmlProblem(svg), "");
  ExpectPythonParses(svg);
}

TEST(RenderSvg, HasTitleAxisLabelsTicksAndLegend) {
  const std::string svg = RenderSvg(LossCurves());
  for (const char* text :
       {">fine-tune loss</text>", ">step</text>", ">loss</text>", ">train</text>", ">val</text>", ">0</text>",
        ">200</text>", ">1000</text>", ">1.5</text>", ">4.5</text>"}) {
    EXPECT_NE(svg.find(text), std::string::npos) << text;
  }
  EXPECT_NE(svg.find("stroke=\"#1f77b4\""), std::string::npos);  // palette for the unnamed color
  EXPECT_NE(svg.find("stroke=\"#000\""), std::string::npos);
}

TEST(RenderSvg, PolylinesStayInsideThePlotArea) {
  const std::string svg = RenderSvg(LossCurves());
  const auto lines = Polylines(svg);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].size(), 101u);
  EXPECT_EQ(lines[1].size(), 6u);
  EXPECT_EQ(Count(svg, "<circle"), 6u);  // the val series' markers
  for (const auto& line : lines) {
    for (const auto& [x, y] : line) {
      EXPECT_GE(x, 72);
      EXPECT_LE(x, 800 - 16);
      EXPECT_GE(y, 36);
      EXPECT_LE(y, 480 - 48);
    }
  }
  EXPECT_LT(lines[0].front().second, lines[0].back().second);  // loss falls: y grows downwards
}

TEST(RenderSvg, EscapesText) {
  PlotSpec spec;
  spec.title = "a<b & \"c\" > 'd'";
  spec.x_label = "&amp;";
  spec.y_label = "bell\x07here";
  spec.series = {{"<script>alert(1)</script>", {0, 1}, {1, 2}, "red\" onload=\"x", false}};
  const std::string svg = RenderSvg(spec);
  EXPECT_NE(svg.find(">a&lt;b &amp; &quot;c&quot; &gt; &apos;d&apos;</text>"), std::string::npos);
  EXPECT_NE(svg.find(">&amp;amp;</text>"), std::string::npos);
  EXPECT_NE(svg.find(">bell here</text>"), std::string::npos);
  EXPECT_EQ(svg.find("<script"), std::string::npos);
  EXPECT_EQ(svg.find("onload=\""), std::string::npos);
  EXPECT_EQ(XmlProblem(svg), "");
  ExpectPythonParses(svg);
}

TEST(RenderSvg, NonFinitePointsBreakTheLine) {
  PlotSpec spec;
  spec.series = {{"loss", {}, {1, 2, 3, 4, kNaN, 5, 6, 7, 8, 9, kInf, -kInf, 10, 11}, "", false}};
  const std::string svg = RenderSvg(spec);
  const auto lines = Polylines(svg);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].size(), 4u);
  EXPECT_EQ(lines[1].size(), 5u);
  EXPECT_EQ(lines[2].size(), 2u);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
  EXPECT_EQ(XmlProblem(svg), "");
}

TEST(RenderSvg, LonePointsAreDots) {
  PlotSpec spec;
  spec.series = {{"one", {5}, {2.5}, "", false}, {"split", {0, 1, 2}, {1, kNaN, 3}, "", false}};
  const std::string svg = RenderSvg(spec);
  EXPECT_TRUE(Polylines(svg).empty());
  EXPECT_EQ(Count(svg, "<circle"), 3u);
  EXPECT_EQ(XmlProblem(svg), "");
}

TEST(RenderSvg, EmptyInputsStillMakeAChart) {
  for (const PlotSpec& spec :
       {PlotSpec{}, PlotSpec{"t", "", "", false, 10, 10, {{"nothing", {}, {}, "", false}}},
        PlotSpec{"", "", "", true, 800, 480, {{"all bad", {}, {kNaN, -1, 0}, "", false}}}}) {
    const std::string svg = RenderSvg(spec);
    EXPECT_EQ(XmlProblem(svg), "");
    EXPECT_TRUE(Polylines(svg).empty());
    EXPECT_EQ(Count(svg, "<circle"), 0u);
    EXPECT_NE(svg.find("<rect"), std::string::npos);
  }
  // x and y of different lengths: the shorter one wins.
  const std::string svg =
      RenderSvg(PlotSpec{"", "", "", false, 800, 480, {{"", {0, 1, 2}, {1, 2}, "", false}}});
  ASSERT_EQ(Polylines(svg).size(), 1u);
  EXPECT_EQ(Polylines(svg)[0].size(), 2u);
}

TEST(RenderSvg, LogAxisSkipsNonPositiveValues) {
  PlotSpec spec;
  spec.log_y = true;
  spec.series = {{"loss", {}, {10, 5, 0, 2.2, 1.9, -1, 1.8}, "", false}};
  const std::string svg = RenderSvg(spec);
  const auto lines = Polylines(svg);
  ASSERT_EQ(lines.size(), 2u);  // 10, 5 | 2.2, 1.9 | 1.8 (a dot)
  EXPECT_EQ(lines[0].size(), 2u);
  EXPECT_EQ(lines[1].size(), 2u);
  EXPECT_EQ(Count(svg, "<circle"), 1u);
  for (const char* label : {">1</text>", ">2</text>", ">3</text>", ">5</text>", ">10</text>"}) {
    EXPECT_NE(svg.find(label), std::string::npos) << label;
  }
  EXPECT_EQ(XmlProblem(svg), "");
  ExpectPythonParses(svg);
}

TEST(RenderSvg, LogAxisOverManyDecades) {
  PlotSpec spec;
  spec.log_y = true;
  spec.series = {{"", {}, {1e-30, 1, 1e30}, "", false}};
  const std::string svg = RenderSvg(spec);
  ASSERT_EQ(Polylines(svg).size(), 1u);
  EXPECT_NE(svg.find(">1e-30</text>"), std::string::npos);
  EXPECT_NE(svg.find(">1e+30</text>"), std::string::npos);
  EXPECT_LE(Count(svg, "text-anchor=\"end\""), 12u);  // y labels: every n-th decade
  EXPECT_EQ(XmlProblem(svg), "");
}

TEST(WriteSvg, WritesAtomically) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("strata_svg_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "loss.svg").string();
  const PlotSpec spec = LossCurves();
  ASSERT_TRUE(WriteSvg(path, spec).ok());
  ASSERT_TRUE(WriteSvg(path, spec).ok());  // over an existing file
  std::ifstream in(path);
  const std::string read((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(read, RenderSvg(spec));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  std::filesystem::remove_all(dir);
}

TEST(WriteSvg, MissingDirectoryIsAnIOErrorNamingTheFile) {
  const Status s = WriteSvg("/nonexistent-strata-dir/loss.svg", PlotSpec{});
  EXPECT_TRUE(s.IsIOError()) << s;
  EXPECT_NE(s.message().find("/nonexistent-strata-dir/loss.svg"), std::string::npos) << s;
}

}  // namespace
}  // namespace strata
