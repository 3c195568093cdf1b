// py_network.hpp — what a Python nmsnn._core.Network holds: its own network, or a model's (then
// the Python object keeps the model alive), with the description it was built from.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "convert.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/spec_json.hpp"

namespace nmsnn::py {

struct PyNetwork {
  NetworkDescription description;
  std::unique_ptr<Network> own;  // empty when the network belongs to a model
  Network* net = nullptr;
};

// A forward pass and the input it read. The library's Input points at caller memory that must
// stay unchanged until backward(), so the pass keeps either its own copy (NumPy arrays, which
// Python code may change at any time) or a view of the caller's tensor (nmsnn.torch, whose
// version counter catches an in-place change before backward).
struct PyPass {
  ForwardPass pass;
  std::vector<float> copy;
  FloatArray view;
  Input::Kind kind = Input::Kind::noisy;
  int batch = 0, features = 0, steps = 0;
  bool training = true;
};

// A forward pass over x ([T, B, I] for a sequence, [B, I] for the static kinds), checked against
// the network's inputs ("array" or "tensor" names x in errors); keeps a copy of x when `copy`.
PyPass run_forward(PyNetwork& self, const FloatArray& x, const std::string& kind,
                   const ForwardOptions& options, bool copy, const char* noun);
// The pass's backward from dL/dlogits; dL/dinput in the input's shape when `input_grad`.
std::optional<NumpyFloat> run_backward(PyNetwork& self, const PyPass& p, const FloatArray& dlogits,
                                       bool input_grad);

}  // namespace nmsnn::py
