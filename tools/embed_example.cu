// embed_example.cu — using nmsnn's device API from a CUDA program that owns its memory and stream.
//
//   build/tools/nmsnn_embed_example [batch]
//
// The program allocates the parameters, gradients, input and workspace itself with cudaMalloc,
// runs forward, the loss gradient, backward and an SGD step on its own stream, and prints the
// logits of the first samples and the loss before and after the step. nmsnn allocates nothing
// and never synchronises: the program decides when to wait (once, before printing).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <vector>

#include "nmsnn/cuda.hpp"
#include "nmsnn/nmsnn.hpp"

#define CHECK(call)                                                                          \
  do {                                                                                       \
    cudaError_t e_ = (call);                                                                 \
    if (e_ != cudaSuccess) {                                                                 \
      std::fprintf(stderr, "%s failed at %s:%d: %s\n", #call, __FILE__, __LINE__,            \
                   cudaGetErrorString(e_));                                                  \
      std::exit(1);                                                                          \
    }                                                                                        \
  } while (0)

int main(int argc, char** argv) try {
  const int B = argc > 1 ? std::atoi(argv[1]) : 64;
  std::string why;
  if (!nmsnn::cuda_available(&why)) {
    std::fprintf(stderr, "no CUDA device: %s\n", why.c_str());
    return 1;
  }

  // The seed's MNIST network, its initial parameters from the host API (any values would do).
  const nmsnn::NetworkSpec spec = nmsnn::NetworkSpec::seed_mnist();
  nmsnn::Network host_net(spec, {nmsnn::Engine::cpu, /*seed=*/1, 1});
  const int I = spec.inputs, C = spec.outputs();

  cudaStream_t stream;
  CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cublasHandle_t cublas;
  if (cublasCreate(&cublas) != CUBLAS_STATUS_SUCCESS) return std::fprintf(stderr, "cublasCreate failed\n"), 1;
  cublasSetStream(cublas, stream);  // bound once here, so nmsnn never rebinds it

  nmsnn::cuda::DeviceNetwork net(spec, cublas);

  // Parameters, gradients and SGD momentum buffers: one cudaMalloc each per tensor.
  std::vector<float*> params, grads, momentum;
  for (const nmsnn::ParameterInfo& p : net.parameters()) {
    float *w, *g, *m;
    CHECK(cudaMalloc(&w, p.size * sizeof(float)));
    CHECK(cudaMalloc(&g, p.size * sizeof(float)));
    CHECK(cudaMalloc(&m, p.size * sizeof(float)));
    const std::vector<float> values = host_net.parameter(p.name);
    CHECK(cudaMemcpyAsync(w, values.data(), p.size * sizeof(float), cudaMemcpyHostToDevice, stream));
    CHECK(cudaMemsetAsync(m, 0, p.size * sizeof(float), stream));
    params.push_back(w);
    grads.push_back(g);
    momentum.push_back(m);
  }

  // A batch of synthetic "images" with labels.
  std::vector<float> x(size_t(B) * I);
  std::vector<int> labels(B);
  for (int b = 0; b < B; ++b) {
    labels[b] = b % C;
    for (int i = 0; i < I; ++i) x[size_t(b) * I + i] = float((i * 7 + b * 13) % 17) / 17.0f;
  }
  float *d_x, *d_logits, *d_dlogits, *d_losses;
  int* d_labels;
  CHECK(cudaMalloc(&d_x, x.size() * sizeof(float)));
  CHECK(cudaMalloc(&d_logits, size_t(B) * C * sizeof(float)));
  CHECK(cudaMalloc(&d_dlogits, size_t(B) * C * sizeof(float)));
  CHECK(cudaMalloc(&d_losses, B * sizeof(float)));
  CHECK(cudaMalloc(&d_labels, B * sizeof(int)));
  CHECK(cudaMemcpyAsync(d_x, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice, stream));
  CHECK(cudaMemcpyAsync(d_labels, labels.data(), B * sizeof(int), cudaMemcpyHostToDevice, stream));

  // The workspace: saved state for backward plus scratch, sized by the network.
  const size_t bytes = net.workspace_bytes(B, nmsnn::Input::Kind::noisy, /*training=*/true);
  void* workspace;
  CHECK(cudaMalloc(&workspace, bytes));
  std::printf("batch %d: workspace %.1f MB, of which saved state %.1f MB (4 bytes/neuron/step)\n", B,
              bytes / 1e6, net.saved_bytes(B) / 1e6);

  nmsnn::cuda::DeviceInput input;
  input.kind = nmsnn::Input::Kind::noisy;
  input.data = d_x;
  input.batch = B;
  const nmsnn::Sgd sgd{0.01, 0.5};
  std::vector<float> losses_before(B), losses_after(B), logits(size_t(B) * C);

  // One training step: forward, loss gradient, backward, update.
  input.noise = {/*seed=*/1, /*pass=*/0};
  net.forward(params.data(), input, d_logits, /*training=*/true, {workspace, bytes}, stream);
  nmsnn::cuda::nll_log_softmax(d_logits, d_labels, B, C, d_dlogits, d_losses, stream);
  CHECK(cudaMemcpyAsync(logits.data(), d_logits, logits.size() * sizeof(float),
                        cudaMemcpyDeviceToHost, stream));
  CHECK(cudaMemcpyAsync(losses_before.data(), d_losses, B * sizeof(float), cudaMemcpyDeviceToHost,
                        stream));
  net.backward(params.data(), input, d_dlogits, grads.data(), nullptr, {workspace, bytes}, stream);
  for (size_t k = 0; k < params.size(); ++k)
    nmsnn::cuda::sgd_update(sgd, params[k], grads[k], momentum[k], net.parameters()[k].size,
                            /*step=*/1, stream);

  // The same batch and masks again, for inference: the loss after the update.
  net.forward(params.data(), input, d_logits, /*training=*/false, {workspace, bytes}, stream);
  nmsnn::cuda::nll_log_softmax(d_logits, d_labels, B, C, d_dlogits, d_losses, stream);
  CHECK(cudaMemcpyAsync(losses_after.data(), d_losses, B * sizeof(float), cudaMemcpyDeviceToHost,
                        stream));
  CHECK(cudaStreamSynchronize(stream));  // the only wait, before reading results on the host

  for (int b = 0; b < std::min(B, 3); ++b) {
    std::printf("sample %d (label %d) logits:", b, labels[b]);
    for (int c = 0; c < C; ++c) std::printf(" %.4f", logits[size_t(b) * C + c]);
    std::printf("\n");
  }
  double before = 0, after = 0;
  for (int b = 0; b < B; ++b) before += losses_before[b], after += losses_after[b];
  std::printf("mean loss %.5f before one SGD step, %.5f after\n", before / B, after / B);

  for (size_t k = 0; k < params.size(); ++k) {
    cudaFree(params[k]);
    cudaFree(grads[k]);
    cudaFree(momentum[k]);
  }
  cudaFree(d_x);
  cudaFree(d_logits);
  cudaFree(d_dlogits);
  cudaFree(d_losses);
  cudaFree(d_labels);
  cudaFree(workspace);
  cublasDestroy(cublas);
  cudaStreamDestroy(stream);
  return 0;
} catch (const nmsnn::Error& e) {
  std::fprintf(stderr, "nmsnn error: %s\n", e.what());
  return 1;
}
