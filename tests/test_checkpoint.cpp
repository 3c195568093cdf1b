// test_checkpoint.cpp — checkpoint and resume: a training run stopped (in the library) or killed
// with SIGKILL (the `nmsnn train` program) and resumed ends with exactly the parameters of an
// uninterrupted run on the cpu engine; a checkpoint from another run is refused. Also the train
// command's other reliability rules: divergence, flag ranges, outputs checked before training.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "nmsnn/nmsnn.hpp"
#include "require_cuda.hpp"
#include "temp_dir.hpp"
#include "run_command.hpp"
#include "throws_with.hpp"
#include "training_fixtures.hpp"

extern char** environ;

namespace {


bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct Stop {};  // thrown by on_checkpoint: the run "dies" right after saving a checkpoint

struct Config {
  const char* name;
  nmsnn::OptimizerSpec optimizer;
  std::vector<double> per_epoch_lr;
  bool fresh_optimizer;
  bool evaluate;     // an evaluation set: its passes advance the noise counter
  int every;         // checkpoint_every
  int stop_after;    // checkpoints saved before the run dies
  int resume_batch;  // the batch the last checkpoint is at (0: the start of an epoch)
};

}  // namespace

class Checkpoints : public TempDirTest {};

TEST_F(Checkpoints, AResumedRunEndsWithTheParametersOfAnUninterruptedOne) {
  // 100 samples in batches of 16: 7 batches per epoch, the last one of 4 samples.
  const nmsnn::Dataset train = blobs(100, 6, 1), test = blobs(40, 6, 2);
  const nmsnn::NetworkSpec spec = nmsnn::NetworkSpec::spiking(6, {10}, 3, 6);
  const Config configs[] = {
      // step 10 = epoch 2, batch 3 done: a checkpoint in the middle of an epoch
      {"adam, mid-epoch", nmsnn::Adam{1e-2}, {}, false, true, 5, 2, 3},
      // the end of epoch 1, a fresh SGD optimiser per epoch and a per-epoch lr (the seed's recipe)
      {"sgd, each epoch", nmsnn::Sgd{0.1, 0.5}, {0.1, 0.05, 0.01}, true, true, 0, 1, 0},
      // step 14 is epoch 2's last: the checkpoint waits for the epoch's evaluation
      {"sgd, epoch's last step", nmsnn::Sgd{0.05, 0.9}, {}, false, true, 7, 2, 0},
      {"adam, no evaluation", nmsnn::Adam{5e-3}, {}, false, false, 3, 3, 2},
  };
  for (const Config& c : configs) {
    SCOPED_TRACE(c.name);
    nmsnn::TrainOptions opts;
    opts.epochs = 3;
    opts.batch_size = 16;
    opts.seed = 11;
    opts.optimizer = c.optimizer;
    opts.schedule.per_epoch = c.per_epoch_lr;
    opts.fresh_optimizer_each_epoch = c.fresh_optimizer;
    const nmsnn::Dataset* eval = c.evaluate ? &test : nullptr;

    nmsnn::Network straight(spec, {nmsnn::Engine::cpu, 7, 2});
    const nmsnn::TrainResult expected = nmsnn::train(straight, train, opts, eval);

    // The run that dies: a checkpoint file after every `every` steps.
    const std::string file = path("run.ckpt");
    nmsnn::Json settings = nmsnn::Json::object();
    settings.set("config", c.name);
    {
      nmsnn::Network dying(spec, {nmsnn::Engine::cpu, 7, 2});
      nmsnn::TrainOptions o = opts;
      o.checkpoint_every = c.every;
      int saved = 0;
      o.on_checkpoint = [&](const nmsnn::TrainState& s) {
        nmsnn::save_checkpoint(file, {s, settings});
        if (++saved == c.stop_after) throw Stop{};
      };
      EXPECT_THROW(nmsnn::train(dying, train, o, eval), Stop);
      EXPECT_EQ(saved, c.stop_after);
    }

    // A new network (another thread count, even) continues from the file alone.
    const nmsnn::Checkpoint checkpoint = nmsnn::load_checkpoint(file);
    nmsnn::check_checkpoint_settings(checkpoint, settings, file);
    EXPECT_EQ(checkpoint.state.batch, c.resume_batch);
    nmsnn::Network resumed(spec, {nmsnn::Engine::cpu, 7, 1});
    nmsnn::TrainOptions o = opts;
    o.resume = &checkpoint.state;
    int replayed = 0, fresh = 0;
    o.on_epoch = [&](const nmsnn::EpochStats& e) { ++(e.resumed ? replayed : fresh); };
    const nmsnn::TrainResult got = nmsnn::train(resumed, train, o, eval);

    EXPECT_TRUE(same_bits(all_parameters(resumed), all_parameters(straight)))
        << "the resumed run's parameters differ from the uninterrupted run's";
    EXPECT_EQ(replayed, checkpoint.state.epoch);
    EXPECT_EQ(replayed + fresh, 3);
    ASSERT_EQ(got.epochs.size(), expected.epochs.size());
    for (size_t e = 0; e < got.epochs.size(); ++e) {
      EXPECT_EQ(got.epochs[e].train_loss, expected.epochs[e].train_loss) << "epoch " << e + 1;
      EXPECT_EQ(got.epochs[e].train_accuracy, expected.epochs[e].train_accuracy);
      EXPECT_EQ(got.epochs[e].lr, expected.epochs[e].lr);
      EXPECT_EQ(got.epochs[e].eval.loss, expected.epochs[e].eval.loss) << "epoch " << e + 1;
    }
    EXPECT_EQ(resumed.noise_passes(), straight.noise_passes());
  }
}

