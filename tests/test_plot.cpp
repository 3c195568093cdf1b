// tests/test_plot.cpp — SVG charts: structure of each chart, tick choice, tick labels, colormaps.
//
// The SVG is checked as text: well-formed tags, the title, and the number of series, legend
// entries and cells that the input implies. How the charts look was checked by rendering them.
#include <gtest/gtest.h>

#include "temp_dir.hpp"

#include "throws_with.hpp"

#include <cmath>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "nmsnn/error.hpp"
#include "nmsnn/files.hpp"
#include "nmsnn/plot.hpp"

namespace fs = std::filesystem;
namespace plot = nmsnn::plot;

namespace {

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A small well-formedness check: one <svg> root, every tag closed in order, quoted attributes,
// and no raw '<' or stray '&' in text.
::testing::AssertionResult well_formed_svg(const std::string& svg) {
  if (svg.rfind("<svg ", 0) != 0)
    return ::testing::AssertionFailure() << "does not start with <svg";
  if (svg.size() < 7 || svg.substr(svg.size() - 7) != "</svg>\n") {
    return ::testing::AssertionFailure() << "does not end with </svg>";
  }
  std::vector<std::string> open;
  size_t i = 0;
  while (i < svg.size()) {
    if (svg[i] == '&') {
      const size_t semi = svg.find(';', i);
      const std::string entity = svg.substr(i, semi == std::string::npos ? 8 : semi - i + 1);
      if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;") {
        return ::testing::AssertionFailure() << "stray & at " << i;
      }
    }
    if (svg[i] != '<') {
      ++i;
      continue;
    }
    size_t end = i + 1;
    bool quoted = false;
    while (end < svg.size() && (quoted || svg[end] != '>')) {
      if (svg[end] == '"') quoted = !quoted;
      if (!quoted && svg[end] == '<')
        return ::testing::AssertionFailure() << "'<' inside a tag at " << end;
      ++end;
    }
    if (end >= svg.size()) return ::testing::AssertionFailure() << "unterminated tag at " << i;
    const std::string tag = svg.substr(i + 1, end - i - 1);
    const std::string name =
        tag.substr(tag[0] == '/', tag.find_first_of(" />", 1) - (tag[0] == '/'));
    if (tag[0] == '/') {
      if (open.empty() || open.back() != name) {
        return ::testing::AssertionFailure() << "</" << name << "> at " << i << " closes "
                                             << (open.empty() ? "nothing" : open.back());
      }
      open.pop_back();
      if (open.empty() && end + 2 != svg.size()) {
        return ::testing::AssertionFailure() << "content after the root element";
      }
    } else if (tag.back() != '/') {
      if (open.empty() && name != "svg") return ::testing::AssertionFailure() << "root is " << name;
      open.push_back(name);
    }
    i = end + 1;
  }
  if (!open.empty()) return ::testing::AssertionFailure() << "<" << open.back() << "> never closed";
  return ::testing::AssertionSuccess();
}

// The fill of the first <text> after `from` whose content is `content`.
std::string text_fill_after(const std::string& svg, size_t from, const std::string& content) {
  const size_t at = svg.find(">" + content + "</text>", from);
  if (at == std::string::npos) return "(no such text)";
  const size_t open = svg.rfind("<text", at);
  const size_t fill = svg.find(" fill=\"", open);
  if (fill == std::string::npos || fill > at) return "(no fill)";
  return svg.substr(fill + 7, svg.find('"', fill + 7) - fill - 7);
}

plot::Series series(const std::string& name, std::vector<double> x, std::vector<double> y) {
  plot::Series s;
  s.name = name;
  s.x = std::move(x);
  s.y = std::move(y);
  return s;
}

}  // namespace

// ---- ticks ----

