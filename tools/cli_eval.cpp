// cli_eval.cpp — `nmsnn eval`: a saved model's metrics on a labelled data file.
#include <cstdio>

#include "cli_args.hpp"
#include "cli_common.hpp"

namespace nmsnn::cli {

int run_eval(const std::vector<std::string>& argv) {
  Args args;
  args.flag("model", "FILE", "a model saved by `nmsnn train --save` (required)");
  args.flag("data", "PATH", "a labelled CSV file, or a directory of IDX files (its test set)");
  args.flag("target", "NAME", "CSV: the target column (default: the model's)");
  args.flag("limit", "N", "use the first N samples (0: all)");
  args.flag("device", "D", "cpu | cuda");
  args.flag("report", "FILE", "write the metrics as JSON to FILE");
  args.flag("plots", "DIR", "write confusion/ROC/PR plots and neuron views to DIR");
  add_memory_flag(args);
  args.sw("help", "show this help");
  args.parse(argv);
  if (args.has("help")) {
    std::printf("usage: nmsnn eval --model FILE --data PATH [flags]\n\n"
                "Scores a saved model on labelled data: accuracy, per-class precision/recall/F1,\n"
                "confusion matrix and AUC for classifiers; R2, RMSE, MAE for regressors.\n\nflags:\n%s",
                args.help().c_str());
    return 0;
  }
  if (!args.has("model")) detail::fail("--model FILE is required");
  if (!args.has("data")) detail::fail("--data PATH is required");
  const int limit = args.integer("limit", 0, 0, kIntMax);
  for (const char* f : {"report", "plots"})
    if (args.has(f) && args.str(f, "").empty()) detail::fail("flag --", f, ": needs a path");
  apply_memory_flag(args);
  NetworkOptions opts;
  opts.engine = parse_engine(args.str("device", "cpu"));
  now_doing("loading the model");
  Model model = Model::load(args.str("model", ""), opts);
  now_doing("loading the data");
  const Dataset data = load_model_data(args.str("data", ""), model, args.str("target", ""), true, limit);
  now_doing("evaluating the model");
  const ModelEvaluation ev = model.evaluate(data);
  print_evaluation(ev, model, "eval");
  Json report = Json::object();
  report.set("command", "eval").set("model", args.str("model", "")).set("data", args.str("data", ""));
  report.set("task", to_string(model.task()));
  add_evaluation(report, "test", ev, model);
  // The report first: a plot that fails must not cost the metrics.
  if (args.has("report")) write_json_file(args.str("report", ""), report);
  now_doing("drawing the plots");
  if (args.has("plots")) write_plots(args.str("plots", ""), model, data, ev, 0, 0, 0);
  return 0;
}

}  // namespace nmsnn::cli
