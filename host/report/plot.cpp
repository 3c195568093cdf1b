// report/plot.cpp — SVG line charts, heat maps and confusion matrices.
//
// No font metrics are available when writing SVG, so text widths are estimated generously (for
// DejaVu Sans, wider than the usual browser fonts) and margins are sized from those estimates:
// labels never reach into the plot area or each other. Heat-map cells are merged into one path per
// color, runs of equal color into one rectangle, which keeps a 100 x 128 map around 200 KB.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "nmsnn/error.hpp"
#include "nmsnn/files.hpp"
#include "nmsnn/plot.hpp"

namespace nmsnn::plot {

using detail::fail;

namespace {

// ---- colors ----

// Anchor colors sampled from published colorblind-safe maps, interpolated linearly in sRGB.
const Rgb kViridis[] = {{0x44, 0x01, 0x54}, {0x47, 0x2D, 0x7B}, {0x3B, 0x52, 0x8B},
                        {0x2C, 0x72, 0x8E}, {0x21, 0x90, 0x8C}, {0x27, 0xAD, 0x81},
                        {0x5D, 0xC8, 0x63}, {0xAA, 0xDC, 0x32}, {0xFD, 0xE7, 0x25}};
const Rgb kBlueWhiteRed[] = {{0x05, 0x30, 0x61}, {0x21, 0x66, 0xAC}, {0x43, 0x93, 0xC3},
                             {0x92, 0xC5, 0xDE}, {0xD1, 0xE5, 0xF0}, {0xF7, 0xF7, 0xF7},
                             {0xFD, 0xDB, 0xC7}, {0xF4, 0xA5, 0x82}, {0xD6, 0x60, 0x4D},
                             {0xB2, 0x18, 0x2B}, {0x67, 0x00, 0x1F}};
const Rgb kBlues[] = {{0xF7, 0xFB, 0xFF}, {0xDE, 0xEB, 0xF7}, {0xC6, 0xDB, 0xEF},
                      {0x9E, 0xCA, 0xE1}, {0x6B, 0xAE, 0xD6}, {0x42, 0x92, 0xC6},
                      {0x21, 0x71, 0xB5}, {0x08, 0x51, 0x9C}, {0x08, 0x30, 0x6B}};

// Okabe-Ito, distinguishable with every common color-vision deficiency, with its yellow (faint on
// white) replaced by gray. Series past the eighth repeat the colors dashed.
const char* const kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                "#E69F00", "#56B4E9", "#000000", "#888888"};

template <size_t N>
Rgb interpolate(const Rgb (&anchors)[N], double t) {
  if (!(t > 0)) return anchors[0];  // also catches NaN
  if (t >= 1) return anchors[N - 1];
  const double pos = t * (N - 1);
  const size_t i = size_t(pos);
  const double f = pos - double(i);
  const Rgb& a = anchors[i];
  const Rgb& b = anchors[i + 1];
  return {int(std::lround(a.r + (b.r - a.r) * f)), int(std::lround(a.g + (b.g - a.g) * f)),
          int(std::lround(a.b + (b.b - a.b) * f))};
}

// ---- text and numbers ----

constexpr double kTitleSize = 16, kLabelSize = 13, kTickSize = 11;
const char* const kInk = "#222222";   // text
const char* const kAxis = "#444444";  // axis lines and ticks
const char* const kGrid = "#e6e6e6";  // grid lines

// Estimated advance of `s` at `size` px; per-character widths of DejaVu Sans rounded up.
double text_width(const std::string& s, double size) {
  double em = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = s[i];
    if ((c & 0xC0) == 0x80) continue;  // UTF-8 continuation byte: counted with its lead
    if (std::string_view(".,:;'|!ilIj").find(char(c)) != std::string_view::npos) {
      em += 0.32;
    } else if (std::string_view(" -()[]frt").find(char(c)) != std::string_view::npos) {
      em += 0.44;
    } else if (c >= '0' && c <= '9') {
      em += 0.64;
    } else if (c == 'm' || c == 'w' || c == 'M' || c == 'W' || c == '%') {
      em += 0.98;
    } else if (c >= 'A' && c <= 'Z') {
      em += 0.74;
    } else {
      em += 0.62;
    }
  }
  return em * size;
}

// Coordinates with at most two decimals and no trailing zeros: small files, exact enough.
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s == "-0" ? "0" : s;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Shortens `s` with an ellipsis until it fits `max_width` at `size` px.
std::string fit_text(std::string s, double size, double max_width) {
  if (text_width(s, size) <= max_width) return s;
  while (!s.empty() && text_width(s + "...", size) > max_width) {
    s.pop_back();
    while (!s.empty() && (s.back() & 0xC0) == 0x80) s.pop_back();  // whole UTF-8 sequences
    if (!s.empty() && (s.back() & 0xC0) == 0xC0) s.pop_back();
  }
  return s + "...";
}