namespace {
// An optimiser's state read back, written into another optimiser of another network, reads back
// the same: the engine's buffers cross in both directions in the public layout.
void expect_snapshot_round_trip(nmsnn::Engine engine) {
  const nmsnn::NetworkSpec spec = nmsnn::NetworkSpec::spiking(6, {10}, 3, 6);
  nmsnn::Network net(spec, {engine, 7, 1});
  nmsnn::TrainOptions opts;
  opts.epochs = 1;
  opts.batch_size = 16;
  opts.optimizer = nmsnn::Adam{1e-2};
  nmsnn::TrainState last;
  opts.checkpoint_every = 3;
  opts.on_checkpoint = [&](const nmsnn::TrainState& s) { last = s; };
  nmsnn::train(net, blobs(64, 6, 4), opts);
  ASSERT_EQ(last.optimizer.steps, 3);
  ASSERT_EQ(last.optimizer.m.size(), net.parameters().size());
  bool moved = false;
  for (const auto& v : last.optimizer.v)
    for (float x : v) moved |= x != 0;
  EXPECT_TRUE(moved) << "Adam's second moments are all zero after 3 steps";

  nmsnn::Network other(spec, {engine, 8, 1});
  nmsnn::Optimizer o(other, nmsnn::Adam{1e-2});
  o.restore(last.optimizer);
  const nmsnn::OptimizerSnapshot back = o.snapshot();
  EXPECT_EQ(back.steps, 3);
  EXPECT_EQ(back.lr, last.optimizer.lr);
  for (size_t i = 0; i < back.m.size(); ++i) {
    EXPECT_TRUE(same_bits(back.m[i], last.optimizer.m[i])) << i;
    EXPECT_TRUE(same_bits(back.v[i], last.optimizer.v[i])) << i;
  }
  nmsnn::OptimizerSnapshot wrong = last.optimizer;
  wrong.v.back().pop_back();
  expect_throws([&] { o.restore(wrong); }, {"optimizer state: the buffers of layers.1.bias"});
}
}  // namespace

