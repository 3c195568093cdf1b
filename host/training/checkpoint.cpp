// training/checkpoint.cpp — TrainState to and from a safetensors file (nmsnn/checkpoint.hpp).
#include "nmsnn/checkpoint.hpp"

#include <cmath>
#include <cstdint>
#include <map>

#include "nmsnn/error.hpp"
#include "nmsnn/limits.hpp"
#include "nmsnn/safetensors.hpp"

namespace nmsnn {

using detail::fail;

namespace {

constexpr const char* kFormat = "nmsnn-checkpoint";
constexpr const char* kFormatVersion = "1";
const std::string kMoment1 = "optimizer.m.", kMoment2 = "optimizer.v.";
constexpr int64_t kMaxExactInteger = int64_t(1) << 53;  // what a JSON number holds exactly

// ---- state -> JSON ---------------------------------------------------------------------------

Json epoch_json(const EpochStats& e) {
  Json j = Json::object();
  j.set("epoch", e.epoch).set("epochs", e.epochs).set("lr", e.lr);
  j.set("train_loss", e.train_loss).set("train_accuracy", e.train_accuracy);
  j.set("train_seconds", e.train_seconds).set("samples_per_second", e.samples_per_second);
  j.set("evaluated", e.evaluated);
  if (e.evaluated) {
    j.set("eval_count", e.eval.count).set("eval_loss", e.eval.loss);
    j.set("eval_accuracy", e.eval.accuracy).set("eval_seconds", e.eval.seconds);
  }
  return j;
}

Json state_json(const TrainState& s) {
  Json j = Json::object();
  j.set("epoch", s.epoch).set("batch", s.batch);
  j.set("optimizer_steps", double(s.optimizer.steps)).set("lr", s.optimizer.lr);
  // Counters beyond 2^53 would not survive a JSON number; no run gets there.
  j.set("noise_passes", double(s.noise_passes)).set("first_loss", s.first_loss);
  j.set("loss_sum", s.loss_sum).set("correct", double(s.correct));
  j.set("samples_done", s.samples_done).set("seconds", s.seconds);
  j.set("train_seconds", s.train_seconds).set("samples", double(s.samples));
  Json epochs = Json::array();
  for (const EpochStats& e : s.epochs) epochs.push_back(epoch_json(e));
  j.set("epochs", epochs);
  return j;
}

// ---- JSON -> state, every field checked and named in errors ----------------------------------

class Fields {
 public:
  Fields(const std::string& path, const Json& object, std::string where)
      : path_(path), object_(object), where_(std::move(where)) {
    if (!object_.is_object())
      fail(detail::quote(path_), ": checkpoint metadata ", where_, " is ",
           type_phrase(object_.type()), ", expected an object");
  }

  const Json& get(const std::string& key) const {
    const Json* v = object_.find(key);
    if (!v) fail(detail::quote(path_), ": checkpoint metadata ", where_, " lacks '", key, "'");
    return *v;
  }
  // null stands for a number that was not finite (JSON has no inf or nan).
  double number(const std::string& key) const {
    const Json& v = get(key);
    if (v.is_null()) return std::nan("");
    if (!v.is_number()) fail(name(key), " is ", type_phrase(v.type()), ", expected a number");
    return v.as_number();
  }
  int64_t integer(const std::string& key, int64_t lo, int64_t hi) const {
    const Json& v = get(key);
    if (!v.is_number()) fail(name(key), " is ", type_phrase(v.type()), ", expected a number");
    return detail::checked_integer(name(key), v.as_number(), lo, hi);
  }
  bool boolean(const std::string& key) const {
    const Json& v = get(key);
    if (!v.is_bool()) fail(name(key), " is ", type_phrase(v.type()), ", expected true or false");
    return v.as_bool();
  }

