// cli_plot.cpp — `nmsnn plot`: pictures of a saved model — training curves, confusion matrix,
// ROC and PR curves (or predicted vs true values), and the seed's neuron views for one sample.
#include <cstdio>

#include "cli_args.hpp"
#include "cli_common.hpp"

namespace nmsnn::cli {

int run_plot(const std::vector<std::string>& argv) {
  Args args;
  args.flag("model", "FILE", "a model saved by `nmsnn train --save` (required)");
  args.flag("data", "PATH", "a labelled CSV file, or a directory of IDX files (its test set)");
  args.flag("target", "NAME", "CSV: the target column (default: the model's)");
  args.flag("out", "DIR", "where to write the SVG files (default: plots)");
  args.flag("sample", "K", "the sample whose neurons are drawn (default 0)");
  args.flag("layer", "L", "the layer of the single-neuron trace (default 0)");
  args.flag("neuron", "N", "the neuron of the single-neuron trace (default 0)");
  args.flag("limit", "N", "score on the first N samples (0: all)");
  add_memory_flag(args);
  args.sw("help", "show this help");
  args.parse(argv);
  if (args.has("help")) {
    std::printf("usage: nmsnn plot --model FILE --data PATH [--out DIR]\n\n"
                "Writes SVG files a browser opens: training_loss/accuracy (from the model's\n"
                "history), confusion_matrix, roc_curve, pr_curve (binary) or predicted_vs_true\n"
                "(regression), layer<L>_state / layer<L>_spikes heat maps of every layer over time\n"
                "for one sample, and neuron_trace.\n\nflags:\n%s",
                args.help().c_str());
    return 0;
  }
  if (!args.has("model")) detail::fail("--model FILE is required");
  if (!args.has("data")) detail::fail("--data PATH is required");
  // Every flag is checked here, and the sample, layer and neuron against the data and the network
  // in write_plots, before any file is written.
  const int sample = args.integer("sample", 0, 0, kIntMax);
  const int layer = args.integer("layer", 0, 0, int(kMaxLayers) - 1);
  const int neuron = args.integer("neuron", 0, 0, int(kMaxLayerSize) - 1);
  const int limit = args.integer("limit", 0, 0, kIntMax);
  const std::string out = args.str("out", "plots");
  if (out.empty()) detail::fail("flag --out: needs a directory name");
  apply_memory_flag(args);
  now_doing("loading the model");
  Model model = Model::load(args.str("model", ""));
  now_doing("loading the data");
  const Dataset data = load_model_data(args.str("data", ""), model, args.str("target", ""), true, limit);
  now_doing("evaluating the model");
  const ModelEvaluation ev = model.evaluate(data);
  now_doing("drawing the plots");
  const auto files = write_plots(out, model, data, ev, sample, layer, neuron);
  for (const auto& f : files) std::printf("%s\n", f.c_str());
  return 0;
}

}  // namespace nmsnn::cli