TEST(NiceTicks, HandWorkedRanges) {
  EXPECT_EQ(plot::nice_ticks(0, 0.97, 8), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  EXPECT_EQ(plot::nice_ticks(-3.3, 12, 8), (std::vector<double>{-5, 0, 5, 10, 15}));
  EXPECT_EQ(plot::nice_ticks(1, 50, 6), (std::vector<double>{0, 10, 20, 30, 40, 50}));
  EXPECT_EQ(plot::nice_ticks(0, 127, 8), (std::vector<double>{0, 20, 40, 60, 80, 100, 120, 140}));
  EXPECT_EQ(plot::nice_ticks(0.001, 0.0042, 5),
            (std::vector<double>{0.001, 0.002, 0.003, 0.004, 0.005}));
  EXPECT_EQ(plot::nice_ticks(-1, 1, 3), (std::vector<double>{-1, 0, 1}));
  EXPECT_EQ(plot::nice_ticks(0, 2e6, 5), (std::vector<double>{0, 5e5, 1e6, 1.5e6, 2e6}));
  // Whole-number data (epochs) can forbid fractional steps.
  EXPECT_EQ(plot::nice_ticks(0, 3, 10), (std::vector<double>{0, 0.5, 1, 1.5, 2, 2.5, 3}));
  EXPECT_EQ(plot::nice_ticks(0, 3, 10, 1), (std::vector<double>{0, 1, 2, 3}));
  // A single value gets room around it; reversed ends are accepted.
  EXPECT_EQ(plot::nice_ticks(5, 5, 5), (std::vector<double>{4.5, 5, 5.5}));
  EXPECT_EQ(plot::nice_ticks(1, 0, 6), plot::nice_ticks(0, 1, 6));
  // Fewer than three ticks cannot cover a range around 0; three are always allowed.
  EXPECT_EQ(plot::nice_ticks(-1, 2, 2), (std::vector<double>{-2, 0, 2}));
  EXPECT_EQ(plot::nice_ticks(0.3, 0.7, 1), (std::vector<double>{0, 0.5, 1}));
  EXPECT_TRUE(throws_with([] { plot::nice_ticks(0, INFINITY, 5); }, {"not finite"}));
  EXPECT_TRUE(throws_with([] { plot::nice_ticks(-1e308, 1e308, 5); }, {"too wide"}));
  // A range narrower than double resolution is treated as one value.
  EXPECT_EQ(plot::nice_ticks(1, 1 + 1e-15, 5), (std::vector<double>{0.9, 0.95, 1, 1.05, 1.1}));
}

// The rule on random ranges: covering, within the budget, a 1-2-5 step, and the next finer
// 1-2-5 step would have needed more ticks.
TEST(NiceTicks, RuleHoldsOnRandomRanges) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> exponent(-6, 6), unit(-1, 1);
  std::uniform_int_distribution<int> budget(3, 12);
  for (int trial = 0; trial < 2000; ++trial) {
    const double scale = std::pow(10.0, exponent(rng));
    double lo = unit(rng) * scale, hi = unit(rng) * scale;
    if (lo > hi) std::swap(lo, hi);
    if (lo == hi) continue;
    const int max_ticks = budget(rng);
    const std::vector<double> t = plot::nice_ticks(lo, hi, max_ticks);
    ASSERT_GE(t.size(), 2u);
    ASSERT_LE(t.size(), size_t(max_ticks));
    const double step = t[1] - t[0];
    EXPECT_LE(t.front(), lo + step * 1e-9);
    EXPECT_GE(t.back(), hi - step * 1e-9);
    const double mantissa = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
    EXPECT_TRUE(std::fabs(mantissa - 1) < 1e-6 || std::fabs(mantissa - 2) < 1e-6 ||
                std::fabs(mantissa - 5) < 1e-6)
        << step;
    const double finer = std::fabs(mantissa - 1) < 1e-6   ? step / 2
                         : std::fabs(mantissa - 2) < 1e-6 ? step / 2
                                                          : step * 0.4;
    const double finer_count = std::ceil(hi / finer - 1e-9) - std::floor(lo / finer + 1e-9) + 1;
    EXPECT_GT(finer_count, max_ticks) << "[" << lo << ", " << hi << "] step " << step;
  }
}

