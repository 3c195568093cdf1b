"""Shared fixtures of the Python suite (run by scripts/test_python.sh, ctest's `python`).

The command-line comparisons need the `nmsnn` binary of the same source tree: its path comes in
NMSNN_CLI (the ctest entry passes it); without it those tests skip and say so."""
import os
import pathlib

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
IRIS = REPO / "data" / "csv" / "iris_data.csv"
HOUSES = REPO / "data" / "csv" / "house_price_data.csv"

# Small settings that still learn the suite's small data sets in well under a second.
SMALL = dict(hidden=(16,), time_steps=8, epochs=30, batch_size=16, lr=1e-2, verbose=0)


@pytest.fixture
def cli():
    path = os.environ.get("NMSNN_CLI", "")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("NMSNN_CLI does not name the nmsnn command of this tree (ctest's `python` "
                    "test passes it)")
    return path


@pytest.fixture(scope="session")
def iris():
    import nmsnn
    d = nmsnn.read_csv(str(IRIS), target="target")
    return d["x"], np.asarray(d["y"])


@pytest.fixture(scope="session")
def binary_data():
    rng = np.random.RandomState(0)
    X = rng.randn(200, 5).astype(np.float32)
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "yes", "no")
    return X, y


@pytest.fixture(scope="session")
def regression_data():
    rng = np.random.RandomState(0)
    X = rng.randn(200, 4)
    y = 3.0 * X[:, 0] - 2.0 * X[:, 1] + 0.1 * rng.randn(200) + 10.0
    return X, y
