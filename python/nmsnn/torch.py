"""nmsnn.torch — the library's spiking networks and layers as PyTorch modules (needs torch).

    import torch, nmsnn.torch
    net = nmsnn.torch.Network({"inputs": 784, "time_steps": 32,
                               "layers": [{"type": "spiking", "size": 100},
                                          {"type": "spiking", "size": 10}]}, seed=1)
    logits = net(x)                 # x [B, 784] (the spec's encoding) or a sequence [T, B, 784]
    F.cross_entropy(logits, y).backward()       # the library's own backward
    torch.optim.Adam(net.parameters(), 1e-3).step()
    net.state_dict()                # "layers.0.weight" [100, 784], "layers.0.bias", ...

    layer = nmsnn.torch.SpikingLinear(784, 100)   # one seed spiking layer, to compose
    state, spikes = layer(xi)       # xi [T, B, 784] -> each [T, B, 100]

    ref = nmsnn.torch.reference_module(spec)      # the same network in plain torch modules:
    ref.load_state_dict(net.state_dict())          # layers.0 = nn.Conv2d, nn.Linear, LIF, ...
    ref(x)                                         # the library's logits (repeated encoding)

Convolutional networks (a spec with "input_shape": [C, H, W]) take x [B, C, H, W] (or [B, I]
flat in (c, y, x) order) and sequences [T, B, C, H, W] (or [T, B, I]).

Network runs forward and backward on the library's engine through a torch.autograd.Function;
SpikingLinear computes its currents W x + b with torch and runs the neurons' time loop (and its
exact backward) in the CPU engine's C++ loops (host/cpu/lif.hpp). CPU tensors cross to C++
without copies (DLPack). The CUDA engine (engine="cuda") is untested: the library's Input takes
host memory, so CUDA tensors are staged through the host.
"""
import json
import re
import weakref

import torch
from torch import nn

from . import _core
from .network import Network as _Network

from ._torch_reference import LIF, Reference, SeedSpiking, reference_module  # noqa: F401

__all__ = ["Network", "SpikingLinear", "lif", "from_seed_names", "reference_module", "Reference"]


def _host(t):
    """A C-contiguous float32 CPU view of t (copies only when t is not one already)."""
    return t.detach().to(device="cpu", dtype=torch.float32).contiguous()


# ---- nmsnn.torch.Network ------------------------------------------------------------------------

class _NetworkFunction(torch.autograd.Function):
    """logits = network(x; parameters), its backward the library's (SPEC.md 4)."""

    @staticmethod
    def forward(ctx, module, kind, x, *params):
        core = module._core
        module._write_parameters(params)
        ctx.token = module._written
        # The pass keeps a reference to x's memory: the CPU engine reads the input again in
        # backward. Saving x too makes torch refuse a backward after an in-place change to it.
        pass_ = _core.torch_forward(core, _host(x), kind, module.training, None)
        # A weak reference: a graph that outlives the module (a loss kept to the end of a script)
        # then holds no library objects.
        ctx.module, ctx.kind, ctx.pass_ = weakref.ref(module), kind, pass_
        ctx.save_for_backward(x, *params)
        return torch.from_numpy(pass_.logits).to(x.device)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dlogits):
        module = ctx.module()
        if module is None:
            raise RuntimeError("the nmsnn.torch.Network of this graph was deleted before backward")
        x, *params = ctx.saved_tensors
        # Backward multiplies by the parameters of the forward pass: write them again if another
        # forward has put other values into the engine since.
        if module._written is not ctx.token:
            module._write_parameters(params)
            ctx.token = module._written
        want_x = ctx.needs_input_grad[2] and ctx.kind != "noisy"
        dx = _core.torch_backward(module._core, ctx.pass_, _host(dlogits), want_x)
        grads = []
        for i, (name, p) in enumerate(zip(module._names, params)):
            if ctx.needs_input_grad[3 + i]:
                grads.append(torch.from_numpy(module._core.gradient(name)).to(p.device, p.dtype))
            else:
                grads.append(None)
        if dx is not None:
            dx = torch.from_numpy(dx).to(x.device, x.dtype)
        ctx.pass_ = None  # frees what the engine kept for backward
        return (None, None, dx, *grads)


