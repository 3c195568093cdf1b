// nmsnn/spec_json.hpp — network descriptions as small JSON documents ("a model is data").
//
//   {
//     "inputs": 784,                      optional when a tool takes it from the data
//     "input_shape": [1, 28, 28],         [C, H, W] for conv2d/avg_pool2d/max_pool2d layers;
//                                         optional when the data are images (IDX files)
//     "time_steps": 10,
//     "encoding": "repeated",             noisy (the seed's noise mask) | repeated | sequence
//     "readout": {"reduce": "mean", "begin_eval": 0},
//     "layers": [
//       {"type": "dense", "size": 128},
//       {"type": "spiking_activation", "activation": "relu", "dt": 0.01,
//        "spiking_aware_training": true, "random_initial_voltage": true,
//        "return_sequences": true, "rate_target": 20, "rate_weight": 0.001},
//       {"type": "lowpass", "tau": 0.1, "dt": 0.01, "units": 128,
//        "apply_during_training": true, "return_sequences": true},
//       {"type": "temporal_avg_pool"},
//       {"type": "spiking", "size": 100, "decay": 0.9, "threshold": 1.0, "penalty": 1.5,
//        "reset": "scale", "delay": true},
//       {"type": "activation", "function": "relu"},
//       {"type": "conv2d", "out_channels": 8, "kernel": 3, "stride": 1, "padding": [1, 1]},
//       {"type": "lif", "decay": 0.9, "threshold": 1.0, "penalty": 1.5, "reset": "scale",
//        "delay": true},
//       {"type": "max_pool2d", "kernel": 2, "stride": 0},   (and avg_pool2d; stride 0 = kernel)
//       {"type": "flatten"}
//     ]
//   }
//
// Every field but "type" and "size" has the default of the C++ struct (spec.hpp). Unknown keys,
// wrong types and bad values are errors naming the path ("layers[2].tau: must be > 0, got -1",
// "layers[1].size must be a whole number in [1, 16777216], got 2147483648").
#pragma once

#include <string>
#include <vector>

#include "nmsnn/json.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/spec.hpp"

namespace nmsnn {

// A network description and how its input is encoded.
struct NetworkDescription {
  NetworkSpec spec;
  Input::Kind encoding = Input::Kind::noisy;
};

// Parses a description. `inputs` > 0 fills in (or must equal) "inputs"; `input_shape`, the
// data's [C, H, W] (Dataset::shape; empty for tables), fills in "input_shape" when the layers
// need feature maps (a convolution or pooling) and the JSON gives none, and must equal it when
// the JSON gives one. `source` starts every message as given (read_description passes the path
// through detail::quoted). Sizes are range-checked against limits.hpp before they are
// converted, and the spec is validated.
NetworkDescription description_from_json(const Json& json, const std::string& source,
                                         int inputs = 0,
                                         const std::vector<int>& input_shape = {});
NetworkDescription read_description(const std::string& path, int inputs = 0,
                                    const std::vector<int>& input_shape = {});
Json description_to_json(const NetworkDescription& description);

const char* to_string(Input::Kind kind);  // "noisy", "sequence", "repeated"
Input::Kind parse_encoding(const std::string& name);

}  // namespace nmsnn
