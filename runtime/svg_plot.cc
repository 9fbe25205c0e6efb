#include "runtime/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>

#include "runtime/file_util.h"

namespace strata {
namespace {

// matplotlib's tab10: distinct, and readable by most color-blind viewers.
constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr double kLimit = 1e300;  // axis ends are clamped here, so no arithmetic overflows

// Short numbers and fragments only: the output is cut at 127 bytes.
std::string Printf(const char* fmt, auto... args) {
  char buf[128];
  const int n = std::snprintf(buf, sizeof buf, fmt, args...);
  return std::string(buf, static_cast<size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1)));
}

// A pixel coordinate; far-off points (clipped anyway) stay short numbers.
std::string Px(double v) { return Printf("%.2f", std::clamp(v, -1e6, 1e6)); }

// Text and attribute values: the five XML specials, and control characters (not allowed in XML
// 1.0) become spaces.
std::string Escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') ? ' ' : c;
    }
  }
  return out;
}

// Ticks for a log axis over [lo, hi] (both > 0), in data units: 1, 2, 3, 5 x 10^k within one
// decade, 1, 2, 5 x 10^k up to 3 decades, else powers of ten (every n-th past 10 decades).
AxisTicks LogTicks(double lo, double hi) {
  if (!(lo > 0) || !(hi >= lo) || std::isinf(hi)) {
    lo = 1;
    hi = 10;
  }
  lo = std::clamp(lo, 1 / kLimit, kLimit);
  hi = std::clamp(hi, 1 / kLimit, kLimit);
  if (hi <= lo * (1 + 1e-9)) {  // degenerate: a factor of two either side
    lo /= 2;
    hi *= 2;
  }
  const int e0 = static_cast<int>(std::floor(std::log10(lo)));
  const int decades = std::max(1, static_cast<int>(std::ceil(std::log10(hi))) - e0);
  const int every = (decades + 9) / 10;
  std::vector<double> candidates;
  for (int e = e0; e <= e0 + every * ((decades + every - 1) / every); e += every) {
    for (const double m : {1.0, 2.0, 3.0, 5.0}) {
      if (m == 1.0 || (m == 3.0 ? decades <= 1 : decades <= 3)) candidates.push_back(m * std::pow(10.0, e));
    }
  }
  AxisTicks t;
  // Candidates run from 10^e0 <= lo to a power of ten >= hi; the tolerance absorbs pow()'s rounding.
  const auto below = std::upper_bound(candidates.begin(), candidates.end(), lo * (1 + 1e-12));
  const auto above = std::lower_bound(candidates.begin(), candidates.end(), hi * (1 - 1e-12));
  t.lo = below == candidates.begin() ? candidates.front() : *std::prev(below);
  t.hi = above == candidates.end() ? candidates.back() : *above;
  t.step = 0;  // not uniform
  for (const double c : candidates) {
    if (c >= t.lo && c <= t.hi) t.values.push_back(c);
  }
  return t;
}

struct Frame {
  double x0, x1, y0, y1;  // the plot area in pixels (y1 is the bottom)
  AxisTicks xt, yt;
  bool log_y;
  double X(double x) const { return x0 + (x - xt.lo) / (xt.hi - xt.lo) * (x1 - x0); }
  double Y(double y) const {
    const double lo = log_y ? std::log10(yt.lo) : yt.lo, hi = log_y ? std::log10(yt.hi) : yt.hi;
    return y1 - ((log_y ? std::log10(y) : y) - lo) / (hi - lo) * (y1 - y0);
  }
};

size_t PointCount(const Series& s) { return s.x.empty() ? s.y.size() : std::min(s.x.size(), s.y.size()); }
double PointX(const Series& s, size_t i) { return s.x.empty() ? static_cast<double>(i) : s.x[i]; }
bool Plottable(double x, double y, bool log_y) {
  return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0);
}

}  // namespace

