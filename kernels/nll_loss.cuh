// nll_loss.cuh — the multiclass loss on the device: NLL of log_softmax, and its gradient, so a
// training step can run without copying logits to the host. CPU twin: detail::nll_log_softmax
// (host/training/loss_math.hpp), which the public nmsnn::nll_log_softmax runs in double.
#pragma once

#include <cuda_runtime.h>

namespace nmsnn::kernels {

// logits[B, C], labels[B] in [0, C) (device). Writes dlogits[B, C] = (softmax - onehot) / B and,
// when `losses` is not null, losses[b] = -log_softmax(logits[b])[labels[b]] (the loss is their
// mean). A label outside [0, C) gives NaN for that sample instead of reading out of bounds.
// block_size: threads per block, a multiple of 32 in [32, 1024] (launch.cuh).
void nll_log_softmax(const float* logits, const int* labels, int B, int C, float* dlogits,
                     float* losses, cudaStream_t stream, int block_size = 128);

}  // namespace nmsnn::kernels
