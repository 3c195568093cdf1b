// nmsnn/spec.hpp — what a network is: its layers, neuron settings, readout and time steps.
//
// A NetworkSpec is plain data. Build one by hand, or start from NetworkSpec::seed_mnist() and
// change what you need. Network's constructor validates it (NetworkSpec::validate) and throws
// nmsnn::Error naming the first field at fault. The math behind each field is in SPEC.md.
#pragma once

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

// One entry of the layer stack. Later layer kinds join this variant.
using LayerSpec = std::variant<SpikingLayer>;

// logits[b, c] = reduce over t = begin_eval .. T-1 of the last layer's output[t, b, c].
// The default is the mean, which is what the seed's networks compute (their
// average_output=False), and keeps the logits' scale independent of T.
struct Readout {
  Reduce reduce = Reduce::mean;
  int begin_eval = 0;  // in [0, time_steps)
};

struct NetworkSpec {
  int inputs = 0;         // features per sample, I
  int time_steps = 128;   // T
  std::vector<LayerSpec> layers;
  Readout readout;

  // Throws nmsnn::Error naming the first invalid field.
  void validate() const;

  // Number of outputs (the last layer's size).
  int outputs() const;

  // The seed's MNIST network: 784-100-10, T = 128, decay 0.9, threshold 1, penalty 1.5 (scale
  // reset, delay on), readout mean from step 0 (what the seed's average_output=False computes).
  static NetworkSpec seed_mnist();

  // A network of `hidden` spiking layers then an output layer of `outputs` neurons, seed neuron
  // settings throughout.
  static NetworkSpec spiking(int inputs, const std::vector<int>& hidden, int outputs,
                             int time_steps = 128);
};

const char* to_string(ResetRule rule);
const char* to_string(Reduce reduce);
// Parse "scale"/"subtract" and "sum"/"mean"; throw nmsnn::Error on anything else.
ResetRule parse_reset_rule(const std::string& name);
Reduce parse_reduce(const std::string& name);

}  // namespace nmsnn
