"""nmsnn.Network — a layer stack on one of the library's engines, driven from NumPy.

    net = nmsnn.Network({"inputs": 4, "time_steps": 16,
                         "layers": [{"type": "spiking", "size": 32}, {"type": "spiking", "size": 3}]},
                        seed=1)
    p = net.forward(x)                       # x [B, I] float32; the spec's encoding (noisy)
    p.logits                                 # [B, C]
    net.backward(p, dlogits)                 # gradients of every parameter: net.gradient(name)
    p = net.forward(xi, kind="sequence")     # xi [T, B, I]
    dxi = net.backward(p, dlogits, input_grad=True)

The spec is a dict in the model-file format of the README (plus "inputs"), or its JSON text.
Parameters are read and written by their PyTorch names ("layers.0.weight" is [H, I], a
convolution's [O, C, kh, kw]). A convolutional network's spec gives "input_shape": [C, H, W].
"""
import functools
import json

import numpy as np

from . import _core

ForwardPass = _core.ForwardPass


def _f32(a, name):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinity")
    return a


class Network:
    """A network built from a description dict (see the module docstring)."""

    def __init__(self, spec, engine="cpu", seed=0, threads=0, matmul="fp32"):
        if isinstance(spec, dict):
            text = json.dumps(spec)
        elif isinstance(spec, str):
            text = spec
        else:
            raise TypeError(f"spec must be a dict or JSON text, got {type(spec).__name__}")
        self._net = _core.Network(text, engine, int(seed), int(threads), matmul)
        self._owner = None

    @classmethod
    def _wrap(cls, core_network, owner):
        self = cls.__new__(cls)
        self._net = core_network
        self._owner = owner  # the model the network belongs to
        return self

    # ---- description --------------------------------------------------------------------------
    @property
    def spec(self):
        """The description with every default written out (a dict)."""
        return json.loads(self._net.spec_json)

    inputs = property(lambda self: self._net.inputs)

    @functools.cached_property
    def input_shape(self):
        """(C, H, W) of a convolutional network's input, or None for a flat one."""
        return tuple(self.spec.get("input_shape") or ()) or None

    outputs = property(lambda self: self._net.outputs)
    time_steps = property(lambda self: self._net.time_steps)
    encoding = property(lambda self: self._net.encoding)
    engine = property(lambda self: self._net.engine)
    seed = property(lambda self: self._net.seed)

    @property
    def noise_passes(self):
        """Forward passes made so far: the next pass's noise-mask counter."""
        return self._net.noise_passes

    @noise_passes.setter
    def noise_passes(self, n):
        self._net.noise_passes = int(n)

    # ---- parameters ---------------------------------------------------------------------------
    def parameter_names(self):
        return self._net.parameter_names()

    def parameter(self, name):
        return self._net.parameter(name)

    def set_parameter(self, name, values):
        shape = tuple(self._net.parameter_shape(name))
        values = _f32(values, name)
        if values.shape != shape:
            raise ValueError(f"parameter {name!r} has shape {shape}, got an array of shape {values.shape}")
        self._net.set_parameter(name, values)

    def gradient(self, name):
        """dL/dparameter from the last backward()."""
        return self._net.gradient(name)

    def state_dict(self):
        """Every parameter by PyTorch name, as NumPy arrays."""
        return {n: self._net.parameter(n) for n in self._net.parameter_names()}

    def load_state_dict(self, state, strict=True):
        names = self._net.parameter_names()
        if strict:
            missing = [n for n in names if n not in state]
            extra = [n for n in state if n not in names]
            if missing or extra:
                raise ValueError(f"state dict does not fit the network: missing {missing}, unexpected {extra}")
        for n in names:
            if n in state:
                self.set_parameter(n, np.asarray(state[n]))

    def initialize(self, seed):
        """The seed's initialisation again: Xavier-uniform weights, PyTorch-Linear biases."""
        self._net.initialize(int(seed))

    def set_dt(self, layer, dt):
        """Changes a SpikingActivation layer's dt (at inference, as PyTorchSpiking allows)."""
        self._net.set_dt(int(layer), float(dt))

    # ---- forward and backward -----------------------------------------------------------------
    def forward(self, x, kind=None, training=True, record=False, rates=False, noise_pass=None,
                noise_by_row=False):
        """One pass: x [B, I] for kind "noisy" or "repeated", [T, B, I] for "sequence" (default:
        the spec's encoding); a network with an input_shape also takes [B, C, H, W] and
        [T, B, C, H, W]. training=False makes an inference pass (no backward). record keeps
        every layer's state and spikes (ForwardPass.trace), rates the firing rates. noise_pass
        fixes the noise-mask counter; noise_by_row keys each row's masks by its contents."""
        kind = kind or self.encoding
        x = np.asarray(x)
        shape = self.input_shape
        if shape and x.ndim in (4, 5) and x.shape[-3:] == shape:  # images: flat in (c, y, x) order
            x = x.reshape(*x.shape[:-3], -1)
        return self._net.forward(_f32(x, "x"), kind, bool(training), bool(record), bool(rates),
                                 None if noise_pass is None else int(noise_pass), bool(noise_by_row))

    def backward(self, pass_, dlogits, input_grad=False):
        """dlogits [B, C] = dL/dlogits. Fills every parameter's gradient; with input_grad returns
        dL/dinput ([T, B, I] for a sequence input, [B, I] for a repeated one)."""
        return self._net.backward(pass_, _f32(dlogits, "dlogits"), bool(input_grad))

    def __repr__(self):
        return f"nmsnn.Network({self.spec!r}, engine={self.engine!r})"
