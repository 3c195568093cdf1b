// fashion_mnist_tutorial.cpp — PyTorchSpiking's "Classifying Fashion MNIST with spiking
// activations" tutorial (../shared/seeds/004_*.txt) with nmsnn, on the real test set.
//
//   build/examples/fashion_mnist_tutorial [--recipe tutorial|longer] [--data DIR] [--epochs N]
//                                         [--train-limit N] [--test-limit N] [--markdown]
//                                         [--device cpu|cuda] [--models DIR]
//
// Models (examples/fashion/*.json, also usable with `nmsnn train --model-file`): a non-spiking
// 784-128-10 ReLU network; the same with a SpikingActivation, trained without spiking awareness
// and evaluated at dt = 0.001, 0.01, 0.1 and 1; spiking-aware training at dt = 0.01; with spike-
// rate regularization (target 20 Hz); with a Lowpass filter (tau 0.1). Images repeat over 10
// steps; Adam lr 1e-3, batch 32, 10 epochs, as in the tutorial (--recipe tutorial). The tutorial
// mistakenly scores its "test" accuracy on training images; this program uses the 10,000 real
// test images, on which the tutorial's recipe lands 1-3 points lower. --recipe longer (the
// default) trains the same models for 40 epochs, halving the learning rate every 10.
//
// The model files are found with --models DIR, else in examples/fashion under the working
// directory (the repository root, where scripts run it, also on a machine that did not build it),
// else in the source tree this program was built from.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "nmsnn/nmsnn.hpp"

