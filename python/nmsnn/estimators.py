"""scikit-learn estimators over nmsnn models: SpikingClassifier (binary and multiclass) and
SpikingRegressor, with the command line's models and defaults.

Defaults are those of `nmsnn train --model snn` with its `tabular` preset (T = 64, 100 hidden,
Adam lr 1e-3, batch 32, 100 epochs) and the seed's neuron settings (decay 0.9, threshold 1,
penalty 1.5, scale reset, delay on), read from the library itself (include/nmsnn/presets.hpp,
training_preset("tabular"), and SpikingLayer's defaults), so the two cannot drift apart. The
network is built by the library's predictive_network, as the CLI builds it: multiclass models read
their logits from the output layer's state, binary and regression models read their one output
linearly from the last spiking layer's spikes. Features (and regression targets) are standardised
with the training data's statistics, inside the model (standardize=False feeds features as given,
as the CLI does for images).

Predictions of a row do not depend on the other rows predicted with it or on its position: the
model keys each row's noise masks by the row itself.
"""
import json
import numbers
import os

import numpy as np

from . import _core
from ._progress import Progress
from .network import Network

try:  # scikit-learn is optional: with it, the estimators are scikit-learn estimators.
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted

    _SKLEARN = True
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    _SKLEARN = False
    from ._compat import (BaseEstimator, ClassifierMixin, RegressorMixin,  # noqa: F401
                          check_classification_targets, check_is_fitted)

try:
    from sklearn.utils.validation import validate_data as _sk_validate_data  # scikit-learn >= 1.6
except ImportError:
    _sk_validate_data = None


# ---- validation -----------------------------------------------------------------------------

def _validate(est, X, y=None, reset=True, regression=False):
    """X (and y) checked and converted as scikit-learn does: X a 2-D float32 array of finite
    values, with n_features_in_ (and feature_names_in_ for a DataFrame) set when `reset` and
    checked otherwise. Without scikit-learn, the same checks in NumPy."""
    kwargs = dict(dtype=np.float32, ensure_min_samples=1)
    if y is not None or reset:
        kwargs.update(y_numeric=regression, multi_output=regression)
    if _SKLEARN:
        if _sk_validate_data is not None:
            if y is None and not reset:
                return _sk_validate_data(est, X, reset=False, dtype=np.float32)
            return _sk_validate_data(est, X, y, reset=reset, **kwargs)
        if y is None and not reset:
            return est._validate_data(X, reset=False, dtype=np.float32)
        return est._validate_data(X, y, reset=reset, **kwargs)
    from ._compat import validate_data
    return validate_data(est, X, y, reset=reset, regression=regression)


_MAP_LAYERS = ("conv2d", "avg_pool2d", "max_pool2d")  # the layers that read [C, H, W] maps


def _images(X):
    """Images X [N, C, H, W] as the rows [N, C*H*W] the networks read (flat in (c, y, x) order)
    and their shape (C, H, W); any other X as it is, and None."""
    if getattr(X, "ndim", 2) != 4:
        return X, None
    X = np.asarray(X)
    return X.reshape(X.shape[0], -1), tuple(int(d) for d in X.shape[1:])


def _seed(random_state):
    """An int seed from random_state as scikit-learn reads it (None: a fresh random seed)."""
    if random_state is None:
        return int(np.random.randint(0, 2**31 - 1))
    if isinstance(random_state, (numbers.Integral, np.integer)):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int or a numpy RandomState, got {random_state!r}")


# The library's defaults: the CLI's tabular preset and the seed's neuron settings.
_TABULAR = _core.training_preset("tabular")
_NEURON = _core.SPIKING_DEFAULTS


def _names(obj):
    """Column names of a pandas Series/DataFrame target, else None."""
    if hasattr(obj, "columns"):
        return [str(c) for c in obj.columns]
    name = getattr(obj, "name", None)
    return [str(name)] if name is not None and hasattr(obj, "dtype") else None


# ---- the estimators -------------------------------------------------------------------------