TEST(OptimizerSnapshots, RoundTripOnTheCpuEngine) {
  expect_snapshot_round_trip(nmsnn::Engine::cpu);
}

TEST(OptimizerSnapshots, RoundTripOnTheCudaEngine) {
  REQUIRE_CUDA();
  expect_snapshot_round_trip(nmsnn::Engine::cuda);
}

// The cuda engine resumes too; its results match an uninterrupted run within its tolerance
// (bit-identical where its kernels are deterministic, which this test does not demand).
TEST_F(Checkpoints, AResumedRunOnTheCudaEngineMatchesAnUninterruptedOne) {
  REQUIRE_CUDA();
  const nmsnn::Dataset train = blobs(100, 6, 1), test = blobs(40, 6, 2);
  const nmsnn::NetworkSpec spec = nmsnn::NetworkSpec::spiking(6, {10}, 3, 6);
  nmsnn::TrainOptions opts;
  opts.epochs = 3;
  opts.batch_size = 16;
  opts.optimizer = nmsnn::Adam{1e-2};
  nmsnn::Network straight(spec, {nmsnn::Engine::cuda, 7});
  nmsnn::train(straight, train, opts, &test);
  const std::string file = path("cuda.ckpt");
  {
    nmsnn::Network dying(spec, {nmsnn::Engine::cuda, 7});
    nmsnn::TrainOptions o = opts;
    o.checkpoint_every = 10;
    o.on_checkpoint = [&](const nmsnn::TrainState& s) {
      nmsnn::save_checkpoint(file, {s, nmsnn::Json::object()});
      throw Stop{};
    };
    EXPECT_THROW(nmsnn::train(dying, train, o, &test), Stop);
  }
  const nmsnn::Checkpoint c = nmsnn::load_checkpoint(file);
  nmsnn::Network resumed(spec, {nmsnn::Engine::cuda, 7});
  nmsnn::TrainOptions o = opts;
  o.resume = &c.state;
  nmsnn::train(resumed, train, o, &test);
  const std::vector<float> a = all_parameters(straight), b = all_parameters(resumed);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(b[i], a[i], 1e-4f * (1 + std::fabs(a[i]))) << "parameter value " << i;
}

