// test_data_parallel.cpp — data parallelism in one process: communicators (local_group: ranks as
// threads), shards, and nmsnn::train / evaluate / Model::evaluate on 2 and 3 ranks against one
// process, with the errors every rank must raise together. The same code under mpirun is
// test_mpi.cpp.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "nmsnn/nmsnn.hpp"
#include "training_fixtures.hpp"

namespace {

using nmsnn::Communicator;

// Runs body(rank's communicator) on every rank of a local group, each in its own thread, and
// returns each rank's error message ("" when it finished).
std::vector<std::string> on_ranks(int ranks,
                                  const std::function<void(std::shared_ptr<Communicator>)>& body,
                                  double timeout = 60) {
  auto group = nmsnn::local_group(ranks);
  std::vector<std::string> errors(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    group[size_t(r)]->set_timeout_seconds(timeout);
    threads.emplace_back([&, r] {
      try {
        body(group[size_t(r)]);
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  return errors;
}

nmsnn::NetworkOptions one_thread(uint64_t seed = 5) {
  nmsnn::NetworkOptions o;
  o.seed = seed;
  o.threads = 1;
  return o;
}

nmsnn::TrainOptions options(int batch, int epochs = 2) {
  nmsnn::TrainOptions t;
  t.epochs = epochs;
  t.batch_size = batch;
  t.optimizer = nmsnn::Adam{5e-3};
  t.seed = 3;
  return t;
}

const nmsnn::NetworkSpec kSpec = nmsnn::NetworkSpec::spiking(6, {12}, 3, 8);

}  // namespace

// ---- communicators and shards ---------------------------------------------------------------

TEST(Communicator, SingleProcessIsRankZeroOfOne) {
  auto c = nmsnn::single_process();
  EXPECT_EQ(c->rank(), 0);
  EXPECT_EQ(c->size(), 1);
  float v = 2.5f;
  c->allreduce_sum(&v, 1);
  EXPECT_EQ(v, 2.5f);
  EXPECT_EQ(c->first_error(""), "");
  EXPECT_EQ(c->first_error("bad"), "rank 0: bad");
  EXPECT_THROW(c->check("bad"), nmsnn::CollectiveError);
}

TEST(Communicator, LocalGroupSumsBroadcastsAndAgreesOnErrors) {
  const auto errors = on_ranks(3, [](std::shared_ptr<Communicator> c) {
    const int r = c->rank();
    std::vector<float> f = {float(r), 1.0f, 0.1f * float(r + 1)};
    c->allreduce_sum(f.data(), f.size());
    // In rank order: 0.1 + 0.2 + 0.3 in float, the same bits on every rank.
    const float third = (0.1f * 1 + 0.1f * 2) + 0.1f * 3;
    if (f[0] != 3 || f[1] != 3 || f[2] != third) throw nmsnn::Error("float sum is wrong");
    std::vector<double> d = {double(r) * 0.5};
    c->allreduce_sum(d.data(), 1);
    if (d[0] != 1.5) throw nmsnn::Error("double sum is wrong");
    char text[6] = "....";
    if (r == 2) std::snprintf(text, sizeof text, "two");
    c->broadcast(text, sizeof text, 2);
    if (std::string(text) != "two") throw nmsnn::Error("broadcast is wrong");
    // Ranks 1 and 2 fail: every rank hears rank 1's message.
    const std::string first = c->first_error(r == 0 ? "" : "bad shard on " + std::to_string(r));
    if (first != "rank 1: bad shard on 1") throw nmsnn::Error("first_error gave " + first);
    c->barrier();
    c->check(r == 2 ? "only two" : "");
  });
  for (const std::string& e : errors) EXPECT_EQ(e, "rank 2: only two");
}

TEST(Communicator, AWaitThatOutlastsTheTimeoutThrowsNamingTheRank) {
  auto group = nmsnn::local_group(2);
  group[0]->set_timeout_seconds(0.2);
  const auto t0 = std::chrono::steady_clock::now();
  float v = 1;
  try {
    group[0]->allreduce_sum(&v, 1);  // rank 1 never comes
    FAIL() << "no timeout";
  } catch (const nmsnn::Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 0 of a local group waited more than 0.2 s"),
              std::string::npos)
        << e.what();
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5);
  EXPECT_THROW(group[0]->set_timeout_seconds(0), nmsnn::Error);
  EXPECT_THROW(nmsnn::local_group(0), nmsnn::Error);
}

TEST(Communicator, ShardsCoverTheBatchInBalancedOrder) {
  for (int ranks : {1, 2, 3, 7})
    for (int batch : {0, 1, 2, 5, 100, 101}) {
      int next = 0;
      for (int r = 0; r < ranks; ++r) {
        const nmsnn::Shard s = nmsnn::shard_of(batch, r, ranks);
        EXPECT_EQ(s.first, next);
        EXPECT_LE(s.count, batch / ranks + 1);
        EXPECT_GE(s.count, batch / ranks);
        next += s.count;
      }
      EXPECT_EQ(next, batch);
    }
  EXPECT_THROW(nmsnn::shard_of(10, 2, 2), nmsnn::Error);
  EXPECT_THROW(nmsnn::shard_of(10, 0, 0), nmsnn::Error);
}

// ---- training: N ranks against one process ---------------------------------------------------

struct RankResult {
  std::vector<float> parameters;
  nmsnn::TrainResult result;
  nmsnn::Evaluation eval;
};

RankResult train_once(const std::shared_ptr<Communicator>& comm, int batch, int epochs = 2) {
  const nmsnn::Dataset data = blobs(90, 6, 11), test = blobs(40, 6, 12);
  nmsnn::Network net(kSpec, one_thread());
  nmsnn::TrainOptions t = options(batch, epochs);
  t.communicator = comm;
  RankResult out;
  out.result = nmsnn::train(net, data, t, &test);
  out.parameters = all_parameters(net);
  out.eval = nmsnn::evaluate(net, test, nmsnn::Loss::nll, 16, nmsnn::Input::Kind::noisy, 7,
                             comm.get());
  return out;
}

// Tolerance: each rank sums its rows' gradients and the ranks' sums are added, where one process
// adds all the rows in one order; the float results differ in the last bits (~1e-7 relative per
// step). Through 2 epochs of Adam and spiking thresholds that can shift a spike, 1e-4 of the
// largest parameter leaves room; the measured worst is ~1e-6.
constexpr double kTolerance = 1e-4;

void expect_same_training(const RankResult& one, const RankResult& many, const char* what) {
  ASSERT_EQ(one.parameters.size(), many.parameters.size());
  double worst = 0, largest = 0;
  for (size_t i = 0; i < one.parameters.size(); ++i) {
    worst = std::max(worst, double(std::fabs(one.parameters[i] - many.parameters[i])));
    largest = std::max(largest, double(std::fabs(one.parameters[i])));
  }
  EXPECT_LE(worst, kTolerance * largest) << what;
  ASSERT_EQ(one.result.epochs.size(), many.result.epochs.size());
  for (size_t e = 0; e < one.result.epochs.size(); ++e) {
    EXPECT_NEAR(one.result.epochs[e].train_loss, many.result.epochs[e].train_loss, 1e-4) << what;
    EXPECT_NEAR(one.result.epochs[e].eval.loss, many.result.epochs[e].eval.loss, 1e-4) << what;
  }
  EXPECT_EQ(one.result.samples, many.result.samples) << what;
}

TEST(DataParallel, TwoAndThreeRanksTrainTheModelOfOneProcess) {
  const RankResult one = train_once(nullptr, 32);  // 90 samples: batches of 32, 32, 26
  for (int ranks : {2, 3}) {
    std::vector<RankResult> results(static_cast<size_t>(ranks));
    const auto errors = on_ranks(ranks, [&](std::shared_ptr<Communicator> c) {
      results[size_t(c->rank())] = train_once(c, 32);
    });
    for (const std::string& e : errors) ASSERT_EQ(e, "");
    const std::string what = std::to_string(ranks) + " ranks";
    expect_same_training(one, results[0], what.c_str());
    for (int r = 1; r < ranks; ++r) {
      // Every rank applied the same sums: the same bits everywhere.
      EXPECT_EQ(results[size_t(r)].parameters, results[0].parameters) << what;
      EXPECT_EQ(results[size_t(r)].eval.outputs, results[0].eval.outputs) << what;
    }
  }
}

TEST(DataParallel, OneRankTakesTheParallelPathWithTheBitsOfNone) {
  // Shards, row keys, the weighted sum and the reduction, all with one rank: on the cpu engine
  // the same arithmetic as without a communicator, so the same bits.
  const RankResult none = train_once(nullptr, 32);
  const RankResult one = train_once(nmsnn::local_group(1)[0], 32);
  EXPECT_EQ(one.parameters, none.parameters);
  EXPECT_EQ(one.eval.outputs, none.eval.outputs);
  EXPECT_EQ(one.result.epochs[1].train_loss, none.result.epochs[1].train_loss);
}

TEST(DataParallel, ARankWithNoRowsInABatchStillTakesPart) {
  // Batches of 2 on 3 ranks: one rank computes nothing each step, its gradient counts as zero.
  const RankResult one = train_once(nullptr, 2, 1);
  std::vector<RankResult> results(3);
  const auto errors = on_ranks(3, [&](std::shared_ptr<Communicator> c) {
    results[size_t(c->rank())] = train_once(c, 2, 1);
  });
  for (const std::string& e : errors) ASSERT_EQ(e, "");
  expect_same_training(one, results[0], "batch 2 on 3 ranks");
  EXPECT_EQ(results[2].parameters, results[0].parameters);
}

TEST(DataParallel, ShardedEvaluationGivesOneProcesssOutputsExactly) {
  const nmsnn::Dataset test = blobs(37, 6, 4);
  nmsnn::Network single(kSpec, one_thread());
  const nmsnn::Evaluation want =
      nmsnn::evaluate(single, test, nmsnn::Loss::nll, 10, nmsnn::Input::Kind::noisy, 3);
  std::vector<nmsnn::Evaluation> got(3);
  const auto errors = on_ranks(3, [&](std::shared_ptr<Communicator> c) {
    nmsnn::Network net(kSpec, one_thread());
    got[size_t(c->rank())] =
        nmsnn::evaluate(net, test, nmsnn::Loss::nll, 10, nmsnn::Input::Kind::noisy, 3, c.get());
  });
  for (const std::string& e : errors) ASSERT_EQ(e, "");
  for (const nmsnn::Evaluation& ev : got) {
    // Each row's masks are keyed by its index in the batch, as in one process: the same bits.
    EXPECT_EQ(ev.outputs, want.outputs);
    EXPECT_EQ(ev.predictions, want.predictions);
    EXPECT_EQ(ev.accuracy, want.accuracy);
    EXPECT_EQ(ev.loss, want.loss);
  }
}

TEST(DataParallel, ShardedModelEvaluationMatchesOneProcess) {
  const nmsnn::Dataset train = blobs(60, 6, 8), test = blobs(45, 6, 9);
  nmsnn::NetworkDescription desc;
  desc.spec = kSpec;
  auto make = [&] {
    nmsnn::Model m = nmsnn::Model::make(nmsnn::TaskKind::classification, desc, one_thread());
    nmsnn::TrainOptions t = options(20, 1);
    m.fit(train, t);
    return m;
  };
  nmsnn::Model single = make();
  const nmsnn::ModelEvaluation want = single.evaluate(test, 16);
  std::vector<nmsnn::ModelEvaluation> got(2);
  const auto errors = on_ranks(2, [&](std::shared_ptr<Communicator> c) {
    nmsnn::Model m = make();
    got[size_t(c->rank())] = m.evaluate(test, 16, c.get());
  });
  for (const std::string& e : errors) ASSERT_EQ(e, "");
  for (const nmsnn::ModelEvaluation& ev : got) {
    EXPECT_EQ(ev.predictions.logits, want.predictions.logits);
    EXPECT_EQ(ev.loss, want.loss);
    ASSERT_EQ(ev.rates.size(), want.rates.size());
    for (size_t l = 0; l < ev.rates.size(); ++l) {
      EXPECT_EQ(ev.rates[l].min, want.rates[l].min);
      EXPECT_EQ(ev.rates[l].max, want.rates[l].max);
      EXPECT_NEAR(ev.rates[l].mean, want.rates[l].mean, 1e-12);  // summed in another order
    }
  }
}

// ---- faults: every rank stops with the same message --------------------------------------------

TEST(DataParallel, OneRanksBadDataStopsEveryRankWithItsMessage) {
  const auto errors = on_ranks(3, [](std::shared_ptr<Communicator> c) {
    nmsnn::Dataset data = blobs(30, 6, 1);
    if (c->rank() == 2) data.labels[4] = 7;  // outside the network's 3 classes
    nmsnn::Network net(kSpec, one_thread());
    nmsnn::TrainOptions t = options(10, 1);
    t.communicator = c;
    nmsnn::train(net, data, t);
  });
  for (const std::string& e : errors)
    EXPECT_EQ(e, "rank 2: dataset 'blobs': sample 4 has label 7, outside [0, 3)");
}

TEST(DataParallel, DifferentDataOrParametersOnOneRankAreRefused) {
  auto errors = on_ranks(2, [](std::shared_ptr<Communicator> c) {
    nmsnn::Dataset data = blobs(30, 6, 1);
    if (c->rank() == 1) data.x[3] += 0.5f;
    nmsnn::Network net(kSpec, one_thread());
    nmsnn::TrainOptions t = options(10, 1);
    t.communicator = c;
    nmsnn::train(net, data, t);
  });
  for (const std::string& e : errors)
    EXPECT_NE(e.find("rank 1's training dataset 'blobs' differs from rank 0's"), std::string::npos)
        << e;
  errors = on_ranks(2, [](std::shared_ptr<Communicator> c) {
    nmsnn::Network net(kSpec, one_thread(c->rank() == 1 ? 6 : 5));
    nmsnn::TrainOptions t = options(10, 1);
    t.communicator = c;
    nmsnn::train(net, blobs(30, 6, 1), t);
  });
  for (const std::string& e : errors)
    EXPECT_NE(e.find("rank 1's parameters differ from rank 0's before training"), std::string::npos)
        << e;
}

TEST(DataParallel, DivergenceOnOneRanksRowsStopsEveryRankAtTheSameStep) {
  std::vector<std::string> messages(2);
  const auto errors = on_ranks(2, [&](std::shared_ptr<Communicator> c) {
    nmsnn::Dataset data = blobs(40, 6, 1);
    // Unshuffled batches of 10: rows 25..29 are rank 1's half of the third batch. Only there do
    // the outputs stop being finite; rank 0's rows of that batch are fine.
    for (int s = 25; s < 30; ++s)
      for (int f = 0; f < 6; ++f) data.x[size_t(s) * 6 + size_t(f)] = 1e38f;
    nmsnn::Network net(nmsnn::NetworkSpec::mlp(6, {12}, 3), one_thread());
    nmsnn::TrainOptions t = options(10, 1);
    t.shuffle = false;
    t.communicator = c;
    try {
      nmsnn::train(net, data, t);
    } catch (const nmsnn::TrainingDiverged& e) {
      messages[size_t(c->rank())] = e.what();
      throw;
    }
  });
  EXPECT_NE(messages[0].find("training diverged at epoch 1, batch 3"), std::string::npos)
      << messages[0];
  EXPECT_EQ(messages[0], messages[1]);
  for (const std::string& e : errors) EXPECT_FALSE(e.empty());
}
