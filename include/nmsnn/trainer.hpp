// nmsnn/trainer.hpp — mini-batch training and evaluation loops over a Dataset.
//
//   nmsnn::TrainOptions opts;                 // defaults: 5 epochs, batch 100, Adam(2e-3)
//   opts.on_epoch = [](const nmsnn::EpochStats& e) { ... };
//   nmsnn::TrainResult r = nmsnn::train(net, train_set, opts, &test_set);
//
// Shuffling derives from opts.seed, the noise masks from the network's seed: one seed, one result.
//
// Data parallelism: with opts.communicator of N ranks (communicator.hpp), every rank calls
// train() with the same network, data and options; each computes its shard of every batch and
// all apply the same summed update (StepOptions::communicator), so every rank ends with the same
// parameters, those one process would have reached up to the order of the gradients' sums.
// Evaluation is sharded the same way and its outputs gathered: every rank gets the same
// Evaluation, equal to one process's. The callbacks are called on every rank with the same
// values: a program prints and writes files from one rank (rank 0). Errors that one rank finds in
// its data, and divergence, are raised on every rank with the same message.
//
// Divergence: training stops with nmsnn::TrainingDiverged when the network's outputs or the loss
// of a batch are not finite, when the loss exceeds kDivergenceFactor (1e6) times the larger of
// the first batch's loss and 1 (no healthy nll, bce or standardised mse loss gets there), or when
// an update makes a parameter not finite. The network then holds the last good parameters:
// those whose batch loss passed these checks.
//
// Checkpoints: opts.on_checkpoint receives a TrainState every opts.checkpoint_every optimiser
// steps (or at the end of each epoch); train() with opts.resume set to it continues the run with
// bit-identical results on the cpu engine (checkpoint.hpp saves one to a file).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nmsnn/communicator.hpp"
#include "nmsnn/dataset.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/loss.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/optimizer.hpp"
#include "nmsnn/safetensors.hpp"

