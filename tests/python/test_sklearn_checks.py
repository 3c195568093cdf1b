"""scikit-learn's own estimator checks on both estimators (parametrize_with_checks), with small
settings so that they run in seconds. Expected failures are listed here and in README's Python
section, with the reason."""
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import nmsnn  # noqa: E402

SMALL = dict(hidden=(16,), time_steps=8, epochs=30, batch_size=16, lr=1e-2, verbose=0, threads=1)

# check name -> why it cannot pass (README, "Python", expected failures).
EXPECTED_FAILURES = {}


def _xfail(estimator, check):
    name = getattr(check, "func", check).__name__
    return EXPECTED_FAILURES.get(name)


@parametrize_with_checks([nmsnn.SpikingClassifier(**SMALL), nmsnn.SpikingRegressor(**SMALL)])
def test_sklearn_estimator_checks(estimator, check):
    reason = _xfail(estimator, check)
    if reason:
        pytest.xfail(reason)
    check(estimator)
