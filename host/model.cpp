// model.cpp — nmsnn::Model: preprocessing around a network, metrics, and the model file.
#include "nmsnn/model.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "nmsnn/error.hpp"
#include "nmsnn/json.hpp"
#include "nmsnn/safetensors.hpp"

namespace nmsnn {

using detail::fail;

namespace {

constexpr const char* kFormat = "nmsnn-model";
constexpr const char* kFormatVersion = "1";
// Predictions fix their noise passes here, far from the counters training uses, so a model's
// predictions do not depend on what it did before (and survive a save/load round trip).
constexpr long long kPredictionPass = 1ll << 40;

Json names_json(const std::vector<std::string>& names) {
  Json a = Json::array();
  for (const auto& n : names) a.push_back(n);
  return a;
}

std::vector<std::string> names_from(const std::map<std::string, std::string>& meta,
                                    const std::string& key, const std::string& path) {
  auto it = meta.find(key);
  if (it == meta.end()) return {};
  const Json j = parse_json(it->second, path + " metadata '" + key + "'");
  std::vector<std::string> out;
  for (const Json& v : j.as_array()) out.push_back(v.as_string());
  return out;
}

}  // namespace

Model Model::make(TaskKind task, const NetworkDescription& description,
                  const NetworkOptions& options) {
  const int C = description.spec.outputs();
  if (task == TaskKind::binary && C != 1)
    fail("a binary model needs a network with 1 output (one logit), this one has ", C);
  Model m;
  m.task_ = task;
  m.description_ = description;
  m.network_ = std::make_unique<Network>(description.spec, options);
  return m;
}

Loss Model::loss() const {
  switch (task_) {
    case TaskKind::classification: return Loss::nll;
    case TaskKind::binary: return Loss::bce;
    case TaskKind::regression: return Loss::mse;
  }
  return Loss::nll;
}

Dataset Model::prepare(const Dataset& raw) const {
  Dataset d = raw;
  if (standardize_features && feature_scaler.fitted()) feature_scaler.transform(d);
  if (task_ == TaskKind::regression && target_scaler.fitted() && !d.targets.empty())
    target_scaler.transform(d);
  return d;
}

TrainResult Model::fit(const Dataset& train, TrainOptions options, const Dataset* validation) {
  train.validate();
  if (train.features != description_.spec.inputs)
    fail("training data has ", train.features, " features, the model's network expects ",
         description_.spec.inputs);
  if (standardize_features) feature_scaler.fit(train);
  if (task_ == TaskKind::regression) target_scaler.fit(train);
  if (feature_names.empty()) feature_names = train.feature_names;
  if (class_names.empty()) class_names = train.class_names;
  if (target_names.empty()) target_names = train.target_names;
  const Dataset t = prepare(train);
  Dataset v;
  if (validation) v = prepare(*validation);
  options.loss = loss();
  options.encoding = description_.encoding;
  const int first_epoch = history.empty() ? 0 : history.back().epoch;
  auto user_callback = options.on_epoch;
  options.on_epoch = [&](const EpochStats& e) {
    EpochRecord r;
    r.epoch = first_epoch + e.epoch;
    r.lr = e.lr;
    r.train_loss = e.train_loss;
    r.train_accuracy = e.train_accuracy;
    r.seconds = e.train_seconds;
    r.validated = e.evaluated;
    r.validation_loss = e.eval.loss;
    r.validation_accuracy = e.eval.accuracy;
    history.push_back(r);
    if (user_callback) user_callback(e);
  };
  return nmsnn::train(*network_, t, options, validation ? &v : nullptr);
}

// One inference pass over prepared data: the logits [N, C] and, when asked, every spiking
// layer's firing rates over all samples and neurons.
Model::Pass Model::run(const Dataset& d, int batch_size, bool rates) {
  if (batch_size < 1) fail("batch size must be >= 1, got ", batch_size);
  const int C = description_.spec.outputs();
  Pass out;
  out.logits.resize(size_t(d.count) * C);
  ForwardOptions opts;
  opts.training = false;
  opts.rates = rates;
  opts.use_noise_pass = true;
  std::map<int, double> sums;
  std::map<int, long long> counts;
  for (int first = 0; first < d.count; first += batch_size) {
    const int n = std::min(batch_size, d.count - first);
    const float* x = d.x.data() + size_t(first) * d.features;
    const size_t count = size_t(n) * d.features;
    opts.noise_pass = uint64_t(kPredictionPass) + uint64_t(first / batch_size);
    const Input in = description_.encoding == Input::Kind::noisy ? Input::noisy(x, count, n)
                                                                  : Input::repeated(x, count, n);
    const ForwardPass pass = network_->forward(in, opts);
    std::copy(pass.logits().begin(), pass.logits().end(), out.logits.begin() + size_t(first) * C);
    for (const LayerRates& lr : pass.rates()) {
      auto [it, fresh] = out.rates.try_emplace(lr.layer);
      ModelEvaluation::Rates& r = it->second;
      r.layer = lr.layer;
      r.hertz = lr.hertz;
      for (float v : lr.rates) {
        if (fresh) r.min = r.max = v, fresh = false;
        r.min = std::min(r.min, double(v));
        r.max = std::max(r.max, double(v));
        sums[lr.layer] += v;
        ++counts[lr.layer];
      }
    }
  }
  for (auto& [layer, r] : out.rates) r.mean = sums[layer] / std::max(1ll, counts[layer]);
  return out;
}

Predictions Model::predictions(const std::vector<float>& logits, int count) const {
  const int C = description_.spec.outputs();
  Predictions p;
  p.count = count;
  p.width = C;
  if (task_ == TaskKind::regression) {
    p.values = logits;
    if (target_scaler.fitted()) target_scaler.inverse_transform(p.values);
    return p;
  }
  p.values.resize(logits.size());
  p.classes.resize(count);
  for (int s = 0; s < count; ++s) {
    const float* z = logits.data() + size_t(s) * C;
    float* out = p.values.data() + size_t(s) * C;
    if (task_ == TaskKind::binary) {
      out[0] = float(1.0 / (1.0 + std::exp(-double(z[0]))));
      p.classes[s] = z[0] > 0 ? 1 : 0;
      continue;
    }
    const float m = *std::max_element(z, z + C);
    double sum = 0;
    for (int c = 0; c < C; ++c) sum += std::exp(double(z[c] - m));
    for (int c = 0; c < C; ++c) out[c] = float(std::exp(double(z[c] - m)) / sum);
    p.classes[s] = int(std::max_element(z, z + C) - z);
  }
  return p;
}

Predictions Model::predict(const Dataset& raw, int batch_size) {
  const Dataset d = prepare(raw);
  if (d.features != description_.spec.inputs)
    fail("the data has ", d.features, " features, the model's network expects ",
         description_.spec.inputs);
  return predictions(run(d, batch_size, false).logits, d.count);
}

ModelEvaluation Model::evaluate(const Dataset& raw, int batch_size) {
  raw.validate();
  const Dataset d = prepare(raw);
  if (d.features != description_.spec.inputs)
    fail("the data has ", d.features, " features, the model's network expects ",
         description_.spec.inputs);
  ModelEvaluation e;
  e.task = task_;
  e.count = raw.count;
  const Pass pass = run(d, batch_size, true);  // one pass: logits and firing rates
  e.predictions = predictions(pass.logits, d.count);
  for (const auto& [layer, r] : pass.rates) e.rates.push_back(r);
  const int C = description_.spec.outputs();
  if (task_ == TaskKind::regression) {
    if (d.targets.empty()) fail("evaluate: the data has no regression targets");
    e.loss = mse(pass.logits, d.targets).value;  // on standardised targets, as in training
    std::vector<float> truth, pred;
    const int T = raw.target_size, P = e.predictions.width;
    for (int s = 0; s < raw.count; ++s) {
      truth.push_back(raw.targets[size_t(s) * T]);
      pred.push_back(e.predictions.values[size_t(s) * P]);
    }
    e.regression = regression_metrics(truth, pred);
    return e;
  }
  if (d.labels.empty()) fail("evaluate: the data has no class labels");
  if (task_ == TaskKind::binary) {
    std::vector<float> y(d.labels.begin(), d.labels.end());
    e.loss = bce_with_logits(pass.logits, y).value;
  } else {
    e.loss = nll_log_softmax(pass.logits, d.count, C, d.labels).value;
  }
  const int classes = task_ == TaskKind::binary ? 2 : C;
  e.confusion = confusion_matrix(raw.labels, e.predictions.classes, classes);
  e.classes = class_metrics(e.confusion);
  if (task_ == TaskKind::binary) {
    const bool both = std::count(raw.labels.begin(), raw.labels.end(), 1) > 0 &&
                      std::count(raw.labels.begin(), raw.labels.end(), 0) > 0;
    e.auc = std::nan("");
    if (both) {
      e.roc = roc_curve(raw.labels, e.predictions.values);
      e.pr = pr_curve(raw.labels, e.predictions.values);
      e.auc = e.roc.auc;
    }
  } else {
    e.roc_per_class = roc_one_vs_rest(raw.labels, e.predictions.values, classes);
    e.auc = e.roc_per_class.macro_auc;
  }
  return e;
}

void Model::save(const std::string& path) const {
  std::vector<NamedTensor> tensors;
  for (const ParameterInfo& p : network_->parameters()) {
    NamedTensor t;
    t.name = p.name;
    t.shape.assign(p.shape.begin(), p.shape.end());
    t.data = network_->parameter(p.name);
    tensors.push_back(std::move(t));
  }
  auto vec = [&](const char* name, const std::vector<float>& v) {
    if (!v.empty()) tensors.push_back({name, {int64_t(v.size())}, v});
  };
  vec("preprocess.feature_mean", feature_scaler.mean);
  vec("preprocess.feature_scale", feature_scaler.scale);
  vec("preprocess.target_mean", target_scaler.mean);
  vec("preprocess.target_scale", target_scaler.scale);
  std::map<std::string, std::string> meta;
  meta["format"] = kFormat;
  meta["format_version"] = kFormatVersion;
  meta["task"] = to_string(task_);
  meta["network"] = description_to_json(description_).dump();
  meta["seed"] = std::to_string(network_->seed());
  meta["standardize_features"] = standardize_features ? "true" : "false";
  meta["pixel_scale"] = pixel_scale;
  meta["feature_names"] = names_json(feature_names).dump();
  meta["class_names"] = names_json(class_names).dump();
  meta["target_names"] = names_json(target_names).dump();
  Json h = Json::array();
  for (const EpochRecord& r : history) {
    Json e = Json::object();
    e.set("epoch", r.epoch).set("lr", r.lr).set("train_loss", r.train_loss);
    e.set("train_accuracy", r.train_accuracy).set("seconds", r.seconds);
    if (r.validated)
      e.set("validation_loss", r.validation_loss).set("validation_accuracy", r.validation_accuracy);
    h.push_back(e);
  }
  meta["history"] = h.dump();
  write_safetensors(path, tensors, meta);
}

Model Model::load(const std::string& path, const NetworkOptions& options) {
  const SafetensorsFile file = read_safetensors(path);
  const auto& meta = file.metadata;
  auto it = meta.find("format");
  if (it == meta.end() || it->second != kFormat)
    fail(path, ": not an nmsnn model file (a safetensors file without \"format\": \"", kFormat,
         "\" in its metadata)");
  const auto get = [&](const std::string& key) -> const std::string& {
    auto m = meta.find(key);
    if (m == meta.end()) fail(path, ": model file metadata lacks '", key, "'");
    return m->second;
  };
  if (get("format_version") != kFormatVersion)
    fail(path, ": model file format version ", get("format_version"),
         " is not supported (this nmsnn reads version ", kFormatVersion, ")");
  const TaskKind task = parse_task_kind(get("task"));
  const NetworkDescription description =
      description_from_json(parse_json(get("network"), path + " metadata 'network'"),
                            path + " (network description)");
  NetworkOptions opts = options;
  if (meta.count("seed")) opts.seed = std::stoull(get("seed"));
  Model m = make(task, description, opts);
  for (const ParameterInfo& p : m.network_->parameters()) {
    const NamedTensor* t = file.find(p.name);
    if (!t) fail(path, ": the model file has no tensor '", p.name, "'");
    if (std::vector<int64_t>(p.shape.begin(), p.shape.end()) != t->shape)
      fail(path, ": tensor '", p.name, "' has the wrong shape for the network it describes");
    m.network_->set_parameter(p.name, t->data);
  }
  auto vec = [&](const char* name) {
    const NamedTensor* t = file.find(name);
    return t ? t->data : std::vector<float>{};
  };
  m.feature_scaler.mean = vec("preprocess.feature_mean");
  m.feature_scaler.scale = vec("preprocess.feature_scale");
  m.target_scaler.mean = vec("preprocess.target_mean");
  m.target_scaler.scale = vec("preprocess.target_scale");
  if (m.feature_scaler.mean.size() != m.feature_scaler.scale.size() ||
      (m.feature_scaler.fitted() && int(m.feature_scaler.mean.size()) != description.spec.inputs))
    fail(path, ": the feature scaler does not match the network's ", description.spec.inputs,
         " inputs");
  m.standardize_features = meta.count("standardize_features") == 0 ||
                           get("standardize_features") == "true";
  if (meta.count("pixel_scale")) m.pixel_scale = get("pixel_scale");
  m.feature_names = names_from(meta, "feature_names", path);
  m.class_names = names_from(meta, "class_names", path);
  m.target_names = names_from(meta, "target_names", path);
  if (meta.count("history")) {
    const Json history = parse_json(get("history"), path + " metadata 'history'");
    for (const Json& e : history.as_array()) {
      EpochRecord r;
      r.epoch = int(e.at("epoch").as_int());
      r.lr = e.at("lr").as_number();
      r.train_loss = e.at("train_loss").as_number();
      r.train_accuracy = e.at("train_accuracy").as_number();
      r.seconds = e.at("seconds").as_number();
      r.validated = e.contains("validation_loss");
      if (r.validated) {
        r.validation_loss = e.at("validation_loss").as_number();
        r.validation_accuracy = e.at("validation_accuracy").as_number();
      }
      m.history.push_back(r);
    }
  }
  return m;
}

}  // namespace nmsnn
