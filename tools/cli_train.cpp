// cli_train.cpp — `nmsnn train`: from data to a trained, evaluated and saved predictive model.
//
// Data: a directory of MNIST-format IDX files (MNIST, Fashion-MNIST) or a CSV file. Models: the
// seed's spiking network (--model snn), its non-spiking baseline (--model mlp), or any layer stack
// from a JSON description (--model-file); snn and mlp are the library's predictive_network.
// Presets give complete training settings (the library's training_preset: default and seed for
// images, tabular for CSV; include/nmsnn/presets.hpp); any flag given explicitly overrides its
// preset value.
// The trained model is saved (--save) before anything else is written; a run that diverges keeps
// its last good model; --checkpoint/--resume continue a killed run to the same bits.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_args.hpp"
#include "cli_common.hpp"
#include "cli_distributed.hpp"
#include "nmsnn/nmsnn.hpp"
#include "progress.hpp"

namespace nmsnn::cli {

namespace {

Args train_flags() {
  Args a;
  a.flag("data", "PATH", "a directory of IDX files (MNIST, Fashion-MNIST) or a CSV file (default: data/mnist)");
  a.flag("target", "NAME", "CSV: the column to predict (default: the last)");
  a.flag("task", "TASK", "multiclass | binary | regression (default multiclass)");
  a.flag("ignore", "COL[,COL...]", "CSV: columns that are not features (ids)");
  a.flag("test-fraction", "F", "CSV: share of rows held out for testing, in [0, 1) (default 0.2)");
  a.flag("validation-fraction", "F", "share of training rows held out for per-epoch validation, in [0, 1) (default 0)");
  a.flag("input-scale", "S", "images: unit (x/255) | centered (x/255 - 0.5)");
  a.flag("train-limit", "N", "use the first N training samples (0: all)");
  a.flag("test-limit", "N", "images: evaluate on the first N test samples (default all; 0: none)");
  a.flag("model", "KIND", "snn (spiking, default) | mlp (the non-spiking ReLU baseline)");
  a.flag("model-file", "FILE", "a JSON layer-stack description (see README); overrides --model");
  a.flag("preset", "NAME", "default | seed (images), tabular (CSV): complete settings");
  a.flag("hidden", "N[,N...]", "hidden layer sizes (default 100)");
  a.flag("time-steps", "T", "simulation steps per sample (default 128 for images, 64 for CSV)");
  a.flag("encoding", "E", "noisy (the seed's noise mask) | repeated (input unchanged every step)");
  a.flag("decay", "D", "neuron decay, in [0, 1] (default 0.9)");
  a.flag("threshold", "TH", "firing threshold, > 0 (default 1.0)");
  a.flag("penalty", "P", "reset penalty, >= 0 (default 1.5)");
  a.flag("reset", "RULE", "scale (seed package) | subtract (seed README)");
  a.sw("no-delay", "return this step's state instead of the previous one");
  a.flag("readout", "R", "mean | sum of the output over time (default mean, as the seed)");
  a.flag("begin-eval", "T0", "first time step counted by the readout (default 0)");
  a.flag("epochs", "N", "training epochs");
  a.flag("batch", "B", "mini-batch size");
  a.flag("optimizer", "NAME", "sgd | adam");
  a.flag("lr", "X[,X...]", "learning rate, or one per epoch");
  a.flag("lr-step", "N", "multiply the lr by --lr-gamma every N epochs (0: never)");
  a.flag("lr-gamma", "G", "lr factor for --lr-step, > 0");
  a.flag("momentum", "M", "SGD momentum, in [0, 1)");
  a.flag("seed", "S", "seed for weights, noise masks, splits and shuffling (default 1)");
  a.flag("device", "D", "cpu | cuda");
  a.flag("matmul", "P", "cuda matrix products: fp32 (default, matches cpu) | tf32 | bf16 (tensor cores)");
  a.flag("saved", "S",
         "cuda state kept for backward: fp32 (default, matches cpu) | compact (<= 2 bytes per "
         "neuron-step, weight gradients within ~2^-9)");
  a.sw("cuda-graphs", "cuda: replay each training step from a captured CUDA graph");
  a.sw("sample-clusters",
       "cuda, a noisy pair of spiking layers on sm_90: one sample per thread-block cluster, "
       "masks made once per step (predicted faster for small batches only)");
  a.flag("threads", "N", "CPU worker threads, at most 1024 (default 0: all cores)");
  a.flag("communicator", "KIND",
         "data parallelism under mpirun: auto (default: MPI, or NCCL for --device cuda, when a "
         "launcher started several ranks) | mpi | nccl (even for one rank) | none");
  add_memory_flag(a);
  a.flag("save", "FILE", "write the trained model to FILE (safetensors + JSON metadata)");
  a.flag("report", "FILE", "write a JSON summary with every metric to FILE");
  a.flag("plots", "DIR", "write training curves, confusion/ROC/PR plots and neuron views to DIR");
  a.flag("checkpoint", "FILE",
         "save the run to FILE as it trains (atomically), to continue it with --resume");
  a.flag("checkpoint-every", "N",
         "checkpoint every N optimiser steps (default 0: at the end of each epoch)");
  a.flag("resume", "FILE", "continue the run saved in checkpoint FILE; needs the same settings");
  a.sw("quiet", "print only the final summary");
  a.sw("help", "show this help");
  return a;
}

// ---- flag values with a meaning narrower than "a number" ------------------------------------

double positive(const Args& args, const std::string& name, double fallback) {
  const double x = args.number(name, fallback);
  if (!(x > 0)) detail::fail("flag --", name, ": must be > 0, got ", x);
  return x;
}

double non_negative(const Args& args, const std::string& name, double fallback) {
  const double x = args.number(name, fallback);
  if (!(x >= 0)) detail::fail("flag --", name, ": must be >= 0, got ", x);
  return x;
}

double fraction(const Args& args, const std::string& name, double fallback) {  // [0, 1)
  const double x = args.number(name, fallback);
  if (!(x >= 0 && x < 1)) detail::fail("flag --", name, ": must be in [0, 1), got ", x);
  return x;
}

constexpr int kMaxInt = std::numeric_limits<int>::max();

// A file written after training (--save, --report, --checkpoint): checked before training, so
// a typo in its directory does not cost the trained model.
void check_output_file(const std::string& flag, const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  if (path.empty() || p.filename().empty() || fs::is_directory(p, ec))
    detail::fail("flag --", flag, ": ", detail::quote(path), " is not a file name");
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec))
    detail::fail("flag --", flag, ": the directory ", detail::quote(dir.string()),
                 " does not exist");
  if (::access(dir.c_str(), W_OK) != 0)
    detail::fail("flag --", flag, ": cannot write in ", detail::quote(dir.string()), ": ",
                 std::strerror(errno));
}

