// train_step.cuh — the device half of a training step that never waits for the host: the loss
// and its gradient for NLL, BCE and MSE, the step's record (loss, correct count, batch), and the
// divergence guard, all in device memory (nmsnn/train_step.hpp says what the guard checks).
//
// A step is: forward -> step_loss -> backward -> guarded optimiser update (optimizer_update.cuh).
// step_loss writes dlogits and a record, or halts the steps: later kernels of the step and of
// every later step see `halt` and do nothing, so the parameters stay the last good ones (prev
// holds them when the failing step was an update) until the host reads the records.
//
// CPU twin: the host path in host/training/train_step.cpp, whose losses are loss_math.hpp's in
// double; these compute the same expressions in double. The batch's loss is summed in a fixed
// tree order (deterministic, but not the host's left-to-right order: the two differ by a few ulps
// of a double).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "nmsnn/loss.hpp"

namespace nmsnn::kernels {

// Records a device keeps before the host must read them.
constexpr int kStepRecords = 256;
constexpr unsigned long long kNoIndex = ~0ull;

// Device memory. The host zeroes count and halt and sets bad_index to kNoIndex at each read; it
// sets guard, factor and first_loss (NaN: the next good step's loss) when a loop starts.
struct StepRecords {
  int count;        // records written since the last read
  int halt;         // 0, or a nmsnn::HaltReason
  int halt_step;    // the halting step's record index
  int guard;        // 1: check; 0: record whatever happens
  unsigned long long bad_index;  // lowest index of a parameter an update left not finite
  double halt_value;
  double first_loss;
  double factor;
  double loss[kStepRecords];
  int correct[kStepRecords];
  int batch[kStepRecords];
};

struct StepLossArgs {
  Loss loss = Loss::nll;
  int B = 0, C = 0;
  const float* logits = nullptr;         // [B, C]
  const int* labels = nullptr;           // [B]: nll, and bce when targets is null
  const float* targets = nullptr;        // [B, C]: mse; [B]: bce
  const float* regularization = nullptr; // the pass's regularization loss, or null
  float* dlogits = nullptr;              // [B, C] out (zeros when the steps are halted)
  StepRecords* records = nullptr;
};

// One block. block_size: a power of two in [32, 1024] (the tree reduction halves it).
void step_loss(const StepLossArgs& args, cudaStream_t stream, int block_size = 256);

}  // namespace nmsnn::kernels