namespace nmsnn {

class Network;

// The learning rate of each epoch: `per_epoch` lists one per epoch (the last repeats); otherwise
// the optimiser's lr times gamma^(epoch / step_epochs), like torch.optim.lr_scheduler.StepLR.
struct LrSchedule {
  std::vector<double> per_epoch;
  int step_epochs = 0;  // 0: constant
  double gamma = 1.0;
  double lr_at(int epoch, double base_lr) const;  // epoch counts from 0
};

struct BatchStats {
  int epoch = 0, epochs = 0;    // epoch counts from 1
  int batch = 0, batches = 0;   // batch counts from 1
  int samples_done = 0, samples = 0;
  double loss = 0, accuracy = 0;  // of this batch (accuracy for classification losses only)
  double samples_per_second = 0;  // this epoch so far
  double elapsed_seconds = 0;     // this epoch so far
};

struct Evaluation {
  int count = 0;
  double loss = 0;
  double accuracy = 0;  // classification only
  double seconds = 0;
  std::vector<float> outputs;  // [N, C] logits
  std::vector<int> predictions;  // [N] argmax (classification)
};

struct EpochStats {
  int epoch = 0, epochs = 0;  // epoch counts from 1
  // Run before the checkpoint this call resumed from: on_epoch sees it again so that a caller's
  // history is complete, and should not report it as new. Its eval has no outputs.
  bool resumed = false;
  double lr = 0;
  double train_loss = 0, train_accuracy = 0;  // means over the epoch's batches (the loss
                                              // includes regularization terms)
  double train_seconds = 0, samples_per_second = 0;
  bool evaluated = false;
  Evaluation eval;  // on the evaluation set, when one was given
};

// Where a training run stands between two batches: with the options and data it was made with,
// everything train() needs to continue as if it had never stopped.
struct TrainState {
  int epoch = 0;  // the epoch in progress, counting from 0 (== epochs: the run is complete)
  int batch = 0;  // its batches done, 0 <= batch < batches
  std::vector<NamedTensor> parameters;  // the network's, after the last step
  OptimizerSnapshot optimizer;
  uint64_t noise_passes = 0;  // the network's noise counter
  double first_loss = 0;      // the run's first batch loss (the divergence rule's reference)
  // The epoch in progress so far.
  double loss_sum = 0;
  long long correct = 0;
  int samples_done = 0;
  double seconds = 0;
  // The completed epochs (evaluations without outputs) and the run's totals so far.
  std::vector<EpochStats> epochs;
  double train_seconds = 0;
  long long samples = 0;
};

// A batch loss above this multiple of the first batch's loss (or of 1) means divergence.
constexpr double kDivergenceFactor = 1e6;

// Training that went wrong (see the top of this file); the network holds the last good
// parameters. The message names the epoch and batch and points at the learning rate.
class TrainingDiverged : public Error {
 public:
  TrainingDiverged(int epoch, int batch, double lr, const std::string& reason);
  int epoch, batch;    // where it happened, counting from 1
  double lr;           // the learning rate then
  std::string reason;  // "the loss became inf (it was 2.31 at the first batch)"
};

struct TrainOptions {
  int epochs = 5;
  int batch_size = 100;
  OptimizerSpec optimizer = Adam{2e-3};
  LrSchedule schedule;
  // The seed's MNIST script makes a new SGD optimiser every epoch, which clears its momentum.
  bool fresh_optimizer_each_epoch = false;
  Loss loss = Loss::nll;
  // How a sample's features enter the network: the seed's noise encoder, or repeated unchanged at
  // every step (PyTorchSpiking's tutorial, and the non-spiking baselines).
  Input::Kind encoding = Input::Kind::noisy;
  bool shuffle = true;
  uint64_t seed = 0;  // shuffling order
  int eval_batch_size = 1000;
  std::function<void(const BatchStats&)> on_batch;
  std::function<void(const EpochStats&)> on_epoch;
  // Called with the run's state every checkpoint_every optimiser steps (a step that ends an
  // epoch waits for the epoch's evaluation), or at the end of every epoch when it is 0.
  int checkpoint_every = 0;
  std::function<void(const TrainState&)> on_checkpoint;
  // Continue from this state (same network, data and options) instead of starting afresh: the
  // network's parameters, the optimiser and the noise counter are restored from it, and on_epoch
  // sees its completed epochs again, marked resumed.
  const TrainState* resume = nullptr;
  // cuda engine: replay each step from a captured CUDA graph (StepOptions::graphs).
  bool cuda_graphs = false;
  // cuda engine: copy the training set to the device once and gather each batch there
  // (StepLoop::keep_data), when it takes at most half of the device's free memory. Off, or when
  // it does not fit: each batch is gathered on the host and copied up. The same results either
  // way.
  bool data_on_device = true;
  // Data parallelism over these ranks (see the top of this file); null: one process. With one
  // rank, the same path as several (the cpu engine gives the same bits as without).
  std::shared_ptr<Communicator> communicator;
};

struct TrainResult {
  std::vector<EpochStats> epochs;
  double train_seconds = 0;        // training only, evaluation excluded
  double samples_per_second = 0;   // training samples per second over all epochs
  long long samples = 0;
  bool data_on_device = false;     // the training set was kept in device memory (data_on_device)
};

// Trains `net` on `data` (labels for nll/bce, targets for mse). When `eval` is given it is
// evaluated after every epoch. Throws nmsnn::Error when data and network do not fit together,
// or a resume state does not fit them, and nmsnn::TrainingDiverged when training diverges.
TrainResult train(Network& net, const Dataset& data, const TrainOptions& options,
                  const Dataset* eval = nullptr);

// Forward passes over `data` without training (inference passes); loss and accuracy as in
// train(). `noise_pass` >= 0 fixes the noise counter of batch k to noise_pass + k, so the result
// does not depend on earlier passes; -1 uses the network's own counter. With a communicator of
// several ranks, called by every rank: each computes its shard of every batch (rows keyed by
// their index in the batch, as in training) and every rank gets the whole Evaluation.
Evaluation evaluate(Network& net, const Dataset& data, Loss loss, int batch_size = 1000,
                    Input::Kind encoding = Input::Kind::noisy, long long noise_pass = -1,
                    Communicator* communicator = nullptr);

// Collective: throws nmsnn::Error on every rank when the ranks' networks do not hold the same
// parameters bit for bit (naming the first rank that differs from rank 0 and `where`).
void check_same_parameters(Communicator& communicator, const Network& net,
                           const std::string& where);

}  // namespace nmsnn
