// test_cli.cpp — the `nmsnn` program as a user runs it: exit codes, messages, the JSON report.
#include <gtest/gtest.h>

#include <cstdio>
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