// Splits `s` at spaces into at most `max_lines` lines of at most `max_width` px; the last line is
// shortened with an ellipsis if the text does not fit.
std::vector<std::string> wrap_text(const std::string& s, double size, double max_width,
                                   size_t max_lines) {
  std::vector<std::string> lines;
  std::string line;
  size_t i = 0;
  while (i < s.size()) {
    const size_t space = s.find(' ', i);
    const std::string word =
        s.substr(i, space == std::string::npos ? std::string::npos : space - i);
    i = space == std::string::npos ? s.size() : space + 1;
    const std::string longer = line.empty() ? word : line + " " + word;
    if (line.empty() || text_width(longer, size) <= max_width || lines.size() + 1 == max_lines) {
      line = longer;
    } else {
      lines.push_back(fit_text(line, size, max_width));
      line = word;
    }
  }
  lines.push_back(fit_text(line, size, max_width));
  return lines;
}

// ---- SVG building ----

struct Svg {
  std::string out;

  Svg(double width, double height) {
    out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) + "\" height=\"" +
          num(height) + "\" viewBox=\"0 0 " + num(width) + " " + num(height) +
          "\" font-family=\"sans-serif\" fill=\"" + kInk + "\">\n";
    out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  }
  void rect(double x, double y, double w, double h, const std::string& fill,
            const std::string& extra = "") {
    out += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" +
           num(h) + "\" fill=\"" + fill + "\"" + extra + "/>\n";
  }
  void line(double x1, double y1, double x2, double y2, const std::string& stroke, double width = 1,
            const std::string& extra = "") {
    out += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" +
           num(y2) + "\" stroke=\"" + stroke + "\" stroke-width=\"" + num(width) + "\"" + extra +
           "/>\n";
  }
  // `y` is the vertical centre of the text; SVG positions the baseline, about 0.35 em lower.
  void text(double x, double y, const std::string& s, double size, const char* anchor = "start",
            const std::string& extra = "") {
    out += "<text x=\"" + num(x) + "\" y=\"" + num(y + 0.35 * size) + "\" font-size=\"" +
           num(size) + "\" text-anchor=\"" + anchor + "\"" + extra + ">" + xml_escape(s) +
           "</text>\n";
  }
  // Text rotated a quarter turn counter-clockwise, centred on (x, y): vertical axis titles.
  void vertical_text(double x, double y, const std::string& s, double size) {
    out += "<text transform=\"translate(" + num(x) + " " + num(y) + ") rotate(-90)\" y=\"" +
           num(0.35 * size) + "\" font-size=\"" + num(size) + "\" text-anchor=\"middle\">" +
           xml_escape(s) + "</text>\n";
  }
  void title(double cx, double y, const std::string& s, double max_width) {
    double size = kTitleSize;
    while (size > 10 && text_width(s, size) > max_width) size -= 1;
    text(cx, y, fit_text(s, size, max_width), size, "middle", " font-weight=\"bold\"");
  }
  std::string finish() { return out + "</svg>\n"; }
};

// An axis maps [lo, hi] onto the pixel span [from, to] (to < from for y, which grows downward).
struct Axis {
  double lo = 0, hi = 1, from = 0, to = 1;
  std::vector<double> ticks;
  double step = 1;
  double px(double v) const { return from + (v - lo) / (hi - lo) * (to - from); }
};

// Turns a data range into one an axis can show: [0, 1] when there was no finite value (lo > hi);
// room around a single value, including ranges too narrow for doubles to step through.
void fit_range(double& lo, double& hi) {
  if (!(lo <= hi)) {
    lo = 0;
    hi = 1;
  } else if (lo == 0 && hi == 0) {
    hi = 1;
  } else if (hi - lo <= 1e-12 * std::max(std::fabs(lo), std::fabs(hi))) {
    const double mid = lo / 2 + hi / 2, pad = std::fabs(mid) * 0.1;
    lo = mid - pad;
    hi = mid + pad;
  }
}

// Chooses the finest 1-2-5 ticks whose labels fit `length` pixels: one per 50 px on vertical
// axes; on horizontal ones, the widest label plus a gap per tick. Ends the caller did not fix
// (widen_lo, widen_hi) move out to the enclosing ticks; ticks outside the final range are dropped
// and do not count.
void choose_ticks(Axis& a, double length, bool horizontal, bool widen_lo, bool widen_hi,
                  double min_step) {
  const size_t most = size_t(std::max(3, int(length / (horizontal ? 40 : 50))));
  const double lo = a.lo, hi = a.hi;
  for (int m = int(most) + 2;; --m) {
    const std::vector<double> t = nice_ticks(lo, hi, m, min_step);
    a.step = t.size() > 1 ? t[1] - t[0] : 1;
    a.lo = widen_lo ? std::min(lo, t.front()) : lo;
    a.hi = widen_hi ? std::max(hi, t.back()) : hi;
    const double eps = (a.hi - a.lo) * 1e-9;
    a.ticks.clear();
    for (double v : t) {
      if (v >= a.lo - eps && v <= a.hi + eps) a.ticks.push_back(v);
    }
    if (m <= 3) return;
    if (a.ticks.size() > most) continue;
    if (!horizontal) return;
    double widest = 0;
    for (double v : a.ticks)
      widest = std::max(widest, text_width(format_tick(v, a.step), kTickSize));
    if ((widest + 12) * double(a.ticks.size() + 1) <= length) return;
  }
}

