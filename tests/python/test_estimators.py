"""SpikingClassifier and SpikingRegressor: scikit-learn's conventions, errors, progress."""
import json
import pickle

import numpy as np
import pytest

import nmsnn
from conftest import SMALL

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed")
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def test_import_needs_numpy_only():
    import subprocess
    import sys
    code = ("import sys, nmsnn; bad = [m for m in ('sklearn', 'pandas', 'matplotlib', 'torch') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_defaults_are_the_cli_tabular_preset_and_seed_neurons():
    p = nmsnn.SpikingClassifier().get_params()
    # include/nmsnn/presets.hpp training_preset("tabular") and include/nmsnn/spec.hpp SpikingLayer.
    assert (p["epochs"], p["batch_size"], p["time_steps"], p["hidden"]) == (100, 32, 64, (100,))
    assert (p["optimizer"], p["lr"], p["model"]) == ("adam", 1e-3, "snn")
    d = nmsnn._core.SPIKING_DEFAULTS
    assert np.float32(p["decay"]) == np.float32(d["decay"])
    assert (p["threshold"], p["penalty"], p["reset"], p["delay"]) == (
        d["threshold"], d["penalty"], d["reset"], d["delay"])


def test_multiclass_fit_predict(iris):
    X, y = iris
    clf = nmsnn.SpikingClassifier(random_state=1, **SMALL)
    assert clf.fit(X, y) is clf
    assert list(clf.classes_) == [0, 1, 2] and clf.n_features_in_ == 4
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3) and np.allclose(proba.sum(axis=1), 1)
    assert np.array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.decision_function(X).shape == (150, 3)
    assert clf.score(X, y) > 0.8
    assert clf.spec_["layers"][-1] == {**clf.spec_["layers"][-1], "type": "spiking", "size": 3}
    assert len(clf.history_) == SMALL["epochs"]


def test_binary_uses_a_binary_model(binary_data):
    X, y = binary_data
    clf = nmsnn.SpikingClassifier(random_state=2, **SMALL).fit(X, y)
    assert list(clf.classes_) == ["no", "yes"]
    assert clf.spec_["layers"][-1]["type"] == "dense"  # the CLI's binary readout
    d = clf.decision_function(X)
    assert d.shape == (200,)
    assert np.array_equal(clf.predict(X), np.where(d > 0, "yes", "no"))
    assert clf.score(X, y) > 0.85
    m = clf.evaluate(X, y)
    assert m["task"] == "binary" and 0.85 < m["auc"] <= 1 and "pr" in m


def test_mlp_baseline(iris):
    X, y = iris
    clf = nmsnn.SpikingClassifier(model="mlp", random_state=1, **SMALL).fit(X, y)
    assert clf.spec_["encoding"] == "repeated" and clf.score(X, y) > 0.8


def test_regression_one_and_several_targets(regression_data):
    X, y = regression_data
    reg = nmsnn.SpikingRegressor(random_state=1, **SMALL).fit(X, y)
    assert reg.predict(X).shape == (200,) and reg.score(X, y) > 0.7
    Y = np.column_stack([y, -y])
    reg2 = nmsnn.SpikingRegressor(random_state=1, **SMALL).fit(X, Y)
    assert reg2.predict(X).shape == (200, 2)
    assert reg2.evaluate(X, Y)["r2"] > 0.7


def test_same_seed_same_model(iris):
    X, y = iris
    a = nmsnn.SpikingClassifier(random_state=5, **SMALL).fit(X, y).predict_proba(X)
    b = nmsnn.SpikingClassifier(random_state=5, **SMALL).fit(X, y).predict_proba(X)
    assert np.array_equal(a, b)


def test_predictions_do_not_depend_on_the_other_rows(iris):
    X, y = iris
    clf = nmsnn.SpikingClassifier(random_state=1, **SMALL).fit(X, y)
    full = clf.predict_proba(X)
    order = np.random.RandomState(0).permutation(len(X))
    assert np.array_equal(clf.predict_proba(X[order]), full[order])
    assert np.array_equal(clf.predict_proba(X[7:20]), full[7:20])
    assert np.array_equal(clf.predict_proba(X[[42]]), full[[42]])


def test_dataframe_feature_names():
    pd = pytest.importorskip("pandas")
    from conftest import IRIS
    df = pd.read_csv(IRIS)
    X, y = df.drop(columns="target"), df["target"]
    clf = nmsnn.SpikingClassifier(random_state=1, **SMALL).fit(X, y)
    assert list(clf.feature_names_in_) == list(X.columns)
    assert clf._model.feature_names == list(X.columns)
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(X[list(reversed(X.columns))])