TEST_F(Checkpoints, AResumeThatDoesNotFitIsRefused) {
  const nmsnn::Dataset train = blobs(64, 6, 3);
  const nmsnn::NetworkSpec spec = nmsnn::NetworkSpec::spiking(6, {10}, 3, 6);
  nmsnn::TrainOptions opts;
  opts.epochs = 2;
  opts.batch_size = 16;
  opts.checkpoint_every = 3;
  nmsnn::Json settings = nmsnn::Json::object();
  settings.set("batch", 16).set("data", "blobs.csv");
  const std::string file = path("run.ckpt");
  opts.on_checkpoint = [&](const nmsnn::TrainState& s) {
    nmsnn::save_checkpoint(file, {s, settings});
    throw Stop{};
  };
  {
    nmsnn::Network net(spec, {nmsnn::Engine::cpu, 7, 1});
    EXPECT_THROW(nmsnn::train(net, train, opts), Stop);
  }
  nmsnn::Checkpoint c = nmsnn::load_checkpoint(file);
  EXPECT_EQ(c.state.batch, 3);
  opts.on_checkpoint = nullptr;
  opts.resume = &c.state;

  // Settings that differ, named with both values.
  nmsnn::Json other = settings;
  other.set("batch", 32);
  expect_throws([&] { nmsnn::check_checkpoint_settings(c, other, file); },
                {"checkpoint '" + file + "' is from another run: its batch is '16', this run's "
                 "is '32'"});
  other = settings;
  other.set("seed", "2");
  expect_throws([&] { nmsnn::check_checkpoint_settings(c, other, file); },
                {"its seed is not set, this run's is '2'"});

  // The library's own checks, for callers without settings.
  nmsnn::TrainOptions bigger = opts;
  bigger.batch_size = 32;  // 2 batches per epoch: batch 3 does not exist
  nmsnn::Network net(spec, {nmsnn::Engine::cpu, 7, 1});
  expect_throws([&] { nmsnn::train(net, train, bigger); }, {"resume: the state is at batch 4"});
  nmsnn::TrainOptions smaller = opts;
  smaller.batch_size = 8;
  expect_throws([&] { nmsnn::train(net, train, smaller); }, {"a different batch size"});
  nmsnn::Network wider(nmsnn::NetworkSpec::spiking(6, {12}, 3, 6), {nmsnn::Engine::cpu, 7, 1});
  expect_throws([&] { nmsnn::train(wider, train, opts); },
                {"does not match the network's layers.0.weight"});
  nmsnn::TrainOptions sgd = opts;
  sgd.epochs = 1;  // the state is in epoch 1 of 2
  EXPECT_NO_THROW(nmsnn::train(net, train, sgd));

  // Files that are not checkpoints, or broken ones, name the file and the problem.
  const nmsnn::Model model = nmsnn::Model::make(nmsnn::TaskKind::classification, {spec});
  model.save(path("model.nmsnn"));
  expect_throws([&] { nmsnn::load_checkpoint(path("model.nmsnn")); },
                {"model.nmsnn", "not an nmsnn checkpoint"});
  nmsnn::SafetensorsFile f = nmsnn::read_safetensors(file);
  nmsnn::Json state = nmsnn::parse_json(f.metadata["state"]);
  nmsnn::Json::Object kept;
  for (auto& [key, value] : state.as_object())
    if (key != "noise_passes") kept.emplace_back(key, value);
  state.as_object() = kept;
  f.metadata["state"] = state.dump();
  nmsnn::write_safetensors(path("broken.ckpt"), f.tensors, f.metadata);
  expect_throws([&] { nmsnn::load_checkpoint(path("broken.ckpt")); },
                {"broken.ckpt", "checkpoint metadata 'state' lacks 'noise_passes'"});
  state.set("noise_passes", 1e300);
  f.metadata["state"] = state.dump();
  nmsnn::write_safetensors(path("broken.ckpt"), f.tensors, f.metadata);
  expect_throws([&] { nmsnn::load_checkpoint(path("broken.ckpt")); },
                {"broken.ckpt", "'state'.noise_passes must be a whole number in [0, "});
  state.set("noise_passes", 12);
  f.metadata["state"] = state.dump();
  f.tensors.pop_back();  // the last optimiser buffer
  nmsnn::write_safetensors(path("broken.ckpt"), f.tensors, f.metadata);
  expect_throws([&] { nmsnn::load_checkpoint(path("broken.ckpt")); },
                {"broken.ckpt", "has no tensor 'optimizer.v."});
}

// ---- the nmsnn program ---------------------------------------------------------------------
namespace {

const std::string kNmsnn = NMSNN_BINARY_DIR "/tools/nmsnn";

// stdout and stderr together.
CommandRun run_cli(const std::string& args) { return run_command(kNmsnn + " " + args + " 2>&1"); }

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::string w;
  for (char ch : text + " ") {
    if (ch != ' ') w += ch;
    else if (!w.empty()) out.push_back(w), w.clear();
  }
  return out;
}

// A CSV of `rows` samples, 8 features, 3 classes (the largest of the first three features).
void write_csv(const std::string& file, int rows) {
  const nmsnn::Dataset d = blobs(rows, 8, 5);
  std::ofstream out(file);
  out << "a,b,c,d,e,f,g,h,label\n";
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < 8; ++j) out << d.x[size_t(i) * 8 + j] << ",";
    out << "c" << d.labels[i] << "\n";
  }
}

}  // namespace

class CliCheckpoints : public TempDirTest {};

