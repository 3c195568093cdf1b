"""nmsnn — spiking neural networks as predictive models, over the library's C++ core.

    import nmsnn
    clf = nmsnn.SpikingClassifier(epochs=50, random_state=1).fit(X_train, y_train)
    clf.score(X_test, y_test)
    clf.save("model.nmsnn")             # the file `nmsnn predict --model` reads
    clf = nmsnn.load("model.nmsnn")     # a SpikingClassifier or SpikingRegressor

`import nmsnn` needs NumPy only; scikit-learn (estimator base classes, validation), pandas
(DataFrames with column names) and matplotlib (nmsnn.plots) are used when installed.
"""
from ._core import (
    Error,
    TrainingDiverged,
    cpu_kernel_set,
    cuda_available,
    read_csv,
    split_indices,
)
from .network import Network, ForwardPass

__version__ = "0.1.0"

_LAZY = ("SpikingClassifier", "SpikingRegressor", "load")


def __getattr__(name):
    # The estimators subclass scikit-learn's base classes when it is installed: imported on first
    # use, so that `import nmsnn` itself loads NumPy only.
    if name in _LAZY:
        from . import estimators
        return getattr(estimators, name)
    raise AttributeError(f"module 'nmsnn' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))

__all__ = [
    "Error",
    "TrainingDiverged",
    "Network",
    "ForwardPass",
    "SpikingClassifier",
    "SpikingRegressor",
    "load",
    "read_csv",
    "split_indices",
    "cpu_kernel_set",
    "cuda_available",
]
