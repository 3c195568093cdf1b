"""Model files: save/load, pickling through the file's bytes, and the command line's files both
ways; the iris demo against `nmsnn train` on the same split and seed."""
import csv
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import nmsnn
from conftest import IRIS, HOUSES, REPO, SMALL

pytest.importorskip("sklearn", reason="scikit-learn is not installed")


def test_save_load_round_trip(tmp_path, iris, regression_data):
    X, y = iris
    clf = nmsnn.SpikingClassifier(random_state=1, **SMALL).fit(X, y)
    clf.save(tmp_path / "c.nmsnn")
    back = nmsnn.load(tmp_path / "c.nmsnn")
    assert type(back) is nmsnn.SpikingClassifier and list(back.classes_) == [0, 1, 2]
    assert back.get_params()["hidden"] == (16,) and back.get_params()["time_steps"] == 8
    assert np.array_equal(back.predict_proba(X), clf.predict_proba(X))
    Xr, yr = regression_data
    reg = nmsnn.SpikingRegressor(random_state=1, **SMALL).fit(Xr, yr)
    reg.save(tmp_path / "r.nmsnn")
    assert np.array_equal(nmsnn.load(tmp_path / "r.nmsnn").predict(Xr), reg.predict(Xr))
    with pytest.raises(nmsnn.Error, match="nope.nmsnn"):
        nmsnn.load(tmp_path / "nope.nmsnn")


def _read_predictions(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_python_model_predicts_with_the_cli(tmp_path, cli):
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(IRIS)
    X, y = df.drop(columns="target"), df["target"]
    clf = nmsnn.SpikingClassifier(random_state=1, **SMALL).fit(X, y)
    clf.save(tmp_path / "py.nmsnn")
    out = tmp_path / "pred.csv"
    subprocess.run([cli, "predict", "--model", str(tmp_path / "py.nmsnn"), "--data", str(IRIS),
                    "--out", str(out)], check=True, capture_output=True)
    header, rows = _read_predictions(out)
    assert header == ["prediction", "p_0", "p_1", "p_2"]
    assert [int(r[0]) for r in rows] == list(clf.predict(X))
    np.testing.assert_allclose([[float(v) for v in r[1:]] for r in rows], clf.predict_proba(X),
                               atol=1e-6)


def test_cli_model_predicts_in_python(tmp_path, cli):
    model = tmp_path / "cli.nmsnn"
    subprocess.run([cli, "train", "--data", str(HOUSES), "--task", "regression", "--target",
                    "house_price", "--epochs", "3", "--hidden", "8", "--time-steps", "8",
                    "--quiet", "--save", str(model)], check=True, capture_output=True)
    out = tmp_path / "pred.csv"
    subprocess.run([cli, "predict", "--model", str(model), "--data", str(HOUSES), "--out",
                    str(out)], check=True, capture_output=True)
    _, rows = _read_predictions(out)
    reg = nmsnn.load(model)
    assert type(reg) is nmsnn.SpikingRegressor and reg.get_params()["hidden"] == (8,)
    d = nmsnn.read_csv(str(HOUSES), target="house_price", task="regression")
    np.testing.assert_allclose(reg.predict(d["x"]), [float(r[0]) for r in rows], rtol=1e-5)


def test_iris_demo_matches_nmsnn_train(cli):
    r = subprocess.run([cli, "train", "--data", str(IRIS), "--target", "target", "--quiet"],
                       check=True, capture_output=True, text=True)
    cli_accuracy = float(re.search(r"test accuracy ([0-9.]+)", r.stdout).group(1))
    sys.path.insert(0, str(REPO / "examples" / "python"))
    try:
        import iris
    finally:
        sys.path.pop(0)
    results = iris.main(verbose=0)
    assert round(results["snn"], 4) == cli_accuracy