AxisTicks NiceTicks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    lo = 0;
    hi = 1;
  }
  if (lo > hi) std::swap(lo, hi);
  lo = std::clamp(lo, -kLimit, kLimit);
  hi = std::clamp(hi, -kLimit, kLimit);
  const double mag = std::max(std::fabs(lo), std::fabs(hi));
  if (mag == 0 || hi - lo <= 1e-9 * mag) {  // degenerate: widen around the value
    const double pad = mag == 0 ? 1 : 0.1 * mag;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / std::max(1, target);
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double n = raw / p;
  AxisTicks t;
  t.step = (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * p;
  t.lo = std::floor(lo / t.step) * t.step;
  t.hi = std::ceil(hi / t.step) * t.step;
  const long count = std::min(1000L, std::lround((t.hi - t.lo) / t.step));
  for (long i = 0; i <= count; ++i) {
    const double v = t.lo + static_cast<double>(i) * t.step;
    t.values.push_back(std::fabs(v) < t.step * 1e-6 ? 0.0 : v);  // no "-0" or "1e-17" at zero
  }
  return t;
}

std::string FormatTick(double v, double step) {
  if (!std::isfinite(v)) return v > 0 ? "inf" : v < 0 ? "-inf" : "nan";
  step = std::fabs(step);
  if (v == 0 || std::fabs(v) < step * 1e-6) return "0";
  if (!(step > 0) || !std::isfinite(step)) return Printf("%g", v);
  if (step < 1e-4 || step >= 1e6) {  // scientific, with the digits that tell ticks apart
    const double digits = std::floor(std::log10(std::fabs(v))) - std::floor(std::log10(step));
    return Printf("%.*e", static_cast<int>(std::clamp(digits, 0.0, 15.0)), v);
  }
  int decimals = 0;  // the fewest decimals that show the step exactly: 0.25 -> 2, 0.1 -> 1
  for (double scaled = step; decimals < 15 && std::fabs(scaled - std::round(scaled)) > 1e-6 * scaled;
       scaled *= 10) {
    ++decimals;
  }
  return Printf("%.*f", decimals, v);
}

std::string RenderSvg(const PlotSpec& spec) {
  const int w = std::max(200, spec.width), h = std::max(150, spec.height);
  const bool titled = !spec.title.empty();

  // Data ranges over the points that will be drawn.
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const Series& s : spec.series) {
    for (size_t i = 0; i < PointCount(s); ++i) {
      const double x = PointX(s, i), y = s.y[i];
      if (!Plottable(x, y, spec.log_y)) continue;
      xmin = std::min(xmin, x), xmax = std::max(xmax, x);
      ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
  }
  if (xmin > xmax) {  // nothing to draw: an empty frame
    xmin = 0, xmax = 1;
    ymin = spec.log_y ? 1 : 0, ymax = spec.log_y ? 10 : 1;
  }
  const Frame f{72,
                w - 16.0,
                titled ? 36.0 : 16.0,
                h - 48.0,
                NiceTicks(xmin, xmax),
                spec.log_y ? LogTicks(ymin, ymax) : NiceTicks(ymin, ymax),
                spec.log_y};

  std::string o = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" " +
       Printf("width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\"", w, h, w, h);
  o += " font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<defs><clipPath id=\"plot-area\"><rect x=\"" + Px(f.x0) + "\" y=\"" + Px(f.y0) + "\" width=\"" +
       Px(f.x1 - f.x0) + "\" height=\"" + Px(f.y1 - f.y0) + "\"/></clipPath></defs>\n";
  if (titled) {
    o += "<text x=\"" + Px(w / 2.0) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" +
         Escape(spec.title) + "</text>\n";
  }

  // Grid lines and tick labels.
  o += "<g stroke=\"#e6e6e6\">\n";
  for (const double v : f.xt.values) {
    const std::string x = Px(f.X(v));
    o += "<line x1=\"" + x + "\" y1=\"" + Px(f.y0) + "\" x2=\"" + x + "\" y2=\"" + Px(f.y1) + "\"/>\n";
  }
  for (const double v : f.yt.values) {
    const std::string y = Px(f.Y(v));
    o += "<line x1=\"" + Px(f.x0) + "\" y1=\"" + y + "\" x2=\"" + Px(f.x1) + "\" y2=\"" + y + "\"/>\n";
  }
  o += "</g>\n<g fill=\"#333\">\n";
  for (const double v : f.xt.values) {
    o += "<text x=\"" + Px(f.X(v)) + "\" y=\"" + Px(f.y1 + 16) + "\" text-anchor=\"middle\">" +
         Escape(FormatTick(v, f.xt.step)) + "</text>\n";
  }
  for (const double v : f.yt.values) {
    o += "<text x=\"" + Px(f.x0 - 6) + "\" y=\"" + Px(f.Y(v) + 4) + "\" text-anchor=\"end\">" +
         Escape(spec.log_y ? Printf("%g", v) : FormatTick(v, f.yt.step)) + "</text>\n";
  }
  o += "</g>\n";
  o += "<rect x=\"" + Px(f.x0) + "\" y=\"" + Px(f.y0) + "\" width=\"" + Px(f.x1 - f.x0) + "\" height=\"" +
       Px(f.y1 - f.y0) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  if (!spec.x_label.empty()) {
    o += "<text x=\"" + Px((f.x0 + f.x1) / 2) + "\" y=\"" + Px(h - 10.0) + "\" text-anchor=\"middle\">" +
         Escape(spec.x_label) + "</text>\n";
  }
  if (!spec.y_label.empty()) {
    o += "<text transform=\"rotate(-90)\" x=\"" + Px(-(f.y0 + f.y1) / 2) +
         "\" y=\"16\" text-anchor=\"middle\">" + Escape(spec.y_label) + "</text>\n";
  }

  // The series: one polyline per run of plottable points, a dot for a run of one.
  o += "<g clip-path=\"url(#plot-area)\" fill=\"none\" stroke-width=\"1.5\" stroke-linejoin=\"round\">\n";
  std::vector<std::string> colors;
  for (size_t k = 0; k < spec.series.size(); ++k) {
    const Series& s = spec.series[k];
    colors.push_back(Escape(s.color.empty() ? kPalette[k % std::size(kPalette)] : s.color));
    const std::string& color = colors.back();
    auto dot = [&](const std::string& x, const std::string& y) {
      o += "<circle cx=\"" + x + "\" cy=\"" + y + "\" r=\"2.5\" fill=\"" + color + "\"/>\n";
    };
    std::string points, first_x, first_y;
    size_t run = 0;
    auto flush = [&] {
      if (run >= 2) o += "<polyline stroke=\"" + color + "\" points=\"" + points + "\"/>\n";
      if (run == 1 && !s.markers) dot(first_x, first_y);
      points.clear();
      run = 0;
    };
    for (size_t i = 0; i < PointCount(s); ++i) {
      const double x = PointX(s, i), y = s.y[i];
      if (!Plottable(x, y, spec.log_y)) {
        flush();
        continue;
      }
      const std::string px = Px(f.X(x)), py = Px(f.Y(y));
      if (run == 0) first_x = px, first_y = py;
      points += (run++ ? " " : "") + px + "," + py;
      if (s.markers) dot(px, py);
    }
    flush();
  }
  o += "</g>\n";

  // Legend, in the top-right corner of the plot area.
  size_t entries = 0, longest = 0;
  for (const Series& s : spec.series) {
    if (!s.name.empty()) ++entries, longest = std::max(longest, s.name.size());
  }
  if (entries > 0) {
    const double lw = 40 + 7.0 * static_cast<double>(std::min<size_t>(longest, 60)),
                 lh = 8 + 18.0 * static_cast<double>(entries);
    const double lx = f.x1 - lw - 8, ly = f.y0 + 8;
    o += "<g>\n<rect x=\"" + Px(lx) + "\" y=\"" + Px(ly) + "\" width=\"" + Px(lw) + "\" height=\"" + Px(lh) +
         "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#bbb\"/>\n";
    double y = ly + 4 + 9;
    for (size_t k = 0; k < spec.series.size(); ++k) {
      if (spec.series[k].name.empty()) continue;
      o += "<line x1=\"" + Px(lx + 8) + "\" y1=\"" + Px(y) + "\" x2=\"" + Px(lx + 30) + "\" y2=\"" + Px(y) +
           "\" stroke=\"" + colors[k] + "\" stroke-width=\"2\"/>\n";
      o += "<text x=\"" + Px(lx + 36) + "\" y=\"" + Px(y + 4) + "\">" + Escape(spec.series[k].name) +
           "</text>\n";
      y += 18;
    }
    o += "</g>\n";
  }
  o += "</svg>\n";
  return o;
}

Status WriteSvg(const std::string& path, const PlotSpec& spec) {
  if (Status st = WriteFileAtomic(path, RenderSvg(spec)); !st.ok()) return Status::IOError("svg: " + st.message());
  return Status::Ok();
}

}  // namespace strata
