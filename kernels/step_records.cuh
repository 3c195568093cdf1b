// step_records.cuh — how many training steps' records a device keeps before the host must read
// them (train_step.cuh's StepRecords). Plain C++, so the tests that run more steps than that
// (test_train_step.cpp) take the number from here.
#pragma once

namespace nmsnn::kernels {

// The CUDA emulation keeps 16, so that its test of more steps than the device keeps runs 60
// steps, not 300: an emulated step takes most of a second.
#ifdef NMSNN_EMULATED_CUDA
constexpr int kStepRecords = 16;
#else
constexpr int kStepRecords = 256;
#endif

}  // namespace nmsnn::kernels
