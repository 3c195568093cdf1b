// nmsnn/spec.hpp — what a network is: its layers, neuron settings, readout and time steps.
//
// A NetworkSpec is plain data. Build one by hand, or start from NetworkSpec::seed_mnist() and
// change what you need. Network's constructor validates it (NetworkSpec::validate) and throws
// nmsnn::Error naming the first field at fault. The math behind each field is in SPEC.md.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <variant>
#include <vector>

namespace nmsnn {

// How a spiking neuron's inner state is reset after it fires (SPEC.md section 2).
enum class ResetRule {
  scale,     // v = u - (penalty / threshold) * u * g   (the seed package and its MNIST example)
  subtract,  // v = u - (penalty + s) * g                (the seed README's prose)
};

// How the readout reduces the last layer's output over time.
enum class Reduce { sum, mean };

// The seed's SpikingNeuronLayer: a linear map followed by leaky integrate-and-fire neurons.
//   a[t] = W x[t] + bias;  u[t] = a[t] + decay * v[t-1];  s[t] = relu(u[t] - threshold)
//   g[t] = s[t] > 0;       v[t] = reset(u[t], s[t], g[t])
// With `delay`, the layer returns the previous step's (v, s), as the seed does.
// A layer passes its spikes s to the next layer; the last layer of a network passes its inner
// state v to the readout (the seed takes the output layer's state as logits).
struct SpikingLayer {
  int size = 0;            // number of neurons H (> 0)
  float decay = 0.9f;      // in [0, 1]
  float threshold = 1.0f;  // > 0
  float penalty = 1.5f;    // >= 0
  ResetRule reset = ResetRule::scale;
  bool delay = true;
};

// ---- the layers of PyTorchSpiking (SPEC.md section 5) and plain layers ----------------------

// y[t] = W x[t] + bias at every step (torch.nn.Linear applied over time).
struct Dense {
  int size = 0;  // outputs (> 0)
};

// Element-wise functions for Activation and SpikingActivation.
enum class ActivationKind {
  relu,     // max(x, 0)
  tanh,     // tanh(x)
  sigmoid,  // 1 / (1 + exp(-x))
};

// y[t] = f(x[t]) at every step (a non-spiking activation, as in the seed's MLP baselines).
struct Activation {
  ActivationKind kind = ActivationKind::relu;
};

// PyTorchSpiking's SpikingActivation: spikes at a rate proportional to f(x).
//   voltage += f(x[t]) * dt;  n = floor(voltage);  voltage -= n;  y[t] = n / dt
// Backward uses f'(x) (straight-through). With spiking_aware_training off, training passes use
// f(x) itself and inference passes spike. The initial voltage is U[0, 1) per (sample, neuron)
// from the noise seed, or 0 when random_initial_voltage is off. Optional rate regularization adds
// weight * mean_b sum_h (rate[b,h] - target)^2 to the loss, rate = mean_t y[t] (in Hz).
struct SpikingActivation {
  ActivationKind activation = ActivationKind::relu;
  float dt = 0.001f;                  // > 0, seconds per step
  bool spiking_aware_training = true;
  bool random_initial_voltage = true;
  bool return_sequences = true;       // false: return only the last step
  float rate_target = 0.0f;           // Hz
  float rate_weight = 0.0f;           // 0: no regularization