TEST_F(CliCheckpoints, AKilledRunResumesToTheModelOfAnUninterruptedOne) {
  write_csv(path("data.csv"), 1200);
  const std::string run = "train --data " + path("data.csv") +
                          " --epochs 25 --time-steps 12 --hidden 24 --batch 32 --threads 1";

  CommandRun r = run_cli(run + " --quiet --save " + path("straight.nmsnn"));
  ASSERT_EQ(r.status, 0) << r.output;

  // The same run, killed with SIGKILL as soon as it has written a checkpoint.
  const std::string ckpt = path("run.ckpt"), saved = path("resumed.nmsnn");
  std::vector<std::string> argv = words(run + " --quiet --checkpoint " + ckpt +
                                        " --checkpoint-every 9 --save " + saved);
  argv.insert(argv.begin(), kNmsnn);
  std::vector<char*> cargv;
  for (std::string& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, kNmsnn.c_str(), nullptr, nullptr, cargv.data(), environ), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!std::filesystem::exists(ckpt) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the run ended before it could be killed (status " << status << ")";
  ASSERT_TRUE(std::filesystem::exists(ckpt));
  ASSERT_FALSE(std::filesystem::exists(saved));

  // Changed settings are refused, naming the setting.
  r = run_cli(run + " --lr 0.01 --resume " + ckpt);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("is from another run: its optimizer is 'adam(lr=0.001"),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("this run's is 'adam(lr=0.01"), std::string::npos) << r.output;

  r = run_cli(run + " --checkpoint " + ckpt + " --checkpoint-every 9 --save " + saved +
            " --resume " + ckpt);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("resuming from " + ckpt + " at epoch "), std::string::npos) << r.output;

  const nmsnn::SafetensorsFile a = nmsnn::read_safetensors(path("straight.nmsnn"));
  const nmsnn::SafetensorsFile b = nmsnn::read_safetensors(saved);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
    EXPECT_TRUE(same_bits(a.tensors[i].data, b.tensors[i].data)) << a.tensors[i].name;
  }
  // The whole history is there, with the same losses (only the timings differ).
  const nmsnn::Json ha = nmsnn::parse_json(a.metadata.at("history"));
  const nmsnn::Json hb = nmsnn::parse_json(b.metadata.at("history"));
  ASSERT_EQ(ha.size(), 25u);
  ASSERT_EQ(hb.size(), 25u);
  for (size_t e = 0; e < 25; ++e) {
    EXPECT_EQ(hb.at(e).at("epoch").as_int(), int64_t(e + 1));
    EXPECT_EQ(ha.at(e).at("train_loss").as_number(), hb.at(e).at("train_loss").as_number());
  }
}

