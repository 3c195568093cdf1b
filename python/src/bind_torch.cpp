// bind_torch.cpp — what nmsnn.torch (python/nmsnn/torch.py) calls: tensors cross through DLPack
// (nb::ndarray accepts torch tensors as they are), so nothing here copies an input.
//
//   torch_forward / torch_backward   a network pass whose input is the caller's tensor itself:
//                                    the pass holds a reference to it, because the CPU engine's
//                                    backward reads the input again (network.hpp, Input).
//   lif_forward / lif_backward       one spiking layer's neurons (cpu/lif.hpp, SPEC.md 2 and 4)
//                                    over [T, B, H] currents, in float32 or float64, for
//                                    nmsnn.torch.SpikingLinear.
// The GIL is released while the library runs.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <limits>
#include <optional>

#include "convert.hpp"
#include "cpu/lif.hpp"
#include "py_network.hpp"

namespace nmsnn::py {

namespace {

// ---- network passes over caller tensors --------------------------------------------------

// The pass keeps a view of the caller's tensor, not a copy (PyPass); the Python side also saves the
// tensor for backward, so that torch's version counter catches an in-place change in between.
PyPass torch_forward(PyNetwork& self, const FloatArray& x, const std::string& kind, bool training,
                     std::optional<uint64_t> noise_pass) {
  ForwardOptions opts;
  opts.training = training;
  if (noise_pass) opts.use_noise_pass = true, opts.noise_pass = *noise_pass;
  return run_forward(self, x, kind, opts, /*copy=*/false, "tensor");
}

// ---- one spiking layer's neurons -----------------------------------------------------------
// The neurons of different samples are independent, so a [T, B, H] tensor is, for lif.hpp's
// time loop (which walks [T, H] row-major), one layer of B*H neurons: no reshuffling is needed.

template <class Real>
using In3 = nb::ndarray<const Real, nb::ndim<3>, nb::c_contig, nb::device::cpu>;
template <class Real>
using Out3 = nb::ndarray<Real, nb::ndim<3>, nb::c_contig, nb::device::cpu>;

template <class Real>
cpu::LifNeurons<Real> neurons(size_t T, size_t B, size_t H, double decay, double threshold,
                              double penalty, const std::string& reset, bool delay) {
  if (!(threshold > 0)) detail::fail("threshold must be > 0, got ", threshold);
  if (B * H > size_t(std::numeric_limits<int>::max()))
    detail::fail("batch x neurons = ", B * H, " is more than a spiking layer handles");
  if (T > size_t(std::numeric_limits<int>::max())) detail::fail("too many time steps: ", T);
  cpu::LifNeurons<Real> n;
  n.size = int(B * H);
  n.decay = Real(decay);
  n.threshold = Real(threshold);
  n.penalty = Real(penalty);
  n.reset = parse_reset_rule(reset);
  n.delay = delay;
  return n;
}

template <class A, class B>
void same_shape(const A& a, const B& b, const char* what) {
  for (size_t d = 0; d < 3; ++d)
    if (a.shape(d) != b.shape(d))
      detail::fail(what, " has shape [", b.shape(0), ", ", b.shape(1), ", ", b.shape(2),
                   "], expected [", a.shape(0), ", ", a.shape(1), ", ", a.shape(2), "]");
}

// a [T, B, H] input currents -> u (pre-reset state), state and spikes as the layer returns them.
template <class Real>
void lif_forward(In3<Real> a, Out3<Real> u, Out3<Real> state, Out3<Real> spikes, double decay,
                 double threshold, double penalty, const std::string& reset, bool delay) {
  same_shape(a, u, "u");
  same_shape(a, state, "state");
  same_shape(a, spikes, "spikes");
  const auto n = neurons<Real>(a.shape(0), a.shape(1), a.shape(2), decay, threshold, penalty,
                               reset, delay);
  nb::gil_scoped_release release;
  cpu::lif_forward(n, int(a.shape(0)), a.data(), u.data(), state.data(), spikes.data());
}

// u, dL/dstate, dL/dspikes [T, B, H] -> du = dL/da.
template <class Real>
void lif_backward(In3<Real> u, In3<Real> d_state, In3<Real> d_spikes, Out3<Real> du,
                  double decay, double threshold, double penalty, const std::string& reset,
                  bool delay) {
  same_shape(u, d_state, "d_state");
  same_shape(u, d_spikes, "d_spikes");
  same_shape(u, du, "du");
  const auto n = neurons<Real>(u.shape(0), u.shape(1), u.shape(2), decay, threshold, penalty,
                               reset, delay);
  nb::gil_scoped_release release;
  cpu::lif_backward(n, int(u.shape(0)), u.data(), d_state.data(), d_spikes.data(), du.data());
}

template <class Real>
void def_lif(nb::module_& m) {
  m.def("lif_forward", &lif_forward<Real>, nb::arg("a"), nb::arg("u"), nb::arg("state"),
        nb::arg("spikes"), nb::arg("decay"), nb::arg("threshold"), nb::arg("penalty"),
        nb::arg("reset"), nb::arg("delay"),
        "Spiking neurons over time (SPEC.md 2): a [T, B, H] currents in; u (pre-reset state), "
        "state and spikes [T, B, H] written.");
  m.def("lif_backward", &lif_backward<Real>, nb::arg("u"), nb::arg("d_state"),
        nb::arg("d_spikes"), nb::arg("du"), nb::arg("decay"), nb::arg("threshold"),
        nb::arg("penalty"), nb::arg("reset"), nb::arg("delay"),
        "BPTT through the neurons (SPEC.md 4): du = dL/da [T, B, H] written.");
}

}  // namespace

void bind_torch(nb::module_& m) {
  m.def("torch_forward", &torch_forward, nb::arg("network"), nb::arg("x"), nb::arg("kind"),
        nb::arg("training") = true, nb::arg("noise_pass") = nb::none());
  m.def("torch_backward", &run_backward, nb::arg("network"), nb::arg("pass_"),
        nb::arg("dlogits"), nb::arg("input_grad") = false);
  def_lif<float>(m);
  def_lif<double>(m);
}

}  // namespace nmsnn::py