TEST(FormatTick, DecimalsFollowTheStep) {
  EXPECT_EQ(plot::format_tick(0.6, 0.2), "0.6");
  EXPECT_EQ(plot::format_tick(1, 0.2), "1.0");
  EXPECT_EQ(plot::format_tick(0, 0.2), "0.0");
  EXPECT_EQ(plot::format_tick(-1e-17, 0.2), "0.0");  // not "-0.0"
  EXPECT_EQ(plot::format_tick(15, 5), "15");
  EXPECT_EQ(plot::format_tick(-5, 5), "-5");
  EXPECT_EQ(plot::format_tick(0.05, 0.05), "0.05");
  EXPECT_EQ(plot::format_tick(0.003, 0.001), "0.003");
  EXPECT_EQ(plot::format_tick(1500000, 500000), "1500000");
  // Very small or large steps switch the whole axis to short scientific labels.
  EXPECT_EQ(plot::format_tick(1.5e-4, 5e-5), "1.5e-4");
  EXPECT_EQ(plot::format_tick(2e-4, 5e-5), "2e-4");
  EXPECT_EQ(plot::format_tick(0, 5e-5), "0");
  EXPECT_EQ(plot::format_tick(-1e-5, 1e-5), "-1e-5");
  EXPECT_EQ(plot::format_tick(3e6, 1e6), "3e6");
  EXPECT_EQ(plot::format_tick(2.5e7, 5e6), "2.5e7");
}

// ---- colors ----

TEST(Colormaps, Endpoints) {
  EXPECT_EQ(plot::to_hex(plot::sequential_color(0)), "#440154");  // viridis ends
  EXPECT_EQ(plot::to_hex(plot::sequential_color(0.5)), "#21908c");
  EXPECT_EQ(plot::to_hex(plot::sequential_color(1)), "#fde725");
  EXPECT_EQ(plot::to_hex(plot::diverging_color(-1)), "#053061");  // dark blue
  EXPECT_EQ(plot::to_hex(plot::diverging_color(0)), "#f7f7f7");   // near-white at zero
  EXPECT_EQ(plot::to_hex(plot::diverging_color(1)), "#67001f");   // dark red
  EXPECT_EQ(plot::to_hex(plot::count_color(0)), "#f7fbff");
  EXPECT_EQ(plot::to_hex(plot::count_color(1)), "#08306b");
  // Out-of-range and NaN inputs clamp instead of producing garbage.
  EXPECT_EQ(plot::sequential_color(-3), plot::sequential_color(0));
  EXPECT_EQ(plot::sequential_color(7), plot::sequential_color(1));
  EXPECT_EQ(plot::diverging_color(-2), plot::diverging_color(-1));
  EXPECT_EQ(plot::sequential_color(NAN), plot::sequential_color(0));
}

// Sequential maps must read as "more" by lightness alone (grayscale prints, color blindness).
TEST(Colormaps, LightnessIsMonotonic) {
  double prev_seq = -1, prev_count = 2;
  for (int i = 0; i <= 200; ++i) {
    const double t = i / 200.0;
    const double seq = plot::luminance(plot::sequential_color(t));
    const double cnt = plot::luminance(plot::count_color(t));
    EXPECT_GE(seq, prev_seq) << t;
    EXPECT_LE(cnt, prev_count) << t;
    prev_seq = seq;
    prev_count = cnt;
    // The diverging map is lightest at 0 and darkens towards both ends.
    EXPECT_LE(plot::luminance(plot::diverging_color(t)), plot::luminance(plot::diverging_color(0)));
    EXPECT_LE(plot::luminance(plot::diverging_color(-t)),
              plot::luminance(plot::diverging_color(0)));
  }
  EXPECT_NEAR(plot::luminance({255, 255, 255}), 1.0, 1e-12);
  EXPECT_NEAR(plot::luminance({0, 0, 0}), 0.0, 1e-12);
}