bool all_whole(const std::vector<double>& v) {
  for (double x : v) {
    if (std::isfinite(x) && x != std::round(x)) return false;
  }
  return true;
}

void check_size(const char* what, const std::string& title, int width, int height) {
  if (width < 200 || height < 150 || width > 20000 || height > 20000) {
    fail(what, " ", detail::quote(title), ": size ", width, " x ", height,
         " is outside 200 x 150 .. 20000 x 20000 pixels");
  }
}

}  // namespace

// ---- building blocks ----

Rgb sequential_color(double t) { return interpolate(kViridis, t); }
Rgb diverging_color(double t) { return interpolate(kBlueWhiteRed, (t + 1) / 2); }
Rgb count_color(double t) { return interpolate(kBlues, t); }

std::string to_hex(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r & 0xFF, c.g & 0xFF, c.b & 0xFF);
  return buf;
}

double luminance(Rgb c) {
  const auto linear = [](int v) {
    const double s = v / 255.0;
    return s <= 0.04045 ? s / 12.92 : std::pow((s + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * linear(c.r) + 0.7152 * linear(c.g) + 0.0722 * linear(c.b);
}

std::vector<double> nice_ticks(double lo, double hi, int max_ticks, double min_step) {
  if (!std::isfinite(lo) || !std::isfinite(hi))
    fail("nice_ticks: range [", lo, ", ", hi, "] is not finite");
  if (lo > hi) std::swap(lo, hi);
  fit_range(lo, hi);
  if (!std::isfinite(hi - lo)) fail("nice_ticks: range [", lo, ", ", hi, "] is too wide");
  // Three ticks always suffice (-step, 0, step spans any range around 0), so the search ends.
  max_ticks = std::max(max_ticks, 3);
  // Snap quotients within rounding noise of a whole number, so 0.6 / 0.2 counts as 3, not 2.999.
  const auto snap = [](double q) {
    return std::fabs(q - std::round(q)) < 1e-9 ? std::round(q) : q;
  };
  int e = int(std::floor(std::log10((hi - lo) / max_ticks))) - 1;
  for (;; ++e) {
    for (int m : {1, 2, 5}) {
      // m * 10^e, formed so that negative powers divide exactly: 0.2 is 2 / 10, not 2 * 0.1.
      const double p = std::pow(10.0, std::abs(e));
      const double step = e >= 0 ? m * p : m / p;
      if (step < min_step) continue;
      const double first = std::floor(snap(lo / step));
      const double last = std::ceil(snap(hi / step));
      if (last - first + 1 > max_ticks) continue;
      std::vector<double> ticks;
      for (double i = first; i <= last; ++i) ticks.push_back(e >= 0 ? i * m * p : i * m / p);
      return ticks;
    }
  }
}

std::string format_tick(double value, double step) {
  char buf[48];
  step = std::fabs(step);
  if (std::fabs(value) < step * 1e-6) value = 0;  // not "-0.0" or "1e-17" from arithmetic
  if (step >= 1e-3 && step < 1e6) {
    const int decimals = step >= 1 ? 0 : int(std::ceil(-std::log10(step) - 1e-9));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
    return buf;
  }
  // Very small or very large steps: scientific, with the digits the step needs and no padding
  // ("1.5e-4", "2e6"), the same style on every tick of an axis.
  if (value == 0) return "0";
  const int exponent = int(std::floor(std::log10(std::fabs(value)) + 1e-9));
  const int decimals = std::clamp(exponent - int(std::floor(std::log10(step) + 1e-9)), 0, 16);
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value / std::pow(10.0, exponent));
  std::string mantissa = buf;
  if (mantissa.find('.') != std::string::npos) {
    while (mantissa.back() == '0') mantissa.pop_back();
    if (mantissa.back() == '.') mantissa.pop_back();
  }
  return mantissa + "e" + std::to_string(exponent);
}

// ---- line chart ----

std::string line_chart_svg(const LineChartSpec& spec) {
  check_size("line chart", spec.title, spec.width, spec.height);
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  bool whole_x = true;
  for (const Series& s : spec.series) {
    if (s.x.size() != s.y.size()) {
      fail("line chart ", detail::quote(spec.title), ": series ", detail::quote(s.name), " has ",
           s.x.size(), " x values but ", s.y.size(), " y values");
    }
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      xlo = std::min(xlo, s.x[i]);
      xhi = std::max(xhi, s.x[i]);
      ylo = std::min(ylo, s.y[i]);
      yhi = std::max(yhi, s.y[i]);
    }
    whole_x = whole_x && all_whole(s.x);
  }
  if (spec.diagonal && !(xlo <= xhi)) xlo = ylo = 0, xhi = yhi = 1;
  // Fixed ends replace the data's; the other end still comes from the data.
  const auto fixed = [](double v) { return std::isfinite(v); };
  if (fixed(spec.x_min)) xlo = spec.x_min;
  if (fixed(spec.x_max)) xhi = spec.x_max;
  if (fixed(spec.y_min)) ylo = spec.y_min;
  if (fixed(spec.y_max)) yhi = spec.y_max;
  if ((fixed(spec.x_min) && fixed(spec.x_max) && spec.x_min >= spec.x_max) ||
      (fixed(spec.y_min) && fixed(spec.y_max) && spec.y_min >= spec.y_max)) {
    fail("line chart ", detail::quote(spec.title), ": fixed axis range x [", spec.x_min, ", ", spec.x_max,
         "], y [", spec.y_min, ", ", spec.y_max, "] is empty");
  }
  fit_range(xlo, xhi);
  fit_range(ylo, yhi);

  std::vector<std::string> legend;
  for (const Series& s : spec.series) {
    if (!s.name.empty()) legend.push_back(s.name);
  }

  // Layout from the outside in: title, legend column, axis titles, tick labels, plot area.
  const double W = spec.width, H = spec.height;
  const double top = spec.title.empty() ? 16 : 44;
  const double bottom = 12 + kTickSize + 8 + (spec.x_label.empty() ? 0 : kLabelSize + 14);
  double legend_w = 0;
  for (const std::string& name : legend) legend_w = std::max(legend_w, text_width(name, 12));
  legend_w = legend.empty() ? 0 : std::min(legend_w, W * 0.3) + 16 + 30 + 8;
  const double right = legend.empty() ? 24 : 12;

  Axis y;
  y.lo = ylo;
  y.hi = yhi;
  y.from = H - bottom;
  y.to = top;
  choose_ticks(y, y.from - y.to, false, !fixed(spec.y_min), !fixed(spec.y_max), 0);
  double y_labels_w = 0;
  for (double v : y.ticks)
    y_labels_w = std::max(y_labels_w, text_width(format_tick(v, y.step), kTickSize));
  const double left = 10 + (spec.y_label.empty() ? 0 : kLabelSize + 10) + y_labels_w + 10;

  Axis x;
  x.lo = xlo;
  x.hi = xhi;
  x.from = left;
  x.to = W - right - legend_w;
  if (x.to - x.from < 80)
    fail("line chart ", detail::quote(spec.title), ": ", W, " pixels wide leaves no room for the plot");
  choose_ticks(x, x.to - x.from, true, false, false, whole_x ? 1 : 0);

  Svg svg(W, H);
  const double plot_w = x.to - x.from, plot_h = y.from - y.to;
  if (!spec.title.empty()) svg.title(W / 2, 22, spec.title, W - 16);
  for (double v : y.ticks) svg.line(x.from, y.px(v), x.to, y.px(v), kGrid);
  for (double v : x.ticks) svg.line(x.px(v), y.to, x.px(v), y.from, kGrid);
  svg.line(x.from, y.from, x.to, y.from, kAxis);
  svg.line(x.from, y.from, x.from, y.to, kAxis);
  for (double v : y.ticks) {
    svg.line(x.from - 5, y.px(v), x.from, y.px(v), kAxis);
    svg.text(x.from - 8, y.px(v), format_tick(v, y.step), kTickSize, "end");
  }
  for (double v : x.ticks) {
    svg.line(x.px(v), y.from, x.px(v), y.from + 5, kAxis);
    svg.text(x.px(v), y.from + 8 + kTickSize / 2, format_tick(v, x.step), kTickSize, "middle");
  }
  if (!spec.x_label.empty()) {
    svg.text(x.from + plot_w / 2, H - 8 - kLabelSize / 2,
             fit_text(spec.x_label, kLabelSize, plot_w), kLabelSize, "middle");
  }
  if (!spec.y_label.empty()) {
    svg.vertical_text(10 + kLabelSize / 2, y.to + plot_h / 2,
                      fit_text(spec.y_label, kLabelSize, plot_h), kLabelSize);
  }

  // Data lines are clipped to the plot area, so fixed ranges narrower than the data stay inside.
  // A few pixels of slack keep markers and lines on the plot edge whole.
  svg.out += "<clipPath id=\"nmsnn-plot-area\"><rect x=\"" + num(x.from - 5) + "\" y=\"" +
             num(y.to - 5) + "\" width=\"" + num(plot_w + 10) + "\" height=\"" + num(plot_h + 10) +
             "\"/></clipPath>\n<g clip-path=\"url(#nmsnn-plot-area)\" fill=\"none\" "
             "stroke-linejoin=\"round\" stroke-linecap=\"round\">\n";
  if (spec.diagonal) {
    const double a = std::max(x.lo, y.lo), b = std::min(x.hi, y.hi);
    if (a < b)
      svg.line(x.px(a), y.px(a), x.px(b), y.px(b), "#888888", 1.2, " stroke-dasharray=\"6 5\"");
  }
  std::vector<std::string> colors;
  std::vector<bool> dashed;
  size_t next_color = 0;
  for (const Series& s : spec.series) {
    dashed.push_back(s.dashed || (s.color.empty() && next_color >= 8));
    colors.push_back(s.color.empty() ? kPalette[next_color++ % 8] : s.color);
    std::string d;
    bool pen_down = false;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        pen_down = false;
        continue;
      }
      const double px = x.px(s.x[i]), py = y.px(s.y[i]);
      if (!pen_down) {
        d += "M" + num(px) + "," + num(py);
      } else if (s.steps) {
        d += "H" + num(px) + "V" + num(py);
      } else {
        d += "L" + num(px) + "," + num(py);
      }
      pen_down = true;
    }
    svg.out += "<path class=\"series\" d=\"" + d + "\" stroke=\"" + colors.back() +
               "\" stroke-width=\"2\"" + (dashed.back() ? " stroke-dasharray=\"7 4\"" : "") +
               "/>\n";
  }
  for (size_t k = 0; k < spec.series.size(); ++k) {
    const Series& s = spec.series[k];
    if (!s.markers) continue;
    svg.out += "<g fill=\"" + colors[k] + "\" stroke=\"white\" stroke-width=\"0.8\">";
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      svg.out +=
          "<circle cx=\"" + num(x.px(s.x[i])) + "\" cy=\"" + num(y.px(s.y[i])) + "\" r=\"3\"/>";
    }
    svg.out += "</g>\n";
  }
  svg.out += "</g>\n";

  if (!legend.empty()) {
    const double lx = x.to + 16, text_max = legend_w - 16 - 30 - 8;
    double ly = y.to + 8;
    for (size_t k = 0; k < spec.series.size(); ++k) {
      const Series& s = spec.series[k];
      if (s.name.empty()) continue;
      svg.out += "<g class=\"legend-entry\">";
      svg.line(lx, ly, lx + 24, ly, colors[k], 2, dashed[k] ? " stroke-dasharray=\"7 4\"" : "");
      if (s.markers) {
        svg.out += "<circle cx=\"" + num(lx + 12) + "\" cy=\"" + num(ly) + "\" r=\"3\" fill=\"" +
                   colors[k] + "\"/>";
      }
      // Long names wrap rather than truncate: names often differ only at the end ("... class 2").
      const std::vector<std::string> lines = wrap_text(s.name, 12, text_max, 3);
      for (size_t i = 0; i < lines.size(); ++i) svg.text(lx + 30, ly + 15 * i, lines[i], 12);
      svg.out += "</g>\n";
      ly += 20 + 15 * (lines.size() - 1);
    }
  }
  return svg.finish();
}

