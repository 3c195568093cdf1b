"""Convolutional networks from Python: specs as dicts, estimators on images, parameters by PyTorch
name and shape, and the library's logits against the same network in plain PyTorch
(nmsnn.torch.reference_module: nn.Conv2d, nn.MaxPool2d, nn.Flatten, nn.Linear and the seed's
neurons written out in torch ops), loaded by name from the library's parameters and from the
safetensors files that `nmsnn train --save` and estimator.save write.

Error measure, per tensor: max |library - reference| / max |reference| (as test_torch.py). The
reference runs in float64 from the library's float32 parameters and float32 inputs; the library
computes in float32 with its own order of sums, whose rounding moves results by a few 1e-7
relative (a convolution sums C*kh*kw terms, a dense layer a few hundred). TOLERANCE = 1e-5 leaves
a margin of ~30. For spiking networks that holds only while no spike flips between float32 and
float64: every draw keeps each neuron's pre-reset state u at least MARGIN from its threshold
(checked on the reference; a draw that fails is redrawn from the next seed, deterministically).
Networks trained by the library are compared without that check: their logits must agree within
TRAINED_TOLERANCE on nearly every sample (a flipped spike moves a logit by up to ~penalty/T).
"""
import gzip
import json
import pathlib
import subprocess

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the PyTorch reference needs PyTorch (Debian: apt-get install python3-torch)")

import nmsnn  # noqa: E402
import nmsnn.torch as nt  # noqa: E402
from conftest import REPO  # noqa: E402

TOLERANCE = 1e-5
MARGIN = 1e-4
TRAINED_TOLERANCE = 1e-4
MNIST = REPO / "data" / "mnist"