// ---- line chart ----

TEST(LineChart, StructureSeriesAndLegend) {
  plot::LineChartSpec spec;
  spec.title = "Training loss < 1 & falling";
  spec.x_label = "epoch";
  spec.y_label = "loss";
  spec.series.push_back(series("train", {1, 2, 3, 4, 5}, {0.97, 0.6, 0.4, 0.3, 0.25}));
  spec.series.push_back(series("validation", {1, 2, 3, 4, 5}, {0.9, 0.7, 0.5, 0.45, 0.4}));
  spec.series.back().markers = true;
  spec.series.push_back(series("", {1, 5}, {0.5, 0.5}));  // a reference line, not in the legend
  const std::string svg = plot::line_chart_svg(spec);
  EXPECT_TRUE(well_formed_svg(svg));
  EXPECT_NE(svg.find("Training loss &lt; 1 &amp; falling"), std::string::npos);
  EXPECT_NE(svg.find("font-family=\"sans-serif\""), std::string::npos);
  EXPECT_EQ(count(svg, "class=\"series\""), 3u);
  EXPECT_EQ(count(svg, "class=\"legend-entry\""), 2u);
  EXPECT_EQ(count(svg, "<circle"), 5u + 1u);  // five markers, one in the legend
  EXPECT_NE(svg.find(">train<"), std::string::npos);
  EXPECT_NE(svg.find(">validation<"), std::string::npos);
  EXPECT_NE(svg.find(">epoch<"), std::string::npos);
  EXPECT_NE(svg.find("rotate(-90)"), std::string::npos);  // the y axis title
  EXPECT_NE(svg.find(">loss<"), std::string::npos);
  // y widened to the enclosing ticks 0.2 .. 1.0; x whole epochs only.
  EXPECT_NE(svg.find(">1.0<"), std::string::npos);
  EXPECT_NE(svg.find(">0.2<"), std::string::npos);
  EXPECT_EQ(svg.find(">1.5<"), std::string::npos);
  EXPECT_NE(svg.find(">3<"), std::string::npos);
}

TEST(LineChart, SingleUnnamedSeriesHasNoLegend) {
  plot::LineChartSpec spec;
  spec.title = "Inner state values neuron 0 of layer 0";
  spec.series.push_back(series("", {0, 1, 2, 3}, {0.1, -0.4, 0.9, 0.2}));
  const std::string svg = plot::line_chart_svg(spec);
  EXPECT_TRUE(well_formed_svg(svg));
  EXPECT_EQ(count(svg, "class=\"series\""), 1u);
  EXPECT_EQ(count(svg, "legend-entry"), 0u);
  EXPECT_NE(svg.find(">Inner state values neuron 0 of layer 0<"), std::string::npos);
}

TEST(LineChart, RocWithDiagonalAndFixedRanges) {
  plot::LineChartSpec spec;
  spec.title = "ROC curve";
  spec.x_min = spec.y_min = 0;
  spec.x_max = spec.y_max = 1;
  spec.diagonal = true;
  spec.series.push_back(series("AUC = 0.973", {0, 0.1, 0.3, 1}, {0, 0.8, 0.95, 1}));
  const std::string svg = plot::line_chart_svg(spec);
  EXPECT_TRUE(well_formed_svg(svg));
  EXPECT_EQ(count(svg, "stroke-dasharray=\"6 5\""), 1u);  // the chance line
  EXPECT_EQ(count(svg, "legend-entry"), 1u);
  EXPECT_NE(svg.find(">0.0<"), std::string::npos);
  EXPECT_NE(svg.find(">1.0<"), std::string::npos);
  EXPECT_NE(svg.find("clip-path"), std::string::npos);
}

