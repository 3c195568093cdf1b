// nmsnn/model.hpp — a predictive model: a network plus everything needed to use it on raw data
// (task, input encoding, feature standardisation, target scaling, class and column names), with
// training, evaluation, prediction, and one-file save/load (or to and from bytes in memory).
//
//   nmsnn::Model model = nmsnn::Model::make(TaskKind::classification, description, {Engine::cpu, 1});
//   model.fit(train_raw, options, &validation_raw);    // fits the scalers on train_raw only
//   nmsnn::ModelEvaluation ev = model.evaluate(test_raw);
//   model.save("iris.nmsnn");
//
// File format (documented in README.md): a safetensors file whose tensors are the network's
// parameters under their PyTorch names ("layers.0.weight", ...) and the preprocessing vectors
// ("preprocess.feature_mean", "preprocess.feature_scale", "preprocess.target_mean",
// "preprocess.target_scale"); its __metadata__ holds "format" = "nmsnn-model",
// "format_version" = "1", "task", "network" (the JSON description of spec_json.hpp), "seed",
// "standardize_features", "pixel_scale", JSON arrays "feature_names", "class_names",
// "target_names", and "history" (a JSON array of EpochRecord objects). PyTorch users can open
// the weights with the safetensors package. Saving is atomic.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nmsnn/dataset.hpp"
#include "nmsnn/metrics.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/preprocess.hpp"
#include "nmsnn/spec_json.hpp"
#include "nmsnn/task.hpp"
#include "nmsnn/trainer.hpp"

namespace nmsnn {

// What a model says about each sample of a dataset.
struct Predictions {
  int count = 0;
  int width = 0;               // columns of `values`
  // classification: class probabilities [N, C] (softmax); binary: P(class 1) [N, 1];
  // regression: predicted targets [N, target_size] in the data's original units.
  std::vector<float> values;
  std::vector<int> classes;    // predicted class per sample (classification and binary)
  // The network's outputs [N, width]: classification, the C logits; binary, the logit of class 1
  // (its log-odds, finite where `values` rounds to 0 or 1); regression, the standardised targets.
  std::vector<float> logits;
};

// Metrics of a model on a labelled dataset, computed in the library (metrics.hpp).
struct ModelEvaluation {
  TaskKind task = TaskKind::classification;
  int count = 0;
  double loss = 0;  // the task's training loss (on standardised targets for regression)
  Predictions predictions;
  // classification and binary
  ConfusionMatrix confusion;
  ClassMetrics classes;
  double auc = 0;          // binary AUC, or the macro one-vs-rest AUC
  RocCurve roc;            // binary only
  OneVsRestRoc roc_per_class;  // classification only
  PrCurve pr;              // binary only
  // regression (original units, first target column)
  RegressionMetrics regression;
  // firing rates per spiking layer over the whole dataset
  struct Rates {
    int layer = 0;
    bool hertz = false;
    double min = 0, mean = 0, max = 0;
  };
  std::vector<Rates> rates;
};

// One epoch of training, as kept with a model (for training curves).
struct EpochRecord {
  int epoch = 0;
  double lr = 0, train_loss = 0, train_accuracy = 0, seconds = 0;
  bool validated = false;
  double validation_loss = 0, validation_accuracy = 0;
};

class Model {
 public:
  // A new model with freshly initialised parameters.
  static Model make(TaskKind task, const NetworkDescription& description,
                    const NetworkOptions& options = {});
  // Reads a model file; throws nmsnn::Error naming the file and the problem for a missing,
  // truncated, corrupt or foreign file. Every metadata value and every tensor is checked, and a
  // bad one is named with its key: "'m.nmsnn': metadata 'seed': expected a whole number in
  // [0, 2^64-1], got 'x'", "'m.nmsnn': tensor 'layers.0.weight' has a non-finite value (nan) at
  // index 17". Parameters must be finite; preprocessing means finite and scales finite and > 0.
  static Model load(const std::string& path, const NetworkOptions& options = {});
  // Writes the model file atomically (files.hpp): exactly the bytes of to_bytes().
  void save(const std::string& path) const;

  // The model file's bytes, and a model back from them (pickling, databases, sockets):
  // from_bytes checks everything load does, naming `source_name` where load names the file.
  std::string to_bytes() const;
  static Model from_bytes(std::string_view bytes, const std::string& source_name,
                          const NetworkOptions& options = {});

  TaskKind task() const { return task_; }
  const NetworkDescription& description() const { return description_; }
  Network& network() { return *network_; }
  const Network& network() const { return *network_; }

  // Preprocessing, fitted by fit() on the training data only.
  Standardizer feature_scaler;
  TargetScaler target_scaler;
  bool standardize_features = true;  // off for image data already in a fixed range
  std::string pixel_scale;           // for image data: how pixels were scaled ("unit", ...)
  std::vector<std::string> feature_names, class_names, target_names;
  std::vector<EpochRecord> history;  // every epoch fit() ran, saved with the model

  // Fits the scalers on `train` (raw), trains, evaluating `validation` (raw) after each epoch.
  // The loss follows the task (nll, bce, mse); options.loss is ignored.
  TrainResult fit(const Dataset& train, TrainOptions options, const Dataset* validation = nullptr);
  // Raw data -> what the network sees (standardised features and targets).
  Dataset prepare(const Dataset& raw) const;
  // batch_size: samples per forward pass, in [1, kMaxBatchSize] (limits.hpp).
  Predictions predict(const Dataset& raw, int batch_size = 1000);
  // With a communicator of several ranks (communicator.hpp), called by every rank: each runs its
  // shard of every batch and every rank gets the whole evaluation, the one a single process gets.
  ModelEvaluation evaluate(const Dataset& raw, int batch_size = 1000,
                           Communicator* communicator = nullptr);

  Loss loss() const;

 private:
  Model() = default;
  struct Pass {
    std::vector<float> logits;                         // [N, C]
    std::map<int, ModelEvaluation::Rates> rates;       // per spiking layer
  };
  Pass run(const Dataset& prepared, int batch_size, bool rates, Communicator* comm = nullptr);
  // `raw` itself when nothing is scaled, else a scaled copy kept in `storage`: prepare() without
  // copying a dataset that needs no change (MNIST's 188 MB, for instance).
  const Dataset& prepared(const Dataset& raw, Dataset& storage) const;
  Predictions predictions(std::vector<float> logits, int count) const;
  TaskKind task_ = TaskKind::classification;
  NetworkDescription description_;
  std::unique_ptr<Network> network_;
};

}  // namespace nmsnn