TEST_F(CliCheckpoints, ADivergingRunStopsAndKeepsItsLastGoodModel) {
  const std::string iris = NMSNN_SOURCE_DIR "/data/csv/iris_data.csv";
  const std::string base = "train --data " + iris + " --target target --epochs 3 --time-steps 8"
                           " --threads 1 --lr 1e30";
  CommandRun r = run_cli(base + " --save " + path("last_good.nmsnn"));
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("training diverged at epoch 1, batch 2: the network's outputs became "
                          "nan; lower the learning rate (--lr 1e+30)"),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the last good model was saved to"), std::string::npos) << r.output;
  const nmsnn::Model m = nmsnn::Model::load(path("last_good.nmsnn"));
  for (const auto& p : m.network().parameters())
    for (float v : m.network().parameter(p.name)) ASSERT_TRUE(std::isfinite(v)) << p.name;

  // The non-spiking baseline once failed inside the loss function instead.
  r = run_cli(base + " --model mlp --quiet");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("training diverged at epoch 1, batch "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(--lr 1e+30)"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("nll_log_softmax"), std::string::npos) << r.output;
}

TEST_F(CliCheckpoints, FlagsOutsideTheirMeaningAndUnwritableOutputsFailBeforeTraining) {
  const std::string iris = "train --data " NMSNN_SOURCE_DIR "/data/csv/iris_data.csv --epochs 1 ";
  std::ofstream(path("file")) << "x";
  struct Case {
    std::string args, message;
  } cases[] = {
      {"--lr 0", "flag --lr: every value must be > 0, got 0"},
      {"--lr 0.1,-1", "flag --lr: every value must be > 0, got -1"},
      {"--lr-step -1", "flag --lr-step: must be in [0, 2147483647], got -1"},
      {"--lr-gamma 0", "flag --lr-gamma: must be > 0, got 0"},
      {"--optimizer sgd --momentum 1", "flag --momentum: must be in [0, 1), got 1"},
      {"--epochs 0", "flag --epochs: must be in [1, 1000000], got 0"},
      {"--batch 0", "flag --batch: must be in [1, 16777216], got 0"},
      {"--hidden 10,2000000000",
       "flag --hidden: every value must be in [1, 16777216], got 2000000000"},
      {"--time-steps 2000000", "flag --time-steps: must be in [1, 1048576], got 2000000"},
      {"--threads 2000", "flag --threads: must be in [0, 1024], got 2000"},
      {"--test-limit -1", "flag --test-limit: must be in [0, 2147483647], got -1"},
      {"--train-limit -5", "flag --train-limit: must be in [0, 2147483647], got -5"},
      {"--test-fraction 1", "flag --test-fraction: must be in [0, 1), got 1"},
      {"--validation-fraction -0.1", "flag --validation-fraction: must be in [0, 1), got -0.1"},
      {"--decay 1.5", "flag --decay: must be in [0, 1], got 1.5"},
      {"--threshold 0", "flag --threshold: must be > 0, got 0"},
      {"--penalty -1", "flag --penalty: must be >= 0, got -1"},
      {"--begin-eval -2", "flag --begin-eval: must be in [0, 1048576], got -2"},
      {"--max-memory lots", "--max-memory"},
      {"--checkpoint-every 5", "flag --checkpoint-every needs --checkpoint FILE"},
      {"--checkpoint-every -5 --checkpoint " + path("c"),
       "flag --checkpoint-every: must be in [0, "},
      {"--save " + path("missing/m.nmsnn"),
       "flag --save: the directory '" + path("missing") + "' does not exist"},
      {"--report " + path(""), "flag --report: '" + path("") + "' is not a file name"},
      {"--plots " + path("file"),
       "flag --plots: '" + path("file") + "' exists and is not a directory"},
      {"--plots " + path("file/plots"), "flag --plots: cannot create '" + path("file/plots") +
                                            "': '" + path("file") + "' is not a directory"},
      {"--resume " + path("none.ckpt"), "none.ckpt"},
  };
  for (const Case& c : cases) {
    const CommandRun r = run_cli(iris + c.args);
    EXPECT_EQ(r.status, 1) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.find("epoch 1/1"), std::string::npos) << c.args << ": trained first";
  }
  // Outputs that can be written: the model is saved before the plots (a failing plot cannot
  // lose it), into plot directories made with their parents.
  const CommandRun ok = run_cli(iris + "--time-steps 4 --save " + path("m.nmsnn") + " --plots " +
                            path("new/plots") + " --report " + path("r.json"));
  ASSERT_EQ(ok.status, 0) << ok.output;
  const size_t saved_at = ok.output.find("saved the model to " + path("m.nmsnn"));
  ASSERT_NE(saved_at, std::string::npos) << ok.output;
  EXPECT_LT(saved_at, ok.output.find(" plots to " + path("new/plots"))) << ok.output;
  EXPECT_TRUE(std::filesystem::exists(path("new/plots/confusion_matrix.svg")));
  // A huge learning rate is a value to try, not a flag error: it diverges in training.
  EXPECT_NE(run_cli(iris + "--lr 1e300 --time-steps 4").output.find("training diverged"),
            std::string::npos);
}
