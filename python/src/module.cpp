// module.cpp — nmsnn._core, the extension under the Python package nmsnn (python/nmsnn).
// One concept per file: errors, network descriptions, data helpers, Network, Model.
#include "convert.hpp"

namespace nmsnn::py {
void bind_torch(nb::module_& m);  // bind_torch.cpp: what nmsnn.torch calls
}  // namespace nmsnn::py

NB_MODULE(_core, m) {
  m.doc() = "nmsnn's C++ core: spiking neural networks as predictive models";
  nmsnn::py::bind_errors(m);
  nmsnn::py::bind_spec(m);
  nmsnn::py::bind_data(m);
  nmsnn::py::bind_network(m);
  nmsnn::py::bind_model(m);
  nmsnn::py::bind_torch(m);
}