def rel_err(got, ref):
    got = torch.as_tensor(np.asarray(got) if not isinstance(got, torch.Tensor) else got).double()
    ref = torch.as_tensor(ref).detach().double()
    return float((got - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def mnist(n, train=False):
    """The first n images [n, 1, 28, 28] (pixels / 255, the CLI's unit scale) and labels."""
    prefix = "train" if train else "t10k"
    raw = gzip.decompress((MNIST / f"{prefix}-images-idx3-ubyte.gz").read_bytes())
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
    raw = gzip.decompress((MNIST / f"{prefix}-labels-idx1-ubyte.gz").read_bytes())
    labels = np.frombuffer(raw, np.uint8, offset=8)[:n]
    return (images / np.float32(255)).astype(np.float32), labels.astype(np.int64)


def read_safetensors(path):
    """A safetensors file read with the standard library and NumPy: (tensors by name, metadata)."""
    data = pathlib.Path(path).read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", (name, info["dtype"])
        a, b = info["data_offsets"]
        values = np.frombuffer(data[8 + n + a:8 + n + b], dtype="<f4").reshape(info["shape"])
        tensors[name] = torch.from_numpy(values.copy())
    return tensors, meta


def reference_from_file(path):
    """The PyTorch model of a model file: its description from the metadata, its tensors loaded
    by name (strict), in float64."""
    tensors, meta = read_safetensors(path)
    ref = nt.reference_module(json.loads(meta["network"]))
    ref.load_state_dict(tensors, strict=True)
    return ref.double()


def neuron_layers(ref):
    return [m for m in ref.modules() if isinstance(m, nt.LIF)]


def margin(ref, x):
    """The smallest |u - threshold| of any neuron at any step for input x."""
    for m in neuron_layers(ref):
        m.record = True
    with torch.no_grad():
        ref(x)
    out = min(float((m.u - m.threshold).abs().min()) for m in neuron_layers(ref))
    for m in neuron_layers(ref):
        m.record, m.u = False, None
    return out


def fire_fractions(ref, x):
    for m in neuron_layers(ref):
        m.record = True
    with torch.no_grad():
        ref(x)
    out = [float((m.u > m.threshold).double().mean()) for m in neuron_layers(ref)]
    for m in neuron_layers(ref):
        m.record, m.u = False, None
    return out


def conv(out_channels, kernel, **kw):
    return dict(type="conv2d", out_channels=out_channels, kernel=kernel, **kw)


# The networks compared, on 1x10x10 inputs. Non-spiking: one step, conv -> relu -> max pool ->
# flatten -> dense. Spiking: conv -> lif -> pool -> flatten -> dense/spiking, several readouts.
CNN = dict(input_shape=[1, 10, 10], time_steps=1, encoding="repeated",
           layers=[conv(3, 3), dict(type="activation", function="relu"),
                   dict(type="max_pool2d", kernel=2), dict(type="flatten"),
                   dict(type="dense", size=5)])
SPIKING_CNNS = {
    "conv_lif_maxpool_dense_lif": dict(
        input_shape=[1, 10, 10], time_steps=6, encoding="repeated",
        layers=[conv(4, 3, padding=1), dict(type="lif"), dict(type="max_pool2d", kernel=2),
                dict(type="flatten"), dict(type="dense", size=5), dict(type="lif")]),
    "conv_stride_avgpool_spiking_subtract_nodelay_sum": dict(
        input_shape=[2, 9, 11], time_steps=7, encoding="repeated",
        readout=dict(reduce="sum", begin_eval=2),
        layers=[conv(3, [3, 4], stride=[1, 2], padding=[1, 0]),
                dict(type="lif", reset="subtract", delay=False, decay=0.8, threshold=0.75),
                dict(type="avg_pool2d", kernel=[3, 2], stride=[2, 1]), dict(type="flatten"),
                dict(type="spiking", size=4, reset="subtract", delay=False)]),
    "conv_lif_conv_lif_dense": dict(
        input_shape=[1, 10, 10], time_steps=5, encoding="repeated",
        layers=[conv(3, 3), dict(type="lif"), conv(4, 3, stride=2), dict(type="lif"),
                dict(type="flatten"), dict(type="dense", size=3)]),
}


def library_network(spec, seed):
    """An nmsnn.Network of spec (skipped while this build's CPU engine lacks conv layers)."""
    try:
        return nmsnn.Network(spec, seed=seed)
    except nmsnn.Error as e:
        if "does not run" in str(e):
            pytest.skip(f"this build's engine: {e}")
        raise


def spiking_draw(spec, x_shape):
    """A network and an input whose neurons stay MARGIN from their thresholds and fire at some
    steps but not all: (library network, reference in float64, x float32)."""
    for attempt in range(200):
        net = library_network(spec, seed=100 + attempt)
        # Weights at twice the library's initialisation, so that the spikes drive the next layer.
        for name in net.parameter_names():
            if name.endswith("weight"):
                net.set_parameter(name, 2.5 * net.parameter(name))
        ref = nt.reference_module(net).double()
        gen = torch.Generator().manual_seed(attempt)
        x = torch.rand(*x_shape, generator=gen).float()
        fires = fire_fractions(ref, x.double())
        if margin(ref, x.double()) >= MARGIN and all(0.02 <= f <= 0.8 for f in fires):
            return net, ref, x
    pytest.fail("no draw keeps every state away from its threshold")


# ---- the reference itself, on the library's dense spiking networks (no convolution) -------------

MLPS = {
    "spiking_spiking_scale_delay_mean": dict(
        inputs=6, time_steps=8, encoding="repeated",
        layers=[dict(type="spiking", size=7), dict(type="spiking", size=5)]),
    "spiking_dense_lif_subtract_nodelay_sum": dict(
        inputs=6, time_steps=8, encoding="repeated", readout=dict(reduce="sum", begin_eval=3),
        layers=[dict(type="spiking", size=7, reset="subtract", delay=False),
                dict(type="dense", size=5), dict(type="lif", reset="subtract", delay=False)]),
}


@pytest.mark.parametrize("name", list(MLPS))
def test_reference_matches_the_library_on_spiking_mlps(name):
    net, ref, x = spiking_draw(MLPS[name], (4, 6))
    assert rel_err(net.forward(x.numpy(), training=False).logits, ref(x.double())) < TOLERANCE


def test_reference_lif_is_the_seed_fixtures_neuron():
    # tests/pytorch_fixture/make_fixture.py's forward, the statement the C++ fixture came from.
    import importlib.util
    path = REPO / "tests" / "pytorch_fixture" / "make_fixture.py"
    s = importlib.util.spec_from_file_location("make_fixture", path)
    mf = importlib.util.module_from_spec(s)
    s.loader.exec_module(mf)
    name, layers, readout = mf.CASES[3]
    params, xi, _ = mf.draw(torch.Generator().manual_seed(mf.BASE_SEED), layers)
    spec = dict(inputs=mf.I, time_steps=mf.T, encoding="sequence", readout=readout, layers=layers)
    ref = nt.reference_module(spec).double()
    ref.load_state_dict(params, strict=True)
    want, _ = mf.forward(layers, readout, params, xi)
    torch.testing.assert_close(ref(xi), want, rtol=0, atol=1e-12)


# ---- specs, parameters and inputs of convolutional networks -----------------------------------

def test_conv_parameters_come_out_pytorch_shaped():
    net = library_network(CNN, seed=1)
    state = net.state_dict()
    assert {k: v.shape for k, v in state.items()} == {
        "layers.0.weight": (3, 1, 3, 3), "layers.0.bias": (3,),
        "layers.4.weight": (5, 48), "layers.4.bias": (5,)}
    ref = nt.reference_module(CNN)
    assert {k: tuple(v.shape) for k, v in ref.state_dict().items()} == \
        {k: v.shape for k, v in state.items()}
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    # torch's Network registers them under the same names and shapes.
    tnet = nt.Network(CNN, seed=1)
    assert {k: tuple(v.shape) for k, v in tnet.state_dict().items()} == \
        {k: v.shape for k, v in state.items()}
    assert net.input_shape == (1, 10, 10)
    assert net.spec["input_shape"] == [1, 10, 10]
    assert net.inputs == 100


def test_conv_specs_are_checked_by_the_library():
    bad = dict(CNN, layers=[conv(3, 3), dict(type="dense", size=5)])
    with pytest.raises(nmsnn.Error, match="layer 1 .dense.: receives feature maps .* flatten"):
        nmsnn.Network(bad)
    with pytest.raises(nmsnn.Error, match="layers.0..kernel"):
        nt.reference_module(dict(CNN, layers=[conv(3, [3])] + CNN["layers"][1:]))
    no_shape = {k: v for k, v in CNN.items() if k != "input_shape"}
    with pytest.raises(nmsnn.Error, match="input_shape: missing: layer 0 .conv2d."):
        nmsnn.Network(dict(no_shape, inputs=100))
    with pytest.raises(NotImplementedError, match="layer 1 .lowpass."):
        nt.reference_module(dict(inputs=3, layers=[dict(type="dense", size=3),
                                                   dict(type="lowpass")]))


# ---- the library's logits against the PyTorch reference ---------------------------------------

def test_non_spiking_cnn_logits_equal_pytorch():
    net = library_network(CNN, seed=3)
    ref = nt.reference_module(net).double()
    x = torch.rand(6, 1, 10, 10, generator=torch.Generator().manual_seed(0)).float()
    want = ref(x.double())
    assert rel_err(net.forward(x.numpy(), training=False).logits, want) < TOLERANCE
    # Flat rows in (c, y, x) order are the same input.
    assert rel_err(net.forward(x.reshape(6, -1).numpy(), training=False).logits, want) < TOLERANCE


@pytest.mark.parametrize("name", list(SPIKING_CNNS))
def test_spiking_cnn_logits_equal_pytorch(name):
    spec = SPIKING_CNNS[name]
    net, ref, x = spiking_draw(spec, (5, *spec["input_shape"]))
    want = ref(x.double())
    assert rel_err(net.forward(x.numpy(), training=False).logits, want) < TOLERANCE
    # A sequence [T, B, C, H, W] of the same image at every step is the repeated encoding.
    seq = x.unsqueeze(0).expand(spec["time_steps"], *x.shape).contiguous()
    got = net.forward(seq.numpy(), kind="sequence", training=False).logits
    assert rel_err(got, want) < TOLERANCE


@pytest.mark.parametrize("name", list(SPIKING_CNNS))
def test_torch_network_gradients_equal_pytorch_autograd(name):
    # nmsnn.torch.Network runs the library's backward (SPEC.md 4: g held constant); the
    # reference's autograd differentiates the same forward, max pooling routing its gradient to
    # the first largest value of each window.
    spec = SPIKING_CNNS[name]
    lib, ref, x = spiking_draw(spec, (5, *spec["input_shape"]))
    net = nt.Network(spec)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in lib.state_dict().items()})
    labels = torch.arange(5) % lib.outputs
    loss = torch.nn.functional.cross_entropy(net(x, encoding="repeated"), labels)
    loss.backward()
    want = torch.nn.functional.cross_entropy(ref(x.double()), labels)
    want.backward()
    assert rel_err(loss.detach(), want) < TOLERANCE
    grads = dict(ref.named_parameters())
    for name_, p in net.named_parameters():
        assert rel_err(p.grad, grads[name_].grad) < TOLERANCE, name_


