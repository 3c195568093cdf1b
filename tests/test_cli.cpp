// test_cli.cpp — the `nmsnn` program as a user runs it: exit codes, messages, the JSON report.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "run_command.hpp"

namespace {

using CliRun = CommandRun;

// stdout and stderr together.
CliRun nmsnn(const std::string& args) {
  return run_command(std::string(NMSNN_BINARY_DIR "/tools/nmsnn ") + args + " 2>&1");
}

// Runs nmsnn with stdout discarded: what it says on stderr alone.
CliRun nmsnn_stderr(const std::string& args, const std::string& prefix = "") {
  return run_command(prefix + std::string(NMSNN_BINARY_DIR "/tools/nmsnn ") + args +
                     " 2>&1 >/dev/null");
}

// The README's promise for every error: exit status 1 or 2, one line on stderr naming the problem
// (`piece`), no internal error.
void expect_one_line_error(const CliRun& r, const std::string& piece, const std::string& args) {
  EXPECT_TRUE(r.status == 1 || r.status == 2) << args << " -> status " << r.status << "\n" << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << args << "\n" << r.output;
  EXPECT_EQ(r.output.back(), '\n') << args << "\n" << r.output;
  EXPECT_NE(r.output.find(piece), std::string::npos) << args << "\n" << r.output;
  EXPECT_EQ(r.output.find("internal error"), std::string::npos) << args << "\n" << r.output;
  for (const char c : r.output)
    EXPECT_TRUE(c == '\n' || static_cast<unsigned char>(c) >= 0x20) << args << ": control byte "
                                                                    << int(c) << " in " << r.output;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::string kData = "--data " NMSNN_SOURCE_DIR "/data/mnist";

}  // namespace

TEST(Cli, TrainsAndWritesAReport) {
  const std::string report = NMSNN_BINARY_DIR "/cli_report.json";
  std::remove(report.c_str());
  const CliRun r = nmsnn("train " + kData +
                      " --train-limit 1000 --test-limit 300 --epochs 1 --time-steps 16"
                      " --hidden 32 --batch 50 --report " + report);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("test accuracy"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("samples/s"), std::string::npos) << r.output;
  const std::string json = read_file(report);
  for (const char* key : {"\"test_accuracy\": 0.", "\"train_samples_per_second\": ", "\"epochs\": 1",
                          "\"device\": \"cpu\"", "\"train_samples\": 1000", "\"test_samples\": 300",
                          "\"time_steps\": 16", "\"epoch_stats\": [",
                          "\"data_on_device\": false"})
    EXPECT_NE(json.find(key), std::string::npos) << key << " missing in " << json;
}

TEST(Cli, HelpListsTheFlags) {
  const CliRun r = nmsnn("train --help");
  EXPECT_EQ(r.status, 0);
  for (const char* flag : {"--data", "--epochs", "--train-limit", "--time-steps", "--batch",
                           "--hidden", "--lr", "--seed", "--device", "--report", "--preset"})
    EXPECT_NE(r.output.find(flag), std::string::npos) << flag;
  EXPECT_EQ(nmsnn("").status, 2);
  EXPECT_EQ(nmsnn("frobnicate").status, 2);
}

TEST(Cli, BadArgumentsFailWithAMessage) {
  struct Case {
    std::string args, message;
  } cases[] = {
      {"train --epoch 3", "unknown flag '--epoch' (did you mean --epochs?)"},
      {"train --epochs", "needs a value"},
      {"train --epochs three", "'three' is not a whole number"},
      {"train --lr 0.1,x", "'x' is not a finite number"},
      {"train --data /nonexistent/dir", "/nonexistent/dir"},
      {"train " + kData + " --time-steps 0 --train-limit 10", "--time-steps"},
      {"train " + kData + " --hidden 0 --train-limit 10", "--hidden"},
      {"train " + kData + " --begin-eval 8 --time-steps 8 --train-limit 10", "begin_eval"},
      {"train " + kData + " --device tpu --train-limit 10", "unknown device 'tpu'"},
      {"train " + kData + " --matmul fp16 --train-limit 10", "unknown matmul precision 'fp16'"},
      {"train " + kData + " --matmul tf32 --train-limit 10", "--matmul tf32 needs --device cuda"},
      {"train " + kData + " --sample-clusters --train-limit 10",
       "--sample-clusters needs --device cuda"},
      {"train " + kData + " --preset fast", "unknown preset 'fast'"},
      {"train " + kData + " --input-scale big", "big"},
      {"train " + kData + " --optimizer rmsprop --train-limit 10", "rmsprop"},
      {"train " + kData + " --train-limit -5", "--train-limit"},
  };
  for (const Case& c : cases) {
    const CliRun r = nmsnn(c.args);
    EXPECT_EQ(r.status, 1) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
  }
}

TEST(Cli, TruncatedOrForeignDataFilesAreRejected) {
  const std::string dir = NMSNN_BINARY_DIR "/cli_bad_data";
  std::system(("mkdir -p " + dir).c_str());
  // A truncated copy of the real label file (gzip cut in the middle) and a non-IDX image file.
  std::system(("head -c 2000 " NMSNN_SOURCE_DIR "/data/mnist/train-labels-idx1-ubyte.gz > " + dir +
               "/train-labels-idx1-ubyte.gz").c_str());
  std::ofstream(dir + "/train-images-idx3-ubyte") << "this is not an IDX file\n";
  const CliRun r = nmsnn("train --data " + dir);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("train-images-idx3-ubyte"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("not an IDX file"), std::string::npos) << r.output;
}

// ---- tabular data: train, save, eval, predict, plot ------------------------------------------
namespace {
const std::string kIris = NMSNN_SOURCE_DIR "/data/csv/iris_data.csv";
const std::string kHouse = NMSNN_SOURCE_DIR "/data/csv/house_price_data.csv";
}  // namespace

TEST(Cli, CsvModelsTrainSaveEvaluatePredictAndPlot) {
  const std::string dir = NMSNN_BINARY_DIR "/cli_csv";
  std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
  CliRun r = nmsnn("train --data " + kIris + " --target target --epochs 20 --time-steps 16 --save " +
                   dir + "/iris.nmsnn --report " + dir + "/iris.json --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  std::string json = read_file(dir + "/iris.json");
  for (const char* key : {"\"test_accuracy\": ", "\"test_auc\": ", "\"test_macro_f1\": ",
                          "\"test_confusion_matrix\": [", "\"test_per_class\": [",
                          "\"test_spike_rates\": [", "\"task\": \"multiclass\""})
    EXPECT_NE(json.find(key), std::string::npos) << key << " missing in " << json;

  r = nmsnn("eval --model " + dir + "/iris.nmsnn --data " + kIris + " --report " + dir + "/eval.json");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("eval accuracy"), std::string::npos) << r.output;
  EXPECT_NE(read_file(dir + "/eval.json").find("\"test_samples\": 150"), std::string::npos);

  // Prediction input: the feature columns only, in another order.
  std::ofstream(dir + "/rows.csv") << "petal_width,sepal_length,sepal_width,petal_length\n"
                                      "0.2,5.1,3.5,1.4\n2.3,6.7,3.0,5.2\n";
  r = nmsnn("predict --model " + dir + "/iris.nmsnn --data " + dir + "/rows.csv --out " + dir + "/pred.csv");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string pred = read_file(dir + "/pred.csv");
  EXPECT_EQ(pred.rfind("prediction,p_0,p_1,p_2\n0,", 0), 0u) << pred;  // a setosa first
  EXPECT_EQ(std::count(pred.begin(), pred.end(), '\n'), 3) << pred;

  r = nmsnn("plot --model " + dir + "/iris.nmsnn --data " + kIris + " --out " + dir + "/plots");
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* f : {"training_loss.svg", "training_accuracy.svg", "confusion_matrix.svg",
                        "roc_curve.svg", "layer0_state.svg", "layer0_spikes.svg",
                        "neuron_trace.svg"})
    EXPECT_EQ(read_file(dir + "/plots/" + f).rfind("<svg", 0), 0u) << f;
}

