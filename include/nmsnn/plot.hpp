// nmsnn/plot.hpp — SVG charts of training runs and neuron activity, readable in any browser.
//
// line_chart: training curves, ROC/PR curves, one neuron's state or spikes over time.
// heat_map: a [rows, cols] matrix such as neurons x time steps, with a colorbar.
// confusion_matrix_chart: counts per (true, predicted) class.
// Each function writes one .svg file atomically (*_svg returns the text instead). Colors are
// colorblind-safe: viridis for sequential values, blue-white-red for signed values, white-blue for
// counts. Axis ticks follow the 1-2-5 rule of nice_ticks.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace nmsnn::plot {

constexpr double kAuto = std::numeric_limits<double>::quiet_NaN();

struct Series {
  std::string name;          // legend text; series with an empty name stay out of the legend
  std::vector<double> x, y;  // same length; a non-finite point breaks the line
  std::string color;         // any SVG color; empty takes the next color of the palette
  bool dashed = false;
  bool markers = false;  // a dot on every point
  bool steps = false;    // hold each y until the next x, for spike trains
};

struct LineChartSpec {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  // Fixed axis ends; kAuto fits the data: x exactly, y widened to the enclosing nice ticks.
  double x_min = kAuto, x_max = kAuto, y_min = kAuto, y_max = kAuto;
  bool diagonal = false;          // a dashed gray y = x line: the chance level of a ROC curve
  int width = 720, height = 440;  // the whole image, in pixels
};

struct HeatMapSpec {
  std::string title;
  std::string x_label = "time step", y_label = "neuron", value_label;  // value_label: colorbar
  int rows = 0, cols = 0;
  std::vector<float> values;  // [rows, cols] row-major; row 0 is drawn at the top
  std::vector<std::string> row_names, col_names;  // optional; default "0", "1", ...
  // automatic: diverging (centred on 0) when values have both signs, sequential otherwise.
  enum class Colors { automatic, sequential, diverging } colors = Colors::automatic;
  double v_min = kAuto, v_max = kAuto;  // fixed color scale ends; kAuto fits the data
};

std::string line_chart_svg(const LineChartSpec& spec);
void line_chart(const std::string& path, const LineChartSpec& spec);

std::string heat_map_svg(const HeatMapSpec& spec);
void heat_map(const std::string& path, const HeatMapSpec& spec);

// matrix[true class][predicted class] = count, as in nmsnn::ConfusionMatrix::at(truth, pred).
// class_names may be empty ("0", "1", ...). Cells are shaded by count and show the count and its
// share of the row (the recall of that true class).
std::string confusion_matrix_svg(const std::vector<std::vector<int64_t>>& matrix,
                                 const std::vector<std::string>& class_names,
                                 const std::string& title = "Confusion matrix");
void confusion_matrix_chart(const std::string& path,
                            const std::vector<std::vector<int64_t>>& matrix,
                            const std::vector<std::string>& class_names,
                            const std::string& title = "Confusion matrix");

// ---- building blocks, public for tests and for other renderers ----

// Evenly spaced ticks covering [lo, hi]: the first <= lo, the last >= hi, spaced by the smallest
// step of the form {1, 2, 5} x 10^k (and >= min_step) that needs at most max(max_ticks, 3) ticks.
// E.g. [0, 0.97] with 8 -> 0, 0.2, ..., 1; [-3.3, 12] with 8 -> -5, 0, 5, 10, 15.
std::vector<double> nice_ticks(double lo, double hi, int max_ticks, double min_step = 0);

// A tick label with as many decimals as the step needs: (0.6, 0.2) -> "0.6", (15, 5) -> "15".
std::string format_tick(double value, double step);

struct Rgb {
  int r = 0, g = 0, b = 0;
  friend bool operator==(const Rgb& a, const Rgb& b) {
    return a.r == b.r && a.g == b.g && a.b == b.b;
  }
};
Rgb sequential_color(double t);  // t in [0, 1]: viridis, dark purple -> teal -> yellow
Rgb diverging_color(double t);   // t in [-1, 1]: dark blue -> near-white at 0 -> dark red
Rgb count_color(double t);       // t in [0, 1]: near-white -> dark blue
std::string to_hex(Rgb c);       // "#rrggbb"
double luminance(Rgb c);         // WCAG relative luminance in [0, 1]

}  // namespace nmsnn::plot