def _runs(spec):
    """Whether this build's engine runs spec's layers (the CPU engine's conv layers are new)."""
    try:
        nmsnn.Network(spec)
        return True
    except nmsnn.Error as e:
        if "does not run" in str(e):
            return False
        raise


def test_torch_network_takes_images():
    if not _runs(CNN):
        pytest.skip("this build's engine does not run conv layers")
    net = nt.Network(CNN, seed=2)
    x = torch.rand(3, 1, 10, 10)
    torch.testing.assert_close(net(x), net(x.reshape(3, -1)))
    torch.testing.assert_close(net(x), nt.reference_module(net)(x), rtol=1e-5, atol=1e-6)


# ---- estimators on images, model files into PyTorch -------------------------------------------

# conv [4, 12, 12] -> lif -> max pool [4, 6, 6] -> dense 10. Threshold 0.5: at 1, unit-scale pixels
# through the default initialisation leave most neurons silent, and one short epoch learns little.
TINY = dict(time_steps=3, encoding="repeated",
            layers=[conv(4, 5, stride=2), dict(type="lif", threshold=0.5),
                    dict(type="max_pool2d", kernel=2),
                    dict(type="flatten"), dict(type="dense", size=10)])


def test_estimator_fits_images_and_its_file_loads_into_pytorch(tmp_path):
    if not _runs(dict(TINY, input_shape=[1, 28, 28])):
        pytest.skip("this build's engine does not run conv layers")
    X, y = mnist(1000, train=True)
    clf = nmsnn.SpikingClassifier(spec=TINY, standardize=False, epochs=2, batch_size=20,
                                  lr=5e-3, random_state=0, verbose=0).fit(X, y)
    assert clf.spec_["input_shape"] == [1, 28, 28]  # from X's images
    assert clf.n_features_in_ == 784
    state = clf.network_.state_dict()
    assert state["layers.0.weight"].shape == (4, 1, 5, 5)
    assert state["layers.4.weight"].shape == (10, 144)
    X_test, y_test = mnist(200)
    # Images and their flat rows predict the same.
    np.testing.assert_array_equal(clf.predict(X_test), clf.predict(X_test.reshape(200, -1)))
    assert clf.score(X_test, y_test) > 0.5  # 10 classes; 0.79 when written
    with pytest.raises(ValueError, match=r"images of shape \[1, 14, 56\]"):
        clf.predict(X_test.reshape(200, 1, 14, 56))

    # The file's tensors load by name into the PyTorch model of its description.
    clf.save(tmp_path / "cnn.nmsnn")
    ref = reference_from_file(tmp_path / "cnn.nmsnn")
    with torch.no_grad():
        want = ref(torch.from_numpy(X_test).double())
    got = clf.decision_function(X_test)
    err = np.abs(got - want.numpy()).max(axis=1) / float(want.abs().max())
    assert np.mean(err < TRAINED_TOLERANCE) >= 0.95, sorted(err)[-10:]
    # And nmsnn.load gives back an estimator that reads images too.
    again = nmsnn.load(tmp_path / "cnn.nmsnn")
    np.testing.assert_array_equal(again.predict(X_test), clf.predict(X_test))