TEST(LineChart, GapsStepsAndManySeries) {
  plot::LineChartSpec spec;
  spec.series.push_back(series("gap", {0, 1, 2, 3, 4}, {1, 2, NAN, 3, 4}));
  plot::Series spikes = series("spikes", {0, 1, 2, 3}, {0, 1, 0, 1});
  spikes.steps = true;
  spec.series.push_back(spikes);
  std::string svg = plot::line_chart_svg(spec);
  const size_t first = svg.find("class=\"series\" d=\"");
  const size_t second = svg.find("class=\"series\" d=\"", first + 1);
  const std::string gap_path = svg.substr(first, second - first);
  EXPECT_EQ(count(gap_path, "M"), 2u);  // the NaN splits the line in two
  const std::string step_path = svg.substr(second, svg.find('"', second + 18) - second);
  EXPECT_EQ(count(step_path, "H"), 3u);
  EXPECT_EQ(count(step_path, "V"), 3u);
  // Nine automatic colors: the ninth repeats the first, dashed.
  spec.series.clear();
  for (int i = 0; i < 9; ++i)
    spec.series.push_back(series("s" + std::to_string(i), {0, 1}, {0, double(i)}));
  svg = plot::line_chart_svg(spec);
  EXPECT_TRUE(well_formed_svg(svg));
  EXPECT_EQ(count(svg, "stroke-dasharray=\"7 4\""), 2u);  // the line and its legend swatch
  EXPECT_EQ(count(svg, "legend-entry"), 9u);
}

TEST(LineChart, EmptyAndConstantDataStillDraw) {
  plot::LineChartSpec spec;
  EXPECT_TRUE(well_formed_svg(plot::line_chart_svg(spec)));
  spec.series.push_back(series("flat", {0, 1, 2}, {0, 0, 0}));
  EXPECT_TRUE(well_formed_svg(plot::line_chart_svg(spec)));
  spec.series[0].y = {3, 3, 3};
  EXPECT_TRUE(well_formed_svg(plot::line_chart_svg(spec)));
}

TEST(LineChart, Errors) {
  plot::LineChartSpec spec;
  spec.title = "loss";
  spec.series.push_back(series("train", {1, 2, 3}, {1, 2}));
  EXPECT_TRUE(throws_with([&] { plot::line_chart_svg(spec); },
                          {"line chart 'loss'", "series 'train' has 3 x values but 2 y values"}));
  spec.series.clear();
  spec.y_min = 1;
  spec.y_max = 0;
  EXPECT_TRUE(throws_with([&] { plot::line_chart_svg(spec); }, {"range", "is empty"}));
  spec.y_min = spec.y_max = plot::kAuto;
  spec.width = 50;
  EXPECT_TRUE(throws_with([&] { plot::line_chart_svg(spec); }, {"size 50 x 440"}));
}

// Titles and series names can carry user text (class names from a CSV): an error quotes them on
// one line, control characters escaped.
TEST(LineChart, ErrorsQuoteUserTextOnOneLine) {
  plot::LineChartSpec spec;
  spec.title = "loss\nof\x1b[31m";
  spec.series.push_back(series("class\r'a'", {1, 2}, {1}));
  try {
    plot::line_chart_svg(spec);
    FAIL() << "no error";
  } catch (const nmsnn::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("line chart 'loss\\nof\\x1b[31m': series 'class\\r\\'a\\'' has 2 x values"),
              std::string::npos)
        << msg;
    EXPECT_EQ(msg.find_first_of("\n\r\x1b"), std::string::npos) << msg;
  }
  plot::HeatMapSpec h;
  h.title = std::string(500, 'x');
  EXPECT_TRUE(throws_with([&] { plot::heat_map_svg(h); }, {"...' (500 bytes): size 0 x 0"}));
}

// ---- heat map ----

