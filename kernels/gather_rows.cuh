// gather_rows.cuh — a training step's batch gathered on the device from a training set kept
// there (StepLoop::keep_data), so that a step sends the device only its rows' indices.
// CPU twin: StepLoop::step_rows' gather on the host (host/training/train_step.cpp).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace nmsnn::kernels {

// dst[b, j] = src[rows[b], j] for b < n, j < width: rows of `width` 32-bit words (floats or
// ints, copied as bits). rows are device memory and already checked to lie in src.
void gather_rows(const uint32_t* src, int width, const int* rows, int n, uint32_t* dst,
                 cudaStream_t stream, int block_size = 256);

}  // namespace nmsnn::kernels
