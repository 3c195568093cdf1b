// train_step.cu — step_partial: each thread takes the samples b = tid, tid + blockDim, ... in
// order, then the block adds their losses and correct counts in a fixed tree, and thread 0 writes
// the statistics; step_guard (one thread) applies the guard to their sums over the ranks and
// writes the record. One block is enough: the work is O(B*C) with C the outputs.
#include "cuda_check.cuh"
#include "launch.cuh"
#include "loss_rows.cuh"
#include "train_step.cuh"

namespace nmsnn::kernels {

namespace {

// HaltReason's values (nmsnn/train_step.hpp), which the host reads back.
constexpr int kOutputsNotFinite = 1, kLossNotFinite = 2, kLossGrew = 3, kParameterNotFinite = 4;

__global__ void step_partial_kernel(StepLossArgs a) {
  // Sized for the largest block; only the first blockDim.x entries are used.
  __shared__ double loss_sum[kMaxBlockSize];
  __shared__ int correct_sum[kMaxBlockSize];
  __shared__ long long first_bad[kMaxBlockSize];  // lowest flat index of a non-finite logit
  __shared__ int halted;
  StepRecords* r = a.records;
  const int tid = threadIdx.x, n = blockDim.x;
  const long long BC = (long long)a.B * a.C;
  const int S = int(step_sums::count(a.ranks));
  if (tid == 0) {
    // An update of the previous step made a parameter not finite: that step halts the loop.
    if (r->halt == 0 && r->guard && r->bad_index != kNoIndex) {
      r->halt = kParameterNotFinite;
      r->halt_step = r->count - 1;
    }
    halted = r->halt;
  }
  __syncthreads();
  for (int i = tid; i < S; i += n) a.sums[i] = 0.0;  // a halted or empty shard adds nothing
  if (halted) {
    for (long long i = tid; i < BC; i += n) a.dlogits[i] = 0.0f;
    return;
  }

  // The mean's divisor: every output for mse, every sample otherwise (bce has one output).
  const double N = a.loss == Loss::mse ? double(BC) : double(a.B);
  double loss = 0;
  int correct = 0;
  long long bad = BC;
  for (long long i = tid; i < BC && bad == BC; i += n)  // this thread's part of the logits
    if (!isfinite(a.logits[i])) bad = i;
  for (int b = tid; b < a.B; b += n) {
    const float* z = a.logits + (size_t)b * a.C;
    float* grad = a.dlogits + (size_t)b * a.C;
    int right = 0;
    if (a.loss == Loss::nll) {
      loss += nll_sample(z, a.C, a.labels[b], N, grad, &right);
    } else if (a.loss == Loss::bce) {
      const double y = a.targets ? double(a.targets[b]) : double(a.labels[b]);
      loss += bce_sample(z[0], y, N, grad, &right);
    } else {
      loss += mse_sample(z, a.targets + (size_t)b * a.C, a.C, N, grad);
    }
    correct += right;
  }
  loss_sum[tid] = loss;
  correct_sum[tid] = correct;
  first_bad[tid] = bad;
  __syncthreads();  // also orders the zeroing of sums above before thread 0's writes below
  for (int half = n / 2; half > 0; half /= 2) {
    if (tid < half) {
      loss_sum[tid] += loss_sum[tid + half];
      correct_sum[tid] += correct_sum[tid + half];
      if (first_bad[tid + half] < first_bad[tid]) first_bad[tid] = first_bad[tid + half];
    }
    __syncthreads();
  }
  if (tid != 0 || a.B == 0) return;
  const double total = loss_sum[0] / N + (a.regularization ? double(*a.regularization) : 0.0);
  // A shard's share of the batch's mean, as the host path computes it.
  a.sums[step_sums::loss] = a.sharded ? total * a.B / a.batch : total;
  a.sums[step_sums::correct] = a.loss == Loss::mse ? 0 : correct_sum[0];
  if (r->guard && first_bad[0] < BC) {
    a.sums[step_sums::bad_outputs(a.rank)] = 1;
    a.sums[step_sums::bad_value(a.rank)] = a.logits[first_bad[0]];
  }
}

__global__ void step_guard_kernel(StepLossArgs a) {
  StepRecords* r = a.records;
  if (r->halt) return;
  auto halt = [&](int reason, double value) {
    r->halt = reason;
    r->halt_step = r->count;
    r->halt_value = value;
  };
  for (int k = 0; k < a.ranks; ++k)  // set only with the guard on
    if (a.sums[step_sums::bad_outputs(k)] != 0)
      return halt(kOutputsNotFinite, a.sums[step_sums::bad_value(k)]);
  const double total = a.sums[step_sums::loss];
  if (r->guard) {
    if (!isfinite(total)) return halt(kLossNotFinite, total);
    if (isfinite(r->first_loss) && total > r->factor * fmax(r->first_loss, 1.0))
      return halt(kLossGrew, total);
  }
  if (!isfinite(r->first_loss)) r->first_loss = total;
  const int k = r->count;
  if (k < kStepRecords) {  // the host reads before this fills; the check keeps memory safe
    r->loss[k] = total;
    r->correct[k] = int(a.sums[step_sums::correct]);
    r->batch[k] = a.batch;
    r->count = k + 1;
  }
}

void check_args(const char* what, const StepLossArgs& a) {
  if (a.B < (a.sharded ? 0 : 1) || a.C < 1 || a.B > a.batch)
    ::nmsnn::detail::fail(what, ": need 1 <= C, ", a.sharded ? "0" : "1",
                          " <= B <= batch, got B=", a.B, ", C=", a.C, ", batch=", a.batch);
  if (a.ranks < 1 || a.rank < 0 || a.rank >= a.ranks)
    ::nmsnn::detail::fail(what, ": rank ", a.rank, " of ", a.ranks, " ranks");
  if (!a.sums || !a.records) ::nmsnn::detail::fail(what, ": sums and records must be set");
}

}  // namespace

void step_partial(const StepLossArgs& args, cudaStream_t stream, int block_size) {
  check_block_size("step_partial", block_size);
  if (block_size & (block_size - 1))
    ::nmsnn::detail::fail("step_partial: block size must be a power of two, got ", block_size);
  check_args("step_partial", args);
  step_partial_kernel<<<1, block_size, 0, stream>>>(args);
  NMSNN_CHECK_LAUNCH("step_partial", "B=", args.B, ", C=", args.C);
}

void step_guard(const StepLossArgs& args, cudaStream_t stream) {
  check_args("step_guard", args);
  step_guard_kernel<<<1, 1, 0, stream>>>(args);
  NMSNN_CHECK_LAUNCH("step_guard", "batch=", args.batch, ", ranks=", args.ranks);
}

}  // namespace nmsnn::kernels
