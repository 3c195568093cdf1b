// test_mpi.cpp — `mpirun -np N nmsnn train` over loopback TCP on this machine: 2 and 3 ranks give
// one process's model and metrics, only rank 0 writes files, and a rank that dies or fails stops
// the others with a message naming it. Built when the MPI component is (tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "nmsnn/nmsnn.hpp"
#include "run_command.hpp"
#include "temp_dir.hpp"

namespace {

const std::string kNmsnn = NMSNN_BINARY_DIR "/tools/nmsnn";
// A small run: 1000 MNIST samples, batches of 100, one epoch; one thread per rank.
const std::string kArgs = "train --data " NMSNN_SOURCE_DIR
                          "/data/mnist --train-limit 1000 --test-limit 500 --epochs 1 "
                          "--batch 100 --hidden 32 --time-steps 16 --threads 1";

// mpirun over loopback TCP only (the "over loopback"), more ranks than cores allowed, and
// allowed as root (CI runs as root).
std::string mpirun(int ranks, const std::string& env = "") {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " + env + " " NMSNN_MPIEXEC
         " -np " + std::to_string(ranks) +
         " --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo"
         " --mca oob_tcp_if_include lo ";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// "test_accuracy": 0.186 -> 0.186
double report_number(const std::string& report, const std::string& key) {
  const size_t at = report.find("\"" + key + "\":");
  if (at == std::string::npos) return std::nan("");
  return std::stod(report.substr(at + key.size() + 3));
}

size_t count_of(const std::string& text, const std::string& piece) {
  size_t n = 0;
  for (size_t at = text.find(piece); at != std::string::npos; at = text.find(piece, at + 1)) ++n;
  return n;
}

class Mpi : public TempDirTest {};

}  // namespace

TEST_F(Mpi, TwoAndThreeRanksTrainOneProcesssModelAndOnlyRankZeroWrites) {
  const std::string outputs = " --save model.nmsnn --report report.json --plots plots";
  std::filesystem::create_directories(dir / "one");
  const CommandRun one =
      run_command("cd " + path("one") + " && " + kNmsnn + " " + kArgs + outputs + " 2>&1");
  ASSERT_EQ(one.status, 0) << one.output;
  const nmsnn::Model want = nmsnn::Model::load(path("one/model.nmsnn"));
  const std::string want_report = read_file(path("one/report.json"));

  for (int ranks : {2, 3}) {
    const std::string run_dir = path("ranks" + std::to_string(ranks));
    // Each rank in its own directory, so that a file written by any rank but 0 would show.
    const std::string per_rank =
        "sh -c 'r=${OMPI_COMM_WORLD_RANK:-$PMI_RANK}; mkdir -p " + run_dir +
        "/r$r && cd " + run_dir + "/r$r && exec " + kNmsnn + " " + kArgs + outputs + "'";
    const CommandRun r = run_command(mpirun(ranks) + per_rank + " 2>&1");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("x " + std::to_string(ranks) + " ranks (MPI)"), std::string::npos)
        << r.output;
    EXPECT_EQ(count_of(r.output, "training throughput"), 1u) << "only rank 0 prints\n" << r.output;
    for (int k = 1; k < ranks; ++k) {
      const auto other = std::filesystem::path(run_dir) / ("r" + std::to_string(k));
      EXPECT_TRUE(std::filesystem::is_empty(other)) << other << " has files: only rank 0 writes";
    }
    const nmsnn::Model got = nmsnn::Model::load(run_dir + "/r0/model.nmsnn");
    // Tolerance (test_data_parallel.cpp says why): 1e-4 of each tensor's largest value; the
    // measured worst here is ~2e-6.
    for (const auto& p : want.network().parameters()) {
      const std::vector<float> a = want.network().parameter(p.name);
      const std::vector<float> b = got.network().parameter(p.name);
      ASSERT_EQ(a.size(), b.size());
      double worst = 0, largest = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        worst = std::max(worst, double(std::fabs(a[i] - b[i])));
        largest = std::max(largest, double(std::fabs(a[i])));
      }
      EXPECT_LE(worst, 1e-4 * largest) << p.name << " with " << ranks << " ranks";
    }
    const std::string report = read_file(run_dir + "/r0/report.json");
    EXPECT_EQ(report_number(report, "test_accuracy"), report_number(want_report, "test_accuracy"));
    EXPECT_NEAR(report_number(report, "test_loss"), report_number(want_report, "test_loss"), 1e-5);
    EXPECT_EQ(report_number(report, "ranks"), ranks);
  }
}

TEST_F(Mpi, AKilledRankStopsTheOthersWithinThirtySeconds) {
  const auto t0 = std::chrono::steady_clock::now();
  const CommandRun r = run_command(mpirun(2, "NMSNN_FAULT=rank=1,batch=3,kind=kill") +
                                   "-x NMSNN_FAULT " + kNmsnn + " " + kArgs + " 2>&1");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_LT(seconds, 30) << r.output;
  EXPECT_NE(r.output.find("rank 1"), std::string::npos) << r.output;  // mpirun names it
}

TEST_F(Mpi, AnErrorOnOneRankEndsEveryRankNamingIt) {
  const CommandRun r = run_command(mpirun(2, "NMSNN_FAULT=rank=1,batch=3,kind=throw") +
                                   "-x NMSNN_FAULT " + kNmsnn + " " + kArgs + " 2>&1");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("nmsnn train: error: NMSNN_FAULT: an error on this rank only, after "
                          "batch 3 (on rank 1 of 2; ending every rank)"),
            std::string::npos)
      << r.output;
}

TEST_F(Mpi, DivergenceOnOneRankStopsEveryRankWithOneMessage) {
  const CommandRun r = run_command(mpirun(3, "NMSNN_FAULT=rank=2,batch=4,kind=diverge") +
                                   "-x NMSNN_FAULT " + kNmsnn + " " + kArgs + " 2>&1");
  EXPECT_NE(r.status, 0) << r.output;
  // Every rank halts at the same step; rank 0 alone prints it.
  EXPECT_EQ(count_of(r.output, "nmsnn train: error: training diverged at epoch 1, batch 5"), 1u)
      << r.output;
}

TEST_F(Mpi, OneRanksDifferentDataIsRefusedOnEveryRank) {
  const CommandRun r = run_command(mpirun(2, "NMSNN_FAULT=rank=1,batch=0,kind=data") +
                                   "-x NMSNN_FAULT " + kNmsnn + " " + kArgs + " 2>&1");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "nmsnn train: error: rank 1's training dataset 'mnist-train' "
                               "differs from rank 0's"),
            1u)
      << r.output;
}
