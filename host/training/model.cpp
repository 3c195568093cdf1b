// training/model.cpp — nmsnn::Model: preprocessing around a network, metrics, and the model file.
#include "nmsnn/model.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <numeric>

#include "nmsnn/error.hpp"
#include "nmsnn/files.hpp"
#include "nmsnn/json.hpp"
#include "nmsnn/limits.hpp"
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

// Paths are quoted whole up to this length: cut at 80 bytes, a deep build directory would hide
// the file's own name.
constexpr size_t kPathBytes = 400;

// A model file's metadata, read so that every problem names the file and the key:
//   'iris.nmsnn': metadata 'seed': expected a whole number in [0, 2^64-1], got 'x'
class Metadata {
 public:
  Metadata(const std::map<std::string, std::string>& meta, const std::string& path)
      : meta_(meta), file_(detail::quote(path, kPathBytes)) {}

  const std::string& file() const { return file_; }
  const std::string* find(const std::string& key) const {
    auto it = meta_.find(key);
    return it == meta_.end() ? nullptr : &it->second;
  }
  const std::string& required(const std::string& key) const {
    const std::string* v = find(key);
    if (!v) fail(file_, ": the model file's metadata lacks ", detail::quote(key));
    return *v;
  }
  // "'file': metadata 'key'", the source of messages about that value.
  std::string where(const std::string& key) const {
    return file_ + ": metadata " + detail::quote(key);
  }
  template <class... Parts>
  [[noreturn]] void bad(const std::string& key, const Parts&... parts) const {
    fail(where(key), ": ", parts...);
  }
  Json json(const std::string& key) const { return parse_json(required(key), where(key)); }

  // A JSON array of strings; absent: empty.
  std::vector<std::string> names(const std::string& key) const {
    if (!find(key)) return {};
    const Json j = json(key);
    if (!j.is_array()) bad(key, "expected a JSON array of strings, got ", type_phrase(j.type()));
    std::vector<std::string> out;
    for (size_t i = 0; i < j.size(); ++i) {
      if (!j.at(i).is_string()) bad(key, "item ", i, " is ", type_phrase(j.at(i).type()), ", expected a string");
      out.push_back(j.at(i).as_string());
    }
    return out;
  }

 private:
  const std::map<std::string, std::string>& meta_;
  std::string file_;
};

// The seed: decimal digits only, within uint64_t (strtoull alone would take "-1", " 7" or "0x7").
uint64_t parse_seed(const Metadata& m, const std::string& text) {
  const bool digits = !text.empty() && text.size() <= 20 &&
                      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  errno = 0;
  const unsigned long long v = digits ? std::strtoull(text.c_str(), nullptr, 10) : 0;
  if (!digits || errno == ERANGE)
    m.bad("seed", "expected a whole number in [0, 2^64-1], got ", detail::quote(text));
  return uint64_t(v);
}

// One EpochRecord from an entry of "history", numbers checked to be numbers.
EpochRecord epoch_record(const Metadata& m, const Json& e, size_t index) {
  const std::string entry = "entry " + std::to_string(index);
  if (!e.is_object()) m.bad("history", entry, " is ", type_phrase(e.type()), ", expected an object");
  const auto number = [&](const char* key) {
    const Json* v = e.find(key);
    if (!v) m.bad("history", entry, " lacks ", detail::quote(key));
    if (!v->is_number())
      m.bad("history", entry, ": ", detail::quote(key), " is ", type_phrase(v->type()),
            ", expected a number");
    return v->as_number();
  };
  EpochRecord r;
  r.epoch = int(detail::checked_integer(m.where("history") + ": " + entry + ": 'epoch'",
                                        number("epoch"), 0, std::numeric_limits<int>::max()));
  r.lr = number("lr");
  r.train_loss = number("train_loss");
  r.train_accuracy = number("train_accuracy");
  r.seconds = number("seconds");
  r.validated = e.contains("validation_loss");
  if (r.validated) {
    r.validation_loss = number("validation_loss");
    r.validation_accuracy = number("validation_accuracy");
  }
  return r;
}

