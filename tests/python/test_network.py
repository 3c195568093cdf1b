"""nmsnn.Network: descriptions as dicts, forward/backward on NumPy for the three input kinds,
parameters by PyTorch name."""
import numpy as np
import pytest

import nmsnn

SPEC = {"inputs": 3, "time_steps": 6,
        "layers": [{"type": "spiking", "size": 5}, {"type": "spiking", "size": 2}]}


def test_spec_defaults_and_parameters():
    net = nmsnn.Network(SPEC, seed=1)
    assert net.spec["layers"][0]["decay"] == pytest.approx(0.9)
    assert (net.inputs, net.outputs, net.time_steps, net.encoding) == (3, 2, 6, "noisy")
    assert net.parameter_names() == ["layers.0.weight", "layers.0.bias", "layers.1.weight",
                                     "layers.1.bias"]
    assert net.parameter("layers.0.weight").shape == (5, 3)
    w = np.arange(15, dtype=np.float32).reshape(5, 3) / 10
    net.set_parameter("layers.0.weight", w)
    assert np.array_equal(net.parameter("layers.0.weight"), w)
    other = nmsnn.Network(SPEC, seed=1)  # the seed also keys the noise masks
    other.initialize(2)
    assert not np.array_equal(other.parameter("layers.1.weight"), net.parameter("layers.1.weight"))
    other.load_state_dict(net.state_dict())
    x = np.random.RandomState(0).rand(4, 3).astype(np.float32)
    assert np.array_equal(other.forward(x, noise_pass=3).logits, net.forward(x, noise_pass=3).logits)
    with pytest.raises(ValueError, match="no parameter 'nope'"):
        net.parameter("nope")
    with pytest.raises(ValueError, match="shape"):
        net.set_parameter("layers.0.weight", np.zeros((3, 5)))


def test_bad_spec_names_the_path():
    with pytest.raises(nmsnn.Error, match=r"layers\[0\]"):
        nmsnn.Network({"inputs": 3, "layers": [{"type": "spiking", "size": -1}]})
    with pytest.raises(nmsnn.Error, match="features"):
        nmsnn.Network(SPEC).forward(np.zeros((2, 4), np.float32))


def _loss_and_grad(net, x, kind, w):
    p = net.forward(x, kind=kind, noise_pass=0)
    return float((p.logits * w).sum()), p


@pytest.mark.parametrize("kind", ["repeated", "sequence"])
def test_input_gradient_matches_finite_differences(kind):
    # A layer stack whose output is smooth in its input (no spike thresholds): dense, tanh, dense.
    spec = {"inputs": 3, "time_steps": 4, "encoding": kind,
            "layers": [{"type": "dense", "size": 5}, {"type": "activation", "function": "tanh"},
                       {"type": "dense", "size": 2}]}
    net = nmsnn.Network(spec, seed=3)
    rng = np.random.RandomState(1)
    x = rng.rand(*((4, 2, 3) if kind == "sequence" else (2, 3))).astype(np.float32)
    w = rng.randn(2, 2).astype(np.float32)
    _, p = _loss_and_grad(net, x, kind, w)
    dx = net.backward(p, w, input_grad=True)
    assert dx.shape == x.shape
    eps = 1e-2
    for idx in [(0,) * x.ndim, tuple(s - 1 for s in x.shape)]:
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        fd = (_loss_and_grad(net, up, kind, w)[0] - _loss_and_grad(net, down, kind, w)[0]) / (2 * eps)
        assert dx[idx] == pytest.approx(fd, rel=2e-2, abs=1e-3)
    g = net.gradient("layers.0.weight")
    assert g.shape == (5, 3) and np.abs(g).sum() > 0


def test_noisy_pass_trace_rates_and_row_keys():
    net = nmsnn.Network(SPEC, seed=1)
    x = np.random.RandomState(0).rand(4, 3).astype(np.float32) * 3
    p = net.forward(x, training=False, record=True, rates=True)
    assert len(p.trace) == 2 and p.trace[0]["state"].shape == (6, 4, 5)
    assert p.rates[0]["rates"].shape == (4, 5)
    with pytest.raises(nmsnn.Error, match="training pass"):
        net.backward(p, np.zeros((4, 2), np.float32))
    a = net.forward(x, training=False, noise_pass=9, noise_by_row=True).logits
    b = net.forward(x[::-1].copy(), training=False, noise_pass=9, noise_by_row=True).logits
    assert np.array_equal(a, b[::-1])
    q = net.forward(x)
    with pytest.raises(nmsnn.Error, match="noisy input has no gradient"):
        net.backward(q, np.ones((4, 2), np.float32), input_grad=True)


def test_estimator_network_view(tmp_path):
    pytest.importorskip("sklearn")
    X = np.random.RandomState(0).rand(40, 3)
    y = (X[:, 0] > 0.5).astype(int)
    clf = nmsnn.SpikingClassifier(hidden=(6,), time_steps=4, epochs=2, verbose=0, random_state=0)
    net = clf.fit(X, y).network_
    assert net.parameter("layers.0.weight").shape == (6, 3)
    del clf  # the view keeps the model alive
    assert net.parameter("layers.1.weight").shape == (1, 6)
    tr = nmsnn.SpikingClassifier(hidden=(6,), time_steps=4, epochs=1, verbose=0).fit(X, y).trace(X[:1])
    assert tr[0]["spikes"].shape == (4, 1, 6)