TEST(Cli, RegressionAndBinaryReportTheirMetrics) {
  const std::string dir = NMSNN_BINARY_DIR "/cli_csv2";
  std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
  CliRun r = nmsnn("train --data " + kHouse + " --task regression --target house_price --epochs 5"
                   " --time-steps 8 --report " + dir + "/house.json --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string house = read_file(dir + "/house.json");
  for (const char* key : {"\"test_r2\": ", "\"test_rmse\": ", "\"test_mae\": ", "\"test_mse\": "})
    EXPECT_NE(house.find(key), std::string::npos) << key;
  EXPECT_NE(r.output.find("R2"), std::string::npos);
  // Binary: iris setosa (class 0) against the rest, as a two-class CSV.
  std::ofstream bin(dir + "/setosa.csv");
  bin << "a,b,c,d,setosa\n";
  std::istringstream iris(read_file(kIris));
  std::string line;
  std::getline(iris, line);
  while (std::getline(iris, line))
    if (!line.empty()) bin << line.substr(0, line.rfind(',')) << "," << (line.back() == '0' ? "yes" : "no") << "\n";
  bin.close();
  r = nmsnn("train --data " + dir + "/setosa.csv --task binary --epochs 10 --time-steps 8 --model mlp"
            " --report " + dir + "/bin.json --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string b = read_file(dir + "/bin.json");
  for (const char* key : {"\"test_accuracy\": ", "\"test_auc\": ", "\"test_average_precision\": ",
                          "\"model\": \"mlp\""})
    EXPECT_NE(b.find(key), std::string::npos) << key << " in " << b;
}

TEST(Cli, ModelFilesAndTabularErrors) {
  const std::string dir = NMSNN_BINARY_DIR "/cli_csv3";
  std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
  std::ofstream(dir + "/net.json") << R"({"time_steps": 6, "encoding": "repeated", "layers": [
      {"type": "dense", "size": 8}, {"type": "spiking_activation", "dt": 0.05},
      {"type": "temporal_avg_pool"}, {"type": "dense", "size": 3}]})";
  CliRun r = nmsnn("train --data " + kIris + " --model-file " + dir + "/net.json --epochs 3 --quiet");
  EXPECT_EQ(r.status, 0) << r.output;
  std::ofstream(dir + "/bad.json") << R"({"layers": [{"type": "dense", "size": 8, "bias": false}]})";
  struct Case {
    std::string args, message;
  } cases[] = {
      {"train --data " + kIris + " --model-file " + dir + "/bad.json", "layers[0].bias"},
      {"train --data " + kIris + " --model-file " + dir + "/net.json --task binary", "1"},
      {"train --data " + kIris + " --target species", "'species'"},
      {"train --data " + kHouse + " --task regression --target nowhere", "nowhere"},
      {"train --data " + kIris + " --task ordinal", "'ordinal'"},
      {"train --data " + kIris + " --model cnn", "'cnn'"},
      {"train --data " + kIris + " --test-fraction 1.5", "fraction"},
      {"train --data " + dir + "/missing.csv", "missing.csv"},
      {"eval --data " + kIris, "--model FILE is required"},
      {"eval --model " + dir + "/net.json --data " + kIris, "not a safetensors file"},
      {"predict --model " + dir + "/none.nmsnn --data " + kIris + " --out " + dir + "/p.csv",
       "none.nmsnn"},
  };
  for (const Case& c : cases) {
    r = nmsnn(c.args);
    EXPECT_EQ(r.status, 1) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.args << "\n" << r.output;
  }
}

