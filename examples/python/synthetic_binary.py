"""The seed's synthetic binary demo in Python: scikit-learn's make_classification (the seed's
call) plus 40 standard-normal noise columns, 40% test and 20% of the rest for validation, a spiking binary classifier against its non-spiking
baseline (as examples/synthetic_binary.cpp: 64 hidden, T = 500, Adam 1e-3, batch 64, 20 epochs;
about 10 minutes on 2 cores). `python examples/python/synthetic_binary.py --quick` runs a small
version in seconds. Needs scikit-learn (for the data).
"""
import sys

import numpy as np

import nmsnn


def make_data(n=10000, noise_columns=40, seed=1):
    from sklearn.datasets import make_classification
    # The seed's call: scikit-learn's defaults (20 features, 2 informative, 2 redundant).
    X, y = make_classification(n_samples=n, random_state=seed)
    rng = np.random.RandomState(seed)
    X = np.hstack([X, rng.randn(n, noise_columns)])
    return X.astype(np.float32), y


def main(quick=False, verbose=1):
    n, T, epochs = (1000, 32, 5) if quick else (10000, 500, 20)
    X, y = make_data(n)
    train, _, test = nmsnn.split_indices(len(y), test_fraction=0.4, seed=1,
                                         stratify=y.astype(np.int32))
    results = {}
    for name in ("snn", "mlp"):
        clf = nmsnn.SpikingClassifier(model=name, hidden=(64,), time_steps=T, epochs=epochs,
                                      batch_size=64, validation_fraction=0.2,
                                      random_state=1, verbose=verbose)
        clf.fit(X[train], y[train])
        m = clf.evaluate(X[test], y[test])
        results[name] = m
        print(f"{name}: test accuracy {m['accuracy']:.4f}  AUC {m['auc']:.3f}")
    return results


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
