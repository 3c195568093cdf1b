// cli_common.cpp — data sources, metric reports and plots shared by the nmsnn subcommands.
#include "cli_common.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "nmsnn/plot.hpp"

namespace nmsnn::cli {

using detail::fail;

namespace {
const char* doing = nullptr;
}  // namespace

void now_doing(const char* what) { doing = what; }
const char* now_doing() { return doing; }

void add_memory_flag(Args& args) {
  args.flag("max-memory", "SIZE",
            "memory budget checked before large allocations, e.g. 8G or 512M (default: the "
            "machine's memory, or NMSNN_MAX_MEMORY)");
}

void apply_memory_flag(const Args& args) {
  if (args.has("max-memory"))
    set_memory_limit(parse_memory_size("flag --max-memory", args.str("max-memory", "")));
}

bool is_image_directory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

namespace {
bool ends_with(const std::string& s, const std::string& end) {
  return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}

std::string class_label(const Model& m, int c) {
  return c < int(m.class_names.size()) ? m.class_names[c] : std::to_string(c);
}
}  // namespace

DataSplits load_training_data(const std::string& path, TaskKind task, const std::string& target,
                              const std::vector<std::string>& ignore, PixelScale pixel_scale,
                              double test_fraction, double validation_fraction, int train_limit,
                              int test_limit, uint64_t seed) {
  DataSplits out;
  if (is_image_directory(path)) {
    if (task != TaskKind::classification)
      fail(detail::quote(path), " holds images (IDX files): only --task multiclass applies to it");
    out.images = true;
    Dataset train = load_mnist(path, true, pixel_scale, train_limit);
    if (validation_fraction > 0) {
      const Split s = split_indices(train.count, 0.0, validation_fraction, seed, &train.labels);
      out.validation = subset(train, s.validation);
      train = subset(train, s.train);
    }
    out.train = std::move(train);
    if (test_limit != 0) out.test = load_mnist(path, false, pixel_scale, test_limit < 0 ? 0 : test_limit);
    out.description = "IDX images in " + path;
    return out;
  }
  if (!ends_with(path, ".csv"))
    fail("--data ", detail::quote(path), " is neither a directory of IDX files nor a .csv file");
  CsvOptions opts;
  opts.target = target;
  opts.task = task;
  opts.ignore = ignore;
  const CsvTable table = read_csv(path);
  out.target_column = target.empty() ? table.columns.back() : target;
  Dataset all = csv_to_dataset(table, opts);
  if (train_limit > 0 && train_limit < all.count) all = all.slice(0, train_limit);
  const bool classes = task != TaskKind::regression;
  const Split s = split_indices(all.count, test_fraction, validation_fraction, seed,
                                classes ? &all.labels : nullptr);
  out.train = subset(all, s.train);
  out.validation = subset(all, s.validation);
  out.test = subset(all, s.test);
  out.description = path + " (" + std::to_string(all.count) + " rows: " +
                    std::to_string(out.train.count) + " train, " +
                    std::to_string(out.validation.count) + " validation, " +
                    std::to_string(out.test.count) + " test)";
  return out;
}

Dataset load_model_data(const std::string& path, const Model& model, const std::string& target,
                        bool labelled, int limit) {
  if (is_image_directory(path)) {
    const PixelScale scale = parse_pixel_scale(model.pixel_scale.empty() ? "unit" : model.pixel_scale);
    Dataset d = load_mnist(path, false, scale, limit);
    // The same number of pixels in another shape would run, and mean nothing.
    const std::vector<int>& shape = model.description().spec.input_shape;
    if (!shape.empty() && shape != d.shape) {
      auto text = [](const std::vector<int>& v) {
        std::string s = "[";
        for (size_t k = 0; k < v.size(); ++k) s += (k ? ", " : "") + std::to_string(v[k]);
        return s + "]";
      };
      fail("the model's input_shape ", text(shape), " does not match the images of ",
           detail::quote(path), ", which are ", text(d.shape));
    }
    return d;
  }
  CsvOptions opts;
  opts.task = model.task();
  opts.target = target.empty() && !model.target_names.empty() ? model.target_names[0] : target;
  opts.class_names = model.class_names;
  opts.features = model.feature_names;
  opts.allow_missing_target = !labelled;
  if (opts.target.empty() && !labelled)
    fail("the model does not name its target column; give it with --target");
  Dataset d = load_csv(path, opts);
  if (limit > 0 && limit < d.count) d = d.slice(0, limit);
  if (labelled && d.labels.empty() && d.targets.empty())
    fail(detail::quote(path), " has no target column ", detail::quote(opts.target),
         " to score against");
  return d;
}

void print_evaluation(const ModelEvaluation& e, const Model& m, const std::string& what) {
  if (e.task == TaskKind::regression) {
    std::printf("%s R2 %.4f  RMSE %.4g  MAE %.4g  (%d samples, original units)\n", what.c_str(),
                e.regression.r2, e.regression.rmse, e.regression.mae, e.count);
  } else {
    // AUC ranks positives against negatives: with one class in the data there is nothing to rank.
    char auc[64] = "AUC undefined (one class in the data)";
    if (!std::isnan(e.auc)) std::snprintf(auc, sizeof auc, "AUC %.4f", e.auc);
    std::printf("%s accuracy %.4f  macro F1 %.4f  %s  (%d samples)\n", what.c_str(),
                e.classes.accuracy, e.classes.macro_f1, auc, e.count);
    if (e.confusion.classes <= 12) {
      for (int c = 0; c < e.confusion.classes; ++c)
        std::printf("  class %-16s precision %.3f recall %.3f F1 %.3f (support %lld)\n",
                    class_label(m, c).c_str(), e.classes.precision[c], e.classes.recall[c],
                    e.classes.f1[c], (long long)e.classes.support[c]);
    }
  }
  for (const auto& r : e.rates)
    std::printf("  layer %d firing rate min %.3g mean %.3g max %.3g %s\n", r.layer, r.min, r.mean,
                r.max, r.hertz ? "Hz" : "spikes/step");
}

void add_evaluation(Json& report, const std::string& prefix, const ModelEvaluation& e,
                    const Model& m) {
  // A metric the data cannot define (AUC with one class present) is NaN: null in the report.
  const auto metric = [](double v) { return std::isnan(v) ? Json() : Json(v); };
  report.set(prefix + "_samples", e.count);
  report.set(prefix + "_loss", e.loss);
  if (e.task == TaskKind::regression) {
    report.set(prefix + "_r2", e.regression.r2).set(prefix + "_rmse", e.regression.rmse);
    report.set(prefix + "_mse", e.regression.mse).set(prefix + "_mae", e.regression.mae);
  } else {
    report.set(prefix + "_accuracy", e.classes.accuracy).set(prefix + "_auc", metric(e.auc));
    report.set(prefix + "_macro_precision", e.classes.macro_precision);
    report.set(prefix + "_macro_recall", e.classes.macro_recall);
    report.set(prefix + "_macro_f1", e.classes.macro_f1);
    Json per_class = Json::array();
    for (int c = 0; c < e.confusion.classes; ++c) {
      Json k = Json::object();
      k.set("class", class_label(m, c)).set("precision", e.classes.precision[c]);
      k.set("recall", e.classes.recall[c]).set("f1", e.classes.f1[c]);
      k.set("support", e.classes.support[c]);
      if (e.task == TaskKind::classification && c < int(e.roc_per_class.auc.size()))
        k.set("auc", metric(e.roc_per_class.auc[c]));
      per_class.push_back(k);
    }
    report.set(prefix + "_per_class", per_class);
    Json cm = Json::array();
    for (int t = 0; t < e.confusion.classes; ++t) {
      Json row = Json::array();
      for (int p = 0; p < e.confusion.classes; ++p) row.push_back(e.confusion.at(t, p));
      cm.push_back(row);
    }
    report.set(prefix + "_confusion_matrix", cm);
    if (e.task == TaskKind::binary)
      report.set(prefix + "_average_precision", metric(e.pr.average_precision));
  }
  Json rates = Json::array();
  for (const auto& r : e.rates) {
    Json k = Json::object();
    k.set("layer", r.layer).set("unit", r.hertz ? "Hz" : "spikes/step");
    k.set("min", r.min).set("mean", r.mean).set("max", r.max);
    rates.push_back(k);
  }
  report.set(prefix + "_spike_rates", rates);
}

std::vector<std::string> write_plots(const std::string& dir, Model& model, const Dataset& data,
                                     const ModelEvaluation& e, int sample, int layer, int neuron) {
  // Everything that can fail on the arguments (sample, layer, neuron, directory) is checked and
  // the one-sample forward pass is run before the first file is written: a bad --sample must not
  // leave half a directory of plots behind.
  std::vector<LayerTrace> trace;
  const int lyr = layer < 0 ? 0 : layer;
  if (data.count > 0) {
    if (sample < 0 || sample >= data.count)
      fail("--sample ", sample, " is outside the data's ", data.count, " samples (0 to ",
           data.count - 1, ")");
    const Dataset one = model.prepare(data.slice(sample, 1));
    ForwardOptions opts;
    opts.training = false;
    opts.record = true;
    opts.use_noise_pass = true;
    opts.noise_pass = 0;
    const Input in = model.description().encoding == Input::Kind::noisy
                         ? Input::noisy(one.x, 1)
                         : Input::repeated(one.x, 1);
    trace = model.network().forward(in, opts).trace();
    const int L = int(trace.size());
    if (lyr >= L) fail("--layer ", lyr, " is outside the network's ", L, " layers (0 to ", L - 1, ")");
    if (neuron < 0 || neuron >= trace[lyr].size)
      fail("--neuron ", neuron, " is outside layer ", lyr, "'s ", trace[lyr].size, " neurons (0 to ",
           trace[lyr].size - 1, ")");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!is_image_directory(dir))
    fail("cannot create the plot directory ", detail::quote(dir),
         ec ? ": " + ec.message() : std::string(": a file of that name is in the way"));

  std::vector<std::string> files;
  auto path = [&](const std::string& name) { return files.emplace_back(dir + "/" + name); };

  // Training curves from the model's history.
  if (!model.history.empty()) {
    plot::Series tl{"train loss"}, vl{"validation loss"}, ta{"train accuracy"},
        va{"validation accuracy"};
    for (const EpochRecord& r : model.history) {
      tl.x.push_back(r.epoch), tl.y.push_back(r.train_loss);
      ta.x.push_back(r.epoch), ta.y.push_back(r.train_accuracy);
      if (r.validated) {
        vl.x.push_back(r.epoch), vl.y.push_back(r.validation_loss);
        va.x.push_back(r.epoch), va.y.push_back(r.validation_accuracy);
      }
    }
    for (auto* s : {&tl, &vl, &ta, &va}) s->markers = model.history.size() <= 30;
    plot::LineChartSpec loss{"Training loss", "epoch", "loss", {tl}};
    if (!vl.x.empty()) loss.series.push_back(vl);
    plot::line_chart(path("training_loss.svg"), loss);
    if (model.task() != TaskKind::regression) {
      plot::LineChartSpec acc{"Training accuracy", "epoch", "accuracy", {ta}};
      if (!va.x.empty()) acc.series.push_back(va);
      plot::line_chart(path("training_accuracy.svg"), acc);
    }
  }

  if (model.task() != TaskKind::regression) {
    std::vector<std::vector<int64_t>> cm(e.confusion.classes);
    std::vector<std::string> names;
    for (int t = 0; t < e.confusion.classes; ++t) {
      names.push_back(class_label(model, t));
      for (int p = 0; p < e.confusion.classes; ++p) cm[t].push_back(e.confusion.at(t, p));
    }
    plot::confusion_matrix_chart(path("confusion_matrix.svg"), cm, names,
                                 "Confusion matrix (" + std::to_string(e.count) + " samples)");
    // ROC and PR curves only where they are defined: with one class in the data (no curve) there
    // is no file, as the report says the AUC is undefined.
    plot::LineChartSpec roc{"ROC curve", "false positive rate", "true positive rate", {}};
    roc.diagonal = true;
    roc.x_min = roc.y_min = 0;
    roc.x_max = roc.y_max = 1;
    char label[96];
    if (model.task() == TaskKind::binary) {
      if (!e.roc.fpr.empty()) {
        std::snprintf(label, sizeof label, "AUC = %.3f", e.roc.auc);
        roc.series.push_back({label, e.roc.fpr, e.roc.tpr});
      }
      if (!e.pr.recall.empty()) {
        plot::LineChartSpec pr{"Precision-recall curve", "recall", "precision", {}};
        pr.x_min = pr.y_min = 0;
        pr.x_max = pr.y_max = 1;
        std::snprintf(label, sizeof label, "AP = %.3f", e.pr.average_precision);
        pr.series.push_back({label, e.pr.recall, e.pr.precision});
        pr.series.back().steps = true;
        plot::line_chart(path("pr_curve.svg"), pr);
      }
    } else {
      for (size_t c = 0; c < e.roc_per_class.curves.size(); ++c) {
        if (e.roc_per_class.curves[c].fpr.empty()) continue;
        std::snprintf(label, sizeof label, "%s (AUC %.3f)", class_label(model, int(c)).c_str(),
                      e.roc_per_class.auc[c]);
        roc.series.push_back({label, e.roc_per_class.curves[c].fpr, e.roc_per_class.curves[c].tpr});
      }
    }
    if (!roc.series.empty()) plot::line_chart(path("roc_curve.svg"), roc);
  } else {
    // Predicted against true values: one dot per sample (a NaN after each point breaks the
    // line between them), with the ideal y = x line.
    plot::Series dots{"test samples"};
    dots.markers = true;
    const int P = e.predictions.width, T = data.target_size;
    double lo = 0, hi = 0;
    for (int s = 0; s < data.count; ++s) {
      const double truth = data.targets[size_t(s) * T];
      lo = s == 0 ? truth : std::min(lo, truth);
      hi = s == 0 ? truth : std::max(hi, truth);
      dots.x.push_back(truth), dots.y.push_back(e.predictions.values[size_t(s) * P]);
      dots.x.push_back(truth), dots.y.push_back(std::nan(""));
    }
    plot::Series ideal{"prediction = truth", {lo, hi}, {lo, hi}, "#888888", true};
    char title[96];
    std::snprintf(title, sizeof title, "Predicted vs true (R2 = %.3f)", e.regression.r2);
    plot::line_chart(path("predicted_vs_true.svg"),
                     {title, "true value", "predicted value", {dots, ideal}});
  }

  // The seed's neuron views for one sample: every layer's state and spikes over time.
  for (size_t l = 0; l < trace.size(); ++l) {
    const LayerTrace& tr = trace[l];
    if (tr.steps < 2) continue;  // nothing to see over time
    plot::HeatMapSpec state, spikes;
    state.title = "Inner state values of neurons for layer " + std::to_string(l);
    spikes.title = "Output spikes (activation) values of neurons for layer " + std::to_string(l);
    for (auto* h : {&state, &spikes}) {
      h->rows = tr.size;
      h->cols = tr.steps;
      h->values.resize(size_t(tr.size) * tr.steps);
    }
    state.value_label = "state";
    spikes.value_label = "output";
    for (int t = 0; t < tr.steps; ++t)
      for (int n = 0; n < tr.size; ++n) {
        state.values[size_t(n) * tr.steps + t] = tr.state[size_t(t) * tr.size + n];
        spikes.values[size_t(n) * tr.steps + t] = tr.spikes[size_t(t) * tr.size + n];
      }
    plot::heat_map(path("layer" + std::to_string(l) + "_state.svg"), state);
    plot::heat_map(path("layer" + std::to_string(l) + "_spikes.svg"), spikes);
  }
  if (!trace.empty()) {
    const LayerTrace& tr = trace[lyr];
    plot::Series st{"inner state"}, sp{"output (spikes)"};
    for (int t = 0; t < tr.steps; ++t) {
      st.x.push_back(t), st.y.push_back(tr.state[size_t(t) * tr.size + neuron]);
      sp.x.push_back(t), sp.y.push_back(tr.spikes[size_t(t) * tr.size + neuron]);
    }
    sp.steps = true;
    plot::line_chart(path("neuron_trace.svg"),
                     {"Neuron " + std::to_string(neuron) + " of layer " + std::to_string(lyr) +
                          " over time (sample " + std::to_string(sample) + ")",
                      "time step", "value", {st, sp}});
  }
  return files;
}

}  // namespace nmsnn::cli