// ---- convolutional model files ----------------------------------------------------------------
namespace {
// A tiny spiking CNN for 28x28 images: conv [4, 12, 12] -> lif -> max pool [4, 6, 6] -> 10.
const char* kCnn = R"({"time_steps": 4, "encoding": "repeated", "layers": [
    {"type": "conv2d", "out_channels": 4, "kernel": 5, "stride": 2},
    {"type": "lif"},
    {"type": "max_pool2d", "kernel": 2},
    {"type": "flatten"},
    {"type": "dense", "size": 10}]})";

// `rows` rows of 784 pixel columns (p0..p783), plus a "label" column when labels are given.
std::string pixel_csv(int rows, const std::vector<int>& labels = {}) {
  std::string csv;
  for (int c = 0; c < 784; ++c) csv += (c ? ",p" : "p") + std::to_string(c);
  csv += labels.empty() ? "\n" : ",label\n";
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < 784; ++c) csv += (c ? "," : "") + std::to_string(((r + 1) * c) % 7 / 6.0);
    csv += labels.empty() ? "\n" : "," + std::to_string(labels[r]) + "\n";
  }
  return csv;
}
}  // namespace

TEST(Cli, ConvolutionalModelFilesTrainSaveEvaluateAndPredict) {
  const std::string dir = NMSNN_BINARY_DIR "/cli_conv";
  std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
  std::ofstream(dir + "/cnn.json") << kCnn;
  // The model file has no input_shape: the IDX images give theirs, and the saved model keeps it.
  CliRun r = nmsnn("train " + kData + " --model-file " + dir + "/cnn.json --train-limit 300"
                   " --test-limit 100 --epochs 1 --batch 50 --quiet --save " + dir +
                   "/cnn.nmsnn --report " + dir + "/report.json");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("test accuracy"), std::string::npos) << r.output;
  std::string report = read_file(dir + "/report.json");
  report.erase(std::remove_if(report.begin(), report.end(), ::isspace), report.end());
  EXPECT_NE(report.find("\"input_shape\":[1,28,28]"), std::string::npos) << report;
  EXPECT_NE(report.find("\"test_samples\":100"), std::string::npos) << report;

  r = nmsnn("eval --model " + dir + "/cnn.nmsnn " + kData + " --limit 100");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("eval accuracy"), std::string::npos) << r.output;

  // Later, on a table of pixels in (c, y, x) order: the model's own input_shape shapes them,
  // with or without a label column.
  std::ofstream(dir + "/pixels.csv") << pixel_csv(3);
  r = nmsnn("predict --model " + dir + "/cnn.nmsnn --data " + dir + "/pixels.csv --out " + dir +
            "/pred.csv");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("wrote 3 predictions"), std::string::npos) << r.output;
  const std::string pred = read_file(dir + "/pred.csv");
  EXPECT_EQ(pred.rfind("prediction,p_0,p_1,", 0), 0u) << pred;
  EXPECT_EQ(std::count(pred.begin(), pred.end(), '\n'), 4) << pred;
  std::ofstream(dir + "/labelled.csv") << pixel_csv(4, {1, 7, 3, 0});
  r = nmsnn("eval --model " + dir + "/cnn.nmsnn --data " + dir + "/labelled.csv");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("(4 samples)"), std::string::npos) << r.output;
}

