"""The seed's iris demo in Python: a spiking classifier against its non-spiking baseline.

Same data, split and seed as `nmsnn train --data data/csv/iris_data.csv --target target`
(the library's seeded, stratified 80/20 split; seed 1), so the spiking model's test accuracy is
the CLI's. Run: python examples/python/iris.py
"""
import os
import sys

import numpy as np

import nmsnn

HERE = os.path.dirname(os.path.abspath(__file__))
CSV = os.path.join(HERE, "..", "..", "data", "csv", "iris_data.csv")


def load():
    try:
        import pandas as pd
    except ImportError:  # nmsnn reads the CSV itself as well
        d = nmsnn.read_csv(CSV, target="target")
        return d["x"], np.asarray(d["y"])
    df = pd.read_csv(CSV)
    return df.drop(columns="target"), df["target"]


def main(seed=1, epochs=100, verbose=1):
    X, y = load()
    # The CLI's split: stratified by class, 20% test, seed 1.
    labels = np.unique(np.asarray(y), return_inverse=True)[1].astype(np.int32)
    train, _, test = nmsnn.split_indices(len(labels), test_fraction=0.2, seed=seed, stratify=labels)
    take = (lambda a, i: a.iloc[i]) if hasattr(X, "iloc") else (lambda a, i: a[i])
    X_train, X_test, y_train, y_test = take(X, train), take(X, test), take(y, train), take(y, test)

    results = {}
    for name in ("snn", "mlp"):
        clf = nmsnn.SpikingClassifier(model=name, epochs=epochs, random_state=seed, verbose=verbose)
        clf.fit(X_train, y_train)
        m = clf.evaluate(X_test, y_test)
        results[name] = m["accuracy"]
        print(f"{name}: test accuracy {m['accuracy']:.4f}  macro F1 {m['macro_f1']:.3f}  "
              f"AUC {m['auc']:.3f}  ({m['count']} samples)")
    return results


if __name__ == "__main__":
    main(epochs=int(sys.argv[1]) if len(sys.argv) > 1 else 100)
