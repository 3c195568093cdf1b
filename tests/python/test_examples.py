"""The examples in examples/python run and learn (small versions where the full one is long)."""
import subprocess
import sys

import pytest

from conftest import REPO

EXAMPLES = REPO / "examples" / "python"


@pytest.mark.parametrize("args, expect", [
    (["iris.py", "30"], "snn: test accuracy"),
    (["house_prices.py", "10"], "snn: mean test R2"),
    (["synthetic_binary.py", "--quick"], "snn: test accuracy"),
])
def test_example_runs(args, expect):
    pytest.importorskip("sklearn", reason="the examples use scikit-learn")
    r = subprocess.run([sys.executable, str(EXAMPLES / args[0])] + args[1:], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert expect in r.stdout


def test_torch_example_runs():
    pytest.importorskip("torch", reason="examples/python/torch_spiking.py needs PyTorch")
    r = subprocess.run([sys.executable, str(EXAMPLES / "torch_spiking.py"), "--quick"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "nmsnn.torch.Network: test accuracy" in r.stdout