def _flat_images(x, input_shape):
    """Images [B, C, H, W] or [T, B, C, H, W] of the network's input_shape as the flat
    [B, C*H*W] or [T, B, C*H*W] the engines read ((c, y, x) order: a view, no copy)."""
    if input_shape and x.dim() in (4, 5) and tuple(x.shape[-3:]) == tuple(input_shape):
        return x.reshape(*x.shape[:-3], -1)
    return x


def _child(module, name):
    if name not in module._modules:
        module.add_module(name, nn.Module())
    return module._modules[name]


class Network(nn.Module):
    """A network of the library, described by a model-file dict (plus "inputs"), as a module.

    Its parameters are registered under the library's PyTorch names ("layers.0.weight" [H, I],
    "layers.0.bias" [H], ...), initialised as the library does from `seed` (Xavier-uniform
    weights, PyTorch-Linear biases). forward(x) takes a sequence [T, B, I] or static features
    [B, I] (encoded as `encoding`, default the spec's: "noisy" or "repeated") and returns the
    logits [B, C]. Gradients reach every parameter and a sequence or repeated input; a noisy
    input has none (its masks are random). In eval mode the pass is an inference pass (the
    library's training=False), which cannot be differentiated.

    engine="cuda" needs a build with the CUDA engine and a GPU (UNTESTED: tensors on a CUDA device
    are staged through host memory, the library's Input being host memory).
    """

    def __init__(self, spec, engine="cpu", seed=0, threads=0):
        super().__init__()
        if engine not in ("cpu", "cuda"):
            raise ValueError(f"engine must be 'cpu' or 'cuda', got {engine!r}")
        if engine == "cuda" and not _core.cuda_available():
            raise RuntimeError("engine='cuda' needs nmsnn built with its CUDA engine and a CUDA "
                               "device; this build or machine has neither (use engine='cpu')")
        self.network = _Network(spec, engine=engine, seed=seed, threads=threads)
        self._core = self.network._net
        self._names = self._core.parameter_names()
        self._written = None  # a token of the parameter values last written into the engine
        # net.layers[i] holds layer i's parameters (an empty module for a layer without any).
        self.layers = nn.ModuleList(nn.Module() for _ in self.network.spec["layers"])
        for name in self._names:
            *path, leaf = name.split(".")
            owner = self
            for part in path:
                owner = _child(owner, part)
            owner.register_parameter(leaf, nn.Parameter(torch.from_numpy(self._core.parameter(name))))

    @property
    def spec(self):
        """The description with every default written out (a dict)."""
        return self.network.spec

    def _parameters_by_name(self):
        named = dict(self.named_parameters())
        return [named[n] for n in self._names]

    def _write_parameters(self, params):
        for name, p in zip(self._names, params):
            self._core.set_parameter(name, _host(p))
        self._written = object()

    def forward(self, x, encoding=None):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        x = _flat_images(x, self.network.input_shape)
        if encoding is None:
            if x.dim() == 3:
                encoding = "sequence"
            elif self.network.encoding != "sequence":
                encoding = self.network.encoding
            else:
                raise ValueError("a [B, I] input needs encoding='noisy' or 'repeated' (the spec's "
                                 "encoding is 'sequence')")
        if encoding not in ("noisy", "repeated", "sequence"):
            raise ValueError(f"encoding must be 'noisy', 'repeated' or 'sequence', got {encoding!r}")
        want = 3 if encoding == "sequence" else 2
        if x.dim() != want:
            shape = "[T, B, I]" if want == 3 else "[B, I]"
            raise ValueError(f"a {encoding} input must be {shape}, got shape {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or infinity")
        return _NetworkFunction.apply(self, encoding, x, *self._parameters_by_name())

    def extra_repr(self):
        return f"spec={json.dumps(self.spec)}, engine={self.network.engine!r}"


