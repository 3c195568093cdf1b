// nmsnn/trainer.hpp — mini-batch training and evaluation loops over a Dataset.
//
//   nmsnn::TrainOptions opts;                 // defaults: 5 epochs, batch 100, Adam(2e-3)
//   opts.on_epoch = [](const nmsnn::EpochStats& e) { ... };
//   nmsnn::TrainResult r = nmsnn::train(net, train_set, opts, &test_set);
//
// Shuffling derives from opts.seed, the noise masks from the network's seed: one seed, one result.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "nmsnn/dataset.hpp"
#include "nmsnn/loss.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/optimizer.hpp"

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
  double lr = 0;
  double train_loss = 0, train_accuracy = 0;  // means over the epoch's batches (the loss
                                              // includes regularisation terms)
  double train_seconds = 0, samples_per_second = 0;
  bool evaluated = false;
  Evaluation eval;  // on the evaluation set, when one was given
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
};

struct TrainResult {
  std::vector<EpochStats> epochs;
  double train_seconds = 0;        // training only, evaluation excluded
  double samples_per_second = 0;   // training samples per second over all epochs
  long long samples = 0;
};

// Trains `net` on `data` (labels for nll/bce, targets for mse). When `eval` is given it is
// evaluated after every epoch. Throws nmsnn::Error when data and network do not fit together.
TrainResult train(Network& net, const Dataset& data, const TrainOptions& options,
                  const Dataset* eval = nullptr);

// Forward passes over `data` without training (inference passes); loss and accuracy as in
// train(). `noise_pass` >= 0 fixes the noise counter of batch k to noise_pass + k, so the result
// does not depend on earlier passes; -1 uses the network's own counter.
Evaluation evaluate(Network& net, const Dataset& data, Loss loss, int batch_size = 1000,
                    Input::Kind encoding = Input::Kind::noisy, long long noise_pass = -1);

}  // namespace nmsnn
