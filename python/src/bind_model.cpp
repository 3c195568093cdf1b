// bind_model.cpp — nmsnn._core.Model: a network with its task, preprocessing and names; fit,
// predict, evaluate, save and load (and the model file's bytes, for pickling), exactly as the
// command line uses them (nmsnn/model.hpp).
// fit releases the GIL and takes it back only to call Python progress callbacks and to check for
// Ctrl-C (KeyboardInterrupt stops training between two batches).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <optional>
#include <string_view>

#include "convert.hpp"
#include "nmsnn/json.hpp"
#include "nmsnn/model.hpp"
#include "py_network.hpp"

namespace nmsnn::py {

namespace {

struct PyModel {
  std::unique_ptr<Model> model;  // a stable address for the Network objects that point into it
};

NetworkOptions network_options(const std::string& engine, uint64_t seed, int threads,
                               const std::string& matmul) {
  NetworkOptions opts;
  opts.engine = parse_engine(engine);
  opts.seed = seed;
  opts.threads = threads;
  opts.matmul = parse_matmul_precision(matmul);
  return opts;
}

PyModel make_model(const std::string& task, const std::string& spec_json, const std::string& engine,
                   uint64_t seed, int threads, const std::string& matmul) {
  const NetworkDescription d = description_from_json(parse_json(spec_json, "spec"), "spec", 0);
  const NetworkOptions opts = network_options(engine, seed, threads, matmul);
  nb::gil_scoped_release release;
  return PyModel{std::make_unique<Model>(Model::make(parse_task_kind(task), d, opts))};
}

PyModel load_model(const std::string& path, const std::string& engine, int threads) {
  NetworkOptions opts = network_options(engine, 0, threads, "fp32");
  nb::gil_scoped_release release;
  return PyModel{std::make_unique<Model>(Model::load(path, opts))};
}

// The bytes object stays alive and unchanged (bytes are immutable) while the GIL is released.
PyModel model_from_bytes(const nb::bytes& data, const std::string& source,
                         const std::string& engine, int threads) {
  NetworkOptions opts = network_options(engine, 0, threads, "fp32");
  const std::string_view bytes(data.c_str(), data.size());
  nb::gil_scoped_release release;
  return PyModel{std::make_unique<Model>(Model::from_bytes(bytes, source, opts))};
}

nb::bytes model_to_bytes(const PyModel& p) {
  std::string bytes;
  {
    nb::gil_scoped_release release;
    bytes = p.model->to_bytes();
  }
  return nb::bytes(bytes.data(), bytes.size());
}

// The training data as a Dataset: labels for classifiers, targets for regressors.
Dataset data_of(const Model& m, const FloatArray& x, std::optional<IntArray> labels,
                std::optional<FloatArray> targets, int classes) {
  const bool regression = m.task() == TaskKind::regression;
  if (regression && !targets) detail::fail("a regression model needs float targets");
  if (!regression && !labels) detail::fail("a ", to_string(m.task()), " model needs int32 labels");
  return make_dataset(x, regression ? nullptr : &*labels, classes, regression ? &*targets : nullptr,
                      m.feature_names, m.class_names, m.target_names);
}

nb::dict batch_dict(const BatchStats& b) {
  nb::dict d;
  d["epoch"] = b.epoch, d["epochs"] = b.epochs, d["batch"] = b.batch, d["batches"] = b.batches;
  d["samples_done"] = b.samples_done, d["samples"] = b.samples;
  d["loss"] = b.loss, d["accuracy"] = b.accuracy;
  d["samples_per_second"] = b.samples_per_second, d["elapsed_seconds"] = b.elapsed_seconds;
  return d;
}

nb::dict epoch_dict(const EpochStats& e) {
  nb::dict d;
  d["epoch"] = e.epoch, d["epochs"] = e.epochs, d["lr"] = e.lr;
  d["train_loss"] = e.train_loss, d["train_accuracy"] = e.train_accuracy;
  d["train_seconds"] = e.train_seconds, d["samples_per_second"] = e.samples_per_second;
  d["evaluated"] = e.evaluated;
  if (e.evaluated) d["validation_loss"] = e.eval.loss, d["validation_accuracy"] = e.eval.accuracy;
  return d;
}

nb::dict fit(PyModel& self, const FloatArray& x, std::optional<IntArray> labels,
             std::optional<FloatArray> targets, int classes, std::optional<FloatArray> x_val,
             std::optional<IntArray> labels_val, std::optional<FloatArray> targets_val, int epochs,
             int batch_size, const std::string& optimizer, const std::vector<double>& lr,
             int lr_step, double lr_gamma, double momentum, uint64_t seed, bool shuffle,
             nb::object on_batch, nb::object on_epoch) {
  Model& m = *self.model;
  const Dataset train = data_of(m, x, labels, targets, classes);
  std::optional<Dataset> validation;
  if (x_val) validation = data_of(m, *x_val, labels_val, targets_val, classes);

  TrainOptions t;
  t.epochs = epochs;
  t.batch_size = batch_size;
  t.seed = seed;
  t.shuffle = shuffle;
  if (lr.empty()) detail::fail("lr: give at least one learning rate");
  for (double v : lr)
    if (!(v > 0)) detail::fail("lr: every value must be > 0, got ", v);
  if (optimizer == "sgd") {
    Sgd sgd;
    sgd.lr = lr[0];
    sgd.momentum = momentum;
    t.optimizer = sgd;
  } else if (optimizer == "adam") {
    t.optimizer = Adam{lr[0]};
  } else {
    detail::fail("unknown optimizer ", detail::quote(optimizer), " (expected sgd or adam)");
  }
  if (lr.size() > 1) t.schedule.per_epoch = lr;
  t.schedule.step_epochs = lr.size() > 1 ? 0 : lr_step;
  t.schedule.gamma = lr_gamma;
  // Every batch: Ctrl-C is checked (with the GIL, which the training loop does not hold), and the
  // Python callback, if any, is called.
  t.on_batch = [&on_batch](const BatchStats& b) {
    nb::gil_scoped_acquire gil;
    check_signals();
    if (!on_batch.is_none()) on_batch(batch_dict(b));
  };
  t.on_epoch = [&on_epoch](const EpochStats& e) {
    nb::gil_scoped_acquire gil;
    check_signals();
    if (!on_epoch.is_none() && !e.resumed) on_epoch(epoch_dict(e));
  };
  TrainResult r;
  {
    nb::gil_scoped_release release;
    r = m.fit(train, t, validation ? &*validation : nullptr);
  }
  nb::dict out;
  out["train_seconds"] = r.train_seconds;
  out["samples_per_second"] = r.samples_per_second;
  out["samples"] = r.samples;
  out["data_on_device"] = r.data_on_device;
  return out;
}

Dataset predict_data(const Model& m, const FloatArray& x) {
  return make_dataset(x, nullptr, 0, nullptr, m.feature_names, m.class_names, m.target_names);
}

nb::tuple predict(PyModel& self, const FloatArray& x, int batch_size) {
  const Dataset d = predict_data(*self.model, x);
  Predictions p;
  {
    nb::gil_scoped_release release;
    p = self.model->predict(d, batch_size);
  }
  const std::vector<size_t> shape{size_t(p.count), size_t(p.width)};
  NumpyFloat values = to_numpy(std::move(p.values), shape);
  NumpyFloat logits = to_numpy(std::move(p.logits), shape);
  if (p.classes.empty()) return nb::make_tuple(values, nb::none(), logits);
  return nb::make_tuple(values, to_numpy(std::vector<int32_t>(p.classes.begin(), p.classes.end()),
                                         {size_t(p.count)}), logits);
}

nb::dict roc_dict(const RocCurve& r) {
  nb::dict d;
  d["fpr"] = to_numpy(std::vector<double>(r.fpr), {r.fpr.size()});
  d["tpr"] = to_numpy(std::vector<double>(r.tpr), {r.tpr.size()});
  d["thresholds"] = to_numpy(std::vector<float>(r.thresholds), {r.thresholds.size()});
  d["auc"] = r.auc;
  return d;
}

nb::dict evaluate(PyModel& self, const FloatArray& x, std::optional<IntArray> labels,
                  std::optional<FloatArray> targets, int classes, int batch_size) {
  const Model& m = *self.model;
  const Dataset d = data_of(m, x, labels, targets, classes);
  ModelEvaluation e;
  {
    nb::gil_scoped_release release;
    e = self.model->evaluate(d, batch_size);
  }
  nb::dict out;
  out["task"] = to_string(e.task);
  out["count"] = e.count;
  out["loss"] = e.loss;
  if (e.task == TaskKind::regression) {
    out["r2"] = e.regression.r2, out["rmse"] = e.regression.rmse;
    out["mse"] = e.regression.mse, out["mae"] = e.regression.mae;
  } else {
    const size_t C = size_t(e.confusion.classes);
    out["accuracy"] = e.classes.accuracy;
    out["macro_precision"] = e.classes.macro_precision;
    out["macro_recall"] = e.classes.macro_recall;
    out["macro_f1"] = e.classes.macro_f1;
    out["auc"] = e.auc;
    out["precision"] = to_numpy(std::vector<double>(e.classes.precision), {C});
    out["recall"] = to_numpy(std::vector<double>(e.classes.recall), {C});
    out["f1"] = to_numpy(std::vector<double>(e.classes.f1), {C});
    out["support"] = to_numpy(std::vector<int64_t>(e.classes.support), {C});
    out["confusion_matrix"] = to_numpy(std::vector<int64_t>(e.confusion.counts), {C, C});
    if (e.task == TaskKind::binary) {
      out["roc"] = roc_dict(e.roc);
      nb::dict pr;
      pr["precision"] = to_numpy(std::vector<double>(e.pr.precision), {e.pr.precision.size()});
      pr["recall"] = to_numpy(std::vector<double>(e.pr.recall), {e.pr.recall.size()});
      pr["thresholds"] = to_numpy(std::vector<float>(e.pr.thresholds), {e.pr.thresholds.size()});
      pr["average_precision"] = e.pr.average_precision;
      out["pr"] = pr;
    } else {
      nb::list curves;
      for (const RocCurve& r : e.roc_per_class.curves) curves.append(roc_dict(r));
      out["roc_per_class"] = curves;
    }
  }
  const size_t N = size_t(e.predictions.count), W = size_t(e.predictions.width);
  out["predictions"] = to_numpy(std::move(e.predictions.values), {N, W});
  nb::list rates;
  for (const auto& r : e.rates) {
    nb::dict k;
    k["layer"] = r.layer, k["unit"] = r.hertz ? "Hz" : "spikes/step";
    k["min"] = r.min, k["mean"] = r.mean, k["max"] = r.max;
    rates.append(k);
  }
  out["rates"] = rates;
  return out;
}

// Every layer's state and spikes over time for the samples of x, as `nmsnn plot` draws them:
// standardised as the model does, an inference pass with the noise pass fixed at 0.
nb::list trace(PyModel& self, const FloatArray& x) {
  Model& m = *self.model;
  const Dataset one = m.prepare(predict_data(m, x));
  ForwardOptions opts;
  opts.training = false;
  opts.record = true;
  opts.use_noise_pass = true;
  opts.noise_pass = 0;
  const Input in = m.description().encoding == Input::Kind::noisy ? Input::noisy(one.x, one.count)
                                                                   : Input::repeated(one.x, one.count);
  std::vector<LayerTrace> tr;
  {
    nb::gil_scoped_release release;
    tr = m.network().forward(in, opts).trace();
  }
  nb::list out;
  for (LayerTrace& t : tr) {
    nb::dict d;
    const std::vector<size_t> shape{size_t(t.steps), size_t(t.batch), size_t(t.size)};
    d["state"] = to_numpy(std::move(t.state), shape);
    d["spikes"] = to_numpy(std::move(t.spikes), shape);
    out.append(d);
  }
  return out;
}

nb::list history(const PyModel& self) {
  nb::list out;
  for (const EpochRecord& r : self.model->history) {
    nb::dict d;
    d["epoch"] = r.epoch, d["lr"] = r.lr, d["train_loss"] = r.train_loss;
    d["train_accuracy"] = r.train_accuracy, d["seconds"] = r.seconds;
    if (r.validated)
      d["validation_loss"] = r.validation_loss, d["validation_accuracy"] = r.validation_accuracy;
    out.append(d);
  }
  return out;
}

PyNetwork network_of(PyModel& self) {
  PyNetwork p;
  p.description = self.model->description();
  p.net = &self.model->network();
  return p;
}

}  // namespace

void bind_model(nb::module_& m) {
  nb::class_<PyModel>(m, "Model", "A predictive model (nmsnn::Model).")
      .def_static("make", &make_model, nb::arg("task"), nb::arg("spec_json"),
                  nb::arg("engine") = "cpu", nb::arg("seed") = 1, nb::arg("threads") = 0,
                  nb::arg("matmul") = "fp32")
      .def_static("load", &load_model, nb::arg("path"), nb::arg("engine") = "cpu",
                  nb::arg("threads") = 0)
      .def_static("from_bytes", &model_from_bytes, nb::arg("data"),
                  nb::arg("source_name") = "bytes", nb::arg("engine") = "cpu",
                  nb::arg("threads") = 0,
                  "A model from the bytes of a model file (to_bytes); source_name names them in "
                  "errors.")
      .def("save", [](const PyModel& p, const std::string& path) {
            nb::gil_scoped_release release;
            p.model->save(path);
          }, nb::arg("path"))
      .def("to_bytes", &model_to_bytes, "The bytes save() writes to a model file.")
      .def("fit", &fit, nb::arg("x"), nb::arg("labels") = nb::none(), nb::arg("targets") = nb::none(),
           nb::arg("classes") = 0, nb::arg("x_val") = nb::none(), nb::arg("labels_val") = nb::none(),
           nb::arg("targets_val") = nb::none(), nb::arg("epochs") = 100, nb::arg("batch_size") = 32,
           nb::arg("optimizer") = "adam", nb::arg("lr") = std::vector<double>{1e-3},
           nb::arg("lr_step") = 0, nb::arg("lr_gamma") = 1.0, nb::arg("momentum") = 0.0,
           nb::arg("seed") = 1, nb::arg("shuffle") = true, nb::arg("on_batch") = nb::none(),
           nb::arg("on_epoch") = nb::none())
      .def("predict", &predict, nb::arg("x"), nb::arg("batch_size") = 1000,
           "(values [N, W] float32, classes [N] int32 or None, logits [N, W] float32): class "
           "probabilities, P(class 1), or targets in original units; then the network's outputs "
           "(logits; standardised targets for regression).")
      .def("evaluate", &evaluate, nb::arg("x"), nb::arg("labels") = nb::none(),
           nb::arg("targets") = nb::none(), nb::arg("classes") = 0, nb::arg("batch_size") = 1000)
      .def("trace", &trace, nb::arg("x"))
      .def_prop_ro("task", [](const PyModel& p) { return std::string(to_string(p.model->task())); })
      .def_prop_ro("spec_json", [](const PyModel& p) { return description_to_json(p.model->description()).dump(); })
      .def_prop_ro("seed", [](const PyModel& p) { return p.model->network().seed(); })
      .def_prop_ro("history", &history)
      .def_prop_ro("network", &network_of, nb::keep_alive<0, 1>())
      .def_prop_rw("feature_names", [](const PyModel& p) { return p.model->feature_names; },
                   [](PyModel& p, std::vector<std::string> v) { p.model->feature_names = std::move(v); })
      .def_prop_rw("class_names", [](const PyModel& p) { return p.model->class_names; },
                   [](PyModel& p, std::vector<std::string> v) { p.model->class_names = std::move(v); })
      .def_prop_rw("target_names", [](const PyModel& p) { return p.model->target_names; },
                   [](PyModel& p, std::vector<std::string> v) { p.model->target_names = std::move(v); })
      .def_prop_rw("standardize_features", [](const PyModel& p) { return p.model->standardize_features; },
                   [](PyModel& p, bool v) { p.model->standardize_features = v; })
      .def_prop_ro("feature_mean", [](const PyModel& p) {
            return to_numpy(std::vector<float>(p.model->feature_scaler.mean), {p.model->feature_scaler.mean.size()});
          }, nb::rv_policy::move)
      .def_prop_ro("feature_scale", [](const PyModel& p) {
            return to_numpy(std::vector<float>(p.model->feature_scaler.scale), {p.model->feature_scaler.scale.size()});
          }, nb::rv_policy::move);
}

}  // namespace nmsnn::py