def from_seed_names(state_dict):
    """The seed's (pynmsnn's) state dict with the library's names: "layer1.fc.weight" becomes
    "layers.0.weight", "layer2.fc.bias" "layers.1.bias"; other names are kept."""
    out = {}
    for k, v in state_dict.items():
        m = re.fullmatch(r"layer(\d+)\.fc\.(weight|bias)", k)
        out[f"layers.{int(m.group(1)) - 1}.{m.group(2)}" if m else k] = v
    return out


# ---- nmsnn.torch.SpikingLinear ------------------------------------------------------------------

class _LifFunction(torch.autograd.Function):
    """(state, spikes) = the spiking neurons' time loop over currents a [T, B, H] (SPEC.md 2)."""

    @staticmethod
    def forward(ctx, a, decay, threshold, penalty, reset, delay):
        a = a.detach().contiguous()  # DLPack exports no tensor that requires grad
        u, state, spikes = torch.empty_like(a), torch.empty_like(a), torch.empty_like(a)
        _core.lif_forward(a, u, state, spikes, decay, threshold, penalty, reset, delay)
        ctx.settings = (decay, threshold, penalty, reset, delay)
        ctx.save_for_backward(u)
        return state, spikes

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_state, d_spikes):
        (u,) = ctx.saved_tensors
        du = torch.empty_like(u)
        _core.lif_backward(u, d_state.contiguous(), d_spikes.contiguous(), du, *ctx.settings)
        return du, None, None, None, None, None


def lif(a, decay=0.9, threshold=1.0, penalty=1.5, reset="scale", delay=True):
    """The spiking neurons alone: currents a [T, B, H] (float32 or float64, on the CPU) to
    (state, spikes), each [T, B, H], differentiable with respect to both."""
    if a.dim() != 3:
        raise ValueError(f"the currents must be [T, B, H], got shape {tuple(a.shape)}")
    if a.device.type != "cpu":
        raise ValueError("nmsnn.torch's spiking neurons run on the CPU (the CPU engine's loops); "
                         f"got a tensor on {a.device}")
    if a.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"the currents must be float32 or float64, got {a.dtype}")
    return _LifFunction.apply(a, float(decay), float(threshold), float(penalty), str(reset),
                              bool(delay))


class SpikingLinear(nn.Module):
    """One of the seed's spiking layers: a[t] = W x[t] + bias, then leaky integrate-and-fire
    neurons (SPEC.md 2). forward(x [T, B, in_features]) returns (state, spikes), each
    [T, B, out_features]: the inner state v and the spikes s, those of the previous step with
    `delay` (zeros at t = 0). Both outputs are differentiable (g = s > 0 held constant, SPEC.md 4);
    feed `spikes` to the next layer, read `state` for a readout.

    reset "scale": v = u - (penalty/threshold) u g; "subtract": v = u - (penalty + s) g.
    Initialised as the seed: Xavier-uniform W, bias U(-1/sqrt(in), 1/sqrt(in)).
    """

    def __init__(self, in_features, out_features, decay=0.9, threshold=1.0, penalty=1.5,
                 reset="scale", delay=True, dtype=None):
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(f"in_features and out_features must be >= 1, got {in_features}, "
                             f"{out_features}")
        if reset not in ("scale", "subtract"):
            raise ValueError(f"reset must be 'scale' or 'subtract', got {reset!r}")
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.decay, self.threshold, self.penalty = float(decay), float(threshold), float(penalty)
        self.reset, self.delay = reset, bool(delay)
        dtype = dtype or torch.float32
        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(self.out_features, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.xavier_uniform_(self.weight)
        bound = 1.0 / self.in_features ** 0.5
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ValueError(f"SpikingLinear expects [T, B, {self.in_features}], got shape "
                             f"{tuple(x.shape)}")
        a = nn.functional.linear(x, self.weight, self.bias)
        return lif(a, self.decay, self.threshold, self.penalty, self.reset, self.delay)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"decay={self.decay}, threshold={self.threshold}, penalty={self.penalty}, "
                f"reset={self.reset!r}, delay={self.delay}")