TEST(HeatMap, MergesRunsIntoOnePathPerColor) {
  plot::HeatMapSpec spec;
  spec.title = "Output spikes (activation) values of neurons for layer 1";
  spec.rows = 3;
  spec.cols = 4;
  spec.values = {0, 0, 1, 1,   // 2 runs
                 1, 1, 1, 1,   // 1 run
                 0, 1, 0, 1};  // 4 runs
  const std::string svg = plot::heat_map_svg(spec);
  EXPECT_TRUE(well_formed_svg(svg));
  EXPECT_NE(svg.find(">" + spec.title + "<"), std::string::npos);
  EXPECT_EQ(count(svg, "class=\"cells\""), 2u);                   // two colors
  EXPECT_EQ(count(svg, "class=\"cells\" fill=\"#440154\""), 1u);  // 0: viridis start
  EXPECT_EQ(count(svg, "class=\"cells\" fill=\"#fde725\""), 1u);  // 1: viridis end
  size_t rects = 0;
  for (size_t at = svg.find("class=\"cells\""); at != std::string::npos;
       at = svg.find("class=\"cells\"", at + 1)) {
    rects += count(svg.substr(at, svg.find("/>", at) - at), "M");
  }
  EXPECT_EQ(rects, 7u);
  EXPECT_EQ(count(svg, "class=\"colorbar\""), 1u);
  EXPECT_NE(svg.find("colorbar-tick\">0.0<"), std::string::npos);
  EXPECT_NE(svg.find("colorbar-tick\">0.5<"), std::string::npos);
  EXPECT_NE(svg.find("colorbar-tick\">1.0<"), std::string::npos);
  EXPECT_NE(svg.find(">time step<"), std::string::npos);
  EXPECT_NE(svg.find(">neuron<"), std::string::npos);
}

TEST(HeatMap, SignedValuesUseDivergingColorsCentredOnZero) {
  plot::HeatMapSpec spec;
  spec.rows = 1;
  spec.cols = 5;
  spec.values = {-2, 0, 1, 2, -0.5f};
  const std::string svg = plot::heat_map_svg(spec);
  EXPECT_TRUE(well_formed_svg(svg));
  EXPECT_NE(svg.find("fill=\"#053061\""), std::string::npos);  // -2: dark blue
  EXPECT_NE(svg.find("fill=\"#f7f7f7\""), std::string::npos);  // 0: white
  EXPECT_NE(svg.find("fill=\"#67001f\""), std::string::npos);  // 2: dark red
  EXPECT_NE(svg.find("fill=\"" + plot::to_hex(plot::diverging_color(0.5)) + "\""),
            std::string::npos);
  EXPECT_NE(svg.find("colorbar-tick\">-2<"), std::string::npos);  // symmetric around 0
  EXPECT_NE(svg.find("colorbar-tick\">0<"), std::string::npos);
  EXPECT_NE(svg.find("colorbar-tick\">2<"), std::string::npos);
  // Mostly negative values still centre white on 0: the scale is [-4, 4].
  spec.values = {-4, -3, 0, 0.5f, -1};
  EXPECT_NE(plot::heat_map_svg(spec).find("fill=\"#f7f7f7\""), std::string::npos);
  // Forced sequential: 0 is mid-scale, not white.
  spec.colors = plot::HeatMapSpec::Colors::sequential;
  EXPECT_EQ(plot::heat_map_svg(spec).find("fill=\"#f7f7f7\""), std::string::npos);
}

