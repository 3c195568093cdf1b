"""The seed's plots as matplotlib figures: what `nmsnn train --plots` and `nmsnn plot` draw as SVG,
for a fitted SpikingClassifier or SpikingRegressor in a notebook.

    from nmsnn import plots
    plots.training_curves(clf)                    # loss (and accuracy) per epoch
    plots.confusion_matrix(clf, X_test, y_test)
    plots.roc_curve(clf, X_test, y_test)          # binary; one-vs-rest curves for multiclass
    plots.precision_recall_curve(clf, X_test, y_test)   # binary
    plots.predicted_vs_true(reg, X_test, y_test)  # regression
    plots.layer_activity(clf, X_test, sample=0)   # every layer's state and spikes over time
    plots.neuron_trace(clf, X_test, layer=0, neuron=3)

Every function returns a matplotlib Figure (made with pyplot, so plt.show() shows it too). The
metric plots take either (X, y) or `evaluation=est.evaluate(X, y)`, to evaluate once for several
plots. matplotlib is imported when a function is first called: `import nmsnn.plots` works
without it, and a call says how to install it.
"""
import numpy as np

__all__ = ["training_curves", "confusion_matrix", "roc_curve", "precision_recall_curve",
           "predicted_vs_true", "layer_activity", "neuron_trace"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("nmsnn.plots needs matplotlib, which is not installed: "
                          "pip install matplotlib (Debian: apt install python3-matplotlib)") from e
    return plt


def _evaluation(est, X, y, evaluation):
    if evaluation is not None:
        return evaluation
    if X is None or y is None:
        raise ValueError("give the data (X, y) to evaluate the model on, or evaluation=est.evaluate(X, y)")
    return est.evaluate(X, y)


def _class_names(est, count):
    classes = getattr(est, "classes_", None)
    if classes is not None and len(classes) == count:
        return [str(c) for c in classes]
    return [str(c) for c in range(count)]


def _is_regressor(est):
    return bool(getattr(est, "_regression", False))


# ---- training ---------------------------------------------------------------------------------

def training_curves(est):
    """Loss per epoch (and accuracy per epoch for a classifier), with the validation figures when
    the estimator was fitted with validation_fraction: one axes each, from est.history_."""
    history = getattr(est, "history_", None)
    if not history:
        raise ValueError("the estimator has no training history: fit it first")
    plt = _pyplot()
    panels = [("loss", "Training loss")]
    if not _is_regressor(est):
        panels.append(("accuracy", "Training accuracy"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    epochs = [r["epoch"] for r in history]
    marker = "o" if len(history) <= 30 else None
    for ax, (what, title) in zip(axes[0], panels):
        ax.plot(epochs, [r["train_" + what] for r in history], marker=marker, label="train " + what)
        validated = [r for r in history if "validation_" + what in r]
        if validated:
            ax.plot([r["epoch"] for r in validated], [r["validation_" + what] for r in validated],
                    marker=marker, label="validation " + what)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


# ---- classifiers ------------------------------------------------------------------------------

def confusion_matrix(est, X=None, y=None, evaluation=None, normalize=False):
    """The confusion matrix (rows: true class, columns: predicted class) with counts in the cells;
    normalize=True shows each row's shares instead."""
    e = _evaluation(est, X, y, evaluation)
    if "confusion_matrix" not in e:
        raise ValueError("a confusion matrix needs a classifier")
    counts = np.asarray(e["confusion_matrix"])
    C = counts.shape[0]
    values = counts.astype(float)
    if normalize:
        values = values / np.maximum(values.sum(axis=1, keepdims=True), 1)
    names = _class_names(est, C)
    plt = _pyplot()
    size = min(12.0, 3.0 + 0.5 * C)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(values, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, label="share of the true class" if normalize else "samples")
    ax.set_xticks(range(C))
    ax.set_yticks(range(C))
    ax.set_xticklabels(names, rotation=45 if C > 6 else 0, ha="right" if C > 6 else "center")
    ax.set_yticklabels(names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix ({int(counts.sum())} samples)")
    if C <= 30:
        high = values.max() if values.size else 0
        for t in range(C):
            for p in range(C):
                text = f"{values[t, p]:.2f}" if normalize else str(int(counts[t, p]))
                ax.text(p, t, text, ha="center", va="center",
                        color="white" if high and values[t, p] > 0.6 * high else "black")
    fig.tight_layout()
    return fig


def _unit_square(ax, xlabel, ylabel, title):
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)


def roc_curve(est, X=None, y=None, evaluation=None):
    """ROC curve of a binary classifier (label: its AUC), or one one-vs-rest curve per class of a
    multiclass one; the diagonal of a guess for reference. Curves the data cannot define (a
    class absent from y) are left out, as the CLI leaves them out."""
    e = _evaluation(est, X, y, evaluation)
    if "roc" in e:
        curves = [(f"AUC = {e['roc']['auc']:.3f}", e["roc"])] if len(e["roc"]["fpr"]) else []
    elif "roc_per_class" in e:
        names = _class_names(est, len(e["roc_per_class"]))
        curves = [(f"{names[c]} (AUC {r['auc']:.3f})", r)
                  for c, r in enumerate(e["roc_per_class"]) if len(r["fpr"])]
    else:
        raise ValueError("a ROC curve needs a classifier")
    if not curves:
        raise ValueError("the ROC curve is undefined on this data: y holds one class only")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for label, r in curves:
        ax.plot(r["fpr"], r["tpr"], label=label)
    ax.plot([0, 1], [0, 1], linestyle="--", color="#888888", label="chance")
    _unit_square(ax, "false positive rate", "true positive rate", "ROC curve")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def precision_recall_curve(est, X=None, y=None, evaluation=None):
    """Precision against recall for a binary classifier (label: its average precision)."""
    e = _evaluation(est, X, y, evaluation)
    if "pr" not in e:
        raise ValueError("a precision-recall curve needs a binary classifier")
    pr = e["pr"]
    if not len(pr["recall"]):
        raise ValueError("the precision-recall curve is undefined on this data: y holds one class only")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.step(pr["recall"], pr["precision"], where="post", label=f"AP = {pr['average_precision']:.3f}")
    _unit_square(ax, "recall", "precision", "Precision-recall curve")
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


# ---- regressors -------------------------------------------------------------------------------

def predicted_vs_true(est, X=None, y=None, target=0, evaluation=None):
    """A regressor's predictions against the true values y (one dot per sample) with the line
    prediction = truth; the title gives R2. `target` picks a column of a multi-target y."""
    if not _is_regressor(est):
        raise ValueError("predicted against true values needs a regressor")
    if y is None:
        raise ValueError("give the true values y")
    e = _evaluation(est, X, y, evaluation)
    truth = np.asarray(y, dtype=float)
    truth = truth.reshape(truth.shape[0], -1)[:, target]
    pred = np.asarray(e["predictions"], dtype=float)[:, target]
    if target == 0:
        r2 = e["r2"]  # the library's metric, on the first target as `nmsnn eval` reports it
    else:
        total = np.sum((truth - truth.mean()) ** 2)
        r2 = 1 - np.sum((truth - pred) ** 2) / total if total > 0 else float("nan")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(truth, pred, s=12, alpha=0.7, label="samples")
    lo, hi = float(truth.min()), float(truth.max())
    ax.plot([lo, hi], [lo, hi], linestyle="--", color="#888888", label="prediction = truth")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_title(f"Predicted vs true (R2 = {r2:.3f})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


# ---- the seed's neuron views ------------------------------------------------------------------

def _one_sample_trace(est, X, sample):
    X = np.asarray(X) if not hasattr(X, "iloc") else X
    n = X.shape[0]
    if not 0 <= sample < n:
        raise ValueError(f"sample {sample} is outside the data's {n} rows (0 to {n - 1})")
    rows = X.iloc[sample:sample + 1] if hasattr(X, "iloc") else X[sample:sample + 1]
    return est.trace(rows)


def layer_activity(est, X, sample=0):
    """The seed's neuron views for one sample (row `sample` of X): for every layer, its neurons'
    inner state and output (spikes) over time as two heat maps side by side (rows: layers)."""
    trace = _one_sample_trace(est, X, sample)
    plt = _pyplot()
    L = len(trace)
    fig, axes = plt.subplots(L, 2, figsize=(12, 3.2 * L), squeeze=False)
    for l, layer in enumerate(trace):
        for ax, key, title, label in ((axes[l, 0], "state", "Inner state values of neurons", "state"),
                                      (axes[l, 1], "spikes", "Output spikes (activation) values of neurons",
                                       "output")):
            values = np.asarray(layer[key])[:, 0, :].T  # [neurons, T]
            image = ax.imshow(values, aspect="auto", interpolation="nearest", origin="lower",
                              cmap="viridis")
            fig.colorbar(image, ax=ax, label=label)
            ax.set_title(f"{title} for layer {l}")
            ax.set_xlabel("time step")
            ax.set_ylabel("neuron")
    fig.suptitle(f"Sample {sample}")
    fig.tight_layout()
    return fig


def neuron_trace(est, X, layer=0, neuron=0, sample=0):
    """One neuron's inner state and output (spikes) over time, for row `sample` of X."""
    trace = _one_sample_trace(est, X, sample)
    L = len(trace)
    if not 0 <= layer < L:
        raise ValueError(f"layer {layer} is outside the network's {L} layers (0 to {L - 1})")
    state = np.asarray(trace[layer]["state"])
    H = state.shape[2]
    if not 0 <= neuron < H:
        raise ValueError(f"neuron {neuron} is outside layer {layer}'s {H} neurons (0 to {H - 1})")
    spikes = np.asarray(trace[layer]["spikes"])
    steps = np.arange(state.shape[0])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(steps, state[:, 0, neuron], label="inner state")
    ax.step(steps, spikes[:, 0, neuron], where="post", label="output (spikes)")
    ax.set_xlabel("time step")
    ax.set_ylabel("value")
    ax.set_title(f"Neuron {neuron} of layer {layer} over time (sample {sample})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