def test_estimator_image_shapes_must_agree():
    X = np.zeros((20, 1, 28, 28), np.float32)
    y = np.arange(20) % 10
    spec = dict(TINY, input_shape=[1, 14, 56])
    with pytest.raises(ValueError, match=r"input_shape \[1, 14, 56\] does not match the shape of "
                                         r"X's images \[1, 28, 28\]"):
        nmsnn.SpikingClassifier(spec=spec, epochs=1, verbose=0).fit(X, y)
    with pytest.raises(nmsnn.Error, match="input_shape: missing: layer 0 .conv2d."):
        nmsnn.SpikingClassifier(spec=TINY, epochs=1, verbose=0).fit(X.reshape(20, -1), y)


def test_cli_model_file_loads_into_pytorch(cli, tmp_path):
    if not _runs(dict(TINY, input_shape=[1, 28, 28])):
        pytest.skip("this build's engine does not run conv layers")
    (tmp_path / "cnn.json").write_text(json.dumps(TINY))
    out = subprocess.run([cli, "train", "--data", str(MNIST), "--model-file",
                          str(tmp_path / "cnn.json"), "--train-limit", "300", "--test-limit",
                          "0", "--epochs", "1", "--batch", "50", "--quiet", "--save",
                          str(tmp_path / "cnn.nmsnn")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    tensors, meta = read_safetensors(tmp_path / "cnn.nmsnn")
    assert json.loads(meta["network"])["input_shape"] == [1, 28, 28]
    assert tensors["layers.0.weight"].shape == (4, 1, 5, 5)
    ref = reference_from_file(tmp_path / "cnn.nmsnn")
    X, _ = mnist(100)
    with torch.no_grad():
        want = ref(torch.from_numpy(X).double())
    got = nmsnn.load(tmp_path / "cnn.nmsnn").decision_function(X)
    err = np.abs(got - want.numpy()).max(axis=1) / float(want.abs().max())
    assert np.mean(err < TRAINED_TOLERANCE) >= 0.95, sorted(err)[-10:]
