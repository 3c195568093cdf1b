// py_network.hpp — what a Python nmsnn._core.Network holds: its own network, or a model's (then
// the Python object keeps the model alive), with the description it was built from.
#pragma once

#include <memory>
#include <vector>

#include "nmsnn/network.hpp"
#include "nmsnn/spec_json.hpp"

namespace nmsnn::py {

struct PyNetwork {
  NetworkDescription description;
  std::unique_ptr<Network> own;  // empty when the network belongs to a model
  Network* net = nullptr;
};

// A forward pass and the input it read: the library's Input points at caller memory that must
// outlive backward(), so the pass keeps its own copy of it.
struct PyPass {
  ForwardPass pass;
  std::vector<float> input;
  Input::Kind kind = Input::Kind::noisy;
  int batch = 0, features = 0, steps = 0;
  bool training = true;
};

}  // namespace nmsnn::py