// --plots DIR: a writable directory, or one that can be made (with its parents, as write_plots
// does) below the nearest directory that exists.
void check_plot_directory(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (path.empty()) detail::fail("flag --plots: needs a directory");
  fs::path existing = fs::path(path).lexically_normal();
  while (!existing.empty() && !fs::exists(existing, ec)) existing = existing.parent_path();
  if (existing.empty()) existing = ".";
  const bool is_target = existing == fs::path(path).lexically_normal();
  if (!fs::is_directory(existing, ec)) {
    if (is_target)
      detail::fail("flag --plots: ", detail::quote(path), " exists and is not a directory");
    detail::fail("flag --plots: cannot create ", detail::quote(path), ": ",
                 detail::quote(existing.string()), " is not a directory");
  }
  if (::access(existing.c_str(), W_OK) != 0)
    detail::fail("flag --plots: cannot ", is_target ? "write in " : "create ",
                 detail::quote(path), ": ", std::strerror(errno));
}

// The training samples' digest (Dataset::digest) in hex, so that a resume on data that changed
// under the same path is refused.
std::string data_digest(const Dataset& d) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)d.digest());
  return buf;
}

}  // namespace

int run_train(const std::vector<std::string>& argv) {
  Args args = train_flags();
  args.parse(argv);
  if (args.has("help")) {
    std::printf(
        "usage: nmsnn train [flags]\n\n"
        "Trains a predictive model — spiking (the seed's network, or any layer stack from a JSON\n"
        "description) or its non-spiking baseline — on MNIST-format images or a CSV table,\n"
        "evaluates it on held-out data and prints the metrics and the training throughput.\n\n"
        "examples:\n"
        "  nmsnn train                                   the seed's MNIST network, library recipe\n"
        "  nmsnn train --preset seed                     the seed's exact MNIST script\n"
        "  nmsnn train --data data/csv/iris_data.csv --target target --save iris.nmsnn\n"
        "  nmsnn train --data data/csv/house_price_data.csv --task regression --model mlp\n"
        "  nmsnn train --data /usr/share/datasets/fashion-mnist --model-file examples/fashion/spiking_aware.json\n"
        "  nmsnn train --checkpoint run.ckpt             saves the run as it goes; if it is killed,\n"
        "                                                the same with --resume run.ckpt continues it\n\n"
        "A run that diverges (the loss or a parameter not finite, or the loss above 1e6 times\n"
        "its first value) stops with exit status 1, naming the epoch and batch; --save then keeps\n"
        "the last good model. A resumed run (--resume, with the settings of the interrupted one)\n"
        "ends with exactly the model of an uninterrupted run on the cpu engine.\n\n"
        "flags:\n%s",
        args.help().c_str());
    return 0;
  }
  bool quiet = args.has("quiet");

  // ---- every setting, read and checked before any work is done ---------------------------
  apply_memory_flag(args);
  const std::string data_path = args.str("data", "data/mnist");
  const bool images = is_image_directory(data_path);
  const TrainingPreset p = training_preset(args.str("preset", images ? "default" : "tabular"));
  const TaskKind task = parse_task_kind(args.str("task", "multiclass"));
  const std::string target = args.str("target", "");
  std::vector<std::string> ignore;
  if (args.has("ignore")) {
    std::string list = args.str("ignore", ""), item;
    for (char c : list + ",") {
      if (c != ',') item += c;
      else if (!item.empty()) ignore.push_back(item), item.clear();
    }
  }
  const double test_fraction = fraction(args, "test-fraction", 0.2);
  const double validation_fraction = fraction(args, "validation-fraction", 0.0);
  const std::string scale_name = args.str("input-scale", p.input_scale);
  const PixelScale scale = parse_pixel_scale(scale_name);
  const int train_limit = args.integer("train-limit", 0, 0, kMaxInt);
  // -1: the whole test set (the flag itself takes only counts).
  const int test_limit = args.has("test-limit") ? args.integer("test-limit", 0, 0, kMaxInt) : -1;
  const std::string model_kind = args.str("model", "snn");
  ModelKind kind = ModelKind::snn;
  try {
    kind = parse_model_kind(model_kind);
  } catch (const Error& e) {
    detail::fail("flag --model: ", e.what());
  }
  const std::vector<int> hidden = args.integers("hidden", p.hidden, 1, int(kMaxLayerSize));
  const int time_steps = args.integer("time-steps", p.time_steps, 1, int(kMaxTimeSteps));
  SpikingLayer neuron;  // seed defaults, overridden by flags
  neuron.decay = float(args.number("decay", neuron.decay, 0.0, 1.0));
  neuron.threshold = float(positive(args, "threshold", neuron.threshold));
  neuron.penalty = float(non_negative(args, "penalty", neuron.penalty));
  neuron.reset = parse_reset_rule(args.str("reset", to_string(neuron.reset)));
  neuron.delay = !args.has("no-delay");

  NetworkOptions opts;
  opts.engine = parse_engine(args.str("device", "cpu"));
  opts.matmul = parse_matmul_precision(args.str("matmul", "fp32"));
  if (opts.matmul != MatmulPrecision::fp32 && opts.engine != Engine::cuda)
    detail::fail("flag --matmul ", to_string(opts.matmul), " needs --device cuda (the cpu engine "
                 "computes in fp32)");
  opts.saved = parse_saved_state(args.str("saved", "fp32"));
  if (opts.saved != SavedState::fp32 && opts.engine != Engine::cuda)
    detail::fail("flag --saved ", to_string(opts.saved), " needs --device cuda (the cpu engine "
                 "always keeps fp32 state)");
  opts.sample_clusters = args.has("sample-clusters");
  if (opts.sample_clusters && opts.engine != Engine::cuda)
    detail::fail("flag --sample-clusters needs --device cuda");
  opts.seed = uint64_t(args.int64("seed", 1));
  opts.threads = args.integer("threads", 0, 0, 1024);
  // Under mpirun: one rank of several, each training on its share of every batch. Only rank 0
  // prints and writes files.
  const std::shared_ptr<Communicator> comm =
      launch_communicator(args.str("communicator", "auto"), &opts);
  const int rank = comm ? comm->rank() : 0;
  const bool rank0 = rank == 0;
  if (!rank0) quiet = true;
  const int threads = opts.threads > 0 ? opts.threads : int(std::thread::hardware_concurrency());
  std::string device =
      opts.engine == Engine::cuda ? std::string("cuda, ") + to_string(opts.matmul) + " products"
                                  : std::string("cpu (") + cpu_kernel_set() + " kernels), " +
                                      std::to_string(threads) + " threads";
  if (comm)
    device += ", x " + std::to_string(comm->size()) + (comm->size() == 1 ? " rank (" : " ranks (") +
              comm->name() + ")";
  const Fault fault = fault_from_environment();

  TrainOptions t;
  t.epochs = args.integer("epochs", p.epochs, 1, 1000000);
  t.batch_size = args.integer("batch", p.batch_size, 1, int(kMaxBatchSize));
  t.seed = opts.seed;
  t.communicator = comm;
  t.fresh_optimizer_each_epoch = p.fresh_optimizer_each_epoch;
  t.cuda_graphs = args.has("cuda-graphs");
  if (t.cuda_graphs && opts.engine != Engine::cuda)
    detail::fail("flag --cuda-graphs needs --device cuda");
  // Any positive lr is accepted: one too high for the data is a divergence, found in training.
  const std::vector<double> lrs = args.numbers("lr", p.lr);
  for (double lr : lrs)
    if (!(lr > 0)) detail::fail("flag --lr: every value must be > 0, got ", lr);
  const std::string opt_name = args.str("optimizer", p.optimizer);
  if (opt_name == "sgd") {
    Sgd sgd;
    sgd.lr = lrs[0];
    sgd.momentum = fraction(args, "momentum", opt_name == p.optimizer ? p.momentum : 0.0);
    t.optimizer = sgd;
  } else if (opt_name == "adam") {
    t.optimizer = Adam{lrs[0]};
  } else {
    detail::fail("flag --optimizer: unknown optimizer ", detail::quote(opt_name),
                 " (expected sgd or adam)");
  }
  if (lrs.size() > 1) t.schedule.per_epoch.assign(lrs.begin(), lrs.end());
  t.schedule.step_epochs =
      args.integer("lr-step", lrs.size() > 1 ? 0 : p.lr_step_epochs, 0, kMaxInt);
  t.schedule.gamma = positive(args, "lr-gamma", p.lr_gamma);
  if (args.has("encoding")) parse_encoding(args.str("encoding", ""));
  if (args.has("readout")) parse_reduce(args.str("readout", ""));
  const int begin_eval = args.integer("begin-eval", 0, 0, int(kMaxTimeSteps));
  const int checkpoint_every = args.integer("checkpoint-every", 0, 0, kMaxInt);
  if (args.has("checkpoint-every") && !args.has("checkpoint"))
    detail::fail("flag --checkpoint-every needs --checkpoint FILE");
  for (const char* flag : {"save", "report", "checkpoint"})
    if (rank0 && args.has(flag)) check_output_file(flag, args.str(flag, ""));
  if (rank0 && args.has("plots")) check_plot_directory(args.str("plots", ""));
  // Read now, so that a missing or foreign file fails before the data is loaded.
  Checkpoint resumed;
  if (args.has("resume")) resumed = load_checkpoint(args.str("resume", ""));

  // ---- data and model -----------------------------------------------------------------------
  now_doing("loading the data");
  DataSplits data = load_training_data(data_path, task, target, ignore, scale, test_fraction,
                                       validation_fraction, train_limit, test_limit, opts.seed);
  if (fault.kind == "data" && fault.rank == rank && !data.train.x.empty())
    data.train.x[0] += 1.0f;
  const int inputs = data.train.features;
  const int outputs = task == TaskKind::classification ? data.train.classes
                      : task == TaskKind::binary       ? 1
                                                       : data.train.target_size;
  NetworkDescription desc;
  std::string model_name = model_kind;
  if (args.has("model-file")) {
    // Images give their shape to a model file whose convolutions need one (and must match it).
    desc = read_description(args.str("model-file", ""), inputs, data.train.shape);
    model_name = args.str("model-file", "");
    if (desc.spec.outputs() != outputs)
      detail::fail(detail::quote(args.str("model-file", "")), ": the network has ",
                   desc.spec.outputs(), " outputs but the ", to_string(task),
                   " task on this data needs ", outputs);
  } else {
    // Multiclass spiking models keep the seed's readout; binary and regression ones read their
    // one output linearly from the last spiking layer's spikes (presets.hpp says why).
    desc = predictive_network(task, kind, inputs, outputs, hidden, time_steps, neuron);
  }
  if (args.has("encoding")) desc.encoding = parse_encoding(args.str("encoding", ""));
  if (args.has("readout")) desc.spec.readout.reduce = parse_reduce(args.str("readout", ""));
  if (args.has("begin-eval")) desc.spec.readout.begin_eval = begin_eval;
  desc.spec.validate();

  Model model = Model::make(task, desc, opts);
  model.standardize_features = !data.images;
  if (data.images) model.pixel_scale = scale_name;
  if (!data.target_column.empty()) model.target_names = {data.target_column};
  // An image model reads a CSV file later (predict, eval) as its pixels in (c, y, x) order and
  // an optional "label" column.
  if (data.images) model.target_names = {"label"};

  if (!quiet) {
    std::fprintf(stderr, "nmsnn train: %s\n", data.description.c_str());
    std::fprintf(stderr,
                 "  %s model (%s): %d inputs, layers", to_string(task), model_name.c_str(), inputs);
    for (const auto& l : desc.spec.layers) std::fprintf(stderr, " %s", layer_kind(l));
    std::fprintf(stderr, ", %d outputs, T=%d, %s encoding\n", outputs, desc.spec.time_steps,
                 to_string(desc.encoding));
    std::fprintf(stderr, "  %s preset: %s, batch %d, %d epochs, seed %llu, device %s\n",
                 p.name.c_str(), describe(t.optimizer).c_str(), t.batch_size, t.epochs,
                 (unsigned long long)opts.seed, device.c_str());
  }

  // Images have no validation split by default: evaluate the test set after every epoch, as the
  // seed's script does.
  const Dataset* per_epoch = data.validation.count > 0 ? &data.validation
                             : (data.images && data.test.count > 0 ? &data.test : nullptr);
  const char* per_epoch_name = data.validation.count > 0 ? "validation" : "test";

  // ---- checkpoints: what the run is, so that only the same run resumes from one -------------
  // Everything that decides the bits of the final model; the device and the thread count do
  // not (the cpu engine gives the same bits with any thread count).
  Json settings = Json::object();
  settings.set("data", data_path).set("task", to_string(task));
  settings.set("target", data.target_column).set("train_samples", data.train.count);
  settings.set("train_data_digest", data_digest(data.train));
  settings.set("per_epoch_evaluation", per_epoch ? per_epoch->count : 0);
  settings.set("network", description_to_json(desc)).set("optimizer", describe(t.optimizer));
  settings.set("lr", Json::array_of(lrs)).set("lr_step", t.schedule.step_epochs);
  settings.set("lr_gamma", t.schedule.gamma);
  settings.set("fresh_optimizer_each_epoch", t.fresh_optimizer_each_epoch);
  settings.set("batch", t.batch_size).set("epochs", t.epochs);
  settings.set("seed", std::to_string(opts.seed));
  if (args.has("resume")) {
    const std::string path = args.str("resume", "");
    check_checkpoint_settings(resumed, settings, path);
    t.resume = &resumed.state;
    if (!quiet && resumed.state.epoch >= t.epochs)
      std::fprintf(stderr, "resuming from %s: its run is complete (%d epochs)\n", path.c_str(),
                   t.epochs);
    else if (!quiet)
      std::fprintf(stderr, "resuming from %s at epoch %d, batch %d\n", path.c_str(),
                   resumed.state.epoch + 1, resumed.state.batch + 1);
  }
  if (args.has("checkpoint")) {
    const std::string path = args.str("checkpoint", "");
    t.checkpoint_every = checkpoint_every;
    t.on_checkpoint = [&settings, path, rank0](const TrainState& s) {
      if (rank0) save_checkpoint(path, {s, settings});
    };
  }

  Progress progress(quiet);
  t.on_batch = [&](const BatchStats& b) {
    if (fault.rank == rank && b.epoch == 1 && b.batch == fault.batch) {
      if (fault.kind == "kill") raise(SIGKILL);
      if (fault.kind == "throw")
        detail::fail("NMSNN_FAULT: an error on this rank only, after batch ", b.batch);
      if (fault.kind == "diverge") {  // outputs beyond float range: the next step halts
        const std::string name = model.network().parameters().back().name;
        std::vector<float> v = model.network().parameter(name);
        std::fill(v.begin(), v.end(), 3e38f);
        model.network().set_parameter(name, v);
      }
    }
    char detail[96];
    std::snprintf(detail, sizeof detail, "loss %.4f %6.0f samples/s", b.loss, b.samples_per_second);
    progress.update("epoch " + std::to_string(b.epoch) + "/" + std::to_string(b.epochs),
                    b.samples_done, b.samples, b.elapsed_seconds, detail);
  };
  t.on_epoch = [&](const EpochStats& e) {
    if (quiet || e.resumed) return;
    std::fprintf(stderr, "epoch %d/%d: lr %g, train loss %.4f", e.epoch, e.epochs, e.lr,
                 e.train_loss);
    if (task != TaskKind::regression) std::fprintf(stderr, " acc %.4f", e.train_accuracy);
    std::fprintf(stderr, ", %.0f samples/s (%.1f s)", e.samples_per_second, e.train_seconds);
    if (e.evaluated) {
      std::fprintf(stderr, "; %s loss %.4f", per_epoch_name, e.eval.loss);
      if (task != TaskKind::regression) std::fprintf(stderr, " acc %.4f", e.eval.accuracy);
    }
    std::fprintf(stderr, "\n");
  };

  TrainResult r;
  try {
    now_doing("training");
    r = model.fit(data.train, t, per_epoch);
  } catch (const TrainingDiverged& e) {
    if (!quiet && isatty(fileno(stderr))) std::fputc('\n', stderr);  // end the progress bar
    std::ostringstream message;
    message << "training diverged at epoch " << e.epoch << ", batch " << e.batch << ": "
            << e.reason << "; lower the learning rate (--lr " << e.lr << ")";
    if (args.has("save")) {
      // The network holds the last good parameters (before the update that diverged). Said in
      // the error's one line, so a script sees one message.
      if (rank0) model.save(args.str("save", ""));
      message << "; the last good model was saved to " << detail::quote(args.str("save", ""), 400);
    }
    // Every rank of a data-parallel run diverges at the same step, with the same message.
    if (comm) throw CollectiveError(message.str());
    throw Error(message.str());
  }

  // The trained model is kept first: nothing after this point can lose it.
  if (rank0 && args.has("save")) {
    model.save(args.str("save", ""));
    if (!quiet) std::fprintf(stderr, "saved the model to %s\n", args.str("save", "").c_str());
  }

  Json report = Json::object();
  report.set("command", "train").set("data", data_path).set("task", to_string(task));
  report.set("model", model_name).set("preset", p.name).set("device", to_string(opts.engine));
  report.set("matmul", to_string(opts.matmul));
  report.set("saved", to_string(opts.saved));
  report.set("threads", threads).set("seed", double(opts.seed));
  if (opts.engine == Engine::cpu) report.set("cpu_kernels", cpu_kernel_set());
  report.set("network", description_to_json(desc));
  report.set("input_scale", data.images ? scale_name : "standardized");
  report.set("train_samples", data.train.count).set("validation_samples", data.validation.count);
  report.set("test_samples", data.test.count);
  report.set("optimizer", describe(t.optimizer)).set("batch", t.batch_size);
  report.set("epochs", t.epochs).set("train_seconds", r.train_seconds);
  report.set("train_samples_per_second", r.samples_per_second);
  report.set("data_on_device", r.data_on_device);
  if (args.has("resume")) report.set("resumed_from", args.str("resume", ""));
  Json epochs = Json::array();
  for (const EpochStats& e : r.epochs) {
    Json k = Json::object();
    k.set("epoch", e.epoch).set("lr", e.lr).set("train_loss", e.train_loss);
    k.set("train_accuracy", e.train_accuracy).set("train_seconds", e.train_seconds);
    k.set("samples_per_second", e.samples_per_second);
    if (e.evaluated) {
      k.set(std::string(per_epoch_name) + "_loss", e.eval.loss);
      k.set(std::string(per_epoch_name) + "_accuracy", e.eval.accuracy);
    }
    epochs.push_back(k);
  }
  report.set("epoch_stats", epochs);

  if (data.test.count > 0) {
    now_doing("evaluating the model");
    const ModelEvaluation ev = model.evaluate(data.test, 1000, comm.get());
    if (rank0) print_evaluation(ev, model, "test");
    add_evaluation(report, "test", ev, model);
    if (rank0 && args.has("plots")) {
      now_doing("drawing the plots");
      const auto files = write_plots(args.str("plots", ""), model, data.test, ev, 0, 0, 0);
      if (!quiet)
        std::fprintf(stderr, "wrote %zu plots to %s\n", files.size(),
                     args.str("plots", "").c_str());
    }
  } else {
    report.set("test_accuracy", nullptr);
  }
  if (rank0)
    std::printf("training throughput %.0f samples/s (%lld samples in %.1f s, device %s)\n",
                r.samples_per_second, r.samples, r.train_seconds, device.c_str());

  std::string command_line = "nmsnn train";
  for (const std::string& a : argv) command_line += " " + a;
  report.set("command_line", command_line);
  if (comm) report.set("ranks", comm->size()).set("communicator", comm->name());
  if (rank0 && args.has("report")) write_json_file(args.str("report", ""), report);
  return 0;
}

}  // namespace nmsnn::cli