TEST(Cli, ConvolutionalModelFilesWithoutOrWithAnotherImageShapeAreRefused) {
  const std::string dir = NMSNN_BINARY_DIR "/cli_conv_errors";
  std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
  std::ofstream(dir + "/cnn.json") << kCnn;
  // A table gives no image shape.
  std::string args = "train --data " + kIris + " --model-file " + dir + "/cnn.json --quiet";
  expect_one_line_error(nmsnn_stderr(args), "input_shape: missing: layer 0 (conv2d) needs "
                        "[channels, height, width] feature maps but the data has 4 flat features",
                        args);
  // A model file's input_shape that is not the images'.
  std::string wide = kCnn;
  wide.insert(1, R"("input_shape": [1, 14, 56], )");
  std::ofstream(dir + "/wide.json") << wide;
  args = "train " + kData + " --model-file " + dir + "/wide.json --train-limit 10 --quiet";
  expect_one_line_error(nmsnn_stderr(args),
                        "input_shape: [1, 14, 56] does not match the data's image shape "
                        "[1, 28, 28]",
                        args);
  // A model trained on pixels of another shape, evaluated on the images: the same count of
  // pixels, refused by name.
  std::ofstream(dir + "/wide.csv")
      << pixel_csv(20, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  const CliRun r = nmsnn("train --data " + dir + "/wide.csv --target label --model-file " + dir +
                         "/wide.json --epochs 1 --quiet --save " + dir + "/wide.nmsnn");
  ASSERT_EQ(r.status, 0) << r.output;
  args = "eval --model " + dir + "/wide.nmsnn " + kData + " --limit 10";
  expect_one_line_error(nmsnn_stderr(args),
                        "the model's input_shape [1, 14, 56] does not match the images of", args);
}

// ---- flags out of their meaning, plots, memory: one clear line each --------------------------

TEST(Cli, FlagsOutsideTheirMeaningAreRejected) {
  const std::string dir = NMSNN_BINARY_DIR "/cli_flags";
  std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
  CliRun r = nmsnn("train --data " + kIris + " --target target --epochs 1 --time-steps 4 --save " +
                   dir + "/iris.nmsnn --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string model = " --model " + dir + "/iris.nmsnn --data " + kIris;
  struct Case {
    std::string args, message;
  } cases[] = {
      {"eval" + model + " --limit -5", "flag --limit: must be in [0, 2147483647], got -5"},
      {"plot" + model + " --limit -5 --out " + dir + "/p", "flag --limit: must be in [0, "},
      {"plot" + model + " --sample -1 --out " + dir + "/p", "flag --sample: must be in [0, "},
      {"plot" + model + " --neuron -3 --out " + dir + "/p", "flag --neuron: must be in [0, "},
      {"plot" + model + " --layer -1 --out " + dir + "/p", "flag --layer: must be in [0, "},
      {"eval" + model + " --max-memory lots", "flag --max-memory: expected a memory size"},
      {"eval" + model + " --report=", "flag --report: needs a path"},
      // predict reads every row: it has no --limit, and says so.
      {"predict" + model + " --out " + dir + "/p.csv --limit -5", "unknown flag '--limit'"},
      // Training flags (validated by the train command).
      {"train --data " + kIris + " --lr-step -1", "--lr-step"},
      {"train --data " + kIris + " --threads -1", "threads"},
      // User text in a flag name is quoted and escaped, not echoed raw.
      {"eval '--no\nsuch'", "unknown flag '--no\\nsuch'"},
      {"'fro\nb'", "unknown command 'fro\\nb'"},
  };
  for (const Case& c : cases) expect_one_line_error(nmsnn_stderr(c.args), c.message, c.args);
  EXPECT_FALSE(std::filesystem::exists(dir + "/p")) << "a plot directory made by a failed plot";
  EXPECT_FALSE(std::filesystem::exists(dir + "/p.csv"));
}

TEST(Cli, PlotChecksItsArgumentsBeforeWritingAnyFile) {
  const std::string dir = NMSNN_BINARY_DIR "/cli_plot_args";
  std::system(("rm -rf " + dir + " && mkdir -p " + dir + "/plots").c_str());
  CliRun r = nmsnn("train --data " + kIris + " --target target --epochs 1 --time-steps 4 --save " +
                   dir + "/iris.nmsnn --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string model = "plot --model " + dir + "/iris.nmsnn --data " + kIris;
  // Iris has 150 samples (0 to 149), the network 2 layers here (dense+spiking, dense): sample 150,
  // layer 9 and neuron 10^6 are out of range; before the fix the training curves, confusion matrix
  // and ROC curve were written first.
  const struct {
    std::string flags, message;
  } cases[] = {
      {" --sample 150", "--sample 150 is outside the data's 150 samples (0 to 149)"},
      {" --limit 20 --sample 20", "--sample 20 is outside the data's 20 samples"},
      {" --layer 9", "--layer 9 is outside the network's "},
      {" --neuron 1000000", "--neuron 1000000 is outside layer 0's "},
  };
  for (const auto& c : cases) {
    const std::string args = model + " --out " + dir + "/plots" + c.flags;
    expect_one_line_error(nmsnn_stderr(args), c.message, args);
    EXPECT_TRUE(std::filesystem::is_empty(dir + "/plots")) << args;
  }
  // An output path that is a file: the same, before anything is drawn.
  std::ofstream(dir + "/file") << "x";
  expect_one_line_error(nmsnn_stderr(model + " --out " + dir + "/file"),
                        "cannot create the plot directory", "--out FILE");
  // In range, the same command writes them all (into a directory it creates, parents included).
  r = nmsnn(model + " --out " + dir + "/new/plots --sample 149 --neuron 3");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read_file(dir + "/new/plots/neuron_trace.svg").rfind("<svg", 0), 0u);
}

TEST(Cli, DataErrorsPrintOneLine) {
  const std::string dir = NMSNN_BINARY_DIR "/cli_one_line";
  std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
  // A quoted cell holding a newline and a terminal escape, where a number is expected.
  std::ofstream(dir + "/cells.csv") << "a,b,target\n\"1\n2\x1b[31m\",3,x\n4,5,y\n6,7,x\n";
  const std::string args = "train --data " + dir + "/cells.csv";
  expect_one_line_error(nmsnn_stderr(args), "'1\\n2\\x1b[31m' is not a number", args);
}

// A split of one class: AUC cannot be defined. The evaluation says so and still reports the
// rest (accuracy, ...) instead of failing.
TEST(Cli, OneClassDataReportsAucAsUndefined) {
  const std::string dir = NMSNN_BINARY_DIR "/cli_one_class";
  std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
  CliRun r = nmsnn("train --data " + kIris + " --target target --epochs 1 --time-steps 4 --save " +
                   dir + "/iris.nmsnn --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  // The first 50 rows of iris are all setosa (class 0).
  std::istringstream iris(read_file(kIris));
  std::ofstream setosa(dir + "/setosa.csv");
  std::string line;
  for (int k = 0; k <= 50 && std::getline(iris, line); ++k) setosa << line << "\n";
  setosa.close();
  r = nmsnn("eval --model " + dir + "/iris.nmsnn --data " + dir + "/setosa.csv --report " + dir +
            "/eval.json --plots " + dir + "/plots");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("AUC undefined (one class in the data)"), std::string::npos) << r.output;
  const std::string json = read_file(dir + "/eval.json");
  EXPECT_NE(json.find("\"test_auc\": null"), std::string::npos) << json;
  EXPECT_NE(json.find("\"test_samples\": 50"), std::string::npos) << json;
  EXPECT_NE(json.find("\"auc\": null"), std::string::npos) << json;
  EXPECT_TRUE(std::filesystem::exists(dir + "/plots/confusion_matrix.svg"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/plots/roc_curve.svg"));  // no curve to draw
}

// Running out of memory is the input's or the flags' doing, not a bug: one line, status 1. Under
// a 3 GB address-space limit, two 20000-wide hidden layers (1.6 GB of weights, 6 GB with their
// gradients and optimiser state) cannot be allocated. The limit leaves room to load the program
// itself: built with CUDA it maps cuBLAS, over 500 MB.
TEST(Cli, OutOfMemoryIsOneClearLine) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizers reserve more address space than the limit this test sets";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
  GTEST_SKIP() << "sanitizers reserve more address space than the limit this test sets";
#endif
#endif
  const std::string args = "train --data " + kIris + " --hidden 20000,20000 --epochs 1 --quiet";
  const CliRun r = nmsnn_stderr(args, "ulimit -v 3000000; ");
  // Either the allocation fails (out of memory) or a memory check refuses it first.
  expect_one_line_error(r, "memory", args);
  EXPECT_EQ(r.status, 1) << r.output;
}