TEST(HeatMap, LargeMapStaysSmallAndLabelsThinned) {
  plot::HeatMapSpec spec;
  spec.title = "Inner state values of neurons for layer 0";
  spec.rows = 100;
  spec.cols = 128;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0, 1);
  for (int i = 0; i < spec.rows * spec.cols; ++i) spec.values.push_back(normal(rng));
  const std::string svg = plot::heat_map_svg(spec);
  EXPECT_TRUE(well_formed_svg(svg));
  EXPECT_LT(svg.size(), 300000u) << "a 100 x 128 map should stay a few hundred KB at most";
  size_t rects = 0;
  for (size_t at = svg.find("class=\"cells\""); at != std::string::npos;
       at = svg.find("class=\"cells\"", at + 1)) {
    rects += count(svg.substr(at, svg.find("/>", at) - at), "M");
  }
  EXPECT_LE(rects, 12800u);
  EXPECT_GE(rects, 10000u);  // random values rarely repeat a color
  // Row labels every 5th neuron, column labels every 10th step: none of them collide.
  EXPECT_NE(svg.find(">95<"), std::string::npos);
  EXPECT_EQ(svg.find(">7<"), std::string::npos);
  EXPECT_NE(svg.find(">120<"), std::string::npos);
  EXPECT_EQ(svg.find(">125<"), std::string::npos);

  // An input layer (784 neurons) gets fractional cells and still a bounded size.
  spec.rows = 784;
  spec.cols = 16;
  spec.values.assign(784 * 16, 0.0f);
  for (int i = 0; i < 784 * 16; i += 7) spec.values[i] = 1;
  const std::string tall = plot::heat_map_svg(spec);
  EXPECT_TRUE(well_formed_svg(tall));
  EXPECT_LT(tall.size(), 600000u);
}

TEST(HeatMap, ConstantAndMissingValues) {
  plot::HeatMapSpec spec;
  spec.rows = 2;
  spec.cols = 2;
  spec.values = {0, 0, 0, 0};  // a layer that never spiked
  std::string svg = plot::heat_map_svg(spec);
  EXPECT_TRUE(well_formed_svg(svg));
  EXPECT_EQ(count(svg, "class=\"cells\""), 1u);
  spec.values = {0, NAN, 1, 1};
  svg = plot::heat_map_svg(spec);
  EXPECT_NE(svg.find("fill=\"#bdbdbd\""), std::string::npos);  // missing values in gray
  spec.row_names = {"in", "out"};
  spec.col_names = {"t0", "t1"};
  svg = plot::heat_map_svg(spec);
  EXPECT_NE(svg.find(">out<"), std::string::npos);
  EXPECT_NE(svg.find(">t1<"), std::string::npos);
}

TEST(HeatMap, Errors) {
  plot::HeatMapSpec spec;
  spec.title = "layer 0";
  spec.rows = 2;
  spec.cols = 3;
  spec.values = {1, 2, 3, 4, 5};
  EXPECT_TRUE(throws_with([&] { plot::heat_map_svg(spec); },
                          {"heat map 'layer 0'", "5 values for 2 rows x 3 cols = 6"}));
  spec.values.push_back(6);
  spec.row_names = {"a"};
  EXPECT_TRUE(throws_with([&] { plot::heat_map_svg(spec); }, {"1 row names for 2 rows"}));
  spec.row_names.clear();
  spec.rows = 0;
  EXPECT_TRUE(throws_with([&] { plot::heat_map_svg(spec); }, {"must be positive"}));
  spec.rows = 2;
  spec.v_min = spec.v_max = 1;
  EXPECT_TRUE(throws_with([&] { plot::heat_map_svg(spec); }, {"color scale [1, 1] is empty"}));
}

// ---- confusion matrix ----

TEST(ConfusionMatrix, CellsCountsAndContrast) {
  const std::vector<std::vector<int64_t>> m = {{50, 0, 0}, {0, 47, 3}, {0, 2, 48}};
  const std::string svg =
      plot::confusion_matrix_svg(m, {"Iris-setosa", "Iris-versicolor", "Iris-virginica"}, "IRIS");
  EXPECT_TRUE(well_formed_svg(svg));
  EXPECT_EQ(count(svg, "class=\"cell\""), 9u);
  EXPECT_NE(svg.find(">IRIS<"), std::string::npos);
  EXPECT_NE(svg.find(">true<"), std::string::npos);
  EXPECT_NE(svg.find(">predicted<"), std::string::npos);
  EXPECT_NE(svg.find(">Iris-versicolor<"), std::string::npos);
  EXPECT_NE(svg.find(">94.0%<"), std::string::npos);  // 47 of 50 in the row
  EXPECT_NE(svg.find(">6.0%<"), std::string::npos);
  // The largest count has the darkest cell and white text; an empty cell has dark text.
  const size_t top = svg.find("fill=\"#08306b\" class=\"cell\"");
  ASSERT_NE(top, std::string::npos);
  EXPECT_EQ(text_fill_after(svg, top, "50"), "white");
  const size_t empty = svg.find("fill=\"#f7fbff\" class=\"cell\"");
  ASSERT_NE(empty, std::string::npos);
  EXPECT_EQ(text_fill_after(svg, empty, "0"), "#222222");
  EXPECT_LT(plot::luminance(plot::count_color(1)), 0.179);
  EXPECT_GT(plot::luminance(plot::count_color(0.4)), 0.179);
}

