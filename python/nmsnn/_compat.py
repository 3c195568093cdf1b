"""What the estimators use from scikit-learn, for when it is not installed: get_params/set_params,
score, and scikit-learn-style validation of X and y (NumPy only)."""
import inspect

import numpy as np


class NotFittedError(ValueError, AttributeError):
    pass


class BaseEstimator:
    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values() if p.name != "self")

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}")
            setattr(self, key, value)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class ClassifierMixin:
    _estimator_type = "classifier"

    def score(self, X, y):
        return float(np.mean(self.predict(X) == np.asarray(y)))


class RegressorMixin:
    _estimator_type = "regressor"

    def score(self, X, y):
        y = np.asarray(y, dtype=np.float64)
        p = np.asarray(self.predict(X), dtype=np.float64).reshape(y.shape)
        ss_res = ((y - p) ** 2).sum(axis=0)
        ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        return float(np.mean(1 - ss_res / ss_tot))


def check_is_fitted(est, attribute):
    if not hasattr(est, attribute):
        raise NotFittedError(f"This {type(est).__name__} instance is not fitted yet; call 'fit' first")


def check_classification_targets(y):
    y = np.asarray(y)
    if y.dtype.kind == "f" and np.any(y != np.round(y)):
        raise ValueError("Unknown label type: continuous values; a classifier needs class labels")


def _check_array(X, name):
    if hasattr(X, "columns"):
        names = np.array([str(c) for c in X.columns], dtype=object)
    else:
        names = None
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D array for {name}, got {X.ndim}-D; reshape your data")
    if X.shape[0] < 1:
        raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}); a minimum of 1 is required")
    if X.shape[1] < 1:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}); a minimum of 1 is required")
    X = np.ascontiguousarray(X, dtype=np.float32)
    if np.isnan(X).any():
        raise ValueError(f"Input {name} contains NaN")
    if not np.isfinite(X).all():
        raise ValueError(f"Input {name} contains infinity or a value too large for float32")
    return X, names


def validate_data(est, X, y=None, reset=True, regression=False):
    X, names = _check_array(X, "X")
    if reset:
        est.n_features_in_ = X.shape[1]
        if names is not None:
            est.feature_names_in_ = names
        elif hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
    elif X.shape[1] != est.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
                         f"{est.n_features_in_} features as input")
    if y is None:
        if reset:
            raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None")
        return X
    y = np.asarray(y)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X and y have different numbers of samples: {X.shape[0]} and {y.shape[0]}")
    if regression:
        y = y.astype(np.float32)
        if not np.isfinite(y).all():
            raise ValueError("Input y contains NaN or infinity")
    elif y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    elif y.ndim != 1:
        raise ValueError(f"y should be a 1-D array, got shape {y.shape}")
    return X, y
