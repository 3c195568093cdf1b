"""nmsnn.torch: the library's network and spiking layer as PyTorch modules, checked against the
seed's model written in plain torch (PyTorch's own autograd is the reference).

Error measure, per tensor: max |library - reference| / max |reference| (as the C++ fixture test,
tests/test_pytorch_fixture.cpp). The references run in float64 from float32 values (parameters
and inputs rounded to float32, so both sides start from the same numbers); the library computes
in float32, whose rounding moves results by a few 1e-7 relative. 1e-5 leaves a margin of ~30 while
still catching any wrong term. That holds only while no spike can flip between float32 and
float64: every draw keeps each pre-reset state u at least 1e-4 from its threshold (checked).
"""
import importlib.util
import io

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="nmsnn.torch needs PyTorch (Debian: apt-get install python3-torch); skipped")
import torch.nn.functional as F  # noqa: E402

import nmsnn  # noqa: E402
import nmsnn.torch as nt  # noqa: E402
from conftest import REPO  # noqa: E402

TOLERANCE = 1e-5  # float32 library against the float64 reference (see above)
MARGIN = 1e-4     # the smallest |u - threshold| a draw may have


def _load_fixture_maker():
    # The plain-torch statement of the seed's network that made the C++ fixture: its forward()
    # (SPEC.md 2-3, written out step by step in torch ops), its draws and its margin check.
    path = REPO / "tests" / "pytorch_fixture" / "make_fixture.py"
    spec = importlib.util.spec_from_file_location("make_fixture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mf = _load_fixture_maker()


def rel_err(got, ref):
    got, ref = got.detach().double(), ref.detach().double()
    return float((got - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


# ---- nmsnn.torch.Network against the seed's model in plain torch ------------------------------

def _acceptable_draw(index, layers, readout):
    for attempt in range(1000):
        gen = torch.Generator().manual_seed(mf.BASE_SEED + 1000 * index + attempt)
        params, xi, labels = mf.draw(gen, layers)
        with torch.no_grad():
            _, us = mf.forward(layers, readout, params, xi)
        if mf.acceptable(layers, us)[0]:
            return params, xi, labels
    pytest.fail("no draw keeps every state away from its threshold")


@pytest.mark.parametrize("index", range(len(mf.CASES)), ids=[c[0] for c in mf.CASES])
def test_network_matches_plain_torch_autograd(index):
    # Both reset rules, mean and sum readouts, begin_eval 0..3, with and without delay, 2 and 3
    # layers (make_fixture.CASES).
    name, layers, readout = mf.CASES[index]
    params, xi, labels = _acceptable_draw(index, layers, readout)

    leaves = {k: p.clone().requires_grad_(True) for k, p in params.items()}
    xi_ref = xi.clone().requires_grad_(True)
    ref_logits, _ = mf.forward(layers, readout, leaves, xi_ref)
    F.nll_loss(F.log_softmax(ref_logits, dim=-1), labels).backward()

    spec = {"inputs": mf.I, "time_steps": mf.T, "encoding": "sequence", "readout": readout,
            "layers": layers}
    net = nt.Network(spec, seed=1)
    net.load_state_dict({k: p.float() for k, p in params.items()})
    x = xi.float().requires_grad_(True)
    logits = net(x)
    F.nll_loss(F.log_softmax(logits, dim=-1), labels).backward()

    errors = {"logits": rel_err(logits, ref_logits), "dL/dxi": rel_err(x.grad, xi_ref.grad)}
    named = dict(net.named_parameters())
    assert sorted(named) == sorted(params)
    for k in params:
        errors[f"dL/d{k}"] = rel_err(named[k].grad, leaves[k].grad)
    print(f"\n{name}: " + ", ".join(f"{k} {v:.2g}" for k, v in errors.items()))
    for what, e in errors.items():
        assert e <= TOLERANCE, f"{name}: {what} differs by {e:.3g} (relative)"


def _seq_spec(**extra):
    spec = {"inputs": 3, "time_steps": 6, "encoding": "sequence",
            "layers": [{"type": "spiking", "size": 8}, {"type": "spiking", "size": 2}]}
    spec.update(extra)
    return spec


def test_network_parameters_state_dict_round_trip():
    net = nt.Network(_seq_spec(), seed=1)
    names = ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert list(net.state_dict()) == names
    assert net.layers[0].weight.shape == (8, 3)
    np.testing.assert_array_equal(net.state_dict()["layers.0.weight"].numpy(),
                                  nmsnn.Network(_seq_spec(), seed=1).parameter("layers.0.weight"))
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    other = nt.Network(_seq_spec(), seed=2)
    x = torch.rand(6, 4, 3) * 2
    assert not torch.equal(other(x), net(x))
    buffer.seek(0)
    other.load_state_dict(torch.load(buffer))
    assert torch.equal(other(x), net(x))
    # The seed's own names (pynmsnn's layer1.fc.weight, ...) map onto the library's.
    seed_names = {"layer1.fc.weight": net.layers[0].weight.detach() * 2,
                  "layer1.fc.bias": net.layers[0].bias.detach(),
                  "layer2.fc.weight": net.layers[1].weight.detach(),
                  "layer2.fc.bias": net.layers[1].bias.detach()}
    other.load_state_dict(nt.from_seed_names(seed_names))
    assert torch.equal(other.layers[0].weight, net.layers[0].weight * 2)


def test_network_static_encodings():
    spec = _seq_spec(encoding="noisy")
    net = nt.Network(spec, seed=3)
    x = (torch.rand(5, 3) * 3).requires_grad_(True)
    # noisy: the library's masks of forward pass 0, as its NumPy API makes them.
    logits = net(x)
    ref = nmsnn.Network(spec, seed=3).forward(x.detach().numpy(), noise_pass=0).logits
    np.testing.assert_array_equal(logits.detach().numpy(), ref)
    logits.sum().backward()
    assert x.grad is None and net.layers[0].weight.grad.abs().sum() > 0  # masks: no dL/dx
    # repeated: the sequence that repeats x at every step, and its gradient summed over time.
    x = (torch.rand(5, 3) * 3).requires_grad_(True)
    w = torch.randn(5, 2)
    (net(x, encoding="repeated") * w).sum().backward()
    xs = x.detach().expand(6, 5, 3).clone().requires_grad_(True)
    (net(xs) * w).sum().backward()
    torch.testing.assert_close(x.grad, xs.grad.sum(0), rtol=1e-5, atol=1e-6)


def test_network_two_passes_before_backward():
    # Each pass keeps its own context; backward of both gives the sum of their gradients.
    net = nt.Network(_seq_spec(), seed=4)
    xa, xb = torch.rand(6, 3, 3) * 3, torch.rand(6, 2, 3) * 3
    w = net.layers[0].weight
    ga = torch.autograd.grad(net(xa).sum(), w)[0]
    gb = torch.autograd.grad(net(xb).sum(), w)[0]
    both = torch.autograd.grad(net(xa).sum() + net(xb).sum(), w)[0]
    torch.testing.assert_close(both, ga + gb, rtol=1e-5, atol=1e-6)


def test_network_errors():
    net = nt.Network(_seq_spec(), seed=1)
    with pytest.raises(ValueError, match="features"):
        net(torch.rand(6, 2, 4))
    with pytest.raises(ValueError, match="encoding"):
        net(torch.rand(2, 3))
    with pytest.raises(ValueError, match="NaN"):
        net(torch.full((6, 2, 3), float("nan")))
    net.eval()
    with torch.no_grad():
        out = net(torch.rand(6, 2, 3))
    assert out.shape == (2, 2)
    with pytest.raises(ValueError, match="training pass"):
        net(torch.rand(6, 2, 3)).sum().backward()
    if not nmsnn.cuda_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            nt.Network(_seq_spec(), engine="cuda")


def test_network_trains_in_sequential_with_an_optimizer():
    # A torch layer in front of the library's network: gradients flow through its input.
    torch.manual_seed(0)
    T, B, I = 8, 32, 4
    y = torch.randint(0, 2, (B,))
    x = torch.rand(T, B, I)
    x[:, :, 0] += y.float() * 1.5  # the class is in feature 0
    spec = {"inputs": 6, "time_steps": T, "encoding": "sequence",
            "layers": [{"type": "spiking", "size": 16}, {"type": "spiking", "size": 2}]}
    model = torch.nn.Sequential(torch.nn.Linear(I, 6), nt.Network(spec, seed=5))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        assert model[0].weight.grad.abs().sum() > 0
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


# ---- nmsnn.torch.SpikingLinear against the seed's layer in plain torch -------------------------

def reference_layer(x, w, b, decay, threshold, penalty, reset, delay):
    """The seed's SpikingNeuronLayer over x [T, B, I] (SPEC.md 2), in torch ops: (state, spikes)
    [T, B, H] and the pre-reset states u."""
    v = torch.zeros(x.shape[1], w.shape[0], dtype=x.dtype)
    states, spikes, us = [], [], []
    for t in range(x.shape[0]):
        u = x[t] @ w.T + b + decay * v
        s = F.relu(u - threshold)
        g = (s > 0).to(x.dtype).detach()
        v = u - (penalty / threshold) * u * g if reset == "scale" else u - (penalty + s) * g
        states.append(v)
        spikes.append(s)
        us.append(u.detach())
    if delay:
        zero = torch.zeros_like(states[0])
        states, spikes = [zero] + states[:-1], [zero] + spikes[:-1]
    return torch.stack(states), torch.stack(spikes), torch.stack(us)


LAYER_CASES = [
    dict(decay=0.9, threshold=1.0, penalty=1.5, reset="scale", delay=True),
    dict(decay=0.9, threshold=1.0, penalty=1.5, reset="subtract", delay=True),
    dict(decay=0.8, threshold=0.75, penalty=1.25, reset="scale", delay=False),
    dict(decay=0.95, threshold=1.25, penalty=0.5, reset="subtract", delay=False),
]


def _layer_draw(case, T=11, B=4, I=6, H=5):
    for seed in range(1000):
        gen = torch.Generator().manual_seed(seed)
        w = ((torch.rand(H, I, generator=gen, dtype=torch.float64) * 2 - 1) * 1.2).float().double()
        b = ((torch.rand(H, generator=gen, dtype=torch.float64) * 2 - 1) * 0.4).float().double()
        x = (torch.rand(T, B, I, generator=gen, dtype=torch.float64) * 1.5).float().double()
        with torch.no_grad():
            _, _, u = reference_layer(x, w, b, **case)
        fire = float((u > case["threshold"]).double().mean())
        if float((u - case["threshold"]).abs().min()) >= MARGIN and 0.1 <= fire <= 0.7:
            return x, w, b, gen
    pytest.fail("no draw keeps every state away from its threshold")


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, TOLERANCE)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("case", LAYER_CASES,
                         ids=[f"{c['reset']}-{'delay' if c['delay'] else 'nodelay'}-th{c['threshold']}"
                              for c in LAYER_CASES])
def test_spiking_linear_matches_plain_torch(case, dtype, tolerance):
    # float64: the same arithmetic as the reference, up to summation order (1e-12); float32:
    # the library's usual precision against the float64 reference (TOLERANCE, see the top).
    x, w, b, gen = _layer_draw(case)
    layer = nt.SpikingLinear(6, 5, dtype=dtype, **case)
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(b)
    # A loss that uses both outputs, with random weights on every element.
    ws = torch.randn(11, 4, 5, generator=gen, dtype=torch.float64)
    wk = torch.randn(11, 4, 5, generator=gen, dtype=torch.float64)

    xr, wr, br = (t.clone().requires_grad_(True) for t in (x, w, b))
    state_r, spikes_r, _ = reference_layer(xr, wr, br, **case)
    ((state_r * ws).sum() + (spikes_r * wk).sum()).backward()

    xl = x.to(dtype).requires_grad_(True)
    state, spikes = layer(xl)
    assert state.shape == spikes.shape == (11, 4, 5) and state.dtype == dtype
    ((state * ws.to(dtype)).sum() + (spikes * wk.to(dtype)).sum()).backward()

    errors = {"state": rel_err(state, state_r), "spikes": rel_err(spikes, spikes_r),
              "dL/dx": rel_err(xl.grad, xr.grad), "dL/dweight": rel_err(layer.weight.grad, wr.grad),
              "dL/dbias": rel_err(layer.bias.grad, br.grad)}
    print(f"\n{case} {dtype}: " + ", ".join(f"{k} {v:.2g}" for k, v in errors.items()))
    for what, e in errors.items():
        assert e <= tolerance, f"{what} differs by {e:.3g} (relative)"


def test_spiking_linear_gradcheck():
    # Finite differences in float64 (g is piecewise constant, so away from the kinks the layer is
    # smooth): torch.autograd.gradcheck of the neurons alone, both outputs.
    torch.manual_seed(1)
    a = (torch.rand(7, 3, 4, dtype=torch.float64) * 1.2).requires_grad_(True)
    for reset in ("scale", "subtract"):
        assert torch.autograd.gradcheck(lambda a: nt.lif(a, 0.9, 1.0, 1.5, reset, True), (a,),
                                        eps=1e-7, atol=1e-6)


def test_spiking_linear_composes_and_trains():
    torch.manual_seed(0)
    T, B, I, C = 10, 48, 5, 3
    y = torch.randint(0, C, (B,))
    x = torch.rand(T, B, I) * 0.5
    x[:, torch.arange(B), y] += 1.0  # class c drives input c

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nt.SpikingLinear(I, 16)
            self.out = nt.SpikingLinear(16, C)
            self.readout = torch.nn.Linear(C, C)

        def forward(self, x):
            _, spikes = self.hidden(x)
            state, _ = self.out(spikes)
            return self.readout(state.mean(0))

    model = Net()
    assert sorted(model.state_dict()) == ["hidden.bias", "hidden.weight", "out.bias",
                                          "out.weight", "readout.bias", "readout.weight"]
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    with pytest.raises(ValueError, match=r"\[T, B, 5\]"):
        model.hidden(torch.rand(4, 5))
    with pytest.raises(ValueError, match="reset"):
        nt.SpikingLinear(3, 2, reset="zero")


def test_import_nmsnn_does_not_import_torch():
    import subprocess
    import sys
    code = "import sys, nmsnn; nmsnn.Network; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