def test_clone_pickle_pipeline_grid_search_cross_val(iris):
    X, y = iris
    clf = nmsnn.SpikingClassifier(random_state=1, **SMALL)
    c = clone(clf)
    assert c.get_params() == clf.get_params() and not hasattr(c, "classes_")
    clf.fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(again.predict_proba(X), clf.predict_proba(X))
    pipe = make_pipeline(StandardScaler(), nmsnn.SpikingClassifier(random_state=1, **SMALL))
    assert pipe.fit(X, y).score(X, y) > 0.8
    grid = GridSearchCV(nmsnn.SpikingClassifier(random_state=1, **SMALL),
                        {"hidden": [(8,), (16,)]}, cv=3).fit(X, y)
    assert grid.best_params_["hidden"] in [(8,), (16,)]
    scores = cross_val_score(nmsnn.SpikingClassifier(random_state=1, **SMALL), X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.6


@pytest.mark.parametrize("make", [nmsnn.SpikingClassifier, nmsnn.SpikingRegressor])
def test_bad_input_is_a_value_error_naming_the_problem(make, iris):
    X, y = iris
    est = make(random_state=1, **SMALL)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad, y)
    with pytest.raises(ValueError, match="dim 3|3-D"):
        est.fit(X.reshape(150, 2, 2), y)
    est.fit(X, y)
    with pytest.raises(ValueError, match="3 features.*expecting 4"):
        est.predict(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        est.predict(bad)
    with pytest.raises(ValueError, match="infinity"):
        est.predict(np.where(np.isnan(bad), np.inf, bad))


def test_unknown_class_and_one_class(iris):
    X, y = iris
    clf = nmsnn.SpikingClassifier(random_state=1, **SMALL).fit(X, y)
    with pytest.raises(ValueError, match="not trained on: \\[7\\]"):
        clf.evaluate(X, np.where(y == 2, 7, y))
    with pytest.raises(ValueError, match="one class"):
        nmsnn.SpikingClassifier(**SMALL).fit(X[:10], y[:10])
    with pytest.raises(ValueError, match="Unknown label type"):
        nmsnn.SpikingClassifier(**SMALL).fit(X, y + 0.5)


def test_library_errors_are_nmsnn_errors(iris):
    X, y = iris
    with pytest.raises(nmsnn.Error, match="reset"):
        nmsnn.SpikingClassifier(reset="sideways", **{k: v for k, v in SMALL.items()}).fit(X, y)
    with pytest.raises(nmsnn.Error, match="optimizer"):
        nmsnn.SpikingClassifier(**{**SMALL, "optimizer": "rmsprop"}).fit(X, y)
    assert issubclass(nmsnn.Error, ValueError) and issubclass(nmsnn.TrainingDiverged, nmsnn.Error)


def test_divergence_is_training_diverged(regression_data):
    X, y = regression_data
    with pytest.raises(nmsnn.TrainingDiverged, match="lower the learning rate|diverged"):
        nmsnn.SpikingRegressor(**{**SMALL, "lr": 1e30, "optimizer": "sgd"}).fit(X, y * 1e20)


def test_progress_output(iris, capsys):
    X, y = iris
    nmsnn.SpikingClassifier(**{**SMALL, "epochs": 3, "verbose": 2}).fit(X, y)
    err = capsys.readouterr().err
    assert "epoch 3/3" in err and "train loss" in err and "samples/s" in err
    nmsnn.SpikingClassifier(**{**SMALL, "epochs": 3, "verbose": 0}).fit(X, y)
    assert capsys.readouterr().err == ""


def test_keyboard_interrupt_stops_training(iris):
    X, y = iris
    d = nmsnn._core.cli_description("snn", "multiclass", 4, 3, [8], 8, 0.9, 1.0, 1.5, "scale", True)
    m = nmsnn._core.Model.make("multiclass", d)
    seen = []

    def interrupt(b):
        seen.append(b["batch"])
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        m.fit(np.ascontiguousarray(X, np.float32), labels=y.astype(np.int32), classes=3,
              epochs=50, batch_size=10, on_batch=interrupt)
    assert len(seen) == 3  # stopped at once, not after the 50 epochs


def test_validation_fraction_records_validation(iris):
    X, y = iris
    clf = nmsnn.SpikingClassifier(random_state=1, validation_fraction=0.2, **SMALL).fit(X, y)
    assert "validation_accuracy" in clf.history_[-1]


def test_defaults_come_from_the_library_presets():
    p = nmsnn.SpikingClassifier().get_params()
    t = nmsnn._core.training_preset("tabular")
    assert (p["epochs"], p["batch_size"], p["time_steps"], list(p["hidden"])) == (
        t["epochs"], t["batch_size"], t["time_steps"], t["hidden"])
    assert (p["optimizer"], [p["lr"]], p["lr_step"], p["lr_gamma"], p["momentum"]) == (
        t["optimizer"], t["lr"], t["lr_step_epochs"], t["lr_gamma"], t["momentum"])
    assert p["decay"] == 0.9 and p["standardize"] is True  # shown as written in C++ (0.9f)
    assert nmsnn._core.training_preset_names() == ["default", "seed", "tabular"]
    seed = nmsnn._core.training_preset("seed")
    assert (seed["optimizer"], seed["lr"], seed["batch_size"]) == ("sgd", [0.1, 0.05, 0.01], 1000)
    with pytest.raises(nmsnn.Error, match="unknown preset 'fast'"):
        nmsnn._core.training_preset("fast")


def test_cli_description_is_the_librarys_predictive_network():
    d = json.loads(nmsnn._core.cli_description("snn", "binary", 4, 1, [8, 6], 12, 0.7, 0.5, 1.0,
                                               "subtract", False))
    assert [l["type"] for l in d["layers"]] == ["spiking", "spiking", "dense"]
    assert d["layers"][0]["reset"] == "subtract" and d["layers"][1]["delay"] is False
    m = json.loads(nmsnn._core.cli_description("mlp", "multiclass", 4, 3, [8], 12, 0.9, 1, 1.5,
                                               "scale", True))
    assert m["encoding"] == "repeated" and [l["type"] for l in m["layers"]] == [
        "dense", "activation", "dense"]
    with pytest.raises(nmsnn.Error, match="unknown model 'cnn'"):
        nmsnn._core.cli_description("cnn", "multiclass", 4, 3, [8], 12, 0.9, 1, 1.5, "scale", True)


def test_decision_function_is_the_networks_logits(iris, binary_data):
    X, y = iris
    clf = nmsnn.SpikingClassifier(random_state=1, **SMALL).fit(X, y)
    z = clf.decision_function(X)
    softmax = np.exp(z - z.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    assert np.allclose(softmax, clf.predict_proba(X), atol=1e-6)
    X, y = binary_data
    clf = nmsnn.SpikingClassifier(random_state=2, **SMALL).fit(X, y)
    d = clf.decision_function(X)
    p = clf.predict_proba(X)[:, 1]
    assert np.allclose(1 / (1 + np.exp(-d)), p, atol=1e-6)
    # Logits far beyond float32's sigmoid: the probabilities round to 0 or 1, the logits stay finite.
    net = clf.network_
    for name in ("layers.1.weight", "layers.1.bias"):
        net.set_parameter(name, net.parameter(name) * 1000)
    d = clf.decision_function(X)
    p = clf.predict_proba(X)[:, 1]
    assert ((p == 0) | (p == 1)).any() and np.isfinite(d).all()
    assert np.array_equal(clf.predict(X), np.where(d > 0, "yes", "no"))


def test_pickle_is_the_model_files_bytes(iris, tmp_path):
    X, y = iris
    clf = nmsnn.SpikingClassifier(random_state=1, **SMALL).fit(X, y)
    data = clf._model.to_bytes()
    clf.save(tmp_path / "m.nmsnn")
    assert (tmp_path / "m.nmsnn").read_bytes() == data
    assert clf.__getstate__()["_model_file"] == data
    again = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(again.decision_function(X), clf.decision_function(X))
    assert again._model.to_bytes() == data
    with pytest.raises(nmsnn.Error, match="'broken': not a safetensors file"):
        nmsnn._core.Model.from_bytes(data[:5], "broken")


def test_standardize_false_feeds_features_as_given(iris):
    X, y = iris
    clf = nmsnn.SpikingClassifier(random_state=1, standardize=False, **SMALL).fit(X, y)
    assert clf._model.standardize_features is False and len(clf._model.feature_mean) == 0
    assert clf.score(X, y) > 0.6
    again = pickle.loads(pickle.dumps(clf))
    assert again.get_params()["standardize"] is False
    assert np.array_equal(again.predict_proba(X), clf.predict_proba(X))