namespace {

struct Row {
  std::string model, dt;
  double accuracy = 0;
  bool spiking = false;
  double min = 0, mean = 0, max = 0;
  double train_seconds = 0;
};

Row evaluate(nmsnn::Model& model, const nmsnn::Dataset& test, const std::string& name,
             const std::string& dt, double seconds) {
  const nmsnn::ModelEvaluation e = model.evaluate(test);
  Row r{name, dt, e.classes.accuracy};
  r.train_seconds = seconds;
  for (const auto& rates : e.rates)
    if (rates.hertz) r.spiking = true, r.min = rates.min, r.mean = rates.mean, r.max = rates.max;
  return r;
}

// The models directory when no --models is given: examples/fashion under the working directory,
// else the build's source tree (a compile-time path, which a binary copied to another machine
// may not have). Empty if neither holds the models.
std::string default_models_dir() {
  for (const std::string dir : {std::string("examples/fashion"),
                                std::string(NMSNN_SOURCE_DIR "/examples/fashion")})
    if (std::filesystem::exists(dir + "/spiking.json")) return dir;
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string models;  // --models, else default_models_dir()
  int epochs = -1, train_limit = 0, test_limit = 0;
  std::string recipe = "longer";
  bool markdown = false;
  std::string device = "cpu";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--data") data = next();
    else if (a == "--recipe") recipe = next();
    else if (a == "--models") models = next();
    else if (a == "--epochs") epochs = std::stoi(next());
    else if (a == "--train-limit") train_limit = std::stoi(next());
    else if (a == "--test-limit") test_limit = std::stoi(next());
    else if (a == "--markdown") markdown = true;
    else if (a == "--device") device = next();
    else {
      std::fprintf(stderr, "usage: %s [--recipe tutorial|longer] [--data DIR] [--epochs N] "
                           "[--train-limit N] [--test-limit N] [--markdown] [--device cpu|cuda] "
                           "[--models DIR]\n",
                   argv[0]);
      return 2;
    }
  }
  if (recipe != "tutorial" && recipe != "longer") {
    std::fprintf(stderr, "--recipe must be tutorial or longer, got '%s'\n", recipe.c_str());
    return 2;
  }
  const bool longer = recipe == "longer";
  if (epochs < 0) epochs = longer ? 40 : 10;
  if (models.empty()) models = default_models_dir();
  if (models.empty()) {
    std::fprintf(stderr, "no model files: examples/fashion is not under the working directory "
                         "nor at %s; run from the repository root or give --models DIR\n",
                 NMSNN_SOURCE_DIR "/examples/fashion");
    return 2;
  }
  try {
    const nmsnn::Engine engine = nmsnn::parse_engine(device);
    const nmsnn::Dataset train = nmsnn::load_mnist(data, true, nmsnn::PixelScale::unit, train_limit);
    const nmsnn::Dataset test = nmsnn::load_mnist(data, false, nmsnn::PixelScale::unit, test_limit);
    std::fprintf(stderr, "Fashion-MNIST: %d training, %d test images; %s recipe, %d epochs; %s\n",
                 train.count, test.count, recipe.c_str(), epochs, nmsnn::to_string(engine));
    nmsnn::TrainOptions opts;
    opts.epochs = epochs;
    opts.batch_size = 32;
    opts.optimizer = nmsnn::Adam{1e-3};
    if (longer) {
      opts.schedule.step_epochs = 10;
      opts.schedule.gamma = 0.5;
    }
    opts.on_epoch = [](const nmsnn::EpochStats& e) {
      std::fprintf(stderr, "  epoch %d: train loss %.4f acc %.4f (%.0f samples/s)\n", e.epoch,
                   e.train_loss, e.train_accuracy, e.samples_per_second);
    };
    std::vector<Row> rows;
    auto trained = [&](const std::string& file, const char* name) {
      std::fprintf(stderr, "%s (%s)\n", name, file.c_str());
      nmsnn::Model m = nmsnn::Model::make(nmsnn::TaskKind::classification,
                                          nmsnn::read_description(models + "/" + file, 784),
                                          {engine, 1});
      m.standardize_features = false;
      const auto t0 = std::chrono::steady_clock::now();
      m.fit(train, opts);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return std::make_pair(std::move(m), s);
    };

    {
      auto [m, s] = trained("nonspiking.json", "non-spiking");
      rows.push_back(evaluate(m, test, "non-spiking", "-", s));
    }
    {
      auto [m, s] = trained("spiking.json", "spiking, no spiking-aware training");
      for (float dt : {0.001f, 0.01f, 0.1f, 1.0f}) {
        m.network().set_dt(1, dt);  // changing dt at inference, as the tutorial does
        char buf[16];
        std::snprintf(buf, sizeof buf, "%g", dt);
        rows.push_back(evaluate(m, test, "spiking", buf, s));
      }
    }
    {
      auto [m, s] = trained("spiking_aware.json", "spiking-aware training");
      rows.push_back(evaluate(m, test, "spiking-aware", "0.01", s));
    }
    {
      auto [m, s] = trained("regularized.json", "rate regularization (20 Hz)");
      rows.push_back(evaluate(m, test, "spiking-aware + rate reg. (20 Hz)", "0.01", s));
    }
    {
      auto [m, s] = trained("lowpass.json", "lowpass filter");
      rows.push_back(evaluate(m, test, "spiking-aware + lowpass (tau 0.1)", "0.01", s));
    }

    if (markdown) {
      std::printf("| model | dt | test accuracy | rate min (Hz) | rate mean (Hz) | rate max (Hz) | training (s) |\n");
      std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
    } else {
      std::printf("%-36s %-6s %-9s %10s %10s %10s %9s\n", "model", "dt", "accuracy", "rate min",
                  "rate mean", "rate max", "train s");
    }
    for (const Row& r : rows) {
      char rates[64] = "-";
      if (markdown) {
        if (r.spiking)
          std::printf("| %s | %s | %.4f | %.2f | %.2f | %.2f | %.0f |\n", r.model.c_str(),
                      r.dt.c_str(), r.accuracy, r.min, r.mean, r.max, r.train_seconds);
        else
          std::printf("| %s | %s | %.4f | - | - | - | %.0f |\n", r.model.c_str(), r.dt.c_str(),
                      r.accuracy, r.train_seconds);
        continue;
      }
      if (r.spiking) std::snprintf(rates, sizeof rates, "%10.2f %10.2f %10.2f", r.min, r.mean, r.max);
      std::printf("%-36s %-6s %-9.4f %s %9.0f\n", r.model.c_str(), r.dt.c_str(), r.accuracy,
                  r.spiking ? rates : "         -          -          -", r.train_seconds);
    }
  } catch (const nmsnn::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    if (std::strstr(e.what(), "fashion-mnist"))
      std::fprintf(stderr, "install the data with: bash scripts/install_deps.sh --fashion-mnist\n");
    return 1;
  }
  return 0;
}
