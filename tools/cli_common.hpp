// cli_common.hpp — what the nmsnn subcommands share: finding and splitting data, printing and
// reporting evaluations, and drawing the plots.
#pragma once

#include <string>
#include <vector>

#include "cli_args.hpp"
#include "nmsnn/nmsnn.hpp"

namespace nmsnn::cli {

constexpr int kIntMax = 2147483647;  // the upper end of flags bounded only by an int

// What the command is doing now ("loading the data"), for the message when it runs out of
// memory: nmsnn_main says "out of memory while loading the data". A string literal.
void now_doing(const char* what);
const char* now_doing();

// --max-memory SIZE, shared by every command: the budget checked before large allocations
// ("8G", "512M", bytes). add_memory_flag declares it, apply_memory_flag sets it when given.
void add_memory_flag(Args& args);
void apply_memory_flag(const Args& args);

// A data source: a directory of MNIST-format IDX files (MNIST, Fashion-MNIST) or a CSV file.
bool is_image_directory(const std::string& path);

struct DataSplits {
  Dataset train, validation, test;
  bool images = false;        // IDX images (pixel-scaled, not standardised)
  std::string target_column;  // CSV: the column predicted
  std::string description;    // for the log line
};

// Loads `path` for training. IDX: the train and t10k files, scaled by `pixel_scale`, with the
// first `train_limit` / `test_limit` samples (0 = all; test_limit < 0 = all, 0 = none). CSV: the
// table read for `task` and `target`, split into train/validation/test by the fractions with
// `seed` (stratified for classes).
DataSplits load_training_data(const std::string& path, TaskKind task, const std::string& target,
                              const std::vector<std::string>& ignore, PixelScale pixel_scale,
                              double test_fraction, double validation_fraction, int train_limit,
                              int test_limit, uint64_t seed);

// Loads data for a saved model: an IDX directory's test set, or a CSV read with the model's
// column and class names (`labelled` = the target column must be there).
Dataset load_model_data(const std::string& path, const Model& model, const std::string& target,
                        bool labelled, int limit);

// One line per metric on stdout, for the task.
void print_evaluation(const ModelEvaluation& e, const Model& m, const std::string& what);
// The metrics as plain keys with a prefix: test_accuracy, test_auc, test_r2, ...
void add_evaluation(Json& report, const std::string& prefix, const ModelEvaluation& e,
                    const Model& m);

// Training curves, confusion matrix, ROC and PR curves, and the seed's neuron views for one
// sample (every layer's state and spikes over time, and one neuron's trace), as SVG files in
// `dir`. Returns the files written.
std::vector<std::string> write_plots(const std::string& dir, Model& model, const Dataset& data,
                                     const ModelEvaluation& e, int sample, int layer, int neuron);

}  // namespace nmsnn::cli