void line_chart(const std::string& path, const LineChartSpec& spec) {
  write_file_atomic(path, line_chart_svg(spec));
}

// ---- heat map ----

namespace {

// Every k-th label, k from 1, 2, 5, 10, 20, ..., so labels `need` pixels apart fit cells `cell`
// pixels apart.
int label_stride(double cell, double need) {
  for (int k = 1;; k *= 10) {
    for (int m : {1, 2, 5}) {
      if (k * m * cell >= need) return k * m;
    }
  }
}

// Cell size along one side: whole pixels when there is room (crisp edges), capped for tiny
// matrices, fractional when there are more cells than pixels.
double cell_size(int count, double budget, double cap) {
  const double s = budget / count;
  return s >= 2 ? std::min(std::floor(s), cap) : s;
}

}  // namespace

std::string heat_map_svg(const HeatMapSpec& spec) {
  const std::string what = "heat map " + detail::quote(spec.title);
  if (spec.rows <= 0 || spec.cols <= 0)
    fail(what, ": size ", spec.rows, " x ", spec.cols, " must be positive");
  if (spec.values.size() != size_t(spec.rows) * size_t(spec.cols)) {
    fail(what, ": ", spec.values.size(), " values for ", spec.rows, " rows x ", spec.cols,
         " cols = ", size_t(spec.rows) * size_t(spec.cols));
  }
  if (!spec.row_names.empty() && spec.row_names.size() != size_t(spec.rows)) {
    fail(what, ": ", spec.row_names.size(), " row names for ", spec.rows, " rows");
  }
  if (!spec.col_names.empty() && spec.col_names.size() != size_t(spec.cols)) {
    fail(what, ": ", spec.col_names.size(), " col names for ", spec.cols, " cols");
  }

  // Color scale.
  double lo = INFINITY, hi = -INFINITY;
  for (float v : spec.values) {
    if (!std::isfinite(v)) continue;
    lo = std::min(lo, double(v));
    hi = std::max(hi, double(v));
  }
  if (!(lo <= hi)) lo = hi = 0;
  if (std::isfinite(spec.v_min)) lo = spec.v_min;
  if (std::isfinite(spec.v_max)) hi = spec.v_max;
  if (!(lo < hi) && std::isfinite(spec.v_min) && std::isfinite(spec.v_max)) {
    fail(what, ": color scale [", spec.v_min, ", ", spec.v_max, "] is empty");
  }
  const bool diverging = spec.colors == HeatMapSpec::Colors::diverging ||
                         (spec.colors == HeatMapSpec::Colors::automatic && lo < 0 && hi > 0);
  if (diverging) {
    const double m = std::max(std::fabs(lo), std::fabs(hi));
    lo = -(m > 0 ? m : 1);
    hi = -lo;
  } else if (lo == hi) {
    // A constant map (a layer that never spiked) still gets a scale that includes 0.
    lo = std::min(lo, 0.0);
    hi = std::max(hi, 0.0);
    if (lo == hi) hi = 1;
  }
  // Quantizing to an odd number of levels puts 0 exactly on the white of the diverging map and
  // lets neighbouring cells of equal level merge.
  constexpr int kLevels = 129;
  const auto level_of = [&](float v) {
    if (!std::isfinite(v)) return -1;
    const double t = std::clamp((double(v) - lo) / (hi - lo), 0.0, 1.0);
    return int(std::lround(t * (kLevels - 1)));
  };
  const auto level_color = [&](int level) {
    const double t = double(level) / (kLevels - 1);
    return to_hex(diverging ? diverging_color(2 * t - 1) : sequential_color(t));
  };

  // Layout.
  // Small matrices get larger cells so the map is never smaller than 240 x 120, the colorbar's
  // height, which keeps the axis labels next to the cells.
  double cw = cell_size(spec.cols, 760, 40), ch = cell_size(spec.rows, 520, 32);
  if (cw * spec.cols < 240) cw = std::ceil(240.0 / spec.cols);
  if (ch * spec.rows < 120) ch = std::ceil(120.0 / spec.rows);
  const double plot_w = cw * spec.cols, plot_h = ch * spec.rows;
  const auto row_name = [&](int r) {
    return spec.row_names.empty() ? std::to_string(r) : spec.row_names[r];
  };
  const auto col_name = [&](int c) {
    return spec.col_names.empty() ? std::to_string(c) : spec.col_names[c];
  };
  const int row_stride = label_stride(ch, kTickSize + 4);
  double row_labels_w = 0;
  for (int r = 0; r < spec.rows; r += row_stride) {
    row_labels_w = std::max(row_labels_w, text_width(row_name(r), kTickSize));
  }
  row_labels_w = std::min(row_labels_w, 160.0);
  double col_label_w = 0;
  for (int c = 0; c < spec.cols; ++c)
    col_label_w = std::max(col_label_w, text_width(col_name(c), kTickSize));
  col_label_w = std::min(col_label_w, 160.0);
  const int col_stride = label_stride(cw, col_label_w + 10);

  Axis bar;  // the colorbar's value axis, alongside the cells
  bar.lo = lo;
  bar.hi = hi;
  bar.from = 0;
  bar.to = plot_h;
  choose_ticks(bar, bar.to, false, false, false, 0);
  double bar_labels_w = 0;
  for (double v : bar.ticks)
    bar_labels_w = std::max(bar_labels_w, text_width(format_tick(v, bar.step), kTickSize));

  const double top = spec.title.empty() ? 16 : 44;
  const double left =
      std::round(10 + (spec.y_label.empty() ? 0 : kLabelSize + 10) + row_labels_w + 10);
  const double bar_x = left + plot_w + 18, bar_w = 14;
  const double right_part =
      18 + bar_w + 8 + bar_labels_w + (spec.value_label.empty() ? 0 : 10 + kLabelSize) + 12;
  const double bottom = 12 + kTickSize + 8 + (spec.x_label.empty() ? 0 : kLabelSize + 14);
  double W = left + plot_w + right_part;
  const double H = top + plot_h + bottom;
  const double title_w =
      spec.title.empty() ? 0 : std::min(text_width(spec.title, kTitleSize) + 24, 900.0);
  const double shift =
      std::max(0.0, std::round((title_w - W) / 2));  // centre narrow maps under a long title
  W += 2 * shift;
  const double x0 = left + shift, y0 = top;

  Svg svg(W, H);
  if (!spec.title.empty()) svg.title(W / 2, 22, spec.title, W - 16);

  // Cells: one path per color level; a run of equal levels in a row is one rectangle.
  std::map<int, std::string> paths;
  for (int r = 0; r < spec.rows; ++r) {
    const float* row = spec.values.data() + size_t(r) * spec.cols;
    for (int c = 0; c < spec.cols;) {
      const int level = level_of(row[c]);
      int end = c + 1;
      while (end < spec.cols && level_of(row[end]) == level) ++end;
      paths[level] += "M" + num(x0 + c * cw) + " " + num(y0 + r * ch) + "h" + num((end - c) * cw) +
                      "v" + num(ch) + "h" + num(-(end - c) * cw) + "z";
      c = end;
    }
  }
  svg.out += "<g shape-rendering=\"crispEdges\">\n";
  for (const auto& [level, d] : paths) {
    svg.out += "<path class=\"cells\" fill=\"" +
               (level < 0 ? std::string("#bdbdbd") : level_color(level)) + "\" d=\"" + d + "\"/>\n";
  }
  svg.out += "</g>\n";
  svg.rect(x0, y0, plot_w, plot_h, "none", std::string(" stroke=\"") + kAxis + "\"");

  // Row and column labels, thinned to every k-th so they never touch.
  for (int r = 0; r < spec.rows; r += row_stride) {
    const double cy = y0 + (r + 0.5) * ch;
    svg.line(x0 - 4, cy, x0, cy, kAxis);
    svg.text(x0 - 7, cy, fit_text(row_name(r), kTickSize, 160), kTickSize, "end");
  }
  for (int c = 0; c < spec.cols; c += col_stride) {
    const double cx = x0 + (c + 0.5) * cw;
    svg.line(cx, y0 + plot_h, cx, y0 + plot_h + 4, kAxis);
    svg.text(cx, y0 + plot_h + 8 + kTickSize / 2, fit_text(col_name(c), kTickSize, 160), kTickSize,
             "middle");
  }
  if (!spec.x_label.empty())
    svg.text(x0 + plot_w / 2, H - 8 - kLabelSize / 2, spec.x_label, kLabelSize, "middle");
  if (!spec.y_label.empty())
    svg.vertical_text(x0 - left + 10 + kLabelSize / 2, y0 + plot_h / 2, spec.y_label, kLabelSize);

  // Colorbar: a gradient through the same map, with its own value ticks.
  const double bx = bar_x + shift, bh = bar.to;
  svg.out += "<linearGradient id=\"nmsnn-colorbar\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
  for (int i = 0; i <= 16; ++i) {
    const double t = i / 16.0;
    svg.out += "<stop offset=\"" + num(t) + "\" stop-color=\"" +
               to_hex(diverging ? diverging_color(2 * t - 1) : sequential_color(t)) + "\"/>";
  }
  svg.out += "</linearGradient>\n";
  svg.rect(bx, y0, bar_w, bh, "url(#nmsnn-colorbar)",
           std::string(" class=\"colorbar\" stroke=\"") + kAxis + "\" stroke-width=\"0.5\"");
  for (double v : bar.ticks) {
    const double py = y0 + bh - (v - lo) / (hi - lo) * bh;
    svg.line(bx + bar_w, py, bx + bar_w + 4, py, kAxis);
    svg.text(bx + bar_w + 7, py, format_tick(v, bar.step), kTickSize, "start",
             " class=\"colorbar-tick\"");
  }
  if (!spec.value_label.empty()) {
    svg.vertical_text(bx + bar_w + 7 + bar_labels_w + 8 + kLabelSize / 2, y0 + bh / 2,
                      fit_text(spec.value_label, kLabelSize, bh), kLabelSize);
  }
  return svg.finish();
}

