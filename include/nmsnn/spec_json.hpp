// nmsnn/spec_json.hpp — network descriptions as small JSON documents ("a model is data").
//
//   {
//     "inputs": 784,                      optional when a tool takes it from the data
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
//       {"type": "activation", "function": "relu"}
//     ]
//   }
//
// Every field but "type" and "size" has the default of the C++ struct (spec.hpp). Unknown keys,
// wrong types and bad values are errors naming the path ("layers[2].tau: must be > 0, got -1",
// "layers[1].size must be a whole number in [1, 16777216], got 2147483648").
#pragma once

#include <string>

#include "nmsnn/json.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/spec.hpp"

namespace nmsnn {

// A network description and how its input is encoded.
struct NetworkDescription {
  NetworkSpec spec;
  Input::Kind encoding = Input::Kind::noisy;
};

// Parses a description. `inputs` > 0 fills in (or must equal) "inputs"; `source` starts every
// message as given (read_description passes the path through detail::quoted). Sizes are
// range-checked against limits.hpp before they are converted, and the spec is validated.
NetworkDescription description_from_json(const Json& json, const std::string& source,
                                         int inputs = 0);
NetworkDescription read_description(const std::string& path, int inputs = 0);
Json description_to_json(const NetworkDescription& description);

const char* to_string(Input::Kind kind);  // "noisy", "sequence", "repeated"
Input::Kind parse_encoding(const std::string& name);

}  // namespace nmsnn
