// cli_predict.cpp — `nmsnn predict`: a saved model on a CSV file, one prediction per row.
//
// A model trained on images (IDX files) reads a CSV file as one column per pixel in (c, y, x)
// order, the order of its input_shape, and a "label" column as its target (nmsnn train names it).
// Output columns: for classifiers "prediction" (the class name) then "p_<class>" per class (its
// probability); for regressors "prediction" (in the data's original units).
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli_args.hpp"
#include "cli_common.hpp"

namespace nmsnn::cli {

namespace {
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}
}  // namespace

int run_predict(const std::vector<std::string>& argv) {
  Args args;
  args.flag("model", "FILE", "a model saved by `nmsnn train --save` (required)");
  args.flag("data", "FILE.csv", "rows to predict, with the model's feature columns (required)");
  args.flag("out", "FILE.csv", "where to write the predictions (required)");
  args.flag("device", "D", "cpu | cuda");
  add_memory_flag(args);
  args.sw("help", "show this help");
  args.parse(argv);
  if (args.has("help")) {
    std::printf("usage: nmsnn predict --model FILE --data FILE.csv --out FILE.csv\n\n"
                "Writes one prediction per input row; classifiers add one probability column per\n"
                "class. A target column in the input, if any, is ignored. A model trained on\n"
                "images reads one column per pixel, in (channel, row, column) order, and takes\n"
                "a \"label\" column as its target.\n\nflags:\n%s",
                args.help().c_str());
    return 0;
  }
  for (const char* f : {"model", "data", "out"})
    if (!args.has(f) || args.str(f, "").empty()) detail::fail("--", f, " is required");
  apply_memory_flag(args);
  NetworkOptions opts;
  opts.engine = parse_engine(args.str("device", "cpu"));
  now_doing("loading the model");
  Model model = Model::load(args.str("model", ""), opts);
  if (is_image_directory(args.str("data", "")))
    detail::fail("predict reads CSV files; for IDX images use `nmsnn eval`");
  now_doing("loading the data");
  const Dataset data = load_model_data(args.str("data", ""), model, "", false, 0);
  now_doing("predicting");
  const Predictions p = model.predict(data);

  std::ostringstream out;
  out << "prediction";
  if (model.task() != TaskKind::regression) {
    const int classes = model.task() == TaskKind::binary ? 2 : p.width;
    auto name = [&](int c) {
      return c < int(model.class_names.size()) ? model.class_names[c] : std::to_string(c);
    };
    for (int c = 0; c < classes; ++c) out << "," << csv_field("p_" + name(c));
    out << "\n";
    for (int s = 0; s < p.count; ++s) {
      out << csv_field(name(p.classes[s]));
      if (model.task() == TaskKind::binary) {
        const float p1 = p.values[s];
        out << "," << 1.0f - p1 << "," << p1;
      } else {
        for (int c = 0; c < classes; ++c) out << "," << p.values[size_t(s) * p.width + c];
      }
      out << "\n";
    }
  } else {
    out << "\n";
    for (int s = 0; s < p.count; ++s) out << p.values[size_t(s) * p.width] << "\n";
  }
  write_file_atomic(args.str("out", ""), out.str());
  std::printf("wrote %d predictions to %s\n", p.count, args.str("out", "").c_str());
  return 0;
}

}  // namespace nmsnn::cli