// Tensor `name`'s values, checked to be a vector of `size` finite values (or absent: empty);
// `positive` also requires every value to be > 0 (scales divide).
std::vector<float> checked_vector(const SafetensorsFile& file, const std::string& where,
                                  const char* name, int64_t size, bool positive) {
  const NamedTensor* t = file.find(name);
  if (!t) return {};
  if (t->shape != std::vector<int64_t>{size})
    fail(where, ": tensor ", detail::quote(name), " has shape ", t->shape.size() == 1 ?
         "[" + std::to_string(t->shape[0]) + "]" : std::to_string(t->shape.size()) + "-d",
         ", expected [", size, "]");
  for (size_t k = 0; k < t->data.size(); ++k) {
    const float v = t->data[k];
    if (!std::isfinite(v))
      fail(where, ": tensor ", detail::quote(name), " has a non-finite value (", v, ") at index ", k);
    if (positive && !(v > 0))
      fail(where, ": tensor ", detail::quote(name), " has the scale ", v, " at index ", k,
           ", scales must be > 0");
  }
  return t->data;
}

// The data fit the network: as many features as it has inputs, and images of its input_shape
// when both have a shape (the same number of pixels in another shape would run, and mean
// nothing). `what` starts the message: "training data", "the data".
void check_features(const Dataset& d, const NetworkSpec& spec, const char* what) {
  if (d.features != spec.inputs)
    fail(what, " has ", d.features, " features, the model's network expects ", spec.inputs);
  if (!d.shape.empty() && !spec.input_shape.empty() && d.shape != spec.input_shape) {
    auto text = [](const std::vector<int>& v) {
      std::string s = "[";
      for (size_t k = 0; k < v.size(); ++k) s += (k ? ", " : "") + std::to_string(v[k]);
      return s + "]";
    };
    fail(what, " holds images of shape ", text(d.shape), ", the model's network reads ",
         text(spec.input_shape));
  }
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

const Dataset& Model::prepared(const Dataset& raw, Dataset& storage) const {
  const bool features = standardize_features && feature_scaler.fitted();
  const bool targets = task_ == TaskKind::regression && target_scaler.fitted() && !raw.targets.empty();
  if (!features && !targets) return raw;
  storage = raw;
  if (features) feature_scaler.transform(storage);
  if (targets) target_scaler.transform(storage);
  return storage;
}

Dataset Model::prepare(const Dataset& raw) const {
  Dataset storage;
  return prepared(raw, storage);
}

TrainResult Model::fit(const Dataset& train, TrainOptions options, const Dataset* validation) {
  train.validate();
  check_features(train, description_.spec, "training data");
  if (validation) check_features(*validation, description_.spec, "validation data");
  if (standardize_features) feature_scaler.fit(train);
  if (task_ == TaskKind::regression) target_scaler.fit(train);
  if (feature_names.empty()) feature_names = train.feature_names;
  if (class_names.empty()) class_names = train.class_names;
  if (target_names.empty()) target_names = train.target_names;
  Dataset t_storage, v_storage;
  const Dataset& t = prepared(train, t_storage);
  const Dataset* v = validation ? &prepared(*validation, v_storage) : nullptr;
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
  return nmsnn::train(*network_, t, options, v);
}

// One inference pass over prepared data: the logits [N, C] and, when asked, every spiking
// layer's firing rates over all samples and neurons.
Model::Pass Model::run(const Dataset& d, int batch_size, bool rates, Communicator* comm) {
  detail::checked_range("batch size", batch_size, 1, kMaxBatchSize);
  const int C = description_.spec.outputs();
  Pass out;
  out.logits.assign(size_t(d.count) * C, 0.0f);
  ForwardOptions opts;
  opts.training = false;
  opts.rates = rates;
  // One noise pass for every batch, each sample keyed by its contents: a sample's prediction does
  // not depend on the batch it is in, or on its place there (nor on the rank that computes it).
  opts.use_noise_pass = true;
  opts.noise_pass = kPredictionPass;
  opts.noise_by_row = true;
  // Per layer: min, max, sum and count of the rates this rank saw.
  struct RateSums {
    bool hertz = false;
    double min = 0, max = 0, sum = 0, count = 0;
  };
  std::map<int, RateSums> seen;
  for (int first = 0; first < d.count; first += batch_size) {
    const int n = std::min(batch_size, d.count - first);
    const Shard shard = comm ? shard_of(n, comm->rank(), comm->size()) : Shard{0, n};
    if (shard.count == 0) continue;
    const int row = first + shard.first;
    const float* x = d.x.data() + size_t(row) * d.features;
    const size_t count = size_t(shard.count) * d.features;

    const Input in = description_.encoding == Input::Kind::noisy
                         ? Input::noisy(x, count, shard.count)
                         : Input::repeated(x, count, shard.count);
    const ForwardPass pass = network_->forward(in, opts);
    std::copy(pass.logits().begin(), pass.logits().end(), out.logits.begin() + size_t(row) * C);
    for (const LayerRates& lr : pass.rates()) {
      auto [it, fresh] = seen.try_emplace(lr.layer);
      RateSums& r = it->second;
      r.hertz = lr.hertz;
      for (float v : lr.rates) {
        if (fresh) r.min = r.max = v, fresh = false;
        r.min = std::min(r.min, double(v));
        r.max = std::max(r.max, double(v));
        r.sum += v;
        ++r.count;
      }
    }
  }
  if (comm) {
    // Each rank's rows are zeros elsewhere: the sum gathers the logits. The rates' statistics go
    // in per-rank slots (the layers are the same on every rank; a rank with no rows has none).
    comm->allreduce_sum(out.logits.data(), out.logits.size());
    if (rates) {
      std::vector<int> layers(description_.spec.layers.size());  // slots for every layer
      std::iota(layers.begin(), layers.end(), 0);
      const size_t R = size_t(comm->size()), me = size_t(comm->rank());
      std::vector<double> slots(layers.size() * R * 5, 0.0);
      for (size_t i = 0; i < layers.size(); ++i) {
        const auto it = seen.find(layers[i]);
        if (it == seen.end()) continue;
        double* slot = slots.data() + (i * R + me) * 5;
        slot[0] = it->second.min, slot[1] = it->second.max, slot[2] = it->second.sum;
        slot[3] = it->second.count, slot[4] = it->second.hertz ? 1 : 0;
      }
      comm->allreduce_sum(slots.data(), slots.size());
      seen.clear();
      for (size_t i = 0; i < layers.size(); ++i)
        for (size_t r = 0; r < R; ++r) {
          const double* slot = slots.data() + (i * R + r) * 5;
          if (slot[3] == 0) continue;
          auto [it, fresh] = seen.try_emplace(layers[i]);
          RateSums& s = it->second;
          s.min = fresh ? slot[0] : std::min(s.min, slot[0]);
          s.max = fresh ? slot[1] : std::max(s.max, slot[1]);
          s.sum += slot[2];
          s.count += slot[3];
          s.hertz = slot[4] != 0;
        }
    }
  }
  for (const auto& [layer, s] : seen) {
    ModelEvaluation::Rates& r = out.rates[layer];
    r.layer = layer;
    r.hertz = s.hertz;
    r.min = s.min;
    r.max = s.max;
    r.mean = s.sum / std::max(1.0, s.count);
  }
  return out;
}

Predictions Model::predictions(std::vector<float> logits, int count) const {
  const int C = description_.spec.outputs();
  Predictions p;
  p.count = count;
  p.width = C;
  if (task_ == TaskKind::regression) {
    p.values = logits;
    if (target_scaler.fitted()) target_scaler.inverse_transform(p.values);
    p.logits = std::move(logits);
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
  p.logits = std::move(logits);
  return p;
}

Predictions Model::predict(const Dataset& raw, int batch_size) {
  check_features(raw, description_.spec, "the data");
  Dataset storage;
  const Dataset& d = prepared(raw, storage);
  return predictions(run(d, batch_size, false).logits, d.count);
}

ModelEvaluation Model::evaluate(const Dataset& raw, int batch_size, Communicator* comm) {
  raw.validate();
  check_features(raw, description_.spec, "the data");
  Dataset storage;
  const Dataset& d = prepared(raw, storage);
  ModelEvaluation e;
  e.task = task_;
  e.count = raw.count;
  const Pass pass = run(d, batch_size, true, comm);  // one pass: logits and firing rates
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
  std::string bytes;
  try {
    bytes = to_bytes();
  } catch (const Error& e) {
    fail(detail::quote(path), ": not written: ", e.what());
  }
  write_file_atomic(path, bytes);
}

std::string Model::to_bytes() const {
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
  return safetensors_bytes(tensors, meta);
}

Model Model::load(const std::string& path, const NetworkOptions& options) {
  return from_bytes(read_file(path), path, options);
}

Model Model::from_bytes(std::string_view bytes, const std::string& path,
                        const NetworkOptions& options) {
  const SafetensorsFile file = parse_safetensors(bytes, path);
  const Metadata meta(file.metadata, path);
  const std::string& f = meta.file();
  const std::string* format = meta.find("format");
  if (!format || *format != kFormat)
    fail(f, ": not an nmsnn model file (a safetensors file without \"format\": \"", kFormat,
         "\" in its metadata", format ? ", it has " + detail::quote(*format) : std::string(), ")");
  if (const std::string& v = meta.required("format_version"); v != kFormatVersion)
    meta.bad("format_version", "version ", detail::quote(v),
             " is not supported (this nmsnn reads version ", kFormatVersion, ")");
  const std::string& task_name = meta.required("task");
  if (task_name != "multiclass" && task_name != "classification" && task_name != "regression" &&
      task_name != "binary")
    meta.bad("task", "expected multiclass, binary or regression, got ", detail::quote(task_name));
  const TaskKind task = parse_task_kind(task_name);
  // Description errors come out as "'m.nmsnn': metadata 'network': layers[0].size ...".
  const NetworkDescription description =
      description_from_json(meta.json("network"), meta.where("network"));
  NetworkOptions opts = options;
  if (const std::string* seed = meta.find("seed")) opts.seed = parse_seed(meta, *seed);
  Model m;
  try {
    m = make(task, description, opts);
  } catch (const Error& e) {
    fail(f, ": ", e.what());  // a binary task without one output, a network too large to hold
  }

  // Every parameter: present, of the shape the description implies, finite.
  for (const ParameterInfo& p : m.network_->parameters()) {
    const NamedTensor* t = file.find(p.name);
    if (!t) fail(f, ": the model file has no tensor ", detail::quote(p.name));
    if (std::vector<int64_t>(p.shape.begin(), p.shape.end()) != t->shape) {
      std::string want, got;
      for (int d : p.shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
      for (int64_t d : t->shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
      fail(f, ": tensor ", detail::quote(p.name), " has the wrong shape for the network it "
           "describes: [", got, "], expected [", want, "]");
    }
    for (size_t k = 0; k < t->data.size(); ++k)
      if (!std::isfinite(t->data[k]))
        fail(f, ": tensor ", detail::quote(p.name), " has a non-finite value (", t->data[k],
             ") at index ", k);
    m.network_->set_parameter(p.name, t->data);
  }

  // Preprocessing: means finite, scales finite and > 0, sized for the network, in pairs.
  const int inputs = description.spec.inputs, outputs = description.spec.outputs();
  m.feature_scaler.mean = checked_vector(file, f, "preprocess.feature_mean", inputs, false);
  m.feature_scaler.scale = checked_vector(file, f, "preprocess.feature_scale", inputs, true);
  const bool regression = task == TaskKind::regression;
  const NamedTensor* target = file.find("preprocess.target_mean");
  const int64_t targets = regression ? outputs : target && !target->shape.empty() ? target->shape[0] : 0;
  m.target_scaler.mean = checked_vector(file, f, "preprocess.target_mean", targets, false);
  m.target_scaler.scale = checked_vector(file, f, "preprocess.target_scale", targets, true);
  if (m.feature_scaler.mean.empty() != m.feature_scaler.scale.empty())
    fail(f, ": the model file has only one of the tensors 'preprocess.feature_mean' and "
         "'preprocess.feature_scale'");
  if (m.target_scaler.mean.empty() != m.target_scaler.scale.empty())
    fail(f, ": the model file has only one of the tensors 'preprocess.target_mean' and "
         "'preprocess.target_scale'");

  if (const std::string* v = meta.find("standardize_features")) {
    if (*v != "true" && *v != "false")
      meta.bad("standardize_features", "expected true or false, got ", detail::quote(*v));
    m.standardize_features = *v == "true";
  }
  if (const std::string* v = meta.find("pixel_scale"); v && !v->empty()) {
    try {
      parse_pixel_scale(*v);
    } catch (const Error&) {
      meta.bad("pixel_scale", "expected unit, centered or nothing, got ", detail::quote(*v));
    }
    m.pixel_scale = *v;
  }
  m.feature_names = meta.names("feature_names");
  if (!m.feature_names.empty() && int(m.feature_names.size()) != inputs)
    meta.bad("feature_names", "names ", m.feature_names.size(), " features, the network has ",
             inputs, " inputs");
  m.class_names = meta.names("class_names");
  m.target_names = meta.names("target_names");
  if (meta.find("history")) {
    const Json history = meta.json("history");
    if (!history.is_array())
      meta.bad("history", "expected a JSON array of epochs, got ", type_phrase(history.type()));
    for (size_t i = 0; i < history.size(); ++i)
      m.history.push_back(epoch_record(meta, history.at(i), i));
  }
  return m;
}

}  // namespace nmsnn
