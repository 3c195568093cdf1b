// nmsnn/checkpoint.hpp — a training run saved to a file between two batches, to resume it exactly.
//
//   opts.checkpoint_every = 500;  // optimiser steps; 0: at the end of every epoch
//   opts.on_checkpoint = [&](const nmsnn::TrainState& s) {
//     nmsnn::save_checkpoint("run.ckpt", {s, settings});
//   };
//   ... after a crash, in a new process, with the same network, data and options:
//   nmsnn::Checkpoint c = nmsnn::load_checkpoint("run.ckpt");
//   nmsnn::check_checkpoint_settings(c, settings, "run.ckpt");  // refuses another run's file
//   opts.resume = &c.state;
//   nmsnn::train(net, data, opts);  // ends with the parameters an uninterrupted run has
//
// `settings` is the caller's fingerprint of the run (data, network, optimiser, batch, seed,
// epochs...): a JSON object whose members must all be equal for a resume to be allowed.
//
// File format: a safetensors file (like a model file) holding the network's parameters under
// their names, the optimiser's buffers as "optimizer.m.<name>" and "optimizer.v.<name>", and the
// metadata "format" = "nmsnn-checkpoint", "format_version" = "1", "settings" (the JSON object
// above) and "state" (JSON: the rest of TrainState; numbers read back bit-exactly). Saving is
// atomic: a run killed while saving leaves the previous checkpoint intact.
#pragma once

#include <string>

#include "nmsnn/json.hpp"
#include "nmsnn/trainer.hpp"

namespace nmsnn {

struct Checkpoint {
  TrainState state;
  Json settings = Json::object();
};

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);

// Reads and validates a checkpoint; every problem throws nmsnn::Error naming the file (and the
// key or tensor at fault).
Checkpoint load_checkpoint(const std::string& path);

// Throws nmsnn::Error naming the first setting that differs between the checkpoint's run and
// `settings`: "checkpoint 'run.ckpt' is from another run: its batch is 32, this run's is 16 ...".
void check_checkpoint_settings(const Checkpoint& checkpoint, const Json& settings,
                               const std::string& path);

}  // namespace nmsnn
