// train_step.cuh — the device half of a training step that never waits for the host: the loss
// and its gradient for NLL, BCE and MSE, the step's record (loss, correct count, batch), and the
// divergence guard, all in device memory (nmsnn/train_step.hpp says what the guard checks).
//
// A step is: forward -> step_partial -> (the sum over the ranks) -> step_guard -> backward ->
// guarded optimiser update (optimizer_update.cuh). step_partial writes dlogits, step_guard a
// record, or either halts the steps: later kernels of the step and of every later step see
// `halt` and do nothing, so the parameters stay the last good ones (prev holds them when the
// failing step was an update) until the host reads the records.
//
// CPU twin: the host path in host/training/train_step.cpp, whose losses are loss_math.hpp's in
// double; these compute the same expressions in double. The batch's loss is summed in a fixed
// tree order (deterministic, but not the host's left-to-right order: the two differ by a few ulps
// of a double).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "nmsnn/loss.hpp"
#include "step_records.cuh"
#include "step_sums.cuh"

namespace nmsnn::kernels {

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
  int B = 0, C = 0;                      // this process's rows (0: a rank with none) and outputs
  const float* logits = nullptr;         // [B, C]
  const int* labels = nullptr;           // [B]: nll, and bce when targets is null
  const float* targets = nullptr;        // [B, C]: mse; [B]: bce
  const float* regularization = nullptr; // the pass's regularization loss, or null
  float* dlogits = nullptr;              // [B, C] out (zeros when the steps are halted)
  StepRecords* records = nullptr;
  // The step's batch (the record's) and where these rows sit: one process has all of them
  // (batch == B, sharded false, its loss entry the loss itself); a shard's loss entry is its share.
  int batch = 0;
  bool sharded = false;
  int rank = 0, ranks = 1;
  double* sums = nullptr;                // [step_sums::count(ranks)] out, then summed over ranks
};

// A step is step_partial, then (data parallelism) the sums added over the ranks in place, then
// step_guard. step_partial: this process's rows' statistics into `sums` (all zero but its own
// entries) and dlogits of their mean loss, or zeros when the steps are halted (an update of the
// previous step left a parameter not finite: it halts them here). One block; block_size a power
// of two in [32, 1024] (the tree reduction halves it).
void step_partial(const StepLossArgs& args, cudaStream_t stream, int block_size = 256);
// step_guard: from the summed statistics, the record (loss, correct, batch) or a halt: outputs
// not finite (the lowest such rank's value), loss not finite, or the loss grown past the guard's
// factor; sets the first loss. One thread.
void step_guard(const StepLossArgs& args, cudaStream_t stream);

}  // namespace nmsnn::kernels
