// test_cli.cpp — the `nmsnn` program as a user runs it: exit codes, messages, the JSON report.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace {

struct CliRun {
  int status;
  std::string output;  // stdout and stderr together
};

CliRun nmsnn(const std::string& args) {
  const std::string cmd = std::string(NMSNN_BINARY_DIR "/tools/nmsnn ") + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
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
                          "\"time_steps\": 16", "\"epoch_stats\": ["})
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
      {"train --epoch 3", "unknown flag --epoch (did you mean --epochs?)"},
      {"train --epochs", "needs a value"},
      {"train --epochs three", "'three' is not a whole number"},
      {"train --lr 0.1,x", "'x' is not a finite number"},
      {"train --data /nonexistent/dir", "/nonexistent/dir"},
      {"train " + kData + " --time-steps 0 --train-limit 10", "time_steps"},
      {"train " + kData + " --hidden 0 --train-limit 10", "size must be > 0"},
      {"train " + kData + " --begin-eval 8 --time-steps 8 --train-limit 10", "begin_eval"},
      {"train " + kData + " --device tpu --train-limit 10", "unknown device 'tpu'"},
      {"train " + kData + " --matmul fp16 --train-limit 10", "unknown matmul precision 'fp16'"},
      {"train " + kData + " --matmul tf32 --train-limit 10", "--matmul tf32 needs --device cuda"},
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
