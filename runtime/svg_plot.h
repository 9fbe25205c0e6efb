// A dependency-free SVG line chart for loss curves: axes with 1/2/5 x 10^k ticks, labels, title,
// legend. The output is standalone SVG 1.1 (xmlns, XML-escaped text) that browsers open directly.
//
// Points whose x or y is NaN or infinite (or y <= 0 on a log axis) are skipped and break the line,
// so a diverged stretch shows as a gap. A run of one point is drawn as a dot.
#pragma once

#include <string>
#include <vector>

#include "runtime/status.h"

namespace strata {

struct Series {
  std::string name;       // legend text; "" leaves the series out of the legend
  std::vector<double> x;  // empty: 0, 1, 2, ... (the index of y); else min(x.size(), y.size()) points
  std::vector<double> y;
  std::string color;     // any SVG color; "": a palette color picked by the series' index
  bool markers = false;  // a dot on every point
};

struct PlotSpec {
  std::string title, x_label, y_label;
  bool log_y = false;
  int width = 800, height = 480;  // pixels; raised to at least 200 x 150
  std::vector<Series> series;
};

// Tick positions for an axis that covers [lo, hi]: lo and hi rounded out to multiples of step,
// step = {1, 2, 5} x 10^k, about `target` intervals. A degenerate or non-finite range is widened
// first (1..1 becomes 0.9..1.1, 0..0 becomes -1..1, NaN becomes 0..1); ends are clamped to +-1e300.
struct AxisTicks {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> values;  // lo, lo + step, ..., hi
};
AxisTicks NiceTicks(double lo, double hi, int target = 5);

// A tick label with no more digits than the step needs: "0.25", "1500", "2e+06", "0".
std::string FormatTick(double v, double step);

std::string RenderSvg(const PlotSpec& spec);

// Writes RenderSvg(spec) to a temporary file in path's directory, fsyncs it, renames it over path
// and fsyncs the directory, so a reader sees the old chart or the new one, never half of one.
[[nodiscard]] Status WriteSvg(const std::string& path, const PlotSpec& spec);

}  // namespace strata
