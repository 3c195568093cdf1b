"""nmsnn.plots: each plot is a matplotlib Figure with the axes, lines and labels the CLI's SVG
plots have (drawn with the Agg backend, nothing shown)."""
import numpy as np
import pytest

import nmsnn
from conftest import SMALL

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is not installed")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from nmsnn import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def multiclass(iris):
    X, y = iris
    clf = nmsnn.SpikingClassifier(random_state=1, validation_fraction=0.2,
                                  **{**SMALL, "epochs": 5}).fit(X, y)
    return clf, X, y


@pytest.fixture(scope="module")
def binary(binary_data):
    X, y = binary_data
    return nmsnn.SpikingClassifier(random_state=2, **{**SMALL, "epochs": 5}).fit(X, y), X, y


@pytest.fixture(scope="module")
def regressor(regression_data):
    X, y = regression_data
    return nmsnn.SpikingRegressor(random_state=1, **{**SMALL, "epochs": 5}).fit(X, y), X, y


def labels(ax):
    return ax.get_legend_handles_labels()[1]


def test_training_curves_classifier_and_regressor(multiclass, regressor):
    clf = multiclass[0]
    fig = plots.training_curves(clf)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    loss, acc = fig.axes
    assert loss.get_title() == "Training loss" and acc.get_title() == "Training accuracy"
    assert loss.get_xlabel() == "epoch" and acc.get_ylabel() == "accuracy"
    assert labels(loss) == ["train loss", "validation loss"]
    line = loss.get_lines()[0]
    assert list(line.get_xdata()) == [r["epoch"] for r in clf.history_]
    assert np.allclose(line.get_ydata(), [r["train_loss"] for r in clf.history_])
    fig = plots.training_curves(regressor[0])  # no accuracy, no validation
    assert len(fig.axes) == 1 and labels(fig.axes[0]) == ["train loss"]


def test_confusion_matrix(multiclass):
    clf, X, y = multiclass
    e = clf.evaluate(X, y)
    fig = plots.confusion_matrix(clf, evaluation=e)
    ax = fig.axes[0]  # the second axes is the color bar
    assert isinstance(fig, Figure) and ax.get_title() == "Confusion matrix (150 samples)"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted class", "true class")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    assert np.array_equal(ax.images[0].get_array(), e["confusion_matrix"])
    cells = [t.get_text() for t in ax.texts]
    assert len(cells) == 9 and cells[0] == str(e["confusion_matrix"][0, 0])
    shares = plots.confusion_matrix(clf, X, y, normalize=True).axes[0].images[0].get_array()
    assert np.allclose(shares.sum(axis=1), 1)


def test_roc_binary_and_one_vs_rest(binary, multiclass):
    clf, X, y = binary
    e = clf.evaluate(X, y)
    fig = plots.roc_curve(clf, evaluation=e)
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and ax.get_title() == "ROC curve"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("false positive rate", "true positive rate")
    assert labels(ax) == [f"AUC = {e['auc']:.3f}", "chance"]
    assert np.allclose(ax.get_lines()[0].get_xdata(), e["roc"]["fpr"])
    clf, X, y = multiclass
    ax = plots.roc_curve(clf, X, y).axes[0]
    assert len(ax.get_lines()) == 4  # three classes and the diagonal
    assert labels(ax)[0].startswith("0 (AUC ")


def test_precision_recall_binary_only(binary, multiclass):
    clf, X, y = binary
    e = clf.evaluate(X, y)
    ax = plots.precision_recall_curve(clf, X, y).axes[0]
    assert ax.get_title() == "Precision-recall curve"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("recall", "precision")
    assert labels(ax) == [f"AP = {e['pr']['average_precision']:.3f}"]
    with pytest.raises(ValueError, match="binary"):
        plots.precision_recall_curve(multiclass[0], multiclass[1], multiclass[2])


def test_predicted_vs_true(regressor, multiclass):
    reg, X, y = regressor
    fig = plots.predicted_vs_true(reg, X, y)
    ax = fig.axes[0]
    assert isinstance(fig, Figure)
    assert ax.get_title() == f"Predicted vs true (R2 = {reg.evaluate(X, y)['r2']:.3f})"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("true value", "predicted value")
    dots = ax.collections[0].get_offsets()
    assert dots.shape == (200, 2) and np.allclose(dots[:, 0], y)
    assert np.allclose(dots[:, 1], reg.predict(X), rtol=1e-5)
    assert labels(ax) == ["prediction = truth", "samples"] or \
        sorted(labels(ax)) == ["prediction = truth", "samples"]
    with pytest.raises(ValueError, match="regressor"):
        plots.predicted_vs_true(multiclass[0], multiclass[1], multiclass[2])


def test_layer_activity_every_layer_state_and_spikes(multiclass):
    clf, X, _ = multiclass
    fig = plots.layer_activity(clf, X, sample=4)
    heat = [ax for ax in fig.axes if ax.images]
    assert isinstance(fig, Figure) and len(heat) == 4  # 2 layers x (state, spikes)
    assert heat[0].get_title() == "Inner state values of neurons for layer 0"
    assert heat[3].get_title() == "Output spikes (activation) values of neurons for layer 1"
    assert (heat[0].get_xlabel(), heat[0].get_ylabel()) == ("time step", "neuron")
    trace = clf.trace(X[4:5])
    assert np.array_equal(heat[1].images[0].get_array(), trace[0]["spikes"][:, 0, :].T)
    assert heat[2].images[0].get_array().shape == (3, SMALL["time_steps"])  # [neurons, T]
    with pytest.raises(ValueError, match="sample 150 is outside"):
        plots.layer_activity(clf, X, sample=150)


def test_neuron_trace(multiclass):
    clf, X, _ = multiclass
    fig = plots.neuron_trace(clf, X, layer=0, neuron=5, sample=2)
    ax = fig.axes[0]
    assert isinstance(fig, Figure)
    assert ax.get_title() == "Neuron 5 of layer 0 over time (sample 2)"
    assert labels(ax) == ["inner state", "output (spikes)"]
    state = clf.trace(X[2:3])[0]["state"][:, 0, 5]
    assert np.allclose(ax.get_lines()[0].get_ydata(), state)
    with pytest.raises(ValueError, match="neuron 16 is outside layer 0's 16 neurons"):
        plots.neuron_trace(clf, X, layer=0, neuron=16)
    with pytest.raises(ValueError, match="layer 2 is outside"):
        plots.neuron_trace(clf, X, layer=2)