class _SpikingEstimator(BaseEstimator):
    _regression = False

    def __init__(self, model="snn", hidden=tuple(_TABULAR["hidden"]),
                 time_steps=_TABULAR["time_steps"], decay=_NEURON["decay"],
                 threshold=_NEURON["threshold"], penalty=_NEURON["penalty"],
                 reset=_NEURON["reset"], delay=_NEURON["delay"], readout="mean", begin_eval=0,
                 encoding=None, spec=None, standardize=True, epochs=_TABULAR["epochs"],
                 batch_size=_TABULAR["batch_size"], optimizer=_TABULAR["optimizer"],
                 lr=_TABULAR["lr"][0], lr_step=_TABULAR["lr_step_epochs"],
                 lr_gamma=_TABULAR["lr_gamma"], momentum=_TABULAR["momentum"],
                 validation_fraction=0.0, device="cpu", threads=0, random_state=None, verbose=1):
        self.model = model
        self.hidden = hidden
        self.time_steps = time_steps
        self.decay = decay
        self.threshold = threshold
        self.penalty = penalty
        self.reset = reset
        self.delay = delay
        self.readout = readout
        self.begin_eval = begin_eval
        self.encoding = encoding
        self.spec = spec
        self.standardize = standardize
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.lr_step = lr_step
        self.lr_gamma = lr_gamma
        self.momentum = momentum
        self.validation_fraction = validation_fraction
        self.device = device
        self.threads = threads
        self.random_state = random_state
        self.verbose = verbose

    # -- building and training -------------------------------------------------------------
    def _description(self, task, inputs, outputs, input_shape=None):
        if self.spec is not None:
            spec = dict(json.loads(self.spec) if isinstance(self.spec, str) else self.spec)
            spec["inputs"] = inputs
            # Images [N, C, H, W] give their shape to a spec whose convolutions need one, as
            # IDX files do on the command line.
            if input_shape is not None:
                given = spec.get("input_shape")
                if given is not None and tuple(given) != input_shape:
                    raise ValueError(f"spec: input_shape {list(given)} does not match the shape "
                                     f"of X's images {list(input_shape)}")
                if given is None and any(l.get("type") in _MAP_LAYERS for l in spec["layers"]):
                    spec["input_shape"] = list(input_shape)
            text = _core.normalize_spec(json.dumps(spec), inputs)
            n_out = _spec_outputs(json.loads(text))
            if n_out != outputs:
                raise ValueError(f"spec: the network has {n_out} outputs but the {task} task on "
                                 f"this data needs {outputs}")
            return text
        hidden = self.hidden
        hidden = [int(hidden)] if isinstance(hidden, (numbers.Integral, np.integer)) else [int(h) for h in hidden]
        return _core.cli_description(
            str(self.model), task, inputs, outputs, hidden, int(self.time_steps), float(self.decay),
            float(self.threshold), float(self.penalty), str(self.reset), bool(self.delay),
            self.encoding or "", self.readout or "", int(self.begin_eval))

    def _train(self, task, X, labels=None, targets=None, classes=0, outputs=1,
               class_names=(), target_names=(), input_shape=None):
        seed = _seed(self.random_state)
        desc = self._description(task, X.shape[1], outputs, input_shape)
        model = _core.Model.make(task, desc, str(self.device), seed, int(self.threads))
        names = getattr(self, "feature_names_in_", None)
        model.feature_names = [str(n) for n in names] if names is not None else []
        model.standardize_features = bool(self.standardize)
        model.class_names = list(class_names)
        model.target_names = list(target_names)
        lr = [float(self.lr)] if isinstance(self.lr, numbers.Real) else [float(v) for v in self.lr]
        fit_args = dict(epochs=int(self.epochs), batch_size=int(self.batch_size),
                        optimizer=str(self.optimizer), lr=lr, lr_step=int(self.lr_step),
                        lr_gamma=float(self.lr_gamma), momentum=float(self.momentum), seed=seed)
        # A held-out share of the rows for per-epoch validation, split as the CLI splits
        # (--validation-fraction: the library's seeded, stratified split).
        if self.validation_fraction:
            strat = labels if labels is not None else None
            train, val, _ = _core.split_indices(X.shape[0], 0.0, float(self.validation_fraction),
                                                seed, strat)
            fit_args.update(x_val=X[val], labels_val=None if labels is None else labels[val],
                            targets_val=None if targets is None else targets[val])
            X = X[train]
            labels = None if labels is None else labels[train]
            targets = None if targets is None else targets[train]
        progress = Progress(self.verbose, self._regression)
        try:
            result = model.fit(X, labels=labels, targets=targets, classes=classes,
                               on_batch=progress.batch if self.verbose else None,
                               on_epoch=progress.epoch if self.verbose else None, **fit_args)
        finally:
            progress.close()
        self._model = model
        self.history_ = model.history
        self.train_samples_per_second_ = result["samples_per_second"]
        return self

    # -- common API ------------------------------------------------------------------------
    def _check_fitted(self):
        check_is_fitted(self, "_model")

    @property
    def network_(self):
        """The trained network (nmsnn.Network): parameters by PyTorch name, forward, traces."""
        self._check_fitted()
        return Network._wrap(self._model.network, self._model)

    @property
    def spec_(self):
        """The trained network's description (a dict in the model-file format)."""
        self._check_fitted()
        return json.loads(self._model.spec_json)

    def save(self, path):
        """Writes the fitted model to `path`: the safetensors file of `nmsnn train --save`."""
        self._check_fitted()
        self._model.save(os.fspath(path))

    def evaluate(self, X, y):
        """The library's metrics on (X, y) as a dict (accuracy, macro F1, AUC, confusion matrix,
        ROC/PR curves, R2, RMSE, MAE, firing rates, ...), as `nmsnn eval` reports them."""
        self._check_fitted()
        X = self._check_X(X)
        return self._model.evaluate(X, **self._eval_target(y))

    def trace(self, x):
        """Every layer's state and spikes over time for the rows of x (the seed's neuron views):
        a list, per layer, of dicts of 'state' and 'spikes' arrays [T, rows, neurons]."""
        self._check_fitted()
        return self._model.trace(self._check_X(x))

    def _check_X(self, X):
        X, shape = _images(X)
        if shape is not None:
            want = json.loads(self._model.spec_json).get("input_shape")
            if want is not None and tuple(want) != shape:
                raise ValueError(f"X holds images of shape {list(shape)}, the network reads "
                                 f"{list(want)}")
        return _validate(self, X, reset=False)

    def _raw_predict(self, X, logits=False):
        """The model's values (probabilities or targets) as float64, and with logits=True also
        the network's outputs [n, outputs] (the logits of a classifier)."""
        self._check_fitted()
        values, _, z = self._model.predict(self._check_X(X))
        values = values.astype(np.float64)
        return (values, z.astype(np.float64)) if logits else values

    # -- pickling: the model as the bytes of its file --------------------------------------
    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__
        state = dict(state)
        model = state.pop("_model", None)
        if model is not None:
            state["_model_file"] = model.to_bytes()
        return state

    def __setstate__(self, state):
        state = dict(state)
        data = state.pop("_model_file", None)
        if hasattr(super(), "__setstate__"):
            super().__setstate__(state)
        else:
            self.__dict__.update(state)
        if data is not None:
            self._model = _core.Model.from_bytes(data, "pickled model", self.device,
                                                 int(self.threads))

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": self._regression}

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = self._regression
        return tags