void heat_map(const std::string& path, const HeatMapSpec& spec) {
  write_file_atomic(path, heat_map_svg(spec));
}

// ---- confusion matrix ----

std::string confusion_matrix_svg(const std::vector<std::vector<int64_t>>& matrix,
                                 const std::vector<std::string>& class_names,
                                 const std::string& title) {
  const std::string what = "confusion matrix " + detail::quote(title);
  const size_t n = matrix.size();
  if (n == 0) fail(what, ": the matrix is empty");
  int64_t max_count = 0;
  for (size_t r = 0; r < n; ++r) {
    if (matrix[r].size() != n)
      fail(what, ": row ", r, " has ", matrix[r].size(), " counts, expected ", n);
    for (size_t c = 0; c < n; ++c) {
      if (matrix[r][c] < 0)
        fail(what, ": count [", r, "][", c, "] is negative (", matrix[r][c], ")");
      max_count = std::max(max_count, matrix[r][c]);
    }
  }
  if (!class_names.empty() && class_names.size() != n) {
    fail(what, ": ", class_names.size(), " class names for ", n, " classes");
  }
  const auto name = [&](size_t i) {
    return class_names.empty() ? std::to_string(i) : class_names[i];
  };

  const double cell = std::clamp(std::floor(440.0 / n), 26.0, 84.0);
  const double grid = cell * n;
  const bool percents = cell >= 44;  // room for a second line
  // Counts fit their cell: the widest count decides the font size for all of them.
  const double count_size = std::min(std::clamp(cell * 0.3, 9.0, 15.0),
                                     (cell - 6) / text_width(std::to_string(max_count), 1));
  double names_w = 0;
  for (size_t i = 0; i < n; ++i) names_w = std::max(names_w, text_width(name(i), kTickSize));
  names_w = std::min(names_w, 150.0);
  // Column names that do not fit their cell are turned 45 degrees.
  const bool slanted = names_w > cell - 6;
  const double col_names_h = slanted ? names_w * 0.71 + kTickSize : kTickSize;

  const double top = title.empty() ? 16 : 44;
  const double left = std::round(10 + kLabelSize + 10 + names_w + 10);
  const double bottom = 10 + col_names_h + 10 + kLabelSize + 14;
  double W = left + grid + 24;
  const double H = top + grid + bottom;
  const double title_w = title.empty() ? 0 : std::min(text_width(title, kTitleSize) + 24, 900.0);
  const double shift = std::max(0.0, std::round((title_w - W) / 2));
  W += 2 * shift;
  const double x0 = left + shift, y0 = top;

  Svg svg(W, H);
  if (!title.empty()) {
    // Centred over the grid when it fits there, which is where the eye expects it.
    const double half = std::min(text_width(title, kTitleSize) / 2 + 8, W / 2);
    svg.title(std::clamp(x0 + grid / 2, half, W - half), 22, title, W - 16);
  }
  for (size_t r = 0; r < n; ++r) {
    int64_t row_total = 0;
    for (int64_t v : matrix[r]) row_total += v;
    for (size_t c = 0; c < n; ++c) {
      const int64_t count = matrix[r][c];
      const Rgb fill = count_color(max_count > 0 ? double(count) / max_count : 0);
      const double x = x0 + c * cell, y = y0 + r * cell;
      svg.rect(x, y, cell, cell, to_hex(fill), " class=\"cell\" stroke=\"white\"");
      // White on dark cells, dark on light ones: whichever contrasts more (the WCAG crossover).
      const std::string ink = luminance(fill) < 0.179 ? " fill=\"white\"" : " fill=\"#222222\"";
      if (percents && row_total > 0) {
        char pct[32];
        std::snprintf(pct, sizeof pct, "%.1f%%", 100.0 * count / row_total);
        svg.text(x + cell / 2, y + cell / 2 - count_size * 0.45, std::to_string(count), count_size,
                 "middle", ink);
        svg.text(x + cell / 2, y + cell / 2 + count_size * 0.75, pct, count_size * 0.72, "middle",
                 ink);
      } else {
        svg.text(x + cell / 2, y + cell / 2, std::to_string(count), count_size, "middle", ink);
      }
    }
  }
  svg.rect(x0, y0, grid, grid, "none", std::string(" stroke=\"") + kAxis + "\"");
  for (size_t i = 0; i < n; ++i) {
    const double mid = (i + 0.5) * cell;
    svg.text(x0 - 8, y0 + mid, fit_text(name(i), kTickSize, 150), kTickSize, "end");
    const double ty = y0 + grid + 10;
    if (slanted) {
      svg.out += "<text transform=\"translate(" + num(x0 + mid + 4) + " " + num(ty) +
                 ") rotate(-45)\" font-size=\"" + num(kTickSize) + "\" text-anchor=\"end\" y=\"" +
                 num(0.35 * kTickSize) + "\">" + xml_escape(fit_text(name(i), kTickSize, 150)) +
                 "</text>\n";
    } else {
      svg.text(x0 + mid, ty + kTickSize / 2, name(i), kTickSize, "middle");
    }
  }
  svg.text(x0 + grid / 2, H - 8 - kLabelSize / 2, "predicted", kLabelSize, "middle");
  svg.vertical_text(x0 - left + 10 + kLabelSize / 2, y0 + grid / 2, "true", kLabelSize);
  return svg.finish();
}

void confusion_matrix_chart(const std::string& path,
                            const std::vector<std::vector<int64_t>>& matrix,
                            const std::vector<std::string>& class_names, const std::string& title) {
  write_file_atomic(path, confusion_matrix_svg(matrix, class_names, title));
}

}  // namespace nmsnn::plot