  bool regularized() const { return rate_weight > 0; }
};

// PyTorchSpiking's Lowpass filter, trainable per unit:
//   smoothing = sigmoid(p), p initialised to logit(exp(-dt / tau))
//   level[t] = (1 - smoothing) * x[t] + smoothing * level[t-1], level[-1] trainable (zeros)
struct Lowpass {
  float tau = 0.1f;                 // > 0, seconds
  float dt = 0.001f;                // > 0, seconds per step
  int units = 0;                    // must equal the input width when given; 0 = take it
  bool apply_during_training = true;  // false: identity in training passes
  bool return_sequences = true;       // false: return only the last step
};

// The mean over time: [T, B, H] -> [1, B, H].
struct TemporalAvgPool {};

// ---- convolutional layers (feature maps [C, H, W] at every step) --------------------------------
//
// A layer's output is [C, H, W] when it is a convolution or a pooling, or follows one through
// element-wise layers; the network's input is when `input_shape` is given. Feature maps are
// stored flat in PyTorch's order (c, y, x), so `flatten` moves nothing and the dense layer after
// it has PyTorch's weight [H, C*H*W]. Pairs are [height, width].

// y[t] = conv2d(x[t], W) + bias at every step: torch.nn.Conv2d (no dilation, no groups).
// weight [out_channels, C, kh, kw], bias [out_channels]. Out size (H + 2 pad - k) / stride + 1.
struct Conv2d {
  int out_channels = 0;
  std::array<int, 2> kernel{3, 3};
  std::array<int, 2> stride{1, 1};
  std::array<int, 2> padding{0, 0};  // zeros on every side
};

// The mean or maximum over each window of every channel, at every step: torch.nn.AvgPool2d and
// MaxPool2d with no padding and floor rounding. Max pooling's gradient goes to the first largest
// value of its window, in row-major order (PyTorch's rule; spikes tie often).
struct AvgPool2d {
  std::array<int, 2> kernel{2, 2};
  std::array<int, 2> stride{0, 0};  // 0: the kernel size (PyTorch's default)
};
struct MaxPool2d {
  std::array<int, 2> kernel{2, 2};
  std::array<int, 2> stride{0, 0};  // 0: the kernel size
};

// [C, H, W] -> [C*H*W] (torch.nn.Flatten): dense and spiking layers need a flat input.
struct Flatten {};

// The seed's leaky integrate-and-fire neurons on whatever the previous layer returns (a
// convolution's feature maps, a dense layer's outputs): SpikingLayer without its linear map.
//   u[t] = x[t] + decay * v[t-1], then as SpikingLayer. No parameters.
struct Lif {
  float decay = 0.9f;
  float threshold = 1.0f;
  float penalty = 1.5f;
  ResetRule reset = ResetRule::scale;
  bool delay = true;
};

// One entry of the layer stack.
using LayerSpec = std::variant<SpikingLayer, Dense, Activation, SpikingActivation, Lowpass,
                               TemporalAvgPool, Conv2d, AvgPool2d, MaxPool2d, Flatten, Lif>;

// "spiking", "dense", "activation", "spiking_activation", "lowpass", "temporal_avg_pool",
// "conv2d", "avg_pool2d", "max_pool2d", "flatten", "lif"
const char* layer_kind(const LayerSpec& layer);

// Whether a layer's neurons fire (spiking, spiking_activation, lif): they have firing rates.
bool fires(const LayerSpec& layer);

// logits[b, c] = reduce over t = begin_eval .. T-1 of the last layer's output[t, b, c]. The
// output of a last SpikingLayer is its inner state v (the seed takes it as logits); of any
// other layer, what it returns.
// The default is the mean, which is what the seed's networks compute (their
// average_output=False), and keeps the logits' scale independent of T.
struct Readout {
  Reduce reduce = Reduce::mean;
  int begin_eval = 0;  // in [0, time_steps)
};

struct NetworkSpec {
  int inputs = 0;         // features per sample, I
  std::vector<int> input_shape;  // [C, H, W] of image inputs (product = inputs), or empty: flat
  int time_steps = 128;   // T
  std::vector<LayerSpec> layers;
  Readout readout;

  // Throws nmsnn::Error naming the first invalid field.
  void validate() const;

  // Number of outputs (the last layer's width).
  int outputs() const;
  // Features and steps each layer returns, and what the readout reduces over.
  int layer_width(int layer) const;
  int layer_steps(int layer) const;
  // What one step of layer `layer` returns: [C, H, W] feature maps or [width]. layer = -1: the
  // input's shape.
  std::vector<int> layer_shape(int layer) const;

  // The seed's MNIST network: 784-100-10, T = 128, decay 0.9, threshold 1, penalty 1.5 (scale
  // reset, delay on), readout mean from step 0 (what the seed's average_output=False computes).
  static NetworkSpec seed_mnist();

  // A network of `hidden` spiking layers then an output layer of `outputs` neurons, seed neuron
  // settings throughout.
  static NetworkSpec spiking(int inputs, const std::vector<int>& hidden, int outputs,
                             int time_steps = 128);

  // The seed's non-spiking baseline: Dense + ReLU per hidden layer, then a Dense output, run on
  // one time step (time_steps = 1) of the static input.
  static NetworkSpec mlp(int inputs, const std::vector<int>& hidden, int outputs);
};

const char* to_string(ResetRule rule);
const char* to_string(Reduce reduce);
const char* to_string(ActivationKind kind);
// Parse "scale"/"subtract", "sum"/"mean", "relu"/"tanh"/"sigmoid"; throw nmsnn::Error otherwise.
ResetRule parse_reset_rule(const std::string& name);
Reduce parse_reduce(const std::string& name);
ActivationKind parse_activation(const std::string& name);

// The [out_h, out_w] of a window of `kernel` moved by `stride` over [h, w] padded by `padding`
// on every side: (h + 2 pad - k) / stride + 1 (floor), as torch.nn.Conv2d and the pools.
std::array<int, 2> window_output(std::array<int, 2> in, std::array<int, 2> kernel,
                                 std::array<int, 2> stride, std::array<int, 2> padding);
// A pool's stride, with 0 read as its kernel size.
inline std::array<int, 2> pool_stride(std::array<int, 2> kernel, std::array<int, 2> stride) {
  return {stride[0] ? stride[0] : kernel[0], stride[1] ? stride[1] : kernel[1]};
}

// One trainable tensor, named as PyTorch would: "layers.0.weight" [H, I], "layers.0.bias" [H];
// a convolution's "layers.0.weight" [O, C, kh, kw].
struct ParameterInfo {
  std::string name;
  std::vector<int> shape;
  size_t size = 0;
  int layer = 0;
};

// The trainable tensors of a spec, in order: for each layer with weights its weight [H, I] (or
// [O, C, kh, kw]) then bias [H]; for each Lowpass its smoothing logits then initial level. Network::parameters() and
// the model files list them in this order.
std::vector<ParameterInfo> parameter_layout(const NetworkSpec& spec);

}  // namespace nmsnn
