// step_sums.cuh — where a training step's statistics sit in the array that a data-parallel step
// sums over the ranks. One definition for the device step (train_step.cu) and its host twin
// (host/training/train_step.cpp), so that the two cannot drift apart. Plain C++ (constexpr, which
// device code may call: the library builds with --expt-relaxed-constexpr), so both include it.
//
//   [0] the loss: a shard's share of the batch's (loss * rows / batch), the loss itself for one
//       process; [1] the correct count; then per rank r: [2 + 2r] 1 if its outputs were not
//       finite, [3 + 2r] the first such value.
// Doubles, so that the sum of the shares is the loss the host path computes.
#pragma once

#include <cstddef>

namespace nmsnn::kernels::step_sums {

constexpr size_t loss = 0;
constexpr size_t correct = 1;
constexpr size_t bad_outputs(int rank) { return 2 + 2 * size_t(rank); }
constexpr size_t bad_value(int rank) { return 3 + 2 * size_t(rank); }
constexpr size_t count(int ranks) { return bad_outputs(ranks); }

}  // namespace nmsnn::kernels::step_sums