TEST(ConfusionMatrix, ManyClassesAndEmptyRows) {
  std::vector<std::vector<int64_t>> m(10, std::vector<int64_t>(10, 1));
  for (int i = 0; i < 10; ++i) m[i][i] = 900 + i;
  m[3] = std::vector<int64_t>(10, 0);  // a class absent from the test set: no percentages to show
  const std::string svg = plot::confusion_matrix_svg(m, {}, "MNIST");
  EXPECT_TRUE(well_formed_svg(svg));
  EXPECT_EQ(count(svg, "class=\"cell\""), 100u);
  EXPECT_NE(svg.find(">909<"), std::string::npos);
  EXPECT_EQ(count(svg, "%<"), 90u);
  // So many classes that percentages do not fit: counts only.
  const std::vector<std::vector<int64_t>> big(30, std::vector<int64_t>(30, 2));
  const std::string dense = plot::confusion_matrix_svg(big, {}, "");
  EXPECT_TRUE(well_formed_svg(dense));
  EXPECT_EQ(count(dense, "%<"), 0u);
}

TEST(ConfusionMatrix, Errors) {
  EXPECT_TRUE(throws_with([] { plot::confusion_matrix_svg({}, {}, "cm"); }, {"'cm'", "empty"}));
  EXPECT_TRUE(throws_with(
      [] {
        plot::confusion_matrix_svg({{1, 2}, {3}}, {}, "cm");
      },
      {"row 1 has 1 counts, expected 2"}));
  EXPECT_TRUE(throws_with(
      [] {
        plot::confusion_matrix_svg({{1, 2}, {3, 4}}, {"a"}, "cm");
      },
      {"1 class names for 2 classes"}));
  EXPECT_TRUE(throws_with(
      [] {
        plot::confusion_matrix_svg({{1, -2}, {3, 4}}, {}, "cm");
      },
      {"count [0][1] is negative"}));
}

// ---- files ----

class PlotFiles : public TempDirTest {};

TEST_F(PlotFiles, WriteToPath) {
  plot::LineChartSpec spec;
  spec.title = "loss";
  spec.series.push_back(series("train", {1, 2}, {1, 0.5}));
  plot::line_chart((dir / "loss.svg").string(), spec);
  EXPECT_EQ(nmsnn::read_file((dir / "loss.svg").string()), plot::line_chart_svg(spec));

  plot::HeatMapSpec h;
  h.rows = h.cols = 2;
  h.values = {0, 1, 1, 0};
  plot::heat_map((dir / "map.svg").string(), h);
  EXPECT_EQ(nmsnn::read_file((dir / "map.svg").string()), plot::heat_map_svg(h));
  plot::confusion_matrix_chart((dir / "cm.svg").string(), {{1, 0}, {0, 1}}, {}, "cm");
  EXPECT_TRUE(well_formed_svg(nmsnn::read_file((dir / "cm.svg").string())));

  const std::string nowhere = (dir / "missing" / "loss.svg").string();
  EXPECT_TRUE(throws_with([&] { plot::line_chart(nowhere, spec); }, {nowhere}));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 3);
}