def _spec_outputs(spec):
    for layer in reversed(spec["layers"]):
        if "size" in layer:
            return int(layer["size"])
        if "units" in layer and layer["units"]:
            return int(layer["units"])
    return int(spec["inputs"])


class SpikingClassifier(ClassifierMixin, _SpikingEstimator):
    """A spiking-network classifier, binary or multiclass (chosen from the number of classes).

    Parameters are named like `nmsnn train`'s flags: model ("snn" or the non-spiking baseline
    "mlp"), hidden (sizes), time_steps, decay, threshold, penalty, reset ("scale"|"subtract"),
    delay, readout ("mean"|"sum"), begin_eval, encoding (None: the model's own; "noisy" or
    "repeated"), spec (a model-file dict, in place of model/hidden/...; a convolutional one
    gives "input_shape": [C, H, W], or takes it from X given as images [N, C, H, W]; X may
    always be rows [N, C*H*W] in (c, y, x) order), epochs, batch_size,
    standardize (standardise features inside the model, as the CLI does for CSV data; False:
    features as given, as the CLI does for images), optimizer ("adam"|"sgd"), lr (one, or one
    per epoch), lr_step, lr_gamma, momentum,
    validation_fraction, device ("cpu"|"cuda"), threads (0: all cores), random_state (an int
    seeds weights, noise masks and shuffling as the CLI's --seed; None: a fresh seed),
    verbose (0: silent, 1: a progress line, 2: a line per epoch).
    """

    def fit(self, X, y):
        target_names = _names(y)
        X, input_shape = _images(X)
        X, y = _validate(self, X, y, reset=True)
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        C = len(self.classes_)
        if C < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; y has "
                             f"only one class ({self.classes_[0]!r}), 1 class")
        task = "binary" if C == 2 else "multiclass"
        return self._train(task, X, labels=labels.astype(np.int32), classes=C,
                           outputs=1 if C == 2 else C,
                           class_names=[str(c) for c in self.classes_],
                           target_names=target_names if target_names and len(target_names) == 1
                           else ["target"], input_shape=input_shape)

    def _eval_target(self, y):
        y = np.asarray(y).ravel()
        index = {c: i for i, c in enumerate(self.classes_.tolist())}
        unknown = [c for c in np.unique(y).tolist() if c not in index]
        if unknown:
            raise ValueError(f"y has labels the classifier was not trained on: {unknown[:5]} "
                             f"(its classes are {self.classes_.tolist()[:10]})")
        labels = np.array([index[c] for c in y.tolist()], dtype=np.int32)
        return dict(labels=labels, classes=len(self.classes_))

    def predict_proba(self, X):
        """Class probabilities [n, classes], in the order of classes_."""
        values = self._raw_predict(X)
        if len(self.classes_) == 2:
            p = values[:, 0]
            return np.column_stack([1.0 - p, p])
        return values / values.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def decision_function(self, X):
        """The network's outputs: binary, the logit (log-odds) of classes_[1] [n], > 0 where
        classes_[1] is predicted; multiclass, the C logits [n, classes], whose softmax is
        predict_proba. Read from the network, so finite where a probability rounds to 0 or 1."""
        _, z = self._raw_predict(X, logits=True)
        return z[:, 0] if len(self.classes_) == 2 else z

    def predict(self, X):
        self._check_fitted()
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class SpikingRegressor(RegressorMixin, _SpikingEstimator):
    """A spiking-network regressor (one or several targets), its output a linear readout of the
    last spiking layer's time-averaged spikes; targets are standardised inside the model and
    predictions come back in the data's units. Parameters: as SpikingClassifier."""

    _regression = True

    def fit(self, X, y):
        target_names = _names(y)
        X, input_shape = _images(X)
        X, y = _validate(self, X, y, reset=True, regression=True)
        y = np.asarray(y, dtype=np.float32)
        self._y_ndim = y.ndim
        targets = np.ascontiguousarray(y.reshape(y.shape[0], -1))
        K = targets.shape[1]
        if target_names is None or len(target_names) != K:
            target_names = ["target"] if K == 1 else [f"target{k}" for k in range(K)]
        return self._train("regression", X, targets=targets, outputs=K, target_names=target_names,
                           input_shape=input_shape)

    def _eval_target(self, y):
        y = np.asarray(y, dtype=np.float32)
        return dict(targets=np.ascontiguousarray(y.reshape(y.shape[0], -1)))

    def predict(self, X):
        values = self._raw_predict(X)
        return values[:, 0] if getattr(self, "_y_ndim", 1) == 1 else values