 private:
  std::string name(const std::string& key) const {
    return detail::quote(path_) + ": checkpoint metadata " + where_ + "." + key;
  }
  const std::string& path_;
  const Json& object_;
  std::string where_;
};

constexpr int64_t kMaxInt = 2147483647;

EpochStats epoch_from(const std::string& path, const Json& j, size_t index) {
  const Fields f(path, j, "state.epochs[" + std::to_string(index) + "]");
  EpochStats e;
  e.epoch = int(f.integer("epoch", 1, kMaxInt));
  e.epochs = int(f.integer("epochs", 1, kMaxInt));
  e.lr = f.number("lr");
  e.train_loss = f.number("train_loss");
  e.train_accuracy = f.number("train_accuracy");
  e.train_seconds = f.number("train_seconds");
  e.samples_per_second = f.number("samples_per_second");
  e.evaluated = f.boolean("evaluated");
  if (e.evaluated) {
    e.eval.count = int(f.integer("eval_count", 0, kMaxInt));
    e.eval.loss = f.number("eval_loss");
    e.eval.accuracy = f.number("eval_accuracy");
    e.eval.seconds = f.number("eval_seconds");
  }
  return e;
}

void read_state(const std::string& path, const Json& j, TrainState& s) {
  const Fields f(path, j, "'state'");
  s.epoch = int(f.integer("epoch", 0, kMaxInt));
  s.batch = int(f.integer("batch", 0, kMaxInt));
  s.optimizer.steps = f.integer("optimizer_steps", 0, kMaxExactInteger);
  s.optimizer.lr = f.number("lr");
  s.noise_passes = uint64_t(f.integer("noise_passes", 0, kMaxExactInteger));
  s.first_loss = f.number("first_loss");
  s.loss_sum = f.number("loss_sum");
  s.correct = f.integer("correct", 0, kMaxExactInteger);
  s.samples_done = int(f.integer("samples_done", 0, kMaxInt));
  s.seconds = f.number("seconds");
  s.train_seconds = f.number("train_seconds");
  s.samples = f.integer("samples", 0, kMaxExactInteger);
  const Json& epochs = f.get("epochs");
  if (!epochs.is_array())
    fail(detail::quote(path), ": checkpoint metadata 'state'.epochs is ",
         type_phrase(epochs.type()), ", expected an array");
  for (size_t i = 0; i < epochs.size(); ++i) s.epochs.push_back(epoch_from(path, epochs.at(i), i));
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  const TrainState& s = c.state;
  if (!c.settings.is_object()) fail("save_checkpoint: the settings must be a JSON object");
  if (s.optimizer.m.size() != s.parameters.size() || s.optimizer.v.size() != s.parameters.size())
    fail("save_checkpoint: the optimiser has buffers for ", s.optimizer.m.size(),
         " parameters, the state has ", s.parameters.size());
  std::vector<NamedTensor> tensors = s.parameters;
  for (const auto& [prefix, buffers] :
       {std::pair{&kMoment1, &s.optimizer.m}, std::pair{&kMoment2, &s.optimizer.v}})
    for (size_t i = 0; i < s.parameters.size(); ++i)
      tensors.push_back({*prefix + s.parameters[i].name, s.parameters[i].shape, (*buffers)[i]});
  std::map<std::string, std::string> meta;
  meta["format"] = kFormat;
  meta["format_version"] = kFormatVersion;
  meta["settings"] = c.settings.dump();
  meta["state"] = state_json(s).dump();
  write_safetensors(path, tensors, meta);  // atomic, and checks every shape against its data
}

Checkpoint load_checkpoint(const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  const auto& meta = file.metadata;
  const auto get = [&](const std::string& key) -> const std::string& {
    auto it = meta.find(key);
    if (it == meta.end()) fail(detail::quote(path), ": checkpoint metadata lacks '", key, "'");
    return it->second;
  };
  auto format = meta.find("format");
  if (format == meta.end() || format->second != kFormat)
    fail(detail::quote(path), ": not an nmsnn checkpoint (a safetensors file without ",
         "\"format\": \"", kFormat, "\" in its metadata)");
  if (get("format_version") != kFormatVersion)
    fail(detail::quote(path), ": checkpoint format version ",
         detail::quote(get("format_version")), " is not supported (this nmsnn reads version ",
         kFormatVersion, ")");
  Checkpoint c;
  c.settings = parse_json(get("settings"), detail::quote(path) + " metadata 'settings'");
  if (!c.settings.is_object())
    fail(detail::quote(path), ": checkpoint metadata 'settings' is not a JSON object");
  read_state(path, parse_json(get("state"), detail::quote(path) + " metadata 'state'"), c.state);

  TrainState& s = c.state;
  for (const NamedTensor& t : file.tensors)
    if (!starts_with(t.name, kMoment1) && !starts_with(t.name, kMoment2)) s.parameters.push_back(t);
  if (s.parameters.empty()) fail(detail::quote(path), ": the checkpoint holds no parameters");
  for (const NamedTensor& p : s.parameters) {
    for (const auto& [prefix, buffers] :
         {std::pair{&kMoment1, &s.optimizer.m}, std::pair{&kMoment2, &s.optimizer.v}}) {
      const NamedTensor* t = file.find(*prefix + p.name);
      if (!t)
        fail(detail::quote(path), ": the checkpoint has no tensor ",
             detail::quote(*prefix + p.name));
      if (t->shape != p.shape)
        fail(detail::quote(path), ": tensor ", detail::quote(t->name),
             " does not have the shape of ", detail::quote(p.name));
      buffers->push_back(t->data);
    }
  }
  if (file.tensors.size() != 3 * s.parameters.size())
    fail(detail::quote(path), ": the checkpoint has optimiser tensors without a parameter");
  return c;
}

void check_checkpoint_settings(const Checkpoint& c, const Json& settings,
                               const std::string& path) {
  // Values compare as the text they are saved as: a number made from a float (0.9f) reads back
  // as the shortest decimal that names it (0.9), a different double.
  auto text = [](const Json* v) { return !v ? "" : v->is_string() ? v->as_string() : v->dump(); };
  auto differ = [&](const std::string& key, const Json* was, const Json* now) {
    std::string a = text(was), b = text(now);
    // Long values (the network's description) are shown from a little before where they part.
    size_t at = 0;
    while (at < a.size() && at < b.size() && a[at] == b[at]) ++at;
    if (at > 40 && (a.size() > 80 || b.size() > 80))
      a = "..." + a.substr(at - 20), b = "..." + b.substr(at - 20);
    fail("checkpoint ", detail::quote(path), " is from another run: its ", key, " is ",
         was ? detail::quote(a) : "not set", ", this run's is ",
         now ? detail::quote(b) : "not set",
         " (resume a run only with the settings it was started with)");
  };
  if (!settings.is_object()) fail("check_checkpoint_settings: the settings must be a JSON object");
  for (const auto& [key, was] : c.settings.as_object()) {
    const Json* now = settings.find(key);
    if (!now || text(now) != text(&was) || now->type() != was.type()) differ(key, &was, now);
  }
  for (const auto& [key, now] : settings.as_object())
    if (!c.settings.find(key)) differ(key, nullptr, &now);
}

}  // namespace nmsnn