# ---- model files ----------------------------------------------------------------------------

def _class_values(names):
    """A model file's class names back as labels: ints or floats when they all read as such."""
    for kind in (int, float):
        try:
            return np.array([kind(n) for n in names])
        except ValueError:
            pass
    return np.array(names, dtype=object)


def load(path, device="cpu", threads=0):
    """Reads a model file (from `save` or `nmsnn train --save`) as a fitted SpikingClassifier or
    SpikingRegressor. Its settings are read back from the network description where they map to
    parameters (model, hidden, time_steps, neuron settings, readout, encoding), else kept as spec."""
    model = _core.Model.load(os.fspath(path), device, int(threads))
    spec = json.loads(model.spec_json)
    regression = model.task == "regression"
    est = (SpikingRegressor if regression else SpikingClassifier)(device=device, threads=threads,
                                                                   random_state=int(model.seed))
    layers = spec["layers"]
    kinds = [l["type"] for l in layers]
    last_dense = kinds[-1] == "dense"
    params = {}
    if all(k == "spiking" for k in kinds[:-1]) and (kinds[-1] == "spiking" or (last_dense and model.task != "multiclass")) \
            and len(kinds) > 1:
        first = layers[0]
        params = dict(model="snn", hidden=tuple(l["size"] for l in layers[:-1]),
                      time_steps=spec["time_steps"], decay=first["decay"],
                      threshold=first["threshold"], penalty=first["penalty"],
                      reset=first["reset"], delay=first["delay"])
    elif kinds == ["dense", "activation"] * ((len(kinds) - 1) // 2) + ["dense"] and len(kinds) > 1 \
            and all(l.get("function", "relu") == "relu" for l in layers if l["type"] == "activation"):
        params = dict(model="mlp", hidden=tuple(l["size"] for l in layers[:-1:2]))
    else:
        params = dict(spec={k: v for k, v in spec.items() if k != "inputs"})
    if "spec" not in params:
        params.update(readout=spec["readout"]["reduce"], begin_eval=spec["readout"]["begin_eval"],
                      encoding=spec["encoding"])
    params["standardize"] = bool(model.standardize_features)
    est.set_params(**params)
    est._model = model
    est.n_features_in_ = int(spec["inputs"])
    if model.feature_names:
        est.feature_names_in_ = np.array(model.feature_names, dtype=object)
    est.history_ = model.history
    if regression:
        est._y_ndim = 1 if len(model.target_names) <= 1 else 2
    else:
        names = model.class_names
        if not names:
            n = 2 if model.task == "binary" else _spec_outputs(spec)
            names = [str(i) for i in range(n)]
        est.classes_ = _class_values(names)
    return est
